//! `k1s bench sandbox`: pod sandboxes with their network, created and removed by the runtime's
//! [`SandboxManager`], next to the same network set-up done the naive way (one `unshare` and
//! seven `ip` processes per pod) in the same run.
//!
//! It creates a bridge, veths, routes and an nft table, so it only runs in a network namespace
//! of its own: it re-executes itself as `unshare --net -- k1s bench sandbox ...` (the equivalent
//! of running that by hand). Everything it creates is removed at the end, and the netns goes with
//! the process.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use k1s_runtime::sandbox::{NetworkConfig, SandboxManager, SandboxSpec};

use super::stats::Samples;

#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// Sandboxes created then removed, one after another.
    #[arg(long, default_value_t = 500)]
    pub count: u64,
    /// Sandboxes kept alive at once in the second phase (at most 250: one /24).
    #[arg(long, default_value_t = 100)]
    pub live: u64,
    /// Pods set up the naive way with `unshare` and `ip` (0 to skip).
    #[arg(long, default_value_t = 50)]
    pub naive: u64,
}

pub fn run(args: SandboxArgs) -> Result<()> {
    if super::reexec_in_own_netns()? {
        return Ok(());
    }
    ensure!(
        args.live <= 250,
        "--live is at most 250 (one /24 of pod IPs)"
    );
    let root = tempfile::tempdir().context("temp dir")?;
    let config = NetworkConfig::default();

    let t = Instant::now();
    let mgr = SandboxManager::open(root.path(), config.clone())?;
    println!(
        "node network set-up (bridge, routes, nft table): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let result = measure(&mgr, &args).and_then(|()| naive(root.path(), &config, args.naive));
    for s in mgr.list() {
        mgr.remove(&s.id)?;
    }
    mgr.teardown_node()?;
    result
}

fn spec(i: u64) -> SandboxSpec {
    SandboxSpec {
        id: format!("bench-{i}"),
        hostname: format!("bench-{i}"),
        host_network: false,
        resolv_conf: Some("nameserver 10.43.0.10\n".into()),
    }
}

fn measure(mgr: &SandboxManager, args: &SandboxArgs) -> Result<()> {
    // Warm-up: first-use costs (page cache, slab caches) are not what a pod pays.
    for i in 0..5 {
        mgr.create(&spec(i))?;
        mgr.remove(&spec(i).id)?;
    }
    let mut create = Samples::with_capacity(args.count as usize);
    let mut remove = Samples::with_capacity(args.count as usize);
    let mut busy = Duration::ZERO;
    for i in 0..args.count {
        let t = Instant::now();
        mgr.create(&spec(i))?;
        let c = t.elapsed();
        let t = Instant::now();
        mgr.remove(&spec(i).id)?;
        let r = t.elapsed();
        create.push(c);
        remove.push(r);
        busy += c;
    }
    create
        .report("sandbox create (network ready)", args.count, Some(busy))
        .note("rate = creates/s of create time")
        .print();
    remove.report("sandbox remove", args.count, None).print();

    let mut create = Samples::with_capacity(args.live as usize);
    let mut remove = Samples::with_capacity(args.live as usize);
    let cpu_before = cpu_time()?;
    let t_all = Instant::now();
    for i in 0..args.live {
        let t = Instant::now();
        mgr.create(&spec(i))?;
        create.push(t.elapsed());
    }
    let wall = t_all.elapsed();
    let cpu = cpu_time()?.saturating_sub(cpu_before);
    for i in 0..args.live {
        let t = Instant::now();
        mgr.remove(&spec(i).id)?;
        remove.push(t.elapsed());
    }
    create
        .report(
            &format!("create up to {} live", args.live),
            args.live,
            Some(wall),
        )
        .note(format!(
            "k1s CPU (user+sys, all threads) {:.2} ms/create",
            cpu.as_secs_f64() * 1e3 / args.live.max(1) as f64
        ))
        .print();
    remove
        .report(&format!("remove from {} live", args.live), args.live, None)
        .print();
    Ok(())
}

/// CPU time (user + system) of this process so far, all threads: `/proc/self/stat` fields 14
/// and 15, in clock ticks of 1/100 s (`USER_HZ` is 100 on Linux).
fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = stat.rsplit_once(')').context("/proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so fields 14 and 15 are at indices 11 and 12.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("/proc/self/stat is short")?
            .parse::<u64>()
            .context("/proc/self/stat field")
    };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The same pod network done by spawning tools: `unshare` makes the persistent namespaces, then
/// seven `ip` commands (veth with the peer in the pod netns, master and up, hairpin, and inside
/// the pod through `nsenter`: lo up, eth0 up, address, default route).
fn naive(root: &Path, config: &NetworkConfig, count: u64) -> Result<()> {
    if count == 0 {
        return Ok(());
    }
    let gateway = config.gateway().to_string();
    let prefix = config.node_pod_cidr.prefix();
    let mut with_ns = Samples::with_capacity(count as usize);
    let mut ip_only = Samples::with_capacity(count as usize);
    let mut remove = Samples::with_capacity(count as usize);
    for i in 0..count {
        let dir = root.join(format!("naive-{i}"));
        std::fs::create_dir_all(&dir)?;
        let netns = dir.join("net");
        for kind in ["net", "uts", "ipc"] {
            std::fs::File::create(dir.join(kind))?;
        }
        let ns = netns.to_str().context("path")?.to_string();
        let ip = config.node_pod_cidr.nth(200 + (i % 50) as u32);
        let veth = format!("naive{i}");
        let t = Instant::now();
        sh(Command::new("unshare").args([
            format!("--net={ns}"),
            format!("--uts={}", dir.join("uts").display()),
            format!("--ipc={}", dir.join("ipc").display()),
            "hostname".into(),
            format!("naive-{i}"),
        ]))?;
        let t_ip = Instant::now();
        let ip_cmds: [Vec<String>; 3] = [
            vec![
                "link", "add", &veth, "mtu", "1500", "type", "veth", "peer", "name", "eth0",
            ]
            .into_iter()
            .map(String::from)
            .chain(["mtu", "1500", "netns", &ns].map(String::from))
            .collect(),
            ["link", "set", &veth, "master", &config.bridge, "up"]
                .map(String::from)
                .to_vec(),
            [
                "link",
                "set",
                &veth,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for args in &ip_cmds {
            sh(Command::new("ip").args(args))?;
        }
        let addr = format!("{ip}/{prefix}");
        let pod_cmds: [&[&str]; 4] = [
            &["link", "set", "lo", "up"],
            &["link", "set", "eth0", "up"],
            &["addr", "add", &addr, "dev", "eth0"],
            &["route", "add", "default", "via", &gateway],
        ];
        for args in pod_cmds {
            sh(Command::new("nsenter")
                .arg(format!("--net={ns}"))
                .arg("ip")
                .args(args))?;
        }
        let done = Instant::now();
        with_ns.push(done - t);
        ip_only.push(done - t_ip);
        let t = Instant::now();
        sh(Command::new("ip").args(["link", "del", &veth]))?;
        for kind in ["net", "uts", "ipc"] {
            rustix::mount::unmount(dir.join(kind), rustix::mount::UnmountFlags::DETACH)
                .context("umount")?;
        }
        remove.push(t.elapsed());
        std::fs::remove_dir_all(&dir)?;
    }
    with_ns
        .report("naive create: unshare + 7x ip", count, None)
        .print();
    ip_only
        .report("naive network only: 7x ip", count, None)
        .print();
    remove
        .report("naive remove: ip link del + umount", count, None)
        .print();
    Ok(())
}

fn sh(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
