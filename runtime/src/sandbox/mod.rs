//! Pod sandboxes: namespaces held open by nsfs bind mounts, and pod networking.
//!
//! Owner of this module: the sandbox/network work. The types below are the contract the container
//! and CLI code builds against; bodies are filled in by that work.

use std::net::IpAddr;
use std::path::PathBuf;

/// Errors of sandbox and network set-up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("not implemented yet: {0}")]
    Unimplemented(&'static str),
}

/// What a pod asks for.
#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    /// Unique id (the kubelet uses the pod UID).
    pub id: String,
    pub hostname: String,
    /// `hostNetwork: true`: no own network namespace.
    pub host_network: bool,
    /// Contents for the sandbox's `/etc/resolv.conf` (the DNS work fills this in later).
    pub resolv_conf: Option<String>,
}

/// A ready sandbox. Containers join `namespaces` and bind-mount `hosts`/`hostname`/`resolv_conf`.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub id: String,
    pub hostname: String,
    /// Namespaces to join, e.g. `("net", <data-dir>/runtime/sandboxes/ID/ns/net)`.
    pub namespaces: Vec<(String, PathBuf)>,
    pub ip: Option<IpAddr>,
    pub hosts: PathBuf,
    pub hostname_file: PathBuf,
    pub resolv_conf: PathBuf,
}
