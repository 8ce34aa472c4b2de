//! The container's first process, forked by the shim (single-threaded, so forking is safe) after
//! the shim entered the container's pid namespace (`unshare(CLONE_NEWPID)` makes its next child
//! PID 1 of a new one): joins the sandbox namespaces and the cgroup, unshares mount and cgroup
//! (and whatever the sandbox does not provide), builds the rootfs, pivots, reports ready, waits
//! for `start`, then confines itself and `execve`s (see [`super::process`]).
//!
//! Errors travel to the shim over a close-on-exec pipe: `R` means ready; `E<message>` means
//! failure; EOF after `start` means the `execve` succeeded (the pipe closed with it).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::unistd::{ForkResult, Pid};

use super::ContainerError;
use super::process::Plan;
use super::rootfs;
use super::spec::ContainerSpec;

/// The stdio a child gets; with `tty`, all three are the pty's slave side.
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub tty: bool,
    /// Init only: make a pty in the container's devpts, send its master over this socket and use
    /// the slave as stdio (the three fds above are placeholders then).
    pub console: Option<std::os::unix::net::UnixStream>,
}

/// The shim's handle on a created, not yet started, init process.
pub struct Created {
    pub pid: Pid,
    start_tx: File,
    sync_rx: File,
}

impl Created {
    /// Lets init continue to `execve` and waits for the outcome.
    pub fn start(mut self) -> Result<(), ContainerError> {
        // Write errors mean init already died; its message (if any) is on the sync pipe.
        let _ = self.start_tx.write_all(b"S");
        drop(self.start_tx);
        match read_report(&mut self.sync_rx)? {
            None => Ok(()),
            Some(msg) => Err(ContainerError::Failed(msg)),
        }
    }
}

/// Reads the child's report to EOF: `None` if it only said ready (or nothing), else its error.
fn read_report(rx: &mut File) -> Result<Option<String>, ContainerError> {
    let mut buf = Vec::new();
    rx.take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| ContainerError::Shim(format!("read child report: {e}")))?;
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim_start_matches('R');
    Ok(text.strip_prefix('E').map(str::to_string))
}

/// Reads until the child said ready (`R`) or failed (`E...` then EOF).
fn wait_ready(rx: &mut File) -> Result<(), ContainerError> {
    let mut first = [0u8; 1];
    match rx.read(&mut first) {
        Ok(1) if first[0] == b'R' => Ok(()),
        Ok(1) => {
            // `first` was the `E` of the error report: the rest is the message.
            let mut msg = Vec::new();
            let _ = rx.take(64 * 1024).read_to_end(&mut msg);
            Err(ContainerError::Failed(
                String::from_utf8_lossy(&msg).into_owned(),
            ))
        }
        _ => Err(ContainerError::Setup("init exited during set-up".into())),
    }
}

fn cloexec_pipe() -> Result<(File, File), ContainerError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::Shim(format!("pipe: {e}")))?;
    Ok((File::from(r), File::from(w)))
}

/// Forks the init process and waits until it is set up and waiting for `start`.
pub fn create(
    spec: &ContainerSpec,
    dir: &Path,
    plan: &Plan,
    stdio: Stdio,
    cgroup: &cgroups_rs::fs::Cgroup,
) -> Result<Created, ContainerError> {
    let (mut sync_rx, sync_tx) = cloexec_pipe()?;
    let (start_rx, start_tx) = cloexec_pipe()?;
    match fork()? {
        ForkResult::Child => {
            drop(sync_rx);
            drop(start_tx);
            let err = init_child(spec, dir, plan, &stdio, cgroup, &sync_tx, start_rx);
            report_and_exit(sync_tx, &err)
        }
        ForkResult::Parent { child } => {
            drop(sync_tx);
            drop(start_rx);
            drop(stdio);
            wait_ready(&mut sync_rx)?;
            Ok(Created {
                pid: child,
                start_tx,
                sync_rx,
            })
        }
    }
}

