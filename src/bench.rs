//! `k1s bench`: latency and throughput figures for the API server, the store, start-up, and
//! etcd 3.4 side by side.
//!
//! Every scenario is bounded (a count or a duration, whichever ends first), measures with
//! [`std::time::Instant`] and reports nearest-rank percentiles of the sorted samples, one line per
//! scenario (see [`stats::Report`]). Clients are real: HTTPS keep-alive connections (hyper over
//! rustls), one per client, to a server the user started or one this command spawns.
//!
//! Modules: `client` (HTTP(S) connections, kubeconfig), `stats` (drivers and percentiles),
//! `spawn` (starting and stopping `k1s server`), and one module per target: `api`, `cluster`,
//! `startup`, `store`, `etcd`, `image`, `sandbox` (pod sandboxes and their network, synchronous), `dns`,
//! `runtime` (container start against runc and crun).

mod api;
mod client;
mod cluster;
mod dns;
mod etcd;
mod image;
mod offline;
mod pods;
mod proxy;
mod runtime;
mod sandbox;
mod smaps;
mod spawn;
mod startup;
mod stats;
mod store;

use anyhow::Context as _;
use clap::{Args, Subcommand};

/// The workload the api, store and etcd benchmarks share, so their figures compare like for like.
#[derive(Args, Debug, Clone)]
pub struct Workload {
    /// Sequential writes measured (creates, puts).
    #[arg(long, default_value_t = 2000)]
    pub count: u64,
    /// Concurrent clients in the throughput run (and for filling the listed prefix).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// How long the throughput run lasts (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = api::parse_duration)]
    pub duration: std::time::Duration,
    /// Objects under the listed prefix.
    #[arg(long, default_value_t = 10_000)]
    pub list_objects: u64,
    /// Full lists timed.
    #[arg(long, default_value_t = 20)]
    pub lists: u64,
    /// Open watches.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Objects written one at a time while the watches are open.
    #[arg(long, default_value_t = 100)]
    pub watch_events: u64,
    /// Bytes of data in each value.
    #[arg(long, default_value_t = 128)]
    pub payload: usize,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub target: BenchTarget,
}

#[derive(Subcommand, Debug)]
pub enum BenchTarget {
    /// Creates, LIST and watch fan-out against a running k1s server (or one spawned with --spawn).
    Api(api::ApiArgs),
    /// The control plane at scale: a 1,000-replica Deployment, a rolling update, scheduler
    /// throughput, 10,000 pods' RSS and idle CPU, on a spawned server with simulated nodes.
    Cluster(cluster::ClusterArgs),
    /// Start-up time to /readyz and idle RSS of `k1s server`, on an empty and a filled data dir.
    Startup(startup::StartupArgs),
    /// The raw k1s store (no HTTP): the same writes, list and watch fan-out.
    Store(store::StoreArgs),
    /// etcd 3.4 through its HTTP/JSON gateway: puts, range and watch fan-out.
    Etcd(etcd::EtcdArgs),
    /// Image pull throughput (k1s vs `skopeo copy`) and layer unpack throughput.
    Image(image::ImageArgs),
    /// Pod sandboxes with their network: create (network ready) and remove latency, next to the
    /// naive `ip`-spawning set-up. Run it in its own netns: `unshare --net -- k1s bench sandbox`.
    Sandbox(sandbox::SandboxArgs),
    /// The cluster DNS: queries/s and latency for service names (own UDP client and dnsperf).
    Dns(dns::DnsArgs),
    /// The service proxy: full nftables sync of 5,000 services x 10 endpoints and single-endpoint
    /// changes (library and end to end). Runs in its own netns (re-executes under `unshare --net`).
    Proxy(proxy::ProxyArgs),
    /// Pods through the kubelet (issue 5): start-up latency, 100 at once, RSS with 100 pods,
    /// shim memory and idle CPU. Runs in its own netns (re-executes under `unshare --net`).
    Pods(pods::PodsArgs),
    /// Container start of `/bin/true` (k1s vs runc, crun and bare unshare) and shim memory.
    Runtime(runtime::RuntimeArgs),
}

pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    // The sandbox runtime blocks and drives its own netlink runtime: no tokio around it.
    let target = match args.target {
        BenchTarget::Sandbox(a) => return sandbox::run(a),
        BenchTarget::Proxy(a) => return proxy::run(a),
        BenchTarget::Pods(_) if reexec_in_own_netns()? => return Ok(()),
        other => other,
    };
    raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match target {
            BenchTarget::Api(a) => api::run(a).await,
            BenchTarget::Cluster(a) => cluster::run(a).await,
            BenchTarget::Startup(a) => startup::run(a).await,
            BenchTarget::Store(a) => store::run(a).await,
            BenchTarget::Etcd(a) => etcd::run(a).await,
            BenchTarget::Image(a) => image::run_bench(a).await,
            BenchTarget::Sandbox(_) | BenchTarget::Proxy(_) => unreachable!("handled above"),
            BenchTarget::Dns(a) => dns::run(a).await,
            BenchTarget::Runtime(a) => runtime::run(a).await,
            BenchTarget::Pods(a) => pods::run(a).await,
        }
    })
}

/// Most file descriptors asked for: 1,000 watch connections plus clients need a few thousand.
const NOFILE_WANTED: u64 = 20_000;

/// Raises the soft RLIMIT_NOFILE to the hard limit (at most [`NOFILE_WANTED`]); a failure only
/// warns, since the scenarios that need many descriptors report their own errors.
fn raise_nofile_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let hard = current.maximum.unwrap_or(NOFILE_WANTED);
    let want = hard.min(NOFILE_WANTED);
    if current.current.is_some_and(|soft| soft >= want) {
        return;
    }
    let new = Rlimit {
        current: Some(want),
        maximum: current.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, new) {
        eprintln!("warning: cannot raise RLIMIT_NOFILE to {want}: {e}");
    }
}

/// Set in the re-executed run that lives in its own network namespace.
const IN_OWN_NETNS: &str = "K1S_BENCH_NETNS";

/// Bridges, veths and routes must not land in the host's network: unless this is already the
/// re-executed run, re-execute `k1s` with the same arguments under `unshare --net` and return its
/// outcome. `Ok(false)` means: this is the inner run, go on.
pub(crate) fn reexec_in_own_netns() -> anyhow::Result<bool> {
    if std::env::var_os(IN_OWN_NETNS).is_some() {
        return Ok(false);
    }
    let exe = std::env::current_exe().context("finding the k1s binary")?;
    let status = std::process::Command::new("unshare")
        .args(["--net", "--"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(IN_OWN_NETNS, "1")
        .status()
        .context("running unshare --net (util-linux)")?;
    anyhow::ensure!(
        status.success(),
        "the benchmark in its own netns failed: {status}"
    );
    Ok(true)
}
