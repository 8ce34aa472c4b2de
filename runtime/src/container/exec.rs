//! `exec`: another process in a running container. The caller makes the stdio (pipes, or a pty
//! whose master it keeps) and passes the child's ends to the shim over the socket; the shim forks a
//! child that joins the init's namespaces (mnt, net, ipc, uts, cgroup; pid through the shim's own
//! `pid_ns_for_children`) and cgroup, takes on the container's user, capabilities and seccomp, and
//! execs. The shim never relays the data: the caller's fds are the process's stdio, which is what
//! `kubectl exec` streaming needs. With a tty the shim opens the pty in the container's devpts and
//! passes the master back; a resize is an ioctl on the master the caller holds.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::unistd::{ForkResult, Pid};

use super::ContainerError;
use super::init::{self, Stdio};
use super::process::Plan;
use super::proto::{Client, ExecRequest};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    /// Run on a pseudo-terminal (stdout and stderr are one stream, the pty master).
    pub tty: bool,
    /// Give the process a stdin pipe (else `/dev/null`; with a tty it always reads the pty).
    pub stdin: bool,
    /// `KEY=VALUE`, over the container's env.
    pub env: Vec<String>,
}

/// A running exec'd process: its stdio and its exit code.
pub struct ExecSession {
    client: Client,
    /// Pid on the host.
    pub pid: i32,
    /// Write end of stdin (`None` without `stdin`; with a tty, write to `pty`).
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    /// The pty master with a tty: read output from it, write input to it.
    pub pty: Option<File>,
}

impl ExecSession {
    /// Starts `spec` in the container whose directory is `dir`.
    pub fn start(dir: &Path, spec: &ExecSpec) -> Result<Self, ContainerError> {
        if spec.cmd.is_empty() {
            return Err(ContainerError::Spec("exec: no command".into()));
        }
        let client = Client::connect(dir)?;
        let req = ExecRequest {
            args: spec.cmd.clone(),
            env: spec.env.clone(),
            tty: spec.tty,
        };
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let line = format!(
            "exec {id} {}",
            serde_json::to_string(&req).map_err(|e| ContainerError::Spec(e.to_string()))?
        );
        let mut session = Self {
            client,
            pid: 0,
            stdin: None,
            stdout: None,
            stderr: None,
            pty: None,
        };
        if spec.tty {
            // The shim makes the pty in the container's devpts and hands back the master.
            session.client_send(&line, &[])?;
            let (reply, master) = session.client.reply_with_fd()?;
            if let Some(msg) = reply.strip_prefix("err ") {
                return Err(ContainerError::Failed(msg.to_string()));
            }
            session.pty = Some(File::from(master.ok_or_else(|| {
                ContainerError::Shim("exec: no pty master received".into())
            })?));
            session.pid = parse_pid(&reply)?;
            return Ok(session);
        } else {
            let pipe = || {
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map_err(|e| ContainerError::Shim(format!("pipe: {e}")))
            };
            let (in_r, in_w): (OwnedFd, Option<OwnedFd>) = if spec.stdin {
                let (r, w) = pipe()?;
                (r, Some(w))
            } else {
                let null = File::open("/dev/null")
                    .map_err(|e| ContainerError::io("open", Path::new("/dev/null"), e))?;
                (OwnedFd::from(null), None)
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            session.client_send(&line, &[in_r.as_fd(), out_w.as_fd(), err_w.as_fd()])?;
            session.stdin = in_w.map(File::from);
            session.stdout = Some(File::from(out_r));
            session.stderr = Some(File::from(err_r));
        }
        let reply = session.client.reply()?;
        if let Some(msg) = reply.strip_prefix("err ") {
            return Err(ContainerError::Failed(msg.to_string()));
        }
        session.pid = parse_pid(&reply)?;
        Ok(session)
    }

    fn client_send(
        &mut self,
        line: &str,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(), ContainerError> {
        self.client.send(line, fds)
    }

    /// Sets the terminal size (no-op without a tty).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), ContainerError> {
        match &self.pty {
            Some(pty) => set_winsize(pty, rows, cols),
            None => Ok(()),
        }
    }

    /// Waits for the process to exit; its exit code (128 + signal if killed).
    pub fn wait(mut self) -> Result<i32, ContainerError> {
        self.client.wait_exit()
    }
}

fn parse_pid(reply: &str) -> Result<i32, ContainerError> {
    reply
        .strip_prefix("pid ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| ContainerError::Shim(format!("unexpected reply {reply:?}")))
}

/// In the shim: forks the exec'd process into the container of `init_pid`. Returns its pid once
/// it has exec'd, or the reason it could not.
pub fn spawn(
    init_pid: Pid,
    plan: &Plan,
    stdio: Stdio,
    cgroup: &cgroups_rs::fs::Cgroup,
) -> Result<Pid, ContainerError> {
    let (mut rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map(|(r, w)| (File::from(r), File::from(w)))
        .map_err(|e| ContainerError::Shim(format!("pipe: {e}")))?;
    // Open the namespaces before forking, so a container that is gone fails here, in the shim.
    let mut nss = Vec::new();
    for kind in ["ipc", "uts", "net", "cgroup", "mnt"] {
        let path = format!("/proc/{init_pid}/ns/{kind}");
        let f = File::open(&path).map_err(|e| ContainerError::io("open", Path::new(&path), e))?;
        nss.push((kind, f));
    }
    match init::fork_child()? {
        ForkResult::Child => {
            drop(rx);
            let run = || -> Result<(), ContainerError> {
                init::child_basics(&stdio, cgroup)?;
                for (kind, f) in &nss {
                    let flag = match *kind {
                        "ipc" => nix::sched::CloneFlags::CLONE_NEWIPC,
                        "uts" => nix::sched::CloneFlags::CLONE_NEWUTS,
                        "net" => nix::sched::CloneFlags::CLONE_NEWNET,
                        "cgroup" => nix::sched::CloneFlags::CLONE_NEWCGROUP,
                        _ => nix::sched::CloneFlags::CLONE_NEWNS,
                    };
                    nix::sched::setns(f.as_fd(), flag)
                        .map_err(|e| ContainerError::Setup(format!("setns {kind}: {e}")))?;
                }
                Ok(())
            };
            let err = match run() {
                Ok(()) => plan.exec(),
                Err(e) => e,
            };
            init::report_and_exit(tx, &err)
        }
        ForkResult::Parent { child } => {
            drop(tx);
            drop(stdio);
            let mut buf = Vec::new();
            use std::io::Read;
            let _ = (&mut rx).take(64 * 1024).read_to_end(&mut buf);
            match buf.strip_prefix(b"E") {
                Some(msg) => Err(ContainerError::Failed(
                    String::from_utf8_lossy(msg).into_owned(),
                )),
                None => Ok(child),
            }
        }
    }
}

/// Sets the size of the terminal whose master (or any side) is `pty`.
#[allow(unsafe_code)]
pub(crate) fn set_winsize(pty: &impl AsRawFd, rows: u16, cols: u16) -> Result<(), ContainerError> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize`, which lives across the call.
    let rc = unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc != 0 {
        return Err(ContainerError::Failed(format!(
            "resize: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}
