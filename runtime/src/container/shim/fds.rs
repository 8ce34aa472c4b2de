//! Descriptor plumbing of the shim: ownership of raw descriptors from the kernel, close-on-exec
//! for inherited ones, the init's console, and ptys from a container's devpts.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::unistd::Pid;

use crate::container::ContainerError;
use crate::container::init;

/// A pty pair from the devpts instance mounted in the container of `init`: `(master, slave)`.
pub(super) fn container_pty(init: Pid) -> Result<(OwnedFd, OwnedFd), ContainerError> {
    init::pty_pair(Path::new(&format!("/proc/{init}/root/dev/pts/ptmx")))
}

/// Receives the one descriptor init sends over its console socket.
pub(super) fn receive_fd(sock: &UnixStream) -> Result<OwnedFd, ContainerError> {
    let mut buf = [0u8; 8];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| ContainerError::Shim(format!("receive console: {e}")))?;
    let mut fd = None;
    for m in msg
        .cmsgs()
        .map_err(|e| ContainerError::Shim(format!("receive console: {e}")))?
    {
        if let ControlMessageOwned::ScmRights(raw) = m {
            for r in raw {
                let owned = own_fd(r);
                fd.get_or_insert(owned);
            }
        }
    }
    fd.ok_or_else(|| ContainerError::Shim("init sent no console".into()))
}

#[allow(unsafe_code)]
pub(super) fn set_cloexec(fd: i32) {
    // SAFETY: F_SETFD on a descriptor number only changes its flag; a stale number fails with EBADF.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

#[allow(unsafe_code)]
pub(super) fn own_fd(raw: i32) -> OwnedFd {
    // SAFETY: `raw` was just returned by the kernel as a new descriptor nobody else owns.
    unsafe { OwnedFd::from_raw_fd(raw) }
}
