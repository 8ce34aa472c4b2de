//! The shim: `k1s __shim <dir>`, dispatched by `main` before any other initialisation. One per
//! container (the per-pod shim is future work). It daemonises (forks, `setsid`, stdio to
//! `/dev/null`), becomes a child subreaper, creates the container's cgroup and init process,
//! reports `ok`/`err <message>` on the stdout pipe it was started with, then serves its socket
//! ([`super::proto`]) in a single-threaded `poll` loop over a signalfd (SIGCHLD), the socket, and
//! the container's output pipes, which it writes as CRI logs.
//!
//! Invariants: no threads (so forking children is safe) and no tokio; `state.json` says `exited`
//! only after the exit status is known and the output pipes are drained, so the logs are complete
//! when a reader sees the exit; the shim exits right after that, removing its socket.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::ForkResult;

mod commands;
mod fds;

use super::ContainerError;
use super::cgroup;
use super::init::{self, Created, Stdio};
use super::log::{LogWriter, Stream};
use super::process::Plan;
use super::spec::ContainerSpec;
use super::state::{self, Phase, State};
use commands::Conn;
use fds::{own_fd, receive_fd, set_cloexec};

/// Entry point of `k1s __shim <dir>`; never returns.
pub fn main() -> ! {
    let dir: Option<PathBuf> = std::env::args_os().nth(2).map(PathBuf::from);
    let code = match dir {
        Some(dir) => daemonise_and_run(&dir),
        None => {
            let _ = writeln!(std::io::stderr(), "usage: k1s __shim <container dir>");
            2
        }
    };
    std::process::exit(code)
}

fn daemonise_and_run(dir: &Path) -> i32 {
    match init::fork_child() {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            println!("err {e}");
            return 1;
        }
    }
    let mut report = match detach() {
        Ok(f) => f,
        Err(e) => {
            println!("err {e}");
            return 1;
        }
    };
    match Shim::setup(dir) {
        Ok(mut shim) => {
            let _ = report.write_all(b"ok\n");
            drop(report);
            shim.serve();
            0
        }
        Err(e) => {
            let msg = e.to_string().replace('\n', " ");
            let _ = writeln!(report, "err {msg}");
            1
        }
    }
}

/// New session, cwd `/`, stdio on `/dev/null`; returns the (close-on-exec) report pipe that was
/// stdout.
fn detach() -> Result<File, ContainerError> {
    let e = |what: &str, err: nix::Error| ContainerError::Shim(format!("{what}: {err}"));
    nix::unistd::setsid().map_err(|err| e("setsid", err))?;
    let _ = nix::unistd::chdir("/");
    // Descriptors inherited from whoever started us (build tools, test harnesses) must not leak
    // into containers.
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect();
        for fd in fds {
            set_cloexec(fd);
        }
    }
    let report = nix::fcntl::fcntl(std::io::stdout(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|err| e("dup", err))?;
    let report = own_fd(report);
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|err| ContainerError::io("open", Path::new("/dev/null"), err))?;
    nix::unistd::dup2_stdin(&null).map_err(|err| e("dup2", err))?;
    nix::unistd::dup2_stdout(&null).map_err(|err| e("dup2", err))?;
    nix::unistd::dup2_stderr(&null).map_err(|err| e("dup2", err))?;
    Ok(File::from(report))
}

struct Shim {
    dir: PathBuf,
    spec: ContainerSpec,
    cg: cgroups_rs::fs::Cgroup,
    state: State,
    created: Option<Created>,
    start_error: Option<String>,
    /// Exit code of init, known before the pipes are drained.
    exit: Option<i32>,
    log: LogWriter,
    out: Option<File>,
    err: Option<File>,
    listener: UnixListener,
    sigfd: SignalFd,
    conns: Vec<Conn>,
}

impl Shim {
    fn setup(dir: &Path) -> Result<Self, ContainerError> {
        let shim_err = |what: &str, e: nix::Error| ContainerError::Shim(format!("{what}: {e}"));
        let spec_path = dir.join("spec.json");
        let spec: ContainerSpec = serde_json::from_slice(
            &std::fs::read(&spec_path).map_err(|e| ContainerError::io("read", &spec_path, e))?,
        )
        .map_err(|e| ContainerError::Spec(e.to_string()))?;
        let plan = Plan::new(&spec, &spec.args, &[])?;
        let log_path = spec
            .log_path
            .clone()
            .unwrap_or_else(|| dir.join("container.log"));
        let log = LogWriter::open(&log_path, spec.log_max_size, spec.log_max_files)?;

        let null = || -> Result<OwnedFd, ContainerError> {
            File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| ContainerError::io("open", Path::new("/dev/null"), e))
        };
        // With a tty, init makes the pty in its own devpts (so `tty` inside names a device that
        // exists there) and sends the master back over `console`.
        let mut console = None;
        let (stdio, out, err) = if spec.tty {
            let (ours, theirs) =
                UnixStream::pair().map_err(|e| ContainerError::Shim(format!("socketpair: {e}")))?;
            console = Some(ours);
            let stdio = Stdio {
                stdin: null()?,
                stdout: null()?,
                stderr: null()?,
                tty: false,
                console: Some(theirs),
            };
            (stdio, None, None)
        } else {
            let pipe = || {
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| shim_err("pipe", e))
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let stdio = Stdio {
                stdin: null()?,
                stdout: out_w,
                stderr: err_w,
                tty: false,
                console: None,
            };
            (stdio, Some(File::from(out_r)), Some(File::from(err_r)))
        };

