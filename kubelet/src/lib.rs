//! k1s's kubelet: registers this machine as a Node (capacity, addresses, conditions, Lease) and
//! runs the pods bound to it with the built-in runtime (`k1s-runtime`), writing their status
//! through `pods/status` as the upstream kubelet does.
//!
//! Module map: [`machine`] (facts about the host), [`node`] (Node, Lease, heartbeats), [`pods`]
//! (watch of this node's pods, one worker per pod, clean-up of runtime objects without a pod),
//! [`worker`] (a pod's sync loop), [`probe`] (readiness and liveness), [`containers`] (pod container → runtime spec), [`envvars`],
//! [`volumes`] (pod volumes on the host), [`downward`] (resourceFieldRef), [`status`] (pure status computation), [`qos`], [`backoff`], [`api`] (events, final delete), [`logs`] (the `pods/log` source).
//!
//! Invariants: runtime calls block, so they run in `spawn_blocking` or on dedicated threads
//! (container exits are awaited by one thread per running container, never polled); nothing
//! forks from a tokio worker (the runtime starts shims with `std::process::Command`).

pub mod api;
pub mod backoff;
pub mod containers;
pub mod dns;
pub mod downward;
pub mod envvars;
pub mod hooks;
pub mod logs;
pub mod machine;
pub mod node;
pub mod pods;
pub mod portforward;
pub mod probe;
pub mod probe_grpc;
pub mod qos;
pub mod satoken;
pub mod service_env;
pub mod static_pods;
pub mod stats;
pub mod status;
pub mod streams;
pub mod volumes;
pub mod worker;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use k1s_apiserver::client::Client;
use k1s_runtime::container::{ContainerError, ContainerManager};
use k1s_runtime::image::{ImageError, ImageStore, RegistryConfig};
use k1s_runtime::sandbox::{NetworkConfig, SandboxError, SandboxManager};
use tokio_util::sync::CancellationToken;

pub use node::Reserved;

