//! The pod shim: `k1s __shim <shim dir> <first container dir>`, dispatched by `main` before any
//! other initialisation. One per pod (a container without a pod gets one of its own), started by
//! the manager for the pod's first container. It daemonises (forks, `setsid`, stdio to
//! `/dev/null`), becomes a child subreaper, binds `<shim dir>/shim.sock`, creates the first
//! container, reports `ok`/`err <message>` on the stdout pipe it was started with, then serves its
//! socket ([`super::proto`]) in a single-threaded `poll` loop over a signalfd (SIGCHLD), the
//! socket, and every container's output pipes, which it writes as CRI logs. Later containers of
//! the pod are created over the socket (`create <id>`). Once idle for a second it sheds the clean
//! pages its set-up touched ([`shed`]), so its RSS is what its steady-state loop needs.
//!
//! The hot section: the functions of that steady state (the loop, draining output, CRI records,
//! timestamps) are placed in `.text.hot.k1s_shim`, which the link keeps together (`build.rs`,
//! `-z keep-text-section-prefix`), so a shed shim refaults a few 64 KiB fault-around windows of
//! code instead of one per function scattered through the executable. `link_section` is an
//! unsafe attribute because a section can have meaning to the loader (`.init_array`); a
//! `.text.hot.*` section is ordinary executable code, so placing functions there changes only
//! their addresses.
//!
//! Invariants: no threads (so forking children is safe) and no tokio; per container,
//! `state.json` says `exited` only after the exit status is known and the output pipes are
//! drained (see [`container`]); the shim keeps exited containers until `remove <id>`, and when it
//! removes its last one it unlinks its socket *before* replying, so a manager holding the pod's
//! lock knows a new shim is needed; then it exits.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::ForkResult;

mod commands;
mod container;
mod fds;
mod pidns;
mod shed;

use super::ContainerError;
use super::init;
use super::log::Stream;
use commands::Conn;
use container::Ctr;
use fds::{own_fd, set_cloexec};
use pidns::PidNamespaces;

/// Entry point of `k1s __shim <shim dir> <container dir>`; never returns.
pub fn main() -> ! {
    let shim_dir: Option<PathBuf> = std::env::args_os().nth(2).map(PathBuf::from);
    let dir: Option<PathBuf> = std::env::args_os().nth(3).map(PathBuf::from);
    let code = match (shim_dir, dir) {
        (Some(shim_dir), Some(dir)) => daemonise_and_run(&shim_dir, &dir),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "usage: k1s __shim <shim dir> <container dir>"
            );
            2
        }
    };
    std::process::exit(code)
}

