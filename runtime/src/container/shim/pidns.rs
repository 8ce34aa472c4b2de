//! PID namespaces in a pod shim. A process's children are born in its `pid_ns_for_children`,
//! which `unshare(CLONE_NEWPID)` and `setns(.., CLONE_NEWPID)` change without moving the process
//! itself. The kernel refuses a second `unshare(CLONE_NEWPID)` while that differs from the
//! process's own namespace, so before every fork the shim first points it back at its own
//! namespace, then at the one the child needs: a fresh one (the container's init is its PID 1),
//! the one a spec names, the pod's shared one, or an existing container's (for exec).
//!
//! The pod's shared namespace (`shareProcessNamespace`) is held by a pause process, forked by
//! the shim on first use: PID 1 of that namespace, it reaps orphans and dies with the shim
//! (`PR_SET_PDEATHSIG`), taking the namespace's processes with it, as Kubernetes' pause does.

use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{ForkResult, Pid};

use crate::container::ContainerError;
use crate::container::init;
use crate::container::spec::ContainerSpec;

fn err(what: &str, e: nix::Error) -> ContainerError {
    ContainerError::Shim(format!("{what}: {e}"))
}

fn open(path: &str) -> Result<File, ContainerError> {
    File::open(path).map_err(|e| ContainerError::io("open", std::path::Path::new(path), e))
}

/// The shim's own PID namespace and the pod's shared one, if made.
pub(super) struct PidNamespaces {
    own: File,
    shared: Option<(Pid, File)>,
}

impl PidNamespaces {
    pub(super) fn new() -> Result<Self, ContainerError> {
        Ok(Self {
            own: open("/proc/self/ns/pid")?,
            shared: None,
        })
    }

    fn reset(&self) -> Result<(), ContainerError> {
        nix::sched::setns(self.own.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| err("setns own pid namespace", e))
    }

    /// Makes the next child land where `spec`'s init belongs.
    pub(super) fn prepare_for_init(&mut self, spec: &ContainerSpec) -> Result<(), ContainerError> {
        self.reset()?;
        if let Some((_, path)) = spec.namespaces.iter().find(|(k, _)| k == "pid") {
            return init::join("pid", path);
        }
        if spec.share_process_namespace {
            let ns = self.shared()?;
            return nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWPID)
                .map_err(|e| err("setns shared pid namespace", e));
        }
        nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(|e| err("unshare pid", e))
    }

    /// Makes the next child land in the PID namespace of the process `pid`.
    pub(super) fn prepare_for_exec(&self, pid: Pid) -> Result<(), ContainerError> {
        self.reset()?;
        let ns = open(&format!("/proc/{pid}/ns/pid"))?;
        nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| err("setns container pid namespace", e))
    }

    /// The pod's shared namespace, forking its pause process on first use.
    fn shared(&mut self) -> Result<&File, ContainerError> {
        if self.shared.is_none() {
            nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(|e| err("unshare pid", e))?;
            let pid = match init::fork_child()? {
                ForkResult::Child => pause(),
                ForkResult::Parent { child } => child,
            };
            let ns = open(&format!("/proc/{pid}/ns/pid"))?;
            self.shared = Some((pid, ns));
            self.reset()?;
        }
        match &self.shared {
            Some((_, ns)) => Ok(ns),
            None => Err(ContainerError::Shim("no shared pid namespace".into())),
        }
    }
}

impl Drop for PidNamespaces {
    fn drop(&mut self) {
        if let Some((pid, _)) = &self.shared {
            let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
        }
    }
}

/// The pause process: no descriptors of the shim's, dies with the shim, reaps whatever the
/// namespace's processes orphan. SIGCHLD stays blocked (inherited from the shim), so it is
/// queued, not discarded, and `sigwait` sees it.
#[allow(unsafe_code)]
fn pause() -> ! {
    // SAFETY: closes descriptors only; this forked child uses none of the shim's.
    unsafe {
        libc::close_range(3, libc::c_uint::MAX, 0);
    }
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    loop {
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if status == nix::sys::wait::WaitStatus::StillAlive {
                break;
            }
        }
        let _ = chld.wait();
    }
}
