//! The compact in-memory view of Services and EndpointSlices that DNS answers are built from.
//!
//! Invariants:
//! - only what DNS needs is kept (IPs, port names/numbers/protocols, endpoint hostnames and
//!   readiness), never the JSON objects, so thousands of services stay small;
//! - services are keyed by `name.namespace` (both are lowercase DNS labels in Kubernetes, so the key
//!   is also the lowercased middle of the query name `name.namespace.svc.<zone>`);
//! - the reverse maps (`ptr_services`, `ptr_endpoints`) always describe exactly the services and
//!   slices in the index: every upsert first removes what the previous version of the object added.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

/// A service or endpoint port, as far as SRV records need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port name, lowercase; empty for unnamed ports (which get no `_port._proto` record).
    pub name: Box<str>,
    /// `tcp`, `udp` or `sctp`.
    pub proto: Box<str>,
    pub port: u16,
}

/// What a service name resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ClusterIP, NodePort or LoadBalancer: the cluster IPs.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: the ready endpoints.
    Headless,
    /// `type: ExternalName`: a CNAME to this name (lowercase, without trailing dot).
    ExternalName(Box<str>),
}

/// The DNS-relevant part of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub kind: Kind,
    pub ports: Vec<Port>,
    /// `publishNotReadyAddresses`: not-ready endpoints are published too.
    pub publish_not_ready: bool,
}

/// One endpoint of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addrs: Vec<IpAddr>,
    /// The endpoint's `hostname`, lowercase.
    pub hostname: Option<Box<str>>,
    pub ready: bool,
}

impl Endpoint {
    /// The spec's _hostname_: the `hostname` field, else the first address with `.`/`:` turned into
    /// `-` (CoreDNS's choice of a system-assigned identifier).
    pub fn dns_hostname(&self) -> Option<String> {
        match &self.hostname {
            Some(h) => Some(h.to_string()),
            None => self.addrs.first().map(|ip| dashed(*ip)),
        }
    }
}

/// An IP in the dashed form used in pod and endpoint names: `10-0-0-1`, `fd00--1`.
pub fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// The DNS-relevant part of an EndpointSlice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slice {
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<Port>,
}

/// Who owns an endpoint IP: its service key, slice name and hostname label.
#[derive(Debug)]
struct EndpointOwner {
    service: Box<str>,
    slice: Box<str>,
    host: Box<str>,
}

/// Services and their endpoints, with reverse maps for PTR.
#[derive(Default, Debug)]
pub struct Index {
    services: HashMap<Box<str>, Service>,
    /// Service key → slice name → slice.
    slices: HashMap<Box<str>, HashMap<Box<str>, Slice>>,
    /// Namespace → number of services in it (a namespace with none is NXDOMAIN).
    namespaces: HashMap<Box<str>, usize>,
    /// Cluster IP → service key.
    ptr_services: HashMap<IpAddr, Box<str>>,
    /// Endpoint IP → its owner.
    ptr_endpoints: HashMap<IpAddr, EndpointOwner>,
}

/// `name.namespace`: the index key of a service.
pub fn service_key(namespace: &str, name: &str) -> Box<str> {
    format!(
        "{}.{}",
        name.to_ascii_lowercase(),
        namespace.to_ascii_lowercase()
    )
    .into()
}

impl Index {
    /// The service with key `name.namespace`.
    pub fn service(&self, key: &str) -> Option<&Service> {
        self.services.get(key)
    }

