//! Container subcommands: `run`, `ps`, `logs`, `exec`, `stop`, `rm`, over the same state
//! (`<data-dir>/runtime/containers`) the kubelet uses. `run` streams the container's output by
//! following its CRI log (the shim, not this process, holds the pipes), so killing `k1s runtime
//! run` leaves the container running, like a detached one.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;
use k1s_runtime::container::log::{LogReader, Stream};
use k1s_runtime::container::{
    ContainerManager, ContainerSpec, ExecSpec, Phase, merge_command, merge_env,
};
use k1s_runtime::image::RegistryAuth;
use k1s_runtime::sandbox::{NetworkConfig, SandboxManager, SandboxSpec};

use super::RuntimeFlags;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Give the container a pod sandbox with networking (its own IP on the bridge).
    #[arg(long)]
    pub net: bool,
    /// Run this directory as the root filesystem instead of an image; IMAGE is then the command.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Container id (default: random).
    #[arg(long)]
    pub name: Option<String>,
    /// Parent cgroup of the container's cgroup.
    #[arg(long, default_value = "k1s/run")]
    pub cgroup_parent: String,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show stopped containers too.
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[arg(short, long)]
    pub follow: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Allocate a TTY.
    #[arg(short, long)]
    pub tty: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    pub id: String,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub time: u64,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Stop it first if it is running.
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

/// Follow-mode poll interval of the log file.
const FOLLOW_POLL: Duration = Duration::from_millis(20);

fn manager(flags: &RuntimeFlags) -> Result<ContainerManager> {
    let exe = std::env::current_exe().context("locating the k1s binary for the shim")?;
    Ok(ContainerManager::open(&flags.runtime_root(), exe)?)
}

fn random_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(std::process::id()) << 17);
    format!("{:012x}", mixed & 0xffff_ffff_ffff)
}

pub fn run(flags: &RuntimeFlags, args: RunArgs) -> Result<i32> {
    let mgr = manager(flags)?;
    let (layers, config, command) = match &args.rootfs {
        Some(dir) => {
            let mut command = vec![args.image.clone()];
            command.extend(args.command.iter().cloned());
            (
                vec![
                    dir.canonicalize()
                        .with_context(|| format!("{}", dir.display()))?,
                ],
                Default::default(),
                command,
            )
        }
        None => {
            let store = super::images::open_store(flags)?;
            let image = match store.get(&args.image)? {
                Some(image) => image,
                None => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(store.pull(&args.image, &RegistryAuth::Anonymous))?,
            };
            (image.layers, image.config, args.command.clone())
        }
    };
    let argv = merge_command(&[], &command, &config.entrypoint, &config.cmd);
    let id = args.name.clone().unwrap_or_else(random_id);
    let hostname: String = id.chars().take(12).collect();
    // With --net the container joins a pod sandbox (own IP on the k1s0 bridge); without it, a
    // private network namespace with loopback only.
    let sandbox = match args.net {
        true => {
            let sandboxes = SandboxManager::open(flags.runtime_root(), NetworkConfig::default())?;
            let sb = sandboxes.create(&SandboxSpec {
                id: id.clone(),
                hostname: hostname.clone(),
                ..Default::default()
            })?;
            if let Some(ip) = sb.ip {
                eprintln!("k1s runtime run: sandbox {id} has IP {ip}");
            }
            Some((sandboxes, sb))
        }
        false => None,
    };
    let spec = ContainerSpec {
        id: id.clone(),
        pod_id: id.clone(),
        hostname,
        namespaces: sandbox
            .as_ref()
            .map(|(_, sb)| sb.namespaces.clone())
            .unwrap_or_default(),
        hosts_file: sandbox.as_ref().map(|(_, sb)| sb.hosts.clone()),
        hostname_file: sandbox.as_ref().map(|(_, sb)| sb.hostname_file.clone()),
        resolv_conf: sandbox.as_ref().map(|(_, sb)| sb.resolv_conf.clone()),
        layers,
        args: argv,
        env: merge_env(&config.env, &[]),
        working_dir: config.working_dir.clone(),
        user: config.user.clone(),
        cgroup_parent: args.cgroup_parent.clone(),
        ..Default::default()
    };
    let remove_sandbox = || match &sandbox {
        Some((sandboxes, _)) => sandboxes.remove(&id),
        None => Ok(()),
    };
    if let Err(e) = mgr.create(&spec) {
        let _ = remove_sandbox();
        return Err(e.into());
    }
    if let Err(e) = mgr.start(&id) {
        if args.rm {
            let _ = mgr.remove(&id);
            let _ = remove_sandbox();
        }
        return Err(e.into());
    }
    let log = mgr.log_path(&id)?;
    let code = follow(&mgr, &id, &log, true)?;
    if args.rm {
        mgr.remove(&id)?;
        remove_sandbox()?;
    }
    Ok(code.unwrap_or(0))
}

/// Removes the pod sandbox `k1s runtime run --net` made for container `id`, if there is one.
fn remove_sandbox_of(flags: &RuntimeFlags, id: &str) -> Result<()> {
    if !flags.runtime_root().join("sandboxes").join(id).exists() {
        return Ok(());
    }
    let sandboxes = SandboxManager::open(flags.runtime_root(), NetworkConfig::default())?;
    sandboxes.remove(id)?;
    Ok(())
}

