//! k1s's in-process service proxy (kube-proxy's job): Services and EndpointSlices, kept current by
//! list + watch through the in-process client, programmed into ONE nftables table, `ip k1s`, in
//! the layout of upstream's nftables proxier (KEP 3866): verdict maps keyed by
//! `ip daddr . meta l4proto . th dport`, a chain per service port and per endpoint, `numgen random`
//! balancing, reject maps for services without endpoints, masquerade by mark.
//!
//! IPv4 only (table family `ip`): IPv6 cluster IPs and endpoints are ignored.
//!
//! Invariants:
//! - the table is owned by k1s: each sync is one transaction — the full replacement (at start
//!   and after errors) as one hand-encoded netlink batch, or `nft -f` when the table has
//!   session-affinity chains or a batch was rejected; one netlink batch for changes that touch
//!   only map and set elements; `nft -f` for other changes to chains — and a clean shutdown
//!   deletes it;
//! - nothing outside table `ip k1s` is touched, except `net.ipv4.conf.all.route_localnet` when
//!   [`ProxyConfig::route_localnet`] is set (NodePorts on 127.0.0.1, as upstream);
//! - the proxy programs nothing until both resources have been listed once.
//!
//! Modules: [`model`] (the compact index), [`rules`] (pure generation), [`assemble`] (per-service
//! updates), [`elem`] (typed elements), [`script`] (nft text), [`elements`] (element-only diffs), [`full`] (the whole table
//! as one netlink batch) with [`expr`] (rule expressions), [`apply`] (which backend), [`nft`]
//! (running nft), [`netlink`] (batches on the socket), `watch` (informers), `sync` (the loop and
//! the built-in load balancer).

pub mod apply;
pub mod assemble;
pub mod elem;
pub mod elements;
pub mod expr;
pub mod full;
pub mod model;
pub mod netlink;
pub mod nft;
pub mod rules;
pub mod script;
mod sync;
mod watch;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k1s_apiserver::client::Client;
use tokio::sync::watch as tokio_watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use nft::NftError;
pub use sync::lb_assignments;

/// How the proxy is set up.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// This node's name: `Local` traffic policies keep endpoints whose `nodeName` is this.
    pub node_name: String,
    /// The node address LoadBalancer services are exposed on (written to their
    /// `status.loadBalancer.ingress`); `None`: LoadBalancer services stay pending.
    pub node_ip: Option<Ipv4Addr>,
    /// The Service range (unallocated addresses in it are rejected).
    pub service_cidr: (Ipv4Addr, u8),
    /// The cluster DNS: (`kube-dns` ClusterIP, address the DNS server listens on).
    pub dns: Option<(Ipv4Addr, SocketAddrV4)>,
    /// Lower bound between two syncs: a burst of changes within it costs one transaction.
    pub min_sync_interval: Duration,
    /// The `nft` program.
    pub nft: PathBuf,
    /// Set `net.ipv4.conf.all.route_localnet=1` so NodePorts answer on 127.0.0.1.
    pub route_localnet: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            node_name: "k1s".into(),
            node_ip: None,
            service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
            dns: None,
            min_sync_interval: Duration::from_millis(20),
            nft: PathBuf::from("nft"),
            route_localnet: false,
        }
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("nft is not usable: {0}")]
    Nft(#[from] NftError),
    #[error("setting net.ipv4.conf.all.route_localnet: {0}")]
    Sysctl(#[source] std::io::Error),
}

/// What the sync loop has done so far (for tests, benchmarks and logs).
#[derive(Clone, Debug, Default)]
pub struct SyncStatus {
    /// Completed syncs (including ones with nothing to change).
    pub syncs: u64,
    /// Time the last transaction took in `nft` or over netlink.
    pub last_nft: Duration,
    /// Whether the last transaction replaced the whole table.
    pub last_full: bool,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// Failed transactions since the start (each is followed by a full replacement).
    pub failures: u64,
}

/// A running proxy.
pub struct Proxy {
    status: tokio_watch::Receiver<SyncStatus>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Watches the sync loop's progress.
    pub fn status(&self) -> tokio_watch::Receiver<SyncStatus> {
        self.status.clone()
    }

    /// Waits until the proxy has stopped and removed its table (after the shutdown token fired).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Checks that `nft` works, then starts the informers and the sync loop; runs until `shutdown`,
/// then deletes table `ip k1s`.
pub async fn start(
    client: Client,
    config: ProxyConfig,
    shutdown: CancellationToken,
) -> Result<Proxy, ProxyError> {
    let nft_path = config.nft.clone();
    let route_localnet = config.route_localnet;
    let sctp = tokio::task::spawn_blocking(move || -> Result<bool, ProxyError> {
        // Fails early (and clearly) when nft is missing or lacks permission.
        nft::apply(&nft_path, "list tables\n", false)?;
        if route_localnet {
            std::fs::write("/proc/sys/net/ipv4/conf/all/route_localnet", "1")
                .map_err(ProxyError::Sysctl)?;
        }
        Ok(nft::sctp_supported(&nft_path))
    })
    .await
    .unwrap_or(Ok(false))?;
    if !sctp {
        tracing::warn!("this kernel cannot NAT SCTP: SCTP service ports are skipped");
    }
    let params = rules::Params {
        service_cidr: config.service_cidr,
        sctp,
        dns: config.dns,
    };
    let shared = Arc::new(sync::Shared {
        index: Default::default(),
        dirty: Default::default(),
        listed: Default::default(),
        node_name: config.node_name.clone(),
        dirty_keys: Default::default(),
    });
    let (tx, rx) = tokio_watch::channel(SyncStatus::default());
    let informers = [watch::Resource::Services, watch::Resource::Slices]
        .map(|r| tokio::spawn(watch::informer(client.clone(), shared.clone(), r)));
    let task = tokio::spawn(async move {
        sync::run(client, shared, config, params, tx, shutdown).await;
        for i in informers {
            i.abort();
        }
    });
    Ok(Proxy { status: rx, task })
}