    /// Whether any service lives in `namespace`.
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.namespaces.contains_key(namespace)
    }

    /// Number of services indexed.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether no service is indexed.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The endpoints DNS publishes for a service (ready ones, or all with `publishNotReadyAddresses`),
    /// each with the ports of its slice.
    pub fn endpoints<'a>(
        &'a self,
        key: &str,
    ) -> impl Iterator<Item = (&'a Endpoint, &'a [Port])> + 'a {
        let all = self.services.get(key).is_some_and(|s| s.publish_not_ready);
        self.slices.get(key).into_iter().flat_map(move |slices| {
            slices.values().flat_map(move |s| {
                s.endpoints
                    .iter()
                    .filter(move |e| all || e.ready)
                    .map(move |e| (e, s.ports.as_slice()))
            })
        })
    }

    /// What a PTR for `ip` names: `(service key, Some(hostname))` for an endpoint, `(key, None)`
    /// for a cluster IP.
    pub fn ptr(&self, ip: IpAddr) -> Option<(&str, Option<&str>)> {
        if let Some(key) = self.ptr_services.get(&ip) {
            return Some((key, None));
        }
        self.ptr_endpoints
            .get(&ip)
            .map(|o| (&*o.service, Some(&*o.host)))
    }

    /// Adds or replaces a service.
    pub fn upsert_service(&mut self, key: Box<str>, svc: Service) {
        self.remove_service(&key);
        if let Kind::ClusterIp(ips) = &svc.kind {
            for ip in ips {
                self.ptr_services.insert(*ip, key.clone());
            }
        }
        let ns = key.split_once('.').map(|(_, ns)| ns).unwrap_or_default();
        *self.namespaces.entry(ns.into()).or_default() += 1;
        self.services.insert(key, svc);
    }

    /// Removes a service (its slices stay until they are deleted themselves).
    pub fn remove_service(&mut self, key: &str) {
        let Some(old) = self.services.remove(key) else {
            return;
        };
        if let Kind::ClusterIp(ips) = &old.kind {
            for ip in ips {
                if self.ptr_services.get(ip).is_some_and(|k| &**k == key) {
                    self.ptr_services.remove(ip);
                }
            }
        }
        let ns = key.split_once('.').map(|(_, ns)| ns).unwrap_or_default();
        if let Some(n) = self.namespaces.get_mut(ns) {
            *n -= 1;
            if *n == 0 {
                self.namespaces.remove(ns);
            }
        }
    }

    /// Adds or replaces slice `slice` of service `key`.
    pub fn upsert_slice(&mut self, key: Box<str>, slice: Box<str>, data: Slice) {
        self.remove_slice(&key, &slice);
        for ep in &data.endpoints {
            let Some(host) = ep.dns_hostname() else {
                continue;
            };
            let host: Box<str> = host.into();
            for ip in &ep.addrs {
                let owner = EndpointOwner {
                    service: key.clone(),
                    slice: slice.clone(),
                    host: host.clone(),
                };
                self.ptr_endpoints.insert(*ip, owner);
            }
        }
        self.slices.entry(key).or_default().insert(slice, data);
    }

    /// Removes slice `slice` of service `key`.
    pub fn remove_slice(&mut self, key: &str, slice: &str) {
        let Some(slices) = self.slices.get_mut(key) else {
            return;
        };
        let Some(old) = slices.remove(slice) else {
            return;
        };
        if slices.is_empty() {
            self.slices.remove(key);
        }
        for ip in old.endpoints.iter().flat_map(|e| &e.addrs) {
            if self
                .ptr_endpoints
                .get(ip)
                .is_some_and(|o| &*o.service == key && &*o.slice == slice)
            {
                self.ptr_endpoints.remove(ip);
            }
        }
    }

    /// Replaces every service (after a relist).
    pub fn replace_services(&mut self, services: impl IntoIterator<Item = (Box<str>, Service)>) {
        self.services.clear();
        self.namespaces.clear();
        self.ptr_services.clear();
        for (key, svc) in services {
            self.upsert_service(key, svc);
        }
    }

    /// Replaces every slice (after a relist).
    pub fn replace_slices(
        &mut self,
        slices: impl IntoIterator<Item = (Box<str>, Box<str>, Slice)>,
    ) {
        self.slices.clear();
        self.ptr_endpoints.clear();
        for (key, name, slice) in slices {
            self.upsert_slice(key, name, slice);
        }
    }
}

/// The index entry of a Service object: `None` when it has no name or namespace.
pub fn service_from_json(obj: &Value) -> Option<(Box<str>, Service)> {
    let meta = &obj["metadata"];
    let key = service_key(meta["namespace"].as_str()?, meta["name"].as_str()?);
    let spec = &obj["spec"];
    let kind = if spec["type"] == "ExternalName" {
        let target = spec["externalName"].as_str().unwrap_or_default();
        Kind::ExternalName(target.trim_end_matches('.').to_ascii_lowercase().into())
    } else {
        let mut ips: Vec<IpAddr> = match spec["clusterIPs"].as_array() {
            Some(ips) => ips
                .iter()
                .filter_map(|ip| ip.as_str()?.parse().ok())
                .collect(),
            None => Vec::new(),
        };
        if ips.is_empty()
            && let Some(ip) = spec["clusterIP"].as_str().and_then(|s| s.parse().ok())
        {
            ips.push(ip);
        }
        if ips.is_empty() {
            Kind::Headless
        } else {
            Kind::ClusterIp(ips)
        }
    };
    let ports = spec["ports"]
        .as_array()
        .map(|ports| ports.iter().filter_map(port_from_json).collect())
        .unwrap_or_default();
    Some((
        key,
        Service {
            kind,
            ports,
            publish_not_ready: spec["publishNotReadyAddresses"] == true,
        },
    ))
}

