//! The compact view of Services and EndpointSlices the ruleset is generated from, parsed once per
//! watch event so the JSON objects are dropped at once.
//!
//! Invariants:
//! - only IPv4 is kept (the proxy programs table `ip k1s`); IPv6 addresses are ignored;
//! - services and slices live in ordered maps, so generation from the same index is deterministic
//!   (the same script byte for byte), which makes restarts reconcile to an identical table;
//! - a slice is attached to its service by the `kubernetes.io/service-name` label, as upstream.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::Value;

/// A transport protocol a service port can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// The nft keyword (`tcp`, `udp`, `sctp`).
    pub fn nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    fn parse(s: Option<&str>) -> Option<Proto> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }
}

/// One port of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// The port's name (empty when the service has a single unnamed port).
    pub name: Box<str>,
    pub proto: Proto,
    pub port: u16,
    /// Allocated for NodePort and LoadBalancer services.
    pub node_port: Option<u16>,
}

/// What the proxy needs of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub namespace: Box<str>,
    pub name: Box<str>,
    /// `metadata.uid`, for events about the service.
    pub uid: Box<str>,
    /// `metadata.creationTimestamp` (RFC 3339, so it orders as text): the older LoadBalancer
    /// service keeps a contested node port.
    pub created: Box<str>,
    /// `type: LoadBalancer`.
    pub load_balancer: bool,
    /// IPv4 cluster IPs; empty for headless and ExternalName services (they get no rules).
    pub cluster_ips: Vec<Ipv4Addr>,
    pub ports: Vec<ServicePort>,
    pub external_ips: Vec<Ipv4Addr>,
    /// `status.loadBalancer.ingress` IPs (written by the built-in load balancer).
    pub lb_ingress: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP`: the timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `externalTrafficPolicy: Local`.
    pub external_local: bool,
}

/// One endpoint address of a slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// Whether the endpoint runs on this node (`nodeName` equals the proxy's node).
    pub local: bool,
}

/// A port of a slice: the service port's name and protocol, and the resolved target port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePort {
    pub name: Box<str>,
    pub proto: Proto,
    pub port: u16,
}

/// What the proxy needs of an EndpointSlice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slice {
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<SlicePort>,
}

/// `namespace/name`: the key of a service.
pub type Key = Box<str>;

/// Services and their slices.
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub services: BTreeMap<Key, Service>,
    /// Service key → slice name → slice.
    pub slices: BTreeMap<Key, BTreeMap<Box<str>, Slice>>,
}

impl Index {
    /// Adds or replaces a service.
    pub fn upsert_service(&mut self, svc: Service) {
        let key = format!("{}/{}", svc.namespace, svc.name).into();
        self.services.insert(key, svc);
    }

    /// Removes a service (its slices stay until deleted themselves, as in the API).
    pub fn remove_service(&mut self, key: &str) {
        self.services.remove(key);
    }

    /// Adds or replaces one slice of service `key`.
    pub fn upsert_slice(&mut self, key: Key, name: Box<str>, slice: Slice) {
        self.slices.entry(key).or_default().insert(name, slice);
    }

    /// Removes one slice of service `key`.
    pub fn remove_slice(&mut self, key: &str, name: &str) {
        if let Some(slices) = self.slices.get_mut(key) {
            slices.remove(name);
            if slices.is_empty() {
                self.slices.remove(key);
            }
        }
    }
}

/// The index entry of a Service object; `None` without a name or namespace.
pub fn service_from_json(obj: &Value) -> Option<Service> {
    let meta = &obj["metadata"];
    let spec = &obj["spec"];
    let ipv4s = |v: &Value| -> Vec<Ipv4Addr> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()?.parse().ok()).collect())
            .unwrap_or_default()
    };
    let mut cluster_ips = ipv4s(&spec["clusterIPs"]);
    if cluster_ips.is_empty()
        && let Some(ip) = spec["clusterIP"].as_str().and_then(|s| s.parse().ok())
    {
        cluster_ips.push(ip);
    }
    if spec["type"] == "ExternalName" {
        cluster_ips.clear();
    }
    let ports = spec["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    Some(ServicePort {
                        name: p["name"].as_str().unwrap_or_default().into(),
                        proto: Proto::parse(p["protocol"].as_str())?,
                        port: u16::try_from(p["port"].as_u64()?).ok()?,
                        node_port: p["nodePort"].as_u64().and_then(|n| u16::try_from(n).ok()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let lb_ingress = obj["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["ip"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let affinity_timeout = (spec["sessionAffinity"] == "ClientIP").then(|| {
        spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"]
            .as_u64()
            .map(|t| t.clamp(1, 86_400) as u32)
            .unwrap_or(10_800)
    });
    Some(Service {
        namespace: meta["namespace"].as_str()?.into(),
        name: meta["name"].as_str()?.into(),
        uid: meta["uid"].as_str().unwrap_or_default().into(),
        created: meta["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .into(),
        load_balancer: spec["type"] == "LoadBalancer",
        cluster_ips,
        ports,
        external_ips: ipv4s(&spec["externalIPs"]),
        lb_ingress,
        affinity_timeout,
        internal_local: spec["internalTrafficPolicy"] == "Local",
        external_local: spec["externalTrafficPolicy"] == "Local",
    })
}

/// The index entry of an EndpointSlice: (service key, slice name, slice); `None` when it names no
/// service or is not IPv4.
pub fn slice_from_json(obj: &Value, node_name: &str) -> Option<(Key, Box<str>, Slice)> {
    let meta = &obj["metadata"];
    let ns = meta["namespace"].as_str()?;
    let name = meta["name"].as_str()?;
    let svc = meta["labels"]["kubernetes.io/service-name"].as_str()?;
    if obj["addressType"].as_str().is_some_and(|t| t != "IPv4") {
        return None;
    }
    let mut endpoints = Vec::new();
    for e in obj["endpoints"].as_array().into_iter().flatten() {
        let cond = &e["conditions"];
        // Upstream: a missing `ready` means ready; a missing `serving` follows `ready`.
        let ready = cond["ready"].as_bool().unwrap_or(true);
        let serving = cond["serving"].as_bool().unwrap_or(ready);
        let terminating = cond["terminating"].as_bool().unwrap_or(false);
        let local = e["nodeName"].as_str().is_none_or(|n| n == node_name);
        // Upstream uses only the first address of an endpoint.
        if let Some(ip) = e["addresses"][0].as_str().and_then(|s| s.parse().ok()) {
            endpoints.push(Endpoint {
                ip,
                ready,
                serving,
                terminating,
                local,
            });
        }
    }
    let ports = obj["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    Some(SlicePort {
                        name: p["name"].as_str().unwrap_or_default().into(),
                        proto: Proto::parse(p["protocol"].as_str())?,
                        port: u16::try_from(p["port"].as_u64()?).ok()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some((
        format!("{ns}/{svc}").into(),
        name.into(),
        Slice { endpoints, ports },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_service() {
        let svc = service_from_json(&json!({
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5", "fd00::5"],
                "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                          {"name": "dns", "port": 53, "protocol": "UDP"},
                          {"name": "bad", "port": 70000}],
                "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local",
                "externalIPs": ["192.0.2.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
        }))
        .unwrap();
        assert_eq!(svc.cluster_ips, vec![Ipv4Addr::new(10, 43, 0, 5)]);
        assert_eq!(svc.ports.len(), 2);
        assert_eq!(svc.ports[0].node_port, Some(30080));
        assert_eq!(svc.ports[1].proto, Proto::Udp);
        assert_eq!(svc.affinity_timeout, Some(10_800));
        assert!(svc.external_local && !svc.internal_local);
        assert_eq!(svc.external_ips, vec![Ipv4Addr::new(192, 0, 2, 9)]);
        assert_eq!(svc.lb_ingress, vec![Ipv4Addr::new(192, 0, 2, 1)]);
    }

    #[test]
    fn parses_a_slice() {
        let (key, name, slice) = slice_from_json(
            &json!({
                "metadata": {"namespace": "default", "name": "web-abc",
                    "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": ["10.42.0.5"], "conditions": {"ready": true}, "nodeName": "n1"},
                    {"addresses": ["10.42.0.6"], "conditions": {"ready": false, "serving": true, "terminating": true}, "nodeName": "n2"},
                    {"addresses": ["not-an-ip"]}
                ],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
            }),
            "n1",
        )
        .unwrap();
        assert_eq!((&*key, &*name), ("default/web", "web-abc"));
        assert_eq!(slice.endpoints.len(), 2);
        assert!(slice.endpoints[0].ready && slice.endpoints[0].local);
        assert!(!slice.endpoints[1].ready && slice.endpoints[1].serving);
        assert!(!slice.endpoints[1].local);
        assert_eq!(slice.ports[0].port, 8080);
        let v6 = json!({"metadata": {"namespace": "d", "name": "s",
            "labels": {"kubernetes.io/service-name": "x"}}, "addressType": "IPv6"});
        assert!(slice_from_json(&v6, "n1").is_none());
    }
}
