//! Containers under a pod shim: the `k1s` binary re-executed as `k1s __shim <shim dir> <dir>`
//! (see [`shim`]), one per pod ([`podshim`]), which stays the parent of its containers'
//! processes, reaps them, writes their CRI logs and records their state in files. So containers
//! keep running and logging while `k1s` restarts, and [`ContainerManager::open`] re-attaches to
//! them from those files.
//!
//! Layout of `<root>/containers/<id>/`: `spec.json` (the [`ContainerSpec`], written by the
//! manager), `state.json` (written only by the shim, atomically), `shim.sock` (a symlink to the
//! pod shim's command socket in `<root>/shims/<key>/`), `rootfs/` (mount point, only mounted inside the container's mount namespace), `upper/`
//! and `work/` (the overlayfs upper layer: the container's writes), `container.log` (unless the
//! spec names another log path).
//!
//! Module map: [`spec`] (what a container is), [`manager`] (the API), [`shim`] (the per-pod
//! daemon), [`podshim`] (finding or starting it), [`attach`], [`init`] (the container's first process up to `execve`), [`process`] (identity,
//! capabilities, seccomp and rlimits of init and exec'd processes), [`rootfs`] (mounts),
//! [`capabilities`], [`seccomp`], [`cgroup`], [`log`] (CRI format), [`exec`], [`state`],
//! [`user`], [`proto`] (the shim's socket protocol).

pub mod attach;
pub mod capabilities;
pub mod cgroup;
pub mod exec;
pub mod init;
pub mod log;
pub mod manager;
pub mod podshim;
pub mod process;
pub mod proto;
pub mod rootfs;
pub mod seccomp;
pub mod shim;
pub mod spec;
pub mod state;
pub mod timestamp;
pub mod user;

use std::path::Path;

pub use attach::AttachSession;
pub use cgroup::Stats;
pub use exec::{ExecSession, ExecSpec};
pub use manager::{Container, ContainerManager, ContainerStatus};
pub use spec::{ContainerSpec, Mount, Resources, Rlimit, SeccompProfile, merge_command, merge_env};
pub use state::Phase;

/// Errors of the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid container spec: {0}")]
    Spec(String),
    #[error("container {0} not found")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {id} is {phase:?}: {action} is not possible")]
    BadPhase {
        id: String,
        phase: Phase,
        action: &'static str,
    },
    #[error("user: {0}")]
    User(String),
    #[error("cgroup: {0}")]
    Cgroup(String),
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("container set-up: {0}")]
    Setup(String),
    #[error("state: {0}")]
    State(String),
    #[error("shim: {0}")]
    Shim(String),
    #[error("{0}")]
    Failed(String),
}

impl ContainerError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}
