//! `k1s server`: composes store → API server, each step gated on the previous one being ready.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use k1s_apiserver::{ApiConfig, AppState};
use k1s_store::{Store, StoreConfig};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod dns;
mod kubelet;
mod node;
mod proxy;
mod routes;

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Where the store, certificates and kubeconfig live.
    /// Default: /var/lib/k1s as root, else $XDG_DATA_HOME/k1s (~/.local/share/k1s).
    #[arg(long, env = "K1S_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the API server listens on; port 0 picks a free port.
    #[arg(long, env = "K1S_LISTEN", default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Extra subject alternative names (IPs or DNS names) for the serving certificate.
    #[arg(long = "tls-san", env = "K1S_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Where to write the admin kubeconfig. Default: <data-dir>/kubeconfig.yaml.
    #[arg(long, env = "K1S_WRITE_KUBECONFIG")]
    pub write_kubeconfig: Option<PathBuf>,
    /// In-memory store and a temporary data dir removed at exit (for CI jobs).
    #[arg(long, env = "K1S_EPHEMERAL")]
    pub ephemeral: bool,
    /// Range Service ClusterIPs are allocated from; `.1` is the `kubernetes` Service.
    #[arg(long, env = "K1S_SERVICE_CIDR", default_value = "10.43.0.0/16", value_parser = k1s_apiserver::state::parse_cidr)]
    pub service_cidr: (std::net::Ipv4Addr, u8),
    /// How long events are kept after their last update (e.g. `1h`, `30m`, `90s`).
    #[arg(long, env = "K1S_EVENT_TTL", default_value = "1h", value_parser = parse_duration)]
    pub event_ttl: std::time::Duration,
    /// Register this many simulated nodes, served by a simulator in place of a kubelet (bound pods
    /// become Running and Ready); for controller tests and scale benchmarks without containers.
    #[arg(long, env = "K1S_SIMULATED_NODES", default_value_t = 0)]
    pub simulated_nodes: usize,
    /// Capacity of each simulated node, e.g. `cpu=8,memory=32Gi,pods=110`.
    #[arg(
        long,
        env = "K1S_SIMULATED_NODE_CAPACITY",
        default_value = "cpu=8,memory=32Gi,pods=110"
    )]
    pub simulated_node_capacity: k1s_nodesim::Capacity,
    /// Components not to run (comma-separated): `controllers`, `scheduler`, `proxy`, `kubelet`.
    #[arg(long, env = "K1S_DISABLE", value_delimiter = ',', value_enum)]
    pub disable: Vec<Component>,
    /// Log filter (tracing syntax, e.g. `info`, `k1s_apiserver=debug`); RUST_LOG overrides it.
    #[arg(long, env = "K1S_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    #[command(flatten)]
    pub dns: dns::DnsArgs,
    #[command(flatten)]
    pub node: node::NodeArgs,
    #[command(flatten)]
    pub kubelet: kubelet::KubeletArgs,
}

/// Parts of the control plane that can be switched off.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// Deployment, ReplicaSet, garbage collector, ServiceAccount, root CA and endpoints controllers.
    Controllers,
    Scheduler,
    /// The service proxy (nftables table `ip k1s`).
    Proxy,
    /// The real node: registers this machine and runs its pods (needs root).
    Kubelet,
}