/// Errors that stop the kubelet from starting.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("opening the image store: {0}")]
    Images(#[from] ImageError),
    #[error("opening the sandbox manager: {0}")]
    Sandboxes(#[from] SandboxError),
    #[error("opening the container manager: {0}")]
    Containers(#[from] ContainerError),
    #[error("runtime task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// How the kubelet runs.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The Node's name (default: the host name lower-cased).
    pub node_name: String,
    /// The data dir (ephemeral-storage capacity is its file system's size).
    pub data_dir: PathBuf,
    /// `<data-dir>/runtime`, the state `k1s runtime` uses too.
    pub runtime_root: PathBuf,
    pub registries: RegistryConfig,
    /// Bridge, cluster CIDR, this node's pod CIDR, service CIDR.
    pub network: NetworkConfig,
    /// cgroup under which pod cgroups go (`<root>/<qos>/pod<uid>`).
    pub cgroup_root: String,
    pub reserved: Reserved,
    /// The `k1s` binary (the runtime re-executes it as `k1s __shim`).
    pub shim_exe: PathBuf,
    /// The Kubernetes version the API server reports.
    pub kube_version: String,
    /// The cluster DNS pods resolve through (`dnsPolicy: ClusterFirst`); `None`: the host's
    /// resolvers.
    pub cluster_dns: Option<dns::ClusterDns>,
    /// The Node's InternalIP; `None`: detected ([`machine::primary_ip`]).
    pub node_ip: Option<IpAddr>,
    /// Notified once the node's pod network (bridge, gateway address, fallback routes) is set up.
    pub network_ready: Option<Arc<tokio::sync::Notify>>,
    /// Directory of static pod manifests ([`static_pods`]); `None`: no static pods.
    pub pod_manifest_path: Option<PathBuf>,
}

/// The runtime's three managers.
#[derive(Clone)]
pub struct Runtime {
    pub images: Arc<ImageStore>,
    pub sandboxes: Arc<SandboxManager>,
    pub containers: ContainerManager,
}

/// What every pod worker shares.
pub struct Ctx {
    pub client: Client,
    pub config: KubeletConfig,
    pub runtime: Runtime,
    pub host_ip: IpAddr,
    /// Allocatable cpu, memory and storage (limits a container leaves unset, downward API).
    pub allocatable: downward::Allocatable,
    /// Service-account tokens of projected volumes, refreshed before they expire.
    pub tokens: satoken::TokenCache,
}

/// Registers the Node and runs this node's pods until `shutdown`. Containers keep running after
/// it returns (their shims own them); a later `run` re-adopts them.
pub async fn run(
    client: Client,
    config: KubeletConfig,
    shutdown: CancellationToken,
) -> Result<(), KubeletError> {
    let cfg = config.clone();
    let runtime = tokio::task::spawn_blocking(move || -> Result<Runtime, KubeletError> {
        let images = ImageStore::open(&cfg.runtime_root.join("images"), cfg.registries.clone())?;
        let sandboxes = SandboxManager::open(cfg.runtime_root.clone(), cfg.network.clone())?;
        let containers = ContainerManager::open(&cfg.runtime_root, cfg.shim_exe.clone())?;
        Ok(Runtime {
            images: Arc::new(images),
            sandboxes: Arc::new(sandboxes),
            containers,
        })
    })
    .await??;
    if let Some(ready) = &config.network_ready {
        ready.notify_one();
    }
    let net = &config.network;
    let excluded = [net.cluster_cidr, net.service_cidr];
    let data_dir = config.data_dir.clone();
    let node_ip = config.node_ip;
    let (capacity, info, host_ip) = tokio::task::spawn_blocking(move || {
        (
            machine::Capacity::detect(&data_dir),
            machine::Info::detect(),
            node_ip.unwrap_or_else(|| machine::primary_ip(&excluded)),
        )
    })
    .await?;
    let allocatable = downward::Allocatable {
        cpu_millis: (capacity.cpus * 1000).saturating_sub(config.reserved.cpu_millis),
        memory_bytes: capacity
            .memory_bytes
            .saturating_sub(config.reserved.memory_bytes),
        ephemeral_storage_bytes: capacity.ephemeral_storage_bytes,
    };
    let facts = node::NodeFacts {
        name: config.node_name.clone(),
        capacity,
        reserved: config.reserved,
        internal_ip: host_ip,
        info,
        pod_cidr: net.node_pod_cidr.to_string(),
        kube_version: config.kube_version.clone(),
        data_dir: config.data_dir.clone(),
    };
    client
        .state()
        .set_pod_logs(std::sync::Arc::new(logs::RuntimeLogs {
            containers: runtime.containers.clone(),
        }));
    client
        .state()
        .set_pod_streams(std::sync::Arc::new(streams::RuntimeStreams {
            containers: runtime.containers.clone(),
            sandboxes: runtime.sandboxes.clone(),
        }));
    let metrics = stats::KubeletMetrics::new(
        client.clone(),
        config.node_name.clone(),
        runtime.containers.clone(),
    );
    client
        .state()
        .set_resource_metrics(std::sync::Arc::new(metrics.clone()));
    let sampler = tokio::spawn(metrics.sample(shutdown.clone()));
    let node_task = tokio::spawn(node::run(client.clone(), facts, shutdown.clone()));
    if let Some(dir) = config.pod_manifest_path.clone() {
        let node = config.node_name.clone();
        tokio::spawn(static_pods::run(
            client.clone(),
            dir,
            node,
            shutdown.clone(),
        ));
    }
    let ctx = Arc::new(Ctx {
        client,
        config,
        runtime,
        host_ip,
        allocatable,
        tokens: satoken::TokenCache::default(),
    });
    pods::run(ctx, shutdown).await;
    let _ = node_task.await;
    let _ = sampler.await;
    Ok(())
}