/// Writes `E<error>` to the shim and exits the child without running any destructors.
pub fn report_and_exit(mut tx: File, err: &ContainerError) -> ! {
    let _ = tx.write_all(format!("E{err}").as_bytes());
    drop(tx);
    std::process::exit(127)
}

#[allow(unsafe_code)]
fn fork() -> Result<ForkResult, ContainerError> {
    // SAFETY: the shim is single-threaded (no tokio, no helper threads), so the child's copy of
    // the address space is consistent and it may allocate.
    unsafe { nix::unistd::fork() }.map_err(|e| ContainerError::Shim(format!("fork: {e}")))
}

/// Forks a child for `f` (used by exec); see [`fork`].
pub fn fork_child() -> Result<ForkResult, ContainerError> {
    fork()
}

/// The common start of init and exec'd children: own session, controlling tty, stdio, default
/// signal mask, the container's cgroup.
pub fn child_basics(stdio: &Stdio, cgroup: &cgroups_rs::fs::Cgroup) -> Result<(), ContainerError> {
    let e = |what: &str, err: nix::Error| ContainerError::Setup(format!("{what}: {err}"));
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|err| e("sigprocmask", err))?;
    // Rust ignores SIGPIPE at start-up and an ignored signal stays ignored across execve.
    reset_sigpipe()?;
    nix::unistd::setsid().map_err(|err| e("setsid", err))?;
    if stdio.tty {
        set_controlling_tty(stdio.stdin.as_fd())?;
    }
    nix::unistd::dup2_stdin(&stdio.stdin).map_err(|err| e("dup2", err))?;
    nix::unistd::dup2_stdout(&stdio.stdout).map_err(|err| e("dup2", err))?;
    nix::unistd::dup2_stderr(&stdio.stderr).map_err(|err| e("dup2", err))?;
    // "0" moves the writing process: its pid in the new pid namespace means nothing to the host.
    super::cgroup::add(cgroup, 0)
}

#[allow(unsafe_code)]
fn reset_sigpipe() -> Result<(), ContainerError> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installs the default disposition, no handler code runs in this process.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map(drop)
        .map_err(|e| ContainerError::Setup(format!("reset SIGPIPE: {e}")))
}

