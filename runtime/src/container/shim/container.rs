//! One container in a pod shim: its init, output pipes (or pty master), stdin, attached readers,
//! log writer and recorded state.
//!
//! Invariants: `state.json` says `exited` only after the exit status is known and both output
//! streams reached EOF, so the log is complete when a reader sees the exit; attached readers get
//! output only after it went to the log, and their pipes close when the stream ends.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::fds::receive_fd;
use super::pidns::PidNamespaces;
use crate::container::ContainerError;
use crate::container::cgroup;
use crate::container::init::{self, Created, Stdio};
use crate::container::log::{LogWriter, Stream};
use crate::container::process::Plan;
use crate::container::spec::ContainerSpec;
use crate::container::state::{self, Phase, State};

/// A reader attached to a container's output: where each stream's bytes are copied.
pub(super) struct Attached {
    pub(super) out: Option<OwnedFd>,
    pub(super) err: Option<OwnedFd>,
}

/// A container served by this shim.
pub(super) struct Ctr {
    pub(super) dir: PathBuf,
    pub(super) spec: ContainerSpec,
    pub(super) cg: cgroups_rs::fs::Cgroup,
    pub(super) state: State,
    pub(super) created: Option<Created>,
    pub(super) start_error: Option<String>,
    /// Exit code of init, known before the pipes are drained.
    pub(super) exit: Option<i32>,
    log: LogWriter,
    pub(super) out: Option<File>,
    pub(super) err: Option<File>,
    /// The write side of the container's stdin (the pty master with a tty), if `spec.stdin`.
    pub(super) stdin: Option<OwnedFd>,
    pub(super) attached: Vec<Attached>,
}

fn shim_err(what: &str, e: nix::Error) -> ContainerError {
    ContainerError::Shim(format!("{what}: {e}"))
}

fn null() -> Result<OwnedFd, ContainerError> {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| ContainerError::io("open", Path::new("/dev/null"), e))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| shim_err("pipe", e))
}

impl Ctr {
    /// Creates the container in `dir` (its `spec.json` written by the manager): cgroup, init
    /// waiting for `start`, `state.json` saying `created`.
    pub(super) fn create(dir: &Path, pidns: &mut PidNamespaces) -> Result<Self, ContainerError> {
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

        // With a tty, init makes the pty in its own devpts (so `tty` inside names a device that
        // exists there) and sends the master back over `console`.
        let mut console = None;
        let mut stdin = None;
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
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let stdin_r = if spec.stdin {
                let (r, w) = pipe()?;
                stdin = Some(w);
                r
            } else {
                null()?
            };
            let stdio = Stdio {
                stdin: stdin_r,
                stdout: out_w,
                stderr: err_w,
                tty: false,
                console: None,
            };
            (stdio, Some(File::from(out_r)), Some(File::from(err_r)))
        };

        pidns.prepare_for_init(&spec)?;
        let cg_path = cgroup::container_path(&spec.cgroup_parent, &spec.id);
        let cg = cgroup::create(&cg_path, &spec.resources)?;
        let created = init::create(&spec, dir, &plan, stdio, &cg)?;
        let out = match console {
            Some(sock) => {
                let master = receive_fd(&sock)?;
                if spec.stdin {
                    stdin = Some(
                        master
                            .try_clone()
                            .map_err(|e| ContainerError::Shim(format!("dup: {e}")))?,
                    );
                }
                Some(File::from(master))
            }
            None => out,
        };
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
            stdin,
            attached: Vec::new(),
        })
    }

    /// Whether its init has been reaped and its output drained.
    pub(super) fn exited(&self) -> bool {
        self.state.phase == Phase::Exited
    }

    /// Reads one chunk of `stream` into the log and the attached readers; at EOF closes it.
    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    pub(super) fn drain(&mut self, stream: Stream) {
        let slot = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let Some(f) = slot else { return };
        let mut buf = [0u8; 8192];
        // Straight to read(2): this is the steady state of a shed shim (see `shim::serve`).
        match nix::unistd::read(&*f, &mut buf) {
            Ok(n) if n > 0 => {
                self.log.push(stream, &buf[..n]);
                self.copy_to_attached(stream, &buf[..n]);
            }
            Err(nix::errno::Errno::EINTR) => {}
            // EOF, or EIO from a pty master whose last slave closed.
            _ => {
                *slot = None;
                self.log.close_stream(stream);
                for a in &mut self.attached {
                    match stream {
                        Stream::Stdout => a.out = None,
                        Stream::Stderr => a.err = None,
                    }
                }
            }
        }
    }

    /// Copies output to every attached reader. Their pipes are non-blocking: a reader that
    /// falls a pipe buffer behind loses output (the log keeps all of it) rather than stalling
    /// the shim; a reader that went away is dropped.
    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    fn copy_to_attached(&mut self, stream: Stream, data: &[u8]) {
        for a in &mut self.attached {
            let slot = match stream {
                Stream::Stdout => &mut a.out,
                // With a tty both streams are one: stderr output never comes here.
                Stream::Stderr => &mut a.err,
            };
            let Some(fd) = slot else { continue };
            match nix::unistd::write(&*fd, data) {
                Ok(_) | Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => *slot = None,
            }
        }
        self.attached.retain(|a| a.out.is_some() || a.err.is_some());
    }

    /// Adds a reader; `out` and `err` are the write ends of the caller's pipes.
    pub(super) fn attach(&mut self, out: OwnedFd, err: Option<OwnedFd>) {
        for fd in std::iter::once(&out).chain(err.as_ref()) {
            let _ = nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
        }
        self.attached.push(Attached {
            out: self.out.is_some().then_some(out),
            err: if self.spec.tty {
                None
            } else {
                err.filter(|_| self.err.is_some())
            },
        });
        self.attached.retain(|a| a.out.is_some() || a.err.is_some());
    }

    /// The stdin to hand to an attaching caller: a copy, or with `stdin_once` the shim's own
    /// (so the container sees EOF once that caller closes it; later callers get none). A tty's
    /// master is always a copy: the shim reads the output from it.
    pub(super) fn stdin_for_attach(&mut self) -> Option<OwnedFd> {
        if self.spec.stdin_once && !self.spec.tty {
            return self.stdin.take();
        }
        self.stdin.as_ref().and_then(|f| f.try_clone().ok())
    }

    /// Records the exit once init is reaped and its output drained.
    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    pub(super) fn finish_exit(&mut self) -> Option<i32> {
        let code = self.exit?;
        if self.exited() || self.out.is_some() || self.err.is_some() {
            return None;
        }
        self.created = None;
        self.stdin = None;
        self.attached.clear();
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
        Some(self.state.exit_code.unwrap_or(code))
    }
}
