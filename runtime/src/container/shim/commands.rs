//! The shim's socket commands (see [`super::super::proto`]): one [`Conn`] per client, requests
//! read with any passed descriptors, each naming its container, replies written at once or when
//! the awaited exit happens.

use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::signal::Signal;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::unistd::Pid;

use super::Shim;
use super::container::Ctr;
use super::fds::{container_pty, own_fd};
use crate::container::ContainerError;
use crate::container::exec;
use crate::container::init::Stdio;
use crate::container::process::Plan;
use crate::container::proto::{ExecRequest, MAX_REQUEST};
use crate::container::spec::valid_id;
use crate::container::state::{self, Phase};

/// A client connection and what it waits for.
pub(super) struct Conn {
    pub(super) stream: UnixStream,
    pub(super) buf: Vec<u8>,
    pub(super) fds: Vec<OwnedFd>,
    /// Waiting for this exec'd process's exit.
    pub(super) exec_pid: Option<Pid>,
    /// Waiting for the exit of this container.
    pub(super) waiting: Option<String>,
    pub(super) closed: bool,
}

impl Conn {
    pub(super) fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            fds: Vec::new(),
            exec_pid: None,
            waiting: None,
            closed: false,
        }
    }
}

impl Shim {
    pub(super) fn read_conn(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let mut buf = [0u8; 4096];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 3]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let (n, fds) = match recvmsg::<()>(
            c.stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for m in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = m {
                            fds.extend(raw.into_iter().map(own_fd));
                        }
                    }
                }
                (msg.bytes, fds)
            }
            Err(_) => (0, Vec::new()),
        };
        if n == 0 {
            c.closed = true;
            return;
        }
        c.fds.extend(fds);
        c.buf.extend_from_slice(&buf[..n]);
        let Some(end) = c.buf.iter().position(|&b| b == b'\n') else {
            if c.buf.len() > MAX_REQUEST {
                c.closed = true;
            }
            return;
        };
        let line = String::from_utf8_lossy(&c.buf[..end]).into_owned();
        c.buf.drain(..=end);
        let fds = std::mem::take(&mut c.fds);
        let reply = self.command(i, &line, fds);
        if let Some(reply) = reply {
            let c = &mut self.conns[i];
            let _ = writeln!(c.stream, "{}", reply.replace('\n', " "));
        }
    }

    /// Runs one request; the reply line, or `None` when the reply comes later.
    fn command(&mut self, i: usize, line: &str, fds: Vec<OwnedFd>) -> Option<String> {
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (id, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        if verb == "create" {
            return Some(self.create(id));
        }
        let Some(idx) = self.ctrs.iter().position(|c| c.spec.id == id) else {
            return Some(format!("err container {id:?} not in this shim"));
        };
        match verb {
            "start" => Some(start(&mut self.ctrs[idx])),
            "kill" => Some(kill(&self.ctrs[idx], arg)),
            "wait" => {
                let ctr = &self.ctrs[idx];
                if ctr.exited() {
                    self.conns[i].closed = true;
                    Some(format!("exit {}", ctr.state.exit_code.unwrap_or(-1)))
                } else {
                    self.conns[i].waiting = Some(id.to_string());
                    None
                }
            }
            "exec" => match self.exec(idx, arg, fds) {
                Ok((pid, master)) => {
                    self.conns[i].exec_pid = Some(pid);
                    self.reply_with_fd(i, &format!("pid {pid}"), master);
                    None
                }
                Err(e) => Some(format!("err {e}")),
            },
            "attach" => match self.attach(idx, fds) {
                Ok(stdin) => {
                    self.reply_with_fd(i, "ok", stdin);
                    None
                }
                Err(e) => Some(format!("err {e}")),
            },
            "remove" => Some(self.remove(idx)),
            _ => Some(format!("err unknown command {verb:?}")),
        }
    }

    /// Writes `line` with `fd` attached (if any) as one message.
    fn reply_with_fd(&self, i: usize, line: &str, fd: Option<OwnedFd>) {
        let c = &self.conns[i];
        let line = format!("{line}\n");
        match fd {
            Some(fd) => {
                let raw = [fd.as_raw_fd()];
                let cmsg = [ControlMessage::ScmRights(&raw)];
                let _ = sendmsg::<()>(
                    c.stream.as_raw_fd(),
                    &[IoSlice::new(line.as_bytes())],
                    &cmsg,
                    MsgFlags::empty(),
                    None,
                );
            }
            None => {
                let _ = (&c.stream).write_all(line.as_bytes());
            }
        }
    }

    /// Creates another container of the pod, from `<containers>/<id>/spec.json`.
    fn create(&mut self, id: &str) -> String {
        if !valid_id(id) || self.ctrs.iter().any(|c| c.spec.id == id) {
            return format!("err bad or duplicate container id {id:?}");
        }
        let Some(root) = self.ctrs.first().and_then(|c| c.dir.parent()) else {
            return "err shim has no containers".into();
        };
        let dir = root.join(id);
        match Ctr::create(&dir, &mut self.pidns) {
            Ok(c) => {
                self.ctrs.push(c);
                "ok".into()
            }
            Err(e) => format!("err {e}"),
        }
    }

    /// Forgets an exited container; after the last one, unlinks the socket and ends the loop.
    fn remove(&mut self, idx: usize) -> String {
        let ctr = &self.ctrs[idx];
        if !ctr.exited() {
            return format!("err container is {:?}, not exited", ctr.state.phase);
        }
        self.ctrs.remove(idx);
        if self.ctrs.is_empty() {
            // Before the reply: the manager, holding the pod's lock, then starts a new shim.
            let _ = std::fs::remove_file(self.dir.join("shim.sock"));
            self.done = true;
        }
        "ok".into()
    }

    /// Adds the caller's pipes (stdout and stderr write ends; one with a tty) as readers of the
    /// container's output; returns the stdin to hand back, if the container keeps one.
    fn attach(&mut self, idx: usize, fds: Vec<OwnedFd>) -> Result<Option<OwnedFd>, ContainerError> {
        let ctr = &mut self.ctrs[idx];
        if ctr.exited() || ctr.exit.is_some() {
            return Err(ContainerError::BadPhase {
                id: ctr.spec.id.clone(),
                phase: ctr.state.phase,
                action: "attach",
            });
        }
        let mut it = fds.into_iter();
        let out = it
            .next()
            .ok_or_else(|| ContainerError::Spec("attach: no output pipe passed".into()))?;
        ctr.attach(out, it.next());
        Ok(ctr.stdin_for_attach())
    }

    /// Starts an exec'd process; with a tty, returns the pty master (from the container's own
    /// devpts, so `tty` inside names a device that exists there) for the client.
    fn exec(
        &mut self,
        idx: usize,
        arg: &str,
        fds: Vec<OwnedFd>,
    ) -> Result<(Pid, Option<OwnedFd>), ContainerError> {
        let ctr = &self.ctrs[idx];
        if ctr.state.phase != Phase::Running || ctr.exit.is_some() {
            return Err(ContainerError::BadPhase {
                id: ctr.spec.id.clone(),
                phase: ctr.state.phase,
                action: "exec",
            });
        }
        let req: ExecRequest =
            serde_json::from_str(arg).map_err(|e| ContainerError::Spec(e.to_string()))?;
        let plan = Plan::new(&ctr.spec, &req.args, &req.env)?;
        let init = Pid::from_raw(ctr.state.pid);
        let mut master = None;
        let stdio = match (req.tty, fds.len()) {
            (true, 0) => {
                let (m, slave) = container_pty(init)?;
                master = Some(m);
                let dup = |f: &OwnedFd| {
                    f.try_clone()
                        .map_err(|e| ContainerError::Shim(e.to_string()))
                };
                Stdio {
                    stdin: dup(&slave)?,
                    stdout: dup(&slave)?,
                    stderr: slave,
                    tty: true,
                    console: None,
                }
            }
            (false, 3) => {
                let mut it = fds.into_iter();
                let (Some(stdin), Some(stdout), Some(stderr)) = (it.next(), it.next(), it.next())
                else {
                    unreachable!("three fds checked above")
                };
                Stdio {
                    stdin,
                    stdout,
                    stderr,
                    tty: false,
                    console: None,
                }
            }
            (_, n) => return Err(ContainerError::Spec(format!("exec: {n} fds passed"))),
        };
        self.pidns.prepare_for_exec(init)?;
        let pid = exec::spawn(init, &plan, stdio, &ctr.cg)?;
        Ok((pid, master))
    }
}

fn start(ctr: &mut Ctr) -> String {
    match ctr.created.take() {
        Some(created) if ctr.state.phase == Phase::Created => match created.start() {
            Ok(()) => {
                ctr.state.phase = Phase::Running;
                ctr.state.started_at = Some(state::now());
                match state::write(&ctr.dir, &ctr.state) {
                    Ok(()) => "ok".into(),
                    Err(e) => format!("err {e}"),
                }
            }
            Err(e) => {
                ctr.start_error = Some(e.to_string());
                format!("err {e}")
            }
        },
        _ => format!("err container is {:?}, not created", ctr.state.phase),
    }
}

fn kill(ctr: &Ctr, arg: &str) -> String {
    match arg
        .parse::<i32>()
        .ok()
        .and_then(|s| Signal::try_from(s).ok())
    {
        None => "err bad signal".into(),
        Some(_) if ctr.exit.is_some() => "ok".into(),
        Some(sig) => match nix::sys::signal::kill(Pid::from_raw(ctr.state.pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => "ok".into(),
            Err(e) => format!("err kill: {e}"),
        },
    }
}