fn daemonise_and_run(shim_dir: &Path, dir: &Path) -> i32 {
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
    match Shim::setup(shim_dir, dir) {
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

/// How long the shim waits with nothing but container output before it sheds its start-up pages.
const SHED_AFTER: Duration = Duration::from_secs(1);

struct Shim {
    dir: PathBuf,
    ctrs: Vec<Ctr>,
    pidns: PidNamespaces,
    listener: UnixListener,
    sigfd: SignalFd,
    conns: Vec<Conn>,
    /// The descriptors of the last `poll`, kept so the loop does not allocate.
    pollfds: Vec<libc::pollfd>,
    /// What the last shedding dropped, kept so that freeing it does not run after the drop.
    shed_plan: Vec<shed::Region>,
    /// Set once the last container was removed: the loop ends.
    done: bool,
}

impl Shim {
    fn setup(shim_dir: &Path, dir: &Path) -> Result<Self, ContainerError> {
        let shim_err = |what: &str, e: nix::Error| ContainerError::Shim(format!("{what}: {e}"));
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| shim_err("subreaper", e))?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block()
            .map_err(|e| shim_err("block SIGCHLD", e))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| shim_err("signalfd", e))?;
        let mut pidns = PidNamespaces::new()?;

        let sock = shim_dir.join("shim.sock");
        let _ = std::fs::remove_file(&sock);
        // Bound by a relative name: socket paths are limited to 107 bytes, data dirs are not.
        // (Single-threaded, so changing the cwd briefly is safe.)
        nix::unistd::chdir(shim_dir).map_err(|e| shim_err("chdir", e))?;
        let listener = UnixListener::bind("shim.sock");
        let _ = nix::unistd::chdir("/");
        let listener = listener.map_err(|e| ContainerError::io("bind", &sock, e))?;
        let first = match Ctr::create(dir, &mut pidns) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&sock);
                return Err(e);
            }
        };
        Ok(Self {
            dir: shim_dir.to_path_buf(),
            ctrs: vec![first],
            pidns,
            listener,
            sigfd,
            conns: Vec::new(),
            pollfds: Vec::new(),
            shed_plan: Vec::new(),
            done: false,
        })
    }

    /// The poll loop; returns once the last container was removed.
    ///
    /// After [`SHED_AFTER`] without anything but container output, it sheds the pages its
    /// set-up and requests touched ([`shed`]); it then polls without a timeout until the next
    /// request or exit, so an idle shim does not wake up. Logging output, the steady state, keeps
    /// to code that allocates nothing (the poll array is reused, records are built in a reused
    /// buffer, timestamps formatted by hand), so what a shed shim refaults stays small.
    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    fn serve(&mut self) {
        // When the last request or exit happened; `None` once shed since.
        let mut active_at = Some(Instant::now());
        while !self.done {
            let n_ctrs = self.ctrs.len();
            let n_conns = self.conns.len();
            let timeout = match active_at {
                None => -1,
                // At most SHED_AFTER (1 s), which fits; round up so it is not spun.
                Some(t) => SHED_AFTER.saturating_sub(t.elapsed()).as_millis() as i32 + 1,
            };
            let polled = self.poll(timeout);
            if active_at.is_some_and(|t| t.elapsed() >= SHED_AFTER) {
                shed::shed(&mut self.shed_plan);
                active_at = None;
            }
            if !polled {
                continue;
            }
            for i in 0..n_ctrs {
                if self.ready(2 + 2 * i) {
                    self.ctrs[i].drain(Stream::Stdout);
                }
                if self.ready(3 + 2 * i) {
                    self.ctrs[i].drain(Stream::Stderr);
                }
            }
            let conns_at = 2 + 2 * n_ctrs;
            // Output alone is the steady state; anything else runs code worth shedding again.
            if self.ready(0) || self.ready(1) || (0..n_conns).any(|i| self.ready(conns_at + i)) {
                active_at = Some(Instant::now());
            }
            if self.ready(0) {
                self.reap();
            }
            if self.ready(1)
                && let Ok((stream, _)) = self.listener.accept()
            {
                self.conns.push(Conn::new(stream));
            }
            // Connections accepted just now come after these `n_conns`; none is removed before
            // the `retain` below, so the indices still match the poll array.
            for i in 0..n_conns {
                if self.ready(conns_at + i) && !self.done {
                    self.read_conn(i);
                }
            }
            self.finish_exits();
            self.conns.retain(|c| !c.closed);
        }
        let _ = std::fs::remove_file(self.dir.join("shim.sock"));
    }

    /// Polls the signalfd, the socket, each container's stdout and stderr (a closed stream as a
    /// negative descriptor, which `poll` skips) and each connection, in that order, for up to
    /// `timeout_ms` (negative: no limit); whether any is ready. The array is kept for [`Self::ready`].
    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section; the call is noted below.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    fn poll(&mut self, timeout_ms: i32) -> bool {
        let fds = &mut self.pollfds;
        fds.clear();
        let entry = |fd: RawFd| libc::pollfd {
            fd,
            events: if fd < 0 { 0 } else { libc::POLLIN },
            revents: 0,
        };
        fds.push(entry(self.sigfd.as_raw_fd()));
        fds.push(entry(self.listener.as_raw_fd()));
        for c in &self.ctrs {
            fds.push(entry(c.out.as_ref().map_or(-1, |f| f.as_raw_fd())));
            fds.push(entry(c.err.as_ref().map_or(-1, |f| f.as_raw_fd())));
        }
        for c in &self.conns {
            fds.push(entry(c.stream.as_raw_fd()));
        }
        // SAFETY: `fds` is an initialised array of `fds.len()` pollfd structs that outlives the
        // call, and each descriptor in it is owned by `self`, which the call does not touch.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        n > 0
    }

    /// Whether entry `i` of the last [`Self::poll`] reported an event.
    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    fn ready(&self, i: usize) -> bool {
        self.pollfds.get(i).is_some_and(|p| p.revents != 0)
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
            if let Some(c) = self
                .ctrs
                .iter_mut()
                .find(|c| c.state.pid == pid.as_raw() && c.exit.is_none())
            {
                c.exit = Some(code);
                c.state.finished_at = Some(super::state::now());
            }
            for c in self.conns.iter_mut().filter(|c| c.exec_pid == Some(pid)) {
                let _ = writeln!(c.stream, "exit {code}");
                c.exec_pid = None;
                c.closed = true;
            }
        }
    }

    /// Records exits whose output is drained and answers those waiting for them.
    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    fn finish_exits(&mut self) {
        for ctr in &mut self.ctrs {
            let Some(code) = ctr.finish_exit() else {
                continue;
            };
            let id = &ctr.spec.id;
            for c in self
                .conns
                .iter_mut()
                .filter(|c| c.waiting.as_deref() == Some(id))
            {
                let _ = writeln!(c.stream, "exit {code}");
                c.closed = true;
            }
        }
    }
}
