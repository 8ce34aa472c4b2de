//! The `kubernetes` Service in `default`: it has no selector, so its Endpoints and EndpointSlice
//! (both named `kubernetes`) are written here, pointing at an address pods can reach (the node's
//! primary IPv4 address, never a loopback one) and the API server's port.

use std::net::{Ipv4Addr, UdpSocket};

use serde_json::{Value, json};

use super::SERVICE_NAME;

/// The Service's namespace and name.
pub const NAMESPACE: &str = "default";
pub const NAME: &str = "kubernetes";

fn usable(ip: Ipv4Addr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified() && !ip.is_link_local() && !ip.is_multicast()
}

/// The address to publish: the advertised address if it is a usable IPv4 address, else the source
/// address of the default route, else the first local address in `/proc/net/fib_trie`.
pub fn host_address(advertise: &str) -> Option<Ipv4Addr> {
    let host = advertise.rsplit_once(':').map_or(advertise, |(h, _)| h);
    if let Ok(ip) = host.parse::<Ipv4Addr>()
        && usable(ip)
    {
        return Some(ip);
    }
    route_source().filter(|ip| usable(*ip)).or_else(|| {
        std::fs::read_to_string("/proc/net/fib_trie")
            .ok()
            .and_then(|t| first_local(&t))
    })
}

/// The source address the kernel picks for a public destination (no packet is sent: connecting a
/// UDP socket only selects a route).
fn route_source() -> Option<Ipv4Addr> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    match sock.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) => Some(ip),
        std::net::IpAddr::V6(_) => None,
    }
}

/// The first usable local (`/32 host LOCAL`) address in a `/proc/net/fib_trie` dump.
fn first_local(trie: &str) -> Option<Ipv4Addr> {
    let mut last: Option<Ipv4Addr> = None;
    for line in trie.lines() {
        let t = line.trim();
        if let Some(ip) = t.strip_prefix("|-- ") {
            last = ip.trim().parse().ok();
        } else if t.contains("/32 host LOCAL")
            && let Some(ip) = last
            && usable(ip)
        {
            return Some(ip);
        }
    }
    None
}

/// The endpoint ports: each service port's (numeric) targetPort.
fn ports(svc: &Value) -> Vec<Value> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p["targetPort"].as_i64().or_else(|| p["port"].as_i64());
            let mut e = json!({"port": port, "protocol": p["protocol"].as_str().unwrap_or("TCP")});
            if let Some(n) = p["name"].as_str().filter(|n| !n.is_empty()) {
                e["name"] = json!(n);
            }
            e
        })
        .collect()
}

/// The desired Endpoints (without metadata bookkeeping).
pub fn endpoints(svc: &Value, ip: Ipv4Addr) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip.to_string()}], "ports": ports(svc)}],
    })
}

/// The desired EndpointSlice.
pub fn slice(svc: &Value, ip: Ipv4Addr) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {SERVICE_NAME: NAME}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
        "ports": ports(svc),
    })
}

/// Whether `current` already has what `desired` specifies (labels and the content fields).
pub fn matches(current: &Value, desired: &Value) -> bool {
    ["subsets", "addressType", "endpoints", "ports"]
        .iter()
        .all(|f| current.get(*f) == desired.get(*f))
        && current["metadata"]["labels"] == desired["metadata"]["labels"]
}

/// `desired` carrying `current`'s metadata (resourceVersion, uid, other annotations) for an update.
pub fn merged(current: &Value, desired: &Value) -> Value {
    let mut out = current.clone();
    for f in ["subsets", "addressType", "endpoints", "ports"] {
        if let Some(v) = desired.get(f) {
            out[f] = v.clone();
        }
    }
    out["metadata"]["labels"] = desired["metadata"]["labels"].clone();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_local_address_in_fib_trie() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\n     |-- 172.17.0.2\n        /32 host LOCAL\n";
        assert_eq!(first_local(trie), Some(Ipv4Addr::new(172, 17, 0, 2)));
        assert_eq!(
            first_local("Main:\n |-- 127.0.0.1\n  /32 host LOCAL\n"),
            None
        );
    }

    #[test]
    fn never_loopback() {
        if let Some(ip) = host_address("127.0.0.1:6443") {
            assert!(!ip.is_loopback());
        }
        assert_eq!(
            host_address("192.168.1.5:6443"),
            Some(Ipv4Addr::new(192, 168, 1, 5))
        );
    }
}
