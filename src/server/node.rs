//! This node's identity, shared by the kubelet (Node name, InternalIP) and the service proxy
//! (`Local` traffic policies, LoadBalancer ingress): one `--node-name` and one `--node-ip`, so the
//! two can never disagree.

use std::net::{IpAddr, Ipv4Addr};

use clap::Args;
use k1s_runtime::sandbox::Ipv4Cidr;

/// Node identity flags.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// Name of this node (the kubelet's Node, the proxy's `Local` policies). Default: the host
    /// name, lower-cased.
    #[arg(long, env = "K1S_NODE_NAME")]
    pub node_name: Option<String>,
    /// This node's IPv4 address: the Node's InternalIP, where LoadBalancer services are exposed
    /// (their EXTERNAL-IP). Default: the source address of the default route, else the first
    /// address outside the pod and service ranges, else 127.0.0.1.
    #[arg(long, env = "K1S_NODE_IP")]
    pub node_ip: Option<Ipv4Addr>,
}

/// The resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
}

/// Resolves the flags; `excluded` are the pod and service ranges (never the node's address).
pub fn resolve(args: &NodeArgs, excluded: &[Ipv4Cidr]) -> Node {
    let ip = args
        .node_ip
        .unwrap_or_else(|| match k1s_kubelet::machine::primary_ip(excluded) {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
        });
    Node {
        name: args
            .node_name
            .clone()
            .unwrap_or_else(k1s_kubelet::machine::hostname),
        ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_and_defaults_stay_outside_cluster_ranges() {
        let given = NodeArgs {
            node_name: Some("edge-1".into()),
            node_ip: Some(Ipv4Addr::new(192, 0, 2, 7)),
        };
        let ranges: [Ipv4Cidr; 2] = [
            "10.42.0.0/16".parse().unwrap(),
            "10.43.0.0/16".parse().unwrap(),
        ];
        assert_eq!(
            resolve(&given, &ranges),
            Node {
                name: "edge-1".into(),
                ip: Ipv4Addr::new(192, 0, 2, 7)
            }
        );
        let detected = resolve(
            &NodeArgs {
                node_name: None,
                node_ip: None,
            },
            &ranges,
        );
        assert_eq!(detected.name, detected.name.to_lowercase());
        assert!(
            !ranges.iter().any(|c| c.contains(detected.ip)),
            "{detected:?}"
        );
    }
}
