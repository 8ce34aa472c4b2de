//! `k1s server`'s kubelet flags and start-up: the real node (crate `k1s-kubelet`) on the runtime
//! state under `<data-dir>/runtime`, the same state `k1s runtime` drives.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use k1s_apiserver::AppState;
use k1s_runtime::sandbox::{Ipv4Cidr, NetworkConfig};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::node::Node;
use crate::runtime_cli::{RuntimeFlags, registry_config};

/// Kubelet flags.
#[derive(Args, Debug, Clone)]
pub struct KubeletArgs {
    /// Range of pod IPs; this node's pods get its first /24.
    #[arg(long, env = "K1S_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: Ipv4Cidr,
    /// Resources held back from pods, e.g. `cpu=500m,memory=512Mi` (allocatable = capacity - this).
    #[arg(long, env = "K1S_KUBE_RESERVED", value_parser = k1s_kubelet::node::parse_reserved)]
    pub kube_reserved: Option<k1s_kubelet::Reserved>,
    /// cgroup under which pod cgroups are created (`<root>/<qos>/pod<uid>`).
    #[arg(long, env = "K1S_CGROUP_ROOT", default_value = "k1s/kubepods")]
    pub cgroup_root: String,
    /// A registry that may be reached over plain HTTP (HOST:PORT); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// A containerd/k3s style registries.yaml (mirrors, per-host auth and TLS).
    #[arg(long = "registry-config", value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
    /// Directory of static pod manifests (default `<data-dir>/manifests/pods`).
    #[arg(
        long = "pod-manifest-path",
        env = "K1S_POD_MANIFEST_PATH",
        value_name = "DIR"
    )]
    pub pod_manifest_path: Option<PathBuf>,
}

/// This node's pod range: the first /24 of the cluster CIDR (the whole range if smaller).
pub fn node_pod_cidr(cluster: Ipv4Cidr) -> Ipv4Cidr {
    Ipv4Cidr::new(cluster.network(), cluster.prefix().max(24))
}

/// Whether the kubelet can run here: pods need root (namespaces, mounts, cgroups).
pub fn can_run() -> bool {
    rustix::process::geteuid().is_root()
}

/// The node's pod network for these flags.
pub fn network(args: &KubeletArgs, service_cidr: (std::net::Ipv4Addr, u8)) -> NetworkConfig {
    NetworkConfig {
        cluster_cidr: args.cluster_cidr,
        node_pod_cidr: node_pod_cidr(args.cluster_cidr),
        service_cidr: Ipv4Cidr::new(service_cidr.0, service_cidr.1),
        ..Default::default()
    }
}

/// Starts the kubelet as `node`, or says why it does not run (not root). `network_ready` is
/// notified once the pod bridge and its routes are set up.
#[allow(clippy::too_many_arguments)]
pub fn start(
    args: &KubeletArgs,
    node: &Node,
    state: &AppState,
    data_dir: &Path,
    service_cidr: (std::net::Ipv4Addr, u8),
    dns: Option<(std::net::Ipv4Addr, String)>,
    network_ready: Arc<Notify>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    if !can_run() {
        tracing::warn!(
            "the kubelet is off: running pods needs root (namespaces, mounts, cgroups); the control plane runs on"
        );
        return Ok(None);
    }
    let flags = RuntimeFlags {
        data_dir: Some(data_dir.to_path_buf()),
        insecure_registries: args.insecure_registries.clone(),
        registry_config: args.registry_config.clone(),
    };
    let network = network(args, service_cidr);
    network.validate().context("kubelet network")?;
    let config = k1s_kubelet::KubeletConfig {
        node_name: node.name.clone(),
        data_dir: data_dir.to_path_buf(),
        runtime_root: flags.runtime_root(),
        registries: registry_config(&flags)?,
        network,
        cgroup_root: args.cgroup_root.clone(),
        reserved: args.kube_reserved.unwrap_or_default(),
        shim_exe: std::env::current_exe().context("locating the k1s binary for the shim")?,
        kube_version: k1s_apiserver::router::GIT_VERSION.to_string(),
        cluster_dns: dns.map(|(ip, domain)| k1s_kubelet::dns::ClusterDns { ip, domain }),
        node_ip: Some(node.ip.into()),
        network_ready: Some(network_ready),
        pod_manifest_path: Some(
            args.pod_manifest_path
                .clone()
                .unwrap_or_else(|| data_dir.join("manifests/pods")),
        ),
    };
    let client = k1s_apiserver::client::Client::new(state.clone(), "kubelet");
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = k1s_kubelet::run(client, config, shutdown).await {
            tracing::error!(error = %e, "the kubelet stopped");
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_slash_24() {
        let c: Ipv4Cidr = "10.42.0.0/16".parse().unwrap();
        assert_eq!(node_pod_cidr(c).to_string(), "10.42.0.0/24");
        let small: Ipv4Cidr = "10.42.0.0/26".parse().unwrap();
        assert_eq!(node_pod_cidr(small).to_string(), "10.42.0.0/26");
    }
}
