//! The pod shim's command socket (`<shim dir>/shim.sock`, reached from a container's directory
//! through its `shim.sock` symlink), a line protocol small enough to read in `strace`:
//!
//! | request | replies |
//! |---|---|
//! | `create <id>` (spec in `<containers>/<id>/spec.json`) | `ok` or `err <message>` |
//! | `start <id>` | `ok` or `err <message>` |
//! | `kill <id> <signal number>` | `ok` or `err <message>` |
//! | `wait <id>` | `exit <code>` once the container exited |
//! | `exec <id> <ExecRequest JSON>` + stdin/stdout/stderr fds as `SCM_RIGHTS` (none with a tty) | `pid <pid>` (with the pty master as `SCM_RIGHTS` for a tty), later `exit <code>`; or `err <message>` |
//! | `attach <id>` + stdout and stderr pipe write ends (stdout only with a tty) | `ok` (with the container's stdin, or the pty master, as `SCM_RIGHTS` if it keeps one), or `err <message>` |
//! | `remove <id>` (exited) | `ok` (after the last one the shim unlinks its socket first, then exits) or `err <message>` |
//!
//! Requests are at most [`MAX_REQUEST`] bytes and sent with one `sendmsg`, so the file descriptors
//! arrive with the first bytes of the line.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};

use super::ContainerError;

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

/// The body of an `exec` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub tty: bool,
}

/// One connection to a shim.
pub struct Client {
    reader: BufReader<UnixStream>,
}

fn shim_err(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Shim(e.to_string())
}

impl Client {
    /// Connects to the shim of the container in `dir`.
    pub fn connect(dir: &Path) -> Result<Self, ContainerError> {
        let path = dir.join("shim.sock");
        let stream = if path.as_os_str().len() < 100 {
            UnixStream::connect(&path)
        } else {
            // Too long for sockaddr_un: go through a descriptor of the directory instead.
            std::fs::File::open(dir).and_then(|d| {
                UnixStream::connect(format!("/proc/self/fd/{}/shim.sock", d.as_raw_fd()))
            })
        }
        .map_err(|e| ContainerError::Shim(format!("connect {}: {e}", path.display())))?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request line with `fds` attached.
    pub fn send(&mut self, line: &str, fds: &[BorrowedFd<'_>]) -> Result<(), ContainerError> {
        let mut msg = line.as_bytes().to_vec();
        msg.push(b'\n');
        if msg.len() > MAX_REQUEST {
            return Err(ContainerError::Spec("request too large".into()));
        }
        let sock = self.reader.get_ref();
        if fds.is_empty() {
            return (&*sock).write_all(&msg).map_err(shim_err);
        }
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let sent = sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(&msg)],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .map_err(shim_err)?;
        (&*sock).write_all(&msg[sent..]).map_err(shim_err)
    }

    /// Reads one reply line (without its newline); EOF is an error.
    pub fn reply(&mut self) -> Result<String, ContainerError> {
        let mut line = String::new();
        let n = (&mut self.reader)
            .take(MAX_REQUEST as u64)
            .read_line(&mut line)
            .map_err(shim_err)?;
        if n == 0 {
            return Err(ContainerError::Shim("shim closed the connection".into()));
        }
        Ok(line.trim_end().to_string())
    }

    /// Reads one reply line that may carry one file descriptor (the exec pty master). Must be the
    /// first read on this connection (nothing buffered yet).
    pub fn reply_with_fd(&mut self) -> Result<(String, Option<OwnedFd>), ContainerError> {
        let mut buf = [0u8; 256];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            self.reader.get_ref().as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(shim_err)?;
        let mut fd = None;
        for m in msg.cmsgs().map_err(shim_err)? {
            if let ControlMessageOwned::ScmRights(raw) = m {
                for r in raw {
                    let owned = own(r);
                    fd.get_or_insert(owned);
                }
            }
        }
        let n = msg.bytes;
        let mut line = String::from_utf8_lossy(&buf[..n]).into_owned();
        // The rest of a longer reply (an `err` message) follows on the stream.
        if !line.ends_with('\n') && n > 0 {
            let mut rest = String::new();
            let _ = (&mut self.reader)
                .take(MAX_REQUEST as u64)
                .read_line(&mut rest);
            line.push_str(&rest);
        }
        if n == 0 {
            return Err(ContainerError::Shim("shim closed the connection".into()));
        }
        Ok((line.trim_end().to_string(), fd))
    }

    /// Sends `line` and expects `ok`.
    pub fn call(&mut self, line: &str) -> Result<(), ContainerError> {
        self.send(line, &[])?;
        let reply = self.reply()?;
        match reply.strip_prefix("err ") {
            Some(msg) => Err(ContainerError::Failed(msg.to_string())),
            None if reply == "ok" => Ok(()),
            None => Err(ContainerError::Shim(format!("unexpected reply {reply:?}"))),
        }
    }

    /// Reads replies until `exit <code>`.
    pub fn wait_exit(&mut self) -> Result<i32, ContainerError> {
        loop {
            let reply = self.reply()?;
            if let Some(code) = reply.strip_prefix("exit ") {
                return code.parse().map_err(shim_err);
            }
            if let Some(msg) = reply.strip_prefix("err ") {
                return Err(ContainerError::Failed(msg.to_string()));
            }
        }
    }

    /// The socket, e.g. to poll it.
    pub fn stream(&self) -> &UnixStream {
        self.reader.get_ref()
    }
}

#[allow(unsafe_code)]
fn own(raw: RawFd) -> OwnedFd {
    // SAFETY: `raw` came in an SCM_RIGHTS message just now: a new descriptor nobody else owns.
    unsafe { OwnedFd::from_raw_fd(raw) }
}
