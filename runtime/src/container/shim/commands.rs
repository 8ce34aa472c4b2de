//! The shim's socket commands (see [`super::super::proto`]): one [`Conn`] per client, requests
//! read with any passed descriptors, replies written at once or when the awaited exit happens.

use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::signal::Signal;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::unistd::Pid;

use super::Shim;
use super::fds::{container_pty, own_fd};
use crate::container::ContainerError;
use crate::container::exec;
use crate::container::init::Stdio;
use crate::container::process::Plan;
use crate::container::proto::{ExecRequest, MAX_REQUEST};
use crate::container::state::{self, Phase};

/// A client connection and what it waits for.
pub(super) struct Conn {
    pub(super) stream: UnixStream,
    pub(super) buf: Vec<u8>,
    pub(super) fds: Vec<OwnedFd>,
    /// Waiting for this exec'd process's exit.
    pub(super) exec_pid: Option<Pid>,
    /// Waiting for the container's exit.
    pub(super) waiting: bool,
    pub(super) closed: bool,
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
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        match verb {
            "start" => Some(match self.created.take() {
                Some(created) if self.state.phase == Phase::Created => match created.start() {
                    Ok(()) => {
                        self.state.phase = Phase::Running;
                        self.state.started_at = Some(state::now());
                        match state::write(&self.dir, &self.state) {
                            Ok(()) => "ok".into(),
                            Err(e) => format!("err {e}"),
                        }
                    }
                    Err(e) => {
                        self.start_error = Some(e.to_string());
                        format!("err {e}")
                    }
                },
                _ => format!("err container is {:?}, not created", self.state.phase),
            }),
            "kill" => Some(
                match arg
                    .parse::<i32>()
                    .ok()
                    .and_then(|s| Signal::try_from(s).ok())
                {
                    None => "err bad signal".into(),
                    Some(_) if self.exit.is_some() => "ok".into(),
                    Some(sig) => match nix::sys::signal::kill(Pid::from_raw(self.state.pid), sig) {
                        Ok(()) | Err(nix::errno::Errno::ESRCH) => "ok".into(),
                        Err(e) => format!("err kill: {e}"),
                    },
                },
            ),
            "wait" => {
                if self.state.phase == Phase::Exited {
                    self.conns[i].closed = true;
                    Some(format!("exit {}", self.state.exit_code.unwrap_or(-1)))
                } else {
                    self.conns[i].waiting = true;
                    None
                }
            }
            "exec" => match self.exec(arg, fds) {
                Ok((pid, master)) => {
                    self.conns[i].exec_pid = Some(pid);
                    let line = format!("pid {pid}\n");
                    let c = &self.conns[i];
                    match master {
                        Some(m) => {
                            let raw = [m.as_raw_fd()];
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
                    None
                }
                Err(e) => Some(format!("err {e}")),
            },
            _ => Some(format!("err unknown command {verb:?}")),
        }
    }

    /// Starts an exec'd process; with a tty, returns the pty master (from the container's own
    /// devpts, so `tty` inside names a device that exists there) for the client.
    fn exec(
        &mut self,
        arg: &str,
        fds: Vec<OwnedFd>,
    ) -> Result<(Pid, Option<OwnedFd>), ContainerError> {
        if self.state.phase != Phase::Running || self.exit.is_some() {
            return Err(ContainerError::BadPhase {
                id: self.spec.id.clone(),
                phase: self.state.phase,
                action: "exec",
            });
        }
        let req: ExecRequest =
            serde_json::from_str(arg).map_err(|e| ContainerError::Spec(e.to_string()))?;
        let plan = Plan::new(&self.spec, &req.args, &req.env)?;
        let init = Pid::from_raw(self.state.pid);
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
        let pid = exec::spawn(init, &plan, stdio, &self.cg)?;
        Ok((pid, master))
    }
}
