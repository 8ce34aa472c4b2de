//! Pod sandboxes: namespaces held open by nsfs bind mounts, and pod networking.
//!
//! A sandbox is a directory `<root>/sandboxes/<id>/` holding:
//! - `ns/{net,ipc,uts}`: nsfs bind mounts that keep the pod's namespaces alive with no holder
//!   process (see [`namespaces`]); containers join them by path.
//! - `hosts`, `hostname`, `resolv.conf`: files containers bind-mount (see [`files`]).
//! - `sandbox.json`: written last, atomically; a directory without it is an unfinished create and
//!   is torn down by [`SandboxManager::open`].
//!
//! Pod networking (see [`netlink`], [`ipam`], [`nft`]): one bridge per node holding the gateway of
//! the node's pod CIDR, one veth pair per pod (pod end `eth0` in the pod netns), IPs from a
//! persisted allocator that never hands out an address twice, unreachable fallback routes for the
//! cluster and service CIDRs, and one nftables masquerade rule per node.
//!
//! Everything here blocks: async callers use `spawn_blocking`. Never call it from a tokio worker.

mod cidr;
mod files;
pub mod ipam;
mod manager;
mod mounts;
mod namespaces;
mod netlink;
mod nft;
mod record;

use std::net::IpAddr;
use std::path::PathBuf;

pub use cidr::{CidrError, Ipv4Cidr};
pub use ipam::{Ipam, IpamError};
pub use manager::SandboxManager;

/// Errors of sandbox and network set-up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    #[error("sandbox {0} already exists")]
    AlreadyExists(String),
    #[error("no sandbox {0}")]
    NotFound(String),
    #[error("invalid network config: {0}")]
    InvalidConfig(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("netlink: {what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("nft: {0}")]
    Nft(String),
    #[error("sandbox state {path}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("namespace thread panicked")]
    ThreadPanicked,
    #[error(transparent)]
    Ipam(#[from] IpamError),
}

impl SandboxError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SandboxError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// Result of this module.
pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl Sandbox {
    /// The path of the namespace of `kind` (`"net"`, `"ipc"`, `"uts"`), if the sandbox has its own.
    pub fn namespace(&self, kind: &str) -> Option<&PathBuf> {
        self.namespaces
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, p)| p)
    }
}

/// The node's pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The bridge every pod's veth is a port of (`k1s0`); it holds the pod CIDR's gateway.
    pub bridge: String,
    /// All pods of the cluster (`--cluster-cidr`): unreachable fallback route, masquerade source.
    pub cluster_cidr: Ipv4Cidr,
    /// This node's share of the cluster CIDR: the bridge's subnet, where IPAM allocates.
    pub node_pod_cidr: Ipv4Cidr,
    /// ClusterIPs: unreachable fallback route until the service proxy takes them over.
    pub service_cidr: Ipv4Cidr,
    /// MTU of the bridge and of both ends of every veth.
    pub mtu: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "k1s0".to_string(),
            cluster_cidr: Ipv4Cidr::new([10, 42, 0, 0].into(), 16),
            node_pod_cidr: Ipv4Cidr::new([10, 42, 0, 0].into(), 24),
            service_cidr: Ipv4Cidr::new([10, 43, 0, 0].into(), 16),
            mtu: 1500,
        }
    }
}

impl NetworkConfig {
    /// The bridge's address: the first host address of the node's pod CIDR (10.42.0.1).
    pub fn gateway(&self) -> std::net::Ipv4Addr {
        self.node_pod_cidr.nth(1)
    }

    /// Checks the CIDRs fit together and the bridge name is a valid interface name.
    pub fn validate(&self) -> Result<()> {
        if !netlink::valid_ifname(&self.bridge) {
            return Err(SandboxError::InvalidConfig(format!(
                "bridge name {:?} is not a valid interface name",
                self.bridge
            )));
        }
        if !self.cluster_cidr.contains_cidr(&self.node_pod_cidr) {
            return Err(SandboxError::InvalidConfig(format!(
                "node pod CIDR {} is not inside the cluster CIDR {}",
                self.node_pod_cidr, self.cluster_cidr
            )));
        }
        if self.node_pod_cidr.prefix() > 30 {
            return Err(SandboxError::InvalidConfig(format!(
                "node pod CIDR {} has no room for pods",
                self.node_pod_cidr
            )));
        }
        if self.cluster_cidr.overlaps(&self.service_cidr) {
            return Err(SandboxError::InvalidConfig(format!(
                "service CIDR {} overlaps the cluster CIDR {}",
                self.service_cidr, self.cluster_cidr
            )));
        }
        if !(576..=65535).contains(&self.mtu) {
            return Err(SandboxError::InvalidConfig(format!(
                "MTU {} is out of range",
                self.mtu
            )));
        }
        Ok(())
    }
}
