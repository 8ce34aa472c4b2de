//! `k1s server`'s DNS flags and start-up: the in-process cluster DNS (crate `k1s-dns`) and the
//! `kube-dns` Service that publishes its address.
//!
//! Where it listens: `--dns-listen` when given; else, when the kubelet runs pods, the pod bridge's
//! gateway address (port 53, or a free port when 53 is taken), bound with `IP_FREEBIND` because
//! the bridge may not exist yet; else nowhere. Never on all addresses by default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use k1s_apiserver::AppState;
use k1s_dns::{DnsConfig, DnsServer};
use tokio_util::sync::CancellationToken;

/// Cluster DNS flags.
#[derive(Args, Debug, Clone)]
pub struct DnsArgs {
    /// Where the cluster DNS server listens (UDP and TCP), e.g. `10.0.0.5:53` or `127.0.0.1:0`.
    /// Default: the pod bridge's gateway (`10.42.0.1:53`, or a free port if 53 is taken) when
    /// the kubelet runs; else no DNS server and no `kube-dns` Service.
    #[arg(long, env = "K1S_DNS_LISTEN")]
    pub dns_listen: Option<SocketAddr>,
    /// The cluster domain DNS answers for.
    #[arg(long, env = "K1S_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// ClusterIP of the `kube-dns` Service. Default: the 10th address of --service-cidr.
    #[arg(long, env = "K1S_CLUSTER_DNS")]
    pub cluster_dns: Option<Ipv4Addr>,
    /// Upstream resolvers for names outside the cluster (`IP` or `IP:PORT`, comma-separated).
    /// Default: the nameservers of --resolv-conf.
    #[arg(long, env = "K1S_DNS_UPSTREAM", value_delimiter = ',', value_parser = parse_upstream)]
    pub dns_upstream: Vec<SocketAddr>,
    /// The host resolver configuration whose nameservers DNS forwards to.
    #[arg(long, env = "K1S_RESOLV_CONF", default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
}

fn parse_upstream(s: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not an IP or IP:PORT"))
}

/// The `kube-dns` ClusterIP: --cluster-dns, else the 10th address of the service range.
pub fn cluster_dns_ip(args: &DnsArgs, service_cidr: (Ipv4Addr, u8)) -> Ipv4Addr {
    args.cluster_dns
        .unwrap_or_else(|| Ipv4Addr::from(u32::from(service_cidr.0) + 10))
}

/// The nameserver `ClusterFirst` pods get: the `kube-dns` ClusterIP when the service proxy runs
/// (it DNATs `<cluster-ip>:53` to the server); without the proxy, the server's own address when
/// pods can use it as a nameserver (IPv4, not loopback, port 53); else none (pods get the host's
/// resolvers rather than a nameserver nothing answers on).
pub fn pod_nameserver(cluster_ip: Ipv4Addr, listen: SocketAddr, proxied: bool) -> Option<Ipv4Addr> {
    match listen {
        _ if proxied => Some(cluster_ip),
        SocketAddr::V4(a)
            if a.port() == 53 && !a.ip().is_loopback() && !a.ip().is_unspecified() =>
        {
            Some(*a.ip())
        }
        _ => None,
    }
}

/// Publishes `kube-dns` and starts the DNS server on --dns-listen, else on `pod_gateway` (when
/// the kubelet runs pods), else not at all.
pub async fn start(
    args: &DnsArgs,
    state: &AppState,
    service_cidr: (Ipv4Addr, u8),
    pod_gateway: Option<Ipv4Addr>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<DnsServer>> {
    let (listen, freebind) = match (args.dns_listen, pod_gateway) {
        (Some(listen), _) => (listen, false),
        (None, Some(gw)) => (SocketAddr::from((gw, 53)), true),
        (None, None) => return Ok(None),
    };
    let ip = cluster_dns_ip(args, service_cidr);
    // An address already taken by a user's Service must not stop the cluster: DNS still serves.
    if let Err(e) = k1s_apiserver::bootstrap::ensure_kube_dns(state, ip).await {
        tracing::warn!(%ip, error = %e.0.message, "cannot publish the kube-dns Service");
    }
    let client = k1s_apiserver::client::Client::new(state.clone(), "k1s-dns");
    let config = DnsConfig {
        listen,
        cluster_domain: args.cluster_domain.clone(),
        cluster_dns: Some(ip.into()),
        service_cidr,
        upstreams: (!args.dns_upstream.is_empty()).then(|| args.dns_upstream.clone()),
        resolv_conf: args.resolv_conf.clone(),
        freebind,
        ..Default::default()
    };
    let first = k1s_dns::start(client.clone(), config.clone(), shutdown.clone()).await;
    let server = match first {
        // The default port 53 is the host resolver's, or k1s is not allowed it: any free port
        // does, since pods reach DNS through the proxy's DNAT of `<cluster-dns>:53`.
        Err(k1s_dns::DnsError::Bind { source, .. })
            if freebind
                && matches!(
                    source.kind(),
                    std::io::ErrorKind::AddrInUse | std::io::ErrorKind::PermissionDenied
                ) =>
        {
            tracing::info!(%listen, error = %source, "port 53 unavailable: cluster DNS takes a free port");
            let config = DnsConfig {
                listen: SocketAddr::new(listen.ip(), 0),
                ..config
            };
            k1s_dns::start(client, config, shutdown).await
        }
        other => other,
    };
    Ok(Some(server.context("starting cluster DNS")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_and_default_ip() {
        assert_eq!(
            parse_upstream("192.0.2.1"),
            Ok("192.0.2.1:53".parse().unwrap())
        );
        assert_eq!(
            parse_upstream("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert!(parse_upstream("dns.example").is_err());
        let args = DnsArgs {
            dns_listen: None,
            cluster_domain: "cluster.local".into(),
            cluster_dns: None,
            dns_upstream: Vec::new(),
            resolv_conf: "/etc/resolv.conf".into(),
        };
        let cidr = (Ipv4Addr::new(10, 43, 0, 0), 16);
        let dns = Ipv4Addr::new(10, 43, 0, 10);
        let gw: SocketAddr = "10.42.0.1:53".parse().unwrap();
        assert_eq!(pod_nameserver(dns, gw, true), Some(dns));
        assert_eq!(
            pod_nameserver(dns, gw, false),
            Some(Ipv4Addr::new(10, 42, 0, 1))
        );
        let other_port: SocketAddr = "10.42.0.1:5353".parse().unwrap();
        assert_eq!(pod_nameserver(dns, other_port, false), None);
        let lo: SocketAddr = "127.0.0.1:53".parse().unwrap();
        assert_eq!(pod_nameserver(dns, lo, false), None);
        assert_eq!(pod_nameserver(dns, lo, true), Some(dns));
        assert_eq!(cluster_dns_ip(&args, cidr), Ipv4Addr::new(10, 43, 0, 10));
    }
}
