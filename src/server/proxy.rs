//! `k1s server`'s service proxy flags and start-up (crate `k1s-proxy`): table `ip k1s` is programmed
//! from Services and EndpointSlices while the server runs and deleted when it stops cleanly. The
//! node's name and address are the kubelet's (`--node-name`, `--node-ip`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use k1s_apiserver::AppState;
use k1s_proxy::{Proxy, ProxyConfig};

use super::node::Node;
use tokio_util::sync::CancellationToken;

/// Where DNAT for `<cluster-dns>:53` should go, given where the DNS server listens: its own
/// address when specific, the node IP when it listens on all addresses.
pub fn dns_target(listen: SocketAddr, node_ip: Option<Ipv4Addr>) -> Option<SocketAddrV4> {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            node_ip.map(|n| SocketAddrV4::new(n, listen.port()))
        }
        IpAddr::V4(ip) => Some(SocketAddrV4::new(ip, listen.port())),
        IpAddr::V6(_) => None,
    }
}

/// Starts the proxy for `node`; a host where `nft` cannot run (not root, no nftables) gets a
/// warning and no proxy rather than no cluster.
pub async fn start(
    node: &Node,
    state: &AppState,
    service_cidr: (Ipv4Addr, u8),
    dns: Option<(Ipv4Addr, SocketAddr)>,
    shutdown: CancellationToken,
) -> Option<Proxy> {
    let dns = dns.and_then(|(ip, listen)| {
        let target = dns_target(listen, Some(node.ip));
        if target.is_none() {
            tracing::warn!(%listen, "cluster DNS is not reachable through its ClusterIP: give --dns-listen an IPv4 address");
        }
        Some((ip, target?))
    });
    let config = ProxyConfig {
        node_name: node.name.clone(),
        node_ip: Some(node.ip),
        service_cidr,
        dns,
        route_localnet: true,
        ..Default::default()
    };
    let client = k1s_apiserver::client::Client::new(state.clone(), "k1s-proxy");
    match k1s_proxy::start(client, config, shutdown).await {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "service proxy not started (disable it with --disable proxy)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_targets() {
        let node = Some(Ipv4Addr::new(192, 0, 2, 4));
        assert_eq!(
            dns_target("10.42.0.1:53".parse().unwrap(), node),
            Some("10.42.0.1:53".parse().unwrap())
        );
        assert_eq!(
            dns_target("0.0.0.0:5353".parse().unwrap(), node),
            Some("192.0.2.4:5353".parse().unwrap())
        );
        assert_eq!(dns_target("0.0.0.0:53".parse().unwrap(), None), None);
        assert_eq!(dns_target("[::1]:53".parse().unwrap(), node), None);
    }
}