        nix::sys::prctl::set_child_subreaper(true).map_err(|e| shim_err("subreaper", e))?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block()
            .map_err(|e| shim_err("block SIGCHLD", e))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| shim_err("signalfd", e))?;

        match spec.namespaces.iter().find(|(k, _)| k == "pid") {
            Some((_, path)) => init::join("pid", path)?,
            None => nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
                .map_err(|e| shim_err("unshare pid", e))?,
        }

        let cg_path = cgroup::container_path(&spec.cgroup_parent, &spec.id);
        let cg = cgroup::create(&cg_path, &spec.resources)?;
        let created = init::create(&spec, dir, &plan, stdio, &cg)?;
        let out = match console {
            Some(sock) => Some(File::from(receive_fd(&sock)?)),
            None => out,
        };

        let sock = dir.join("shim.sock");
        let _ = std::fs::remove_file(&sock);
        // Bound by a relative name: socket paths are limited to 107 bytes, container dirs are not.
        // (Single-threaded, so changing the cwd briefly is safe.)
        nix::unistd::chdir(dir).map_err(|e| shim_err("chdir", e))?;
        let listener = UnixListener::bind("shim.sock");
        let _ = nix::unistd::chdir("/");
        let listener = listener.map_err(|e| ContainerError::io("bind", &sock, e))?;
        let mut state = State::new(&spec.id, std::process::id() as i32);
        state.pid = created.pid.as_raw();
        state::write(dir, &state)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            spec,
            cg,
            state,
            created: Some(created),
            start_error: None,
            exit: None,
            log,
            out,
            err,
            listener,
            sigfd,
            conns: Vec::new(),
        })
    }

    /// The poll loop; returns once the container exited and everything was recorded.
    fn serve(&mut self) {
        loop {
            if self.state.phase == Phase::Exited && self.conns.iter().all(|c| c.exec_pid.is_none())
            {
                let _ = std::fs::remove_file(self.dir.join("shim.sock"));
                return;
            }
            let (ready, conn_ready) = {
                let mut fds = vec![
                    PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                ];
                let none = PollFlags::empty();
                let out_fd = self.out.as_ref().map(|f| f.as_fd());
                let err_fd = self.err.as_ref().map(|f| f.as_fd());
                let placeholder = self.sigfd.as_fd();
                fds.push(PollFd::new(
                    out_fd.unwrap_or(placeholder),
                    if out_fd.is_some() {
                        PollFlags::POLLIN
                    } else {
                        none
                    },
                ));
                fds.push(PollFd::new(
                    err_fd.unwrap_or(placeholder),
                    if err_fd.is_some() {
                        PollFlags::POLLIN
                    } else {
                        none
                    },
                ));
                for c in &self.conns {
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                }
                if poll(&mut fds, PollTimeout::NONE).is_err() {
                    continue;
                }
                let r: Vec<bool> = fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect();
                (r[..4].to_vec(), r[4..].to_vec())
            };
            if ready[2] {
                self.drain(Stream::Stdout);
            }
            if ready[3] {
                self.drain(Stream::Stderr);
            }
            if ready[0] {
                self.reap();
            }
            if ready[1]
                && let Ok((stream, _)) = self.listener.accept()
            {
                self.conns.push(Conn {
                    stream,
                    buf: Vec::new(),
                    fds: Vec::new(),
                    exec_pid: None,
                    waiting: false,
                    closed: false,
                });
            }
            for (i, ready) in conn_ready.into_iter().enumerate() {
                if ready {
                    self.read_conn(i);
                }
            }
            self.finish_exit();
            self.conns.retain(|c| !c.closed);
        }
    }

    fn drain(&mut self, stream: Stream) {
        let slot = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let Some(f) = slot else { return };
        let mut buf = [0u8; 8192];
        match f.read(&mut buf) {
            Ok(n) if n > 0 => self.log.push(stream, &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EOF, or EIO from a pty master whose last slave closed.
            _ => {
                *slot = None;
                self.log.close_stream(stream);
            }
        }
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if pid.as_raw() == self.state.pid && self.exit.is_none() {
                self.exit = Some(code);
                self.state.finished_at = Some(state::now());
            }
            for c in self.conns.iter_mut().filter(|c| c.exec_pid == Some(pid)) {
                let _ = writeln!(c.stream, "exit {code}");
                c.exec_pid = None;
                c.closed = true;
            }
        }
    }

    /// Records the exit once init is reaped and its output drained.
    fn finish_exit(&mut self) {
        let Some(code) = self.exit else { return };
        if self.state.phase == Phase::Exited || self.out.is_some() || self.err.is_some() {
            return;
        }
        self.created = None;
        self.state.phase = Phase::Exited;
        if let Some(msg) = self.start_error.take() {
            self.state.exit_code = Some(128);
            self.state.reason = Some("StartError".into());
            self.state.message = Some(msg);
        } else {
            self.state.exit_code = Some(code);
            self.state.reason = Some(
                if cgroup::oom_killed(&self.cg) {
                    "OOMKilled"
                } else if code == 0 {
                    "Completed"
                } else {
                    "Error"
                }
                .into(),
            );
        }
        let _ = state::write(&self.dir, &self.state);
        let code = self.state.exit_code.unwrap_or(code);
        for c in self.conns.iter_mut().filter(|c| c.waiting) {
            let _ = writeln!(c.stream, "exit {code}");
            c.closed = true;
        }
    }
}