#[allow(unsafe_code)]
fn set_controlling_tty(fd: std::os::fd::BorrowedFd<'_>) -> Result<(), ContainerError> {
    // SAFETY: TIOCSCTTY takes an int argument and touches no memory of ours.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if rc != 0 {
        return Err(ContainerError::Setup(format!(
            "set controlling tty: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn ns_flag(kind: &str) -> Option<CloneFlags> {
    Some(match kind {
        "net" => CloneFlags::CLONE_NEWNET,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "pid" => CloneFlags::CLONE_NEWPID,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "mnt" => CloneFlags::CLONE_NEWNS,
        _ => return None,
    })
}

/// Joins the namespace at `path` of kind `kind`.
pub fn join(kind: &str, path: &Path) -> Result<(), ContainerError> {
    let flag =
        ns_flag(kind).ok_or_else(|| ContainerError::Spec(format!("unknown namespace {kind:?}")))?;
    let f = File::open(path).map_err(|e| ContainerError::io("open namespace", path, e))?;
    nix::sched::setns(f.as_fd(), flag)
        .map_err(|e| ContainerError::Setup(format!("setns {kind} {}: {e}", path.display())))
}

fn init_child(
    spec: &ContainerSpec,
    dir: &Path,
    plan: &Plan,
    stdio: &Stdio,
    cgroup: &cgroups_rs::fs::Cgroup,
    sync_tx: &File,
    mut start_rx: File,
) -> ContainerError {
    let mut run = || -> Result<(), ContainerError> {
        child_basics(stdio, cgroup)?;
        let mut fresh = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWCGROUP;
        for kind in ["net", "ipc", "uts"] {
            match spec.namespaces.iter().find(|(k, _)| k == kind) {
                Some((_, path)) => join(kind, path)?,
                None => fresh |= ns_flag(kind).unwrap_or(CloneFlags::empty()),
            }
        }
        nix::sched::unshare(fresh).map_err(|e| ContainerError::Setup(format!("unshare: {e}")))?;
        if fresh.contains(CloneFlags::CLONE_NEWUTS) && !spec.hostname.is_empty() {
            nix::unistd::sethostname(&spec.hostname)
                .map_err(|e| ContainerError::Setup(format!("sethostname: {e}")))?;
        }
        if fresh.contains(CloneFlags::CLONE_NEWNET) {
            loopback_up()?;
        }
        let rootfs_dir: PathBuf = dir.join("rootfs");
        rootfs::prepare(spec, dir, &rootfs_dir)?;
        rootfs::pivot(&rootfs_dir)?;
        rootfs::create_working_dir(spec);
        rootfs::finish(spec)?;
        if let Some(console) = &stdio.console {
            attach_console(console)?;
        }
        (&*sync_tx)
            .write_all(b"R")
            .map_err(|e| ContainerError::Setup(format!("report ready: {e}")))?;
        let mut go = [0u8; 1];
        match start_rx.read(&mut go) {
            Ok(1) => Ok(()),
            // The shim went away before starting us.
            _ => std::process::exit(0),
        }
    };
    if let Err(e) = run() {
        return e;
    }
    plan.exec()
}

/// Opens a pty in the container's devpts (after pivot_root), sends the master to the shim, and
/// makes the slave stdio and the controlling terminal.
fn attach_console(console: &std::os::unix::net::UnixStream) -> Result<(), ContainerError> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let (master, slave) = pty_pair(Path::new("/dev/pts/ptmx"))?;
    let raw = [master.as_raw_fd()];
    sendmsg::<()>(
        console.as_raw_fd(),
        &[std::io::IoSlice::new(b"c")],
        &[ControlMessage::ScmRights(&raw)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| ContainerError::Setup(format!("send console: {e}")))?;
    drop(master);
    let e = |err: nix::Error| ContainerError::Setup(format!("dup2 console: {err}"));
    nix::unistd::dup2_stdin(&slave).map_err(e)?;
    nix::unistd::dup2_stdout(&slave).map_err(e)?;
    nix::unistd::dup2_stderr(&slave).map_err(e)?;
    set_controlling_tty(slave.as_fd())
}

/// A pty pair from the devpts whose `ptmx` is at `ptmx`: `(master, slave)`.
#[allow(unsafe_code)]
pub fn pty_pair(ptmx: &Path) -> Result<(OwnedFd, OwnedFd), ContainerError> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let master: OwnedFd = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(ptmx)
        .map_err(|e| ContainerError::io("open", ptmx, e))?
        .into();
    let unlock: libc::c_int = 0;
    let err =
        |what: &str| ContainerError::Setup(format!("{what}: {}", std::io::Error::last_os_error()));
    // SAFETY: TIOCSPTLCK reads one int that lives across the call; TIOCGPTPEER takes open flags
    // by value and returns a new descriptor, owned right away.
    let peer = unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(err("unlock pty"));
        }
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(err("open pty peer"));
    }
    // SAFETY: `peer` is a new descriptor nobody else owns.
    Ok((master, unsafe { OwnedFd::from_raw_fd(peer) }))
}

/// Sets `lo` up in a fresh network namespace (it starts down).
#[allow(unsafe_code)]
fn loopback_up() -> Result<(), ContainerError> {
    use std::os::fd::FromRawFd;
    let err = |what: &str| {
        ContainerError::Setup(format!(
            "loopback {what}: {}",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(err("socket"));
    }
    // SAFETY: `raw` is a fresh, valid fd nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the `ifreq` we pass, which lives across the
    // calls; the union field read is the one the kernel filled in.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(err("get flags"));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(err("set flags"));
        }
    }
    Ok(())
}