fn port_from_json(p: &Value) -> Option<Port> {
    let port = u16::try_from(p["port"].as_u64()?).ok()?;
    Some(Port {
        name: p["name"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .into(),
        proto: p["protocol"]
            .as_str()
            .unwrap_or("TCP")
            .to_ascii_lowercase()
            .into(),
        port,
    })
}

/// The index entry of an EndpointSlice: (service key, slice name, slice); `None` when it names no
/// service (no `kubernetes.io/service-name` label).
pub fn slice_from_json(obj: &Value) -> Option<(Box<str>, Box<str>, Slice)> {
    let meta = &obj["metadata"];
    let ns = meta["namespace"].as_str()?;
    let name = meta["name"].as_str()?;
    let svc = meta["labels"]["kubernetes.io/service-name"].as_str()?;
    let endpoints = obj["endpoints"]
        .as_array()
        .map(|eps| {
            eps.iter()
                .map(|e| Endpoint {
                    addrs: e["addresses"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|ip| ip.as_str()?.parse().ok())
                                .collect()
                        })
                        .unwrap_or_default(),
                    hostname: e["hostname"]
                        .as_str()
                        .filter(|h| !h.is_empty())
                        .map(|h| h.to_ascii_lowercase().into()),
                    // A missing `ready` condition means ready (EndpointSlice API semantics).
                    ready: e["conditions"]["ready"].as_bool().unwrap_or(true),
                })
                .collect()
        })
        .unwrap_or_default();
    let ports = obj["ports"]
        .as_array()
        .map(|ports| ports.iter().filter_map(port_from_json).collect())
        .unwrap_or_default();
    Some((
        service_key(ns, svc),
        name.into(),
        Slice { endpoints, ports },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn web() -> Value {
        json!({"metadata": {"name": "Web", "namespace": "default"},
               "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                        "ports": [{"name": "HTTP", "port": 80, "protocol": "TCP"}, {"port": 81}]}})
    }

    #[test]
    fn services_are_compacted() {
        let (key, svc) = service_from_json(&web()).unwrap();
        assert_eq!(&*key, "web.default");
        assert_eq!(
            svc.kind,
            Kind::ClusterIp(vec!["10.43.0.20".parse().unwrap()])
        );
        assert_eq!(svc.ports.len(), 2);
        assert_eq!(&*svc.ports[0].name, "http");
        assert_eq!(&*svc.ports[1].name, "");
        assert_eq!(&*svc.ports[1].proto, "tcp");
        let headless =
            json!({"metadata": {"name": "h", "namespace": "x"}, "spec": {"clusterIP": "None"}});
        assert_eq!(service_from_json(&headless).unwrap().1.kind, Kind::Headless);
        let ext = json!({"metadata": {"name": "e", "namespace": "x"},
                         "spec": {"type": "ExternalName", "externalName": "Example.COM."}});
        assert_eq!(
            service_from_json(&ext).unwrap().1.kind,
            Kind::ExternalName("example.com".into())
        );
        assert!(service_from_json(&json!({"metadata": {"name": "n"}})).is_none());
    }

    #[test]
    fn reverse_maps_follow_upserts_and_deletes() {
        let mut idx = Index::default();
        let (key, svc) = service_from_json(&web()).unwrap();
        idx.upsert_service(key.clone(), svc);
        let ip: IpAddr = "10.43.0.20".parse().unwrap();
        assert_eq!(idx.ptr(ip), Some(("web.default", None)));
        assert!(idx.has_namespace("default"));
        let slice = json!({"metadata": {"name": "web-abc", "namespace": "default",
                                        "labels": {"kubernetes.io/service-name": "web"}},
                           "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": true}},
                                         {"addresses": ["10.42.0.6"], "hostname": "Pet", "conditions": {"ready": false}}],
                           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]});
        let (k, n, s) = slice_from_json(&slice).unwrap();
        idx.upsert_slice(k, n, s);
        assert_eq!(
            idx.ptr("10.42.0.5".parse().unwrap()),
            Some(("web.default", Some("10-42-0-5")))
        );
        assert_eq!(
            idx.ptr("10.42.0.6".parse().unwrap()),
            Some(("web.default", Some("pet")))
        );
        assert_eq!(
            idx.endpoints("web.default").count(),
            1,
            "only ready endpoints"
        );
        idx.remove_slice("web.default", "web-abc");
        assert_eq!(idx.ptr("10.42.0.5".parse().unwrap()), None);
        idx.remove_service(&key);
        assert_eq!(idx.ptr(ip), None);
        assert!(!idx.has_namespace("default"));
        assert!(idx.is_empty());
    }
}
