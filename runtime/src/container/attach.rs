//! Attaching to a container's own stdio (`kubectl attach`, `kubectl run -it`): the caller gets
//! the container's stdin, if its spec keeps one (`stdin: true`), and pipes that the shim copies
//! the container's output into from now on (stdout and stderr, or the terminal with a tty).
//! The output pipes end when the container's streams end; output the caller does not read in
//! time is dropped from its pipe (the log has everything).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::ContainerError;
use super::proto::Client;

/// A live attachment.
#[derive(Debug)]
pub struct AttachSession {
    /// Write to the container's stdin (the pty master with a tty); `None` if the container has
    /// no open stdin (or, with `stdin_once`, someone else got it).
    pub stdin: Option<File>,
    /// The container's stdout, or its terminal output with a tty.
    pub stdout: File,
    /// Its stderr; `None` with a tty.
    pub stderr: Option<File>,
    pub tty: bool,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::Shim(format!("pipe: {e}")))
}

impl AttachSession {
    /// Attaches to container `id` whose directory is `dir`.
    pub fn start(dir: &Path, id: &str, tty: bool) -> Result<Self, ContainerError> {
        let mut client = Client::connect(dir)?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = if tty {
            (None, None)
        } else {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        };
        let mut fds = vec![out_w.as_fd()];
        fds.extend(err_w.as_ref().map(|f| f.as_fd()));
        client.send(&format!("attach {id}"), &fds)?;
        drop(fds);
        // Ours closed, so the pipes end when the shim closes its copies.
        drop(out_w);
        drop(err_w);
        let (reply, stdin) = client.reply_with_fd()?;
        if let Some(msg) = reply.strip_prefix("err ") {
            return Err(ContainerError::Failed(msg.to_string()));
        }
        if reply != "ok" {
            return Err(ContainerError::Shim(format!("unexpected reply {reply:?}")));
        }
        Ok(Self {
            stdin: stdin.map(File::from),
            stdout: File::from(out_r),
            stderr: err_r.map(File::from),
            tty,
        })
    }

    /// Sets the terminal size (needs a tty and the container's stdin, which is its pty master).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), ContainerError> {
        let Some(pty) = self.stdin.as_ref().filter(|_| self.tty) else {
            return Err(ContainerError::Failed(
                "resize: the container has no terminal input".into(),
            ));
        };
        super::exec::set_winsize(pty, rows, cols)
    }
}