pub fn default_data_dir() -> PathBuf {
    if nix_is_root() {
        return PathBuf::from("/var/lib/k1s");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("k1s");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/k1s")
}

fn nix_is_root() -> bool {
    // /proc/self/status "Uid:" first field is the real uid.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn main(args: ServerArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // hickory-server logs every DNS query at info: keep it to warnings unless asked for.
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(format!(
                "hickory_server=warn,{}",
                args.log_level
            ))
        })
        .context("invalid --log-level")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let temp;
    let data_dir = if args.ephemeral {
        temp = tempfile::Builder::new()
            .prefix("k1s-")
            .tempdir()
            .context("creating a temporary data dir")?;
        temp.path().to_path_buf()
    } else {
        args.data_dir.clone().unwrap_or_else(default_data_dir)
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;

    let store_path = (!args.ephemeral).then(|| data_dir.join("db").join("k1s.redb"));
    let store = tokio::task::spawn_blocking(move || {
        Store::open(StoreConfig {
            path: store_path,
            ..Default::default()
        })
    })
    .await?
    .context("opening the store")?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let url_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let url = format!("https://{url_host}:{}", addr.port());

    let pki_dir = data_dir.join("pki");
    let sans = args.tls_san.clone();
    let pki = tokio::task::spawn_blocking(move || k1s_apiserver::tls::ensure_pki(&pki_dir, &sans))
        .await??;
    let tls = k1s_apiserver::tls::server_config(&pki)?;

    let config = ApiConfig {
        advertise_address: format!("{url_host}:{}", addr.port()),
        service_cidr: args.service_cidr,
        ..Default::default()
    };
    let state = AppState::new(store.clone(), config);
    let token_keys = k1s_apiserver::satoken::TokenKeys::from_pem(&pki.sa_key_pem)?;
    state.set_token_keys(token_keys.clone());
    k1s_apiserver::crd::rebuild_table(&state);
    k1s_apiserver::bootstrap::run(&state)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: {}", e.0.message))?;

    let auth = k1s_apiserver::auth::Authenticator::new(vec![(
        pki.admin_token.clone(),
        k1s_apiserver::auth::UserInfo {
            name: "k1s-admin".into(),
            groups: vec!["system:masters".into()],
        },
    )])
    .with_service_accounts(k1s_apiserver::satoken::authn::ServiceAccountAuth::new(
        token_keys,
        state.clone(),
    ));
    let app = k1s_apiserver::with_auth(state.clone(), auth);
    let kubeconfig = args
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| data_dir.join("kubeconfig.yaml"));
    k1s_apiserver::kubeconfig::write_kubeconfig(&kubeconfig, &url, &pki, "k1s")?;

    let shutdown = CancellationToken::new();
    let serve = tokio::spawn(k1s_apiserver::serve::serve(
        listener,
        Some(tls),
        app,
        shutdown.clone(),
    ));
    // The control plane: every loop runs until `shutdown` and is awaited before the store closes.
    let mut tasks = vec![
        tokio::spawn(k1s_apiserver::namespace_lifecycle::run(
            state.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(k1s_apiserver::event_ttl::run(
            state.clone(),
            args.event_ttl,
            shutdown.clone(),
        )),
    ];
    // One set of informers (one cache and one parse of every pod) for controllers, scheduler and
    // simulated nodes.
    let informers = k1s_controllers::informers::Informers::new(
        k1s_apiserver::client::Client::new(state.clone(), "k1s-controller-manager"),
        shutdown.clone(),
    );
    if !args.disable.contains(&Component::Controllers) {
        let client = k1s_apiserver::client::Client::new(state.clone(), "k1s-controller-manager");
        tasks.extend(k1s_controllers::start_all_with(
            client,
            &informers,
            pki.ca_cert_pem.clone(),
            shutdown.clone(),
        ));
    }
    if !args.disable.contains(&Component::Scheduler) {
        let client = k1s_apiserver::client::Client::new(state.clone(), "default-scheduler");
        let informers = informers.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            k1s_scheduler::run_with(client, &informers, shutdown).await
        }));
    }
    if args.simulated_nodes > 0 {
        let client = k1s_apiserver::client::Client::new(state.clone(), "k1s-nodesim");
        let (informers, shutdown) = (informers.clone(), shutdown.clone());
        let (nodes, capacity) = (args.simulated_nodes, args.simulated_node_capacity.clone());
        tasks.push(tokio::spawn(async move {
            k1s_nodesim::run_with(client, &informers, nodes, capacity, shutdown).await
        }));
    }
    // One node identity for the kubelet and the proxy.
    let network = kubelet::network(&args.kubelet, args.service_cidr);
    let excluded = [network.cluster_cidr, network.service_cidr];
    let node_args = args.node.clone();
    let node = tokio::task::spawn_blocking(move || node::resolve(&node_args, &excluded)).await?;
    let kubelet_on = !args.disable.contains(&Component::Kubelet) && kubelet::can_run();
    // With pods to serve, DNS listens on the pod bridge's gateway by default.
    let dns = dns::start(
        &args.dns,
        &state,
        args.service_cidr,
        kubelet_on.then(|| network.gateway()),
        shutdown.clone(),
    )
    .await?;
    let dns_ip = dns::cluster_dns_ip(&args.dns, args.service_cidr);
    let proxy = if args.disable.contains(&Component::Proxy) {
        None
    } else {
        let dns = dns.as_ref().map(|d| (dns_ip, d.local_addr()));
        proxy::start(&node, &state, args.service_cidr, dns, shutdown.clone()).await
    };
    let network_ready = Arc::new(Notify::new());
    if kubelet_on
        && let Some(task) = kubelet::start(
            &args.kubelet,
            &node,
            &state,
            &data_dir,
            args.service_cidr,
            dns.as_ref()
                .and_then(|d| dns::pod_nameserver(dns_ip, d.local_addr(), proxy.is_some()))
                .map(|ip| (ip, args.dns.cluster_domain.clone())),
            network_ready.clone(),
            shutdown.clone(),
        )?
    {
        tasks.push(task);
    }
    // The host reaches ClusterIPs once the proxy owns them (see `routes`).
    let service_route = (proxy.is_some() && kubelet_on).then(|| {
        let (ready, shutdown) = (network_ready.clone(), shutdown.clone());
        let (bridge, gateway) = (network.bridge.clone(), network.gateway());
        let cidr = network.service_cidr;
        tokio::spawn(async move {
            tokio::select! {
                _ = ready.notified() => {}
                _ = shutdown.cancelled() => return false,
            }
            match routes::via_bridge(&bridge, gateway, cidr).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, %cidr, "the host cannot reach ClusterIPs: no route onto the pod bridge");
                    false
                }
            }
        })
    });
    state.set_ready();
    // Anything added goes after the parenthesis, so older parsers of this line keep working.
    let dns_note = dns
        .as_ref()
        .map(|d| format!(" dns {}", d.local_addr()))
        .unwrap_or_default();
    println!(
        "k1s is ready: API {url} kubeconfig {} ({} ms){dns_note}",
        kubeconfig.display(),
        started.elapsed().as_millis()
    );
    tracing::info!(%url, kubeconfig = %kubeconfig.display(), "ready");

    wait_for_signal().await?;
    tracing::info!("shutting down");
    shutdown.cancel();
    match serve.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "server stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "server task failed"),
    }
    for task in tasks {
        let _ = task.await;
    }
    if let Some(dns) = dns {
        dns.wait().await;
    }
    if let Some(proxy) = proxy {
        proxy.wait().await;
    }
    if let Some(route) = service_route
        && route.await.unwrap_or(false)
        && let Err(e) = routes::unreachable(network.service_cidr).await
    {
        tracing::warn!(error = %e, "restoring the service range's unreachable route");
    }
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.shutdown()).await?;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Parses `90s`, `30m`, `1h` or `2h30m` (as Go's durations in kube flags).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration (e.g. 1h, 30m, 90s)"))?;
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("{s:?} is not a duration (e.g. 1h, 30m, 90s)")),
        };
        num.clear();
    }
    if !num.is_empty() || total == 0 {
        return Err(format!(
            "{s:?} is not a positive duration with a unit (e.g. 1h, 30m, 90s)"
        ));
    }
    Ok(std::time::Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2h30m"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