/// Prints the log from the start; with `until_exit`, follows it until the container exited and
/// the log is drained, and returns the exit code.
fn follow(
    mgr: &ContainerManager,
    id: &str,
    log: &std::path::Path,
    until_exit: bool,
) -> Result<Option<i32>> {
    let mut reader = LogReader::new(log, 0);
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    loop {
        // Read the status first: a record written before the exit is then surely read below.
        let status = if until_exit {
            Some(mgr.status(id)?)
        } else {
            None
        };
        let mut out = stdout.lock();
        let mut err = stderr.lock();
        reader.poll(|rec| {
            let sink: &mut dyn Write = match rec.stream {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            let _ = sink.write_all(rec.text);
            if !rec.partial {
                let _ = sink.write_all(b"\n");
            }
        })?;
        let _ = out.flush();
        drop((out, err));
        match status {
            None => return Ok(None),
            Some(st) if matches!(st.phase, Phase::Exited | Phase::Unknown) => {
                return Ok(st.exit_code);
            }
            Some(_) => std::thread::sleep(FOLLOW_POLL),
        }
    }
}

pub fn ps(flags: &RuntimeFlags, args: PsArgs) -> Result<i32> {
    let mgr = manager(flags)?;
    println!(
        "{:<20} {:<8} {:<5} {:<10} CREATED",
        "CONTAINER", "STATE", "EXIT", "REASON"
    );
    for c in mgr.list()? {
        if !args.all && c.phase != Phase::Running {
            continue;
        }
        println!(
            "{:<20} {:<8} {:<5} {:<10} {}",
            c.id,
            format!("{:?}", c.phase).to_lowercase(),
            c.exit_code.map(|e| e.to_string()).unwrap_or_default(),
            c.reason.unwrap_or_default(),
            c.created_at
        );
    }
    Ok(0)
}

pub fn logs(flags: &RuntimeFlags, args: LogsArgs) -> Result<i32> {
    let mgr = manager(flags)?;
    let log = mgr.log_path(&args.id)?;
    follow(&mgr, &args.id, &log, args.follow)?;
    Ok(0)
}

pub fn exec(flags: &RuntimeFlags, args: ExecArgs) -> Result<i32> {
    let mgr = manager(flags)?;
    let mut session = mgr.exec(
        &args.id,
        &ExecSpec {
            cmd: args.command.clone(),
            tty: args.tty,
            stdin: true,
            env: Vec::new(),
        },
    )?;
    if args.tty {
        let pty = session.pty.take().context("no pty")?;
        let _raw = RawTerminal::enter();
        if let Some((rows, cols)) = terminal_size() {
            session.resize(rows, cols)?;
        }
        let mut input = pty.try_clone()?;
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut input);
        });
        copy_until_eio(pty, std::io::stdout());
        return Ok(session.wait()?);
    }
    if let Some(mut stdin) = session.stdin.take() {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut stdin);
        });
    }
    let err_thread = session.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut e, &mut std::io::stderr());
        })
    });
    if let Some(mut out) = session.stdout.take() {
        let _ = std::io::copy(&mut out, &mut std::io::stdout());
    }
    if let Some(t) = err_thread {
        let _ = t.join();
    }
    Ok(session.wait()?)
}

/// Copies our stdin to the container's (if it keeps one) and its output to ours until the
/// container's streams end; then exits with the container's exit code.
pub fn attach(flags: &RuntimeFlags, args: AttachArgs) -> Result<i32> {
    let mgr = manager(flags)?;
    let mut session = mgr.attach(&args.id)?;
    // Restored on return, before the exit.
    let _raw = session.tty.then(RawTerminal::enter);
    if let Some(mut stdin) = session.stdin.take() {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut stdin);
        });
    }
    if session.tty {
        copy_until_eio(session.stdout, std::io::stdout());
    } else {
        let err_thread = session.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut e, &mut std::io::stderr());
            })
        });
        let _ = std::io::copy(&mut session.stdout, &mut std::io::stdout());
        if let Some(t) = err_thread {
            let _ = t.join();
        }
    }
    Ok(mgr.wait(&args.id)?.exit_code.unwrap_or(0))
}

/// Copies a pty master to `out` until the slave side is closed (EIO).
fn copy_until_eio(mut from: std::fs::File, mut out: impl Write) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || out.write_all(&buf[..n]).is_err() {
            break;
        }
        let _ = out.flush();
    }
}

fn terminal_size() -> Option<(u16, u16)> {
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut it = text.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Puts the local terminal in raw mode for `exec -t` and restores it on drop.
struct RawTerminal(Option<String>);

impl RawTerminal {
    fn enter() -> Self {
        if !std::io::stdin().is_terminal() {
            return Self(None);
        }
        let saved = std::process::Command::new("stty")
            .arg("-g")
            .stdin(std::process::Stdio::inherit())
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok());
        let _ = std::process::Command::new("stty")
            .arg("raw")
            .arg("-echo")
            .stdin(std::process::Stdio::inherit())
            .status();
        Self(saved.map(|s| s.trim().to_string()))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = std::process::Command::new("stty")
                .arg(saved)
                .stdin(std::process::Stdio::inherit())
                .status();
        }
    }
}

pub fn stop(flags: &RuntimeFlags, args: StopArgs) -> Result<i32> {
    let mgr = manager(flags)?;
    let st = mgr.stop(&args.id, libc_sigterm(), Duration::from_secs(args.time))?;
    println!("{} exited with {}", args.id, st.exit_code.unwrap_or(-1));
    Ok(0)
}

pub fn rm(flags: &RuntimeFlags, args: RmArgs) -> Result<i32> {
    let mgr = manager(flags)?;
    let st = mgr.status(&args.id)?;
    if st.phase == Phase::Running {
        if !args.force {
            bail!(
                "container {} is running: stop it first or use --force",
                args.id
            );
        }
        mgr.stop(&args.id, libc_sigterm(), Duration::ZERO)?;
    }
    mgr.remove(&args.id)?;
    remove_sandbox_of(flags, &args.id)?;
    println!("{}", args.id);
    Ok(0)
}

/// SIGTERM's number on Linux.
fn libc_sigterm() -> i32 {
    15
}
