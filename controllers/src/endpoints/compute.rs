//! Pure functions: which pods back a Service and how, as Endpoints subsets and EndpointSlice endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

pub use k1s_apimachinery::pod::is_ready as pod_ready;

/// The pod's IPv4 address, if it has one.
pub fn pod_ipv4(pod: &Value) -> Option<&str> {
    let primary = pod["status"]["podIP"].as_str().filter(|s| !s.is_empty());
    let all = pod["status"]["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["ip"].as_str());
    primary
        .into_iter()
        .chain(all)
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
}

/// Whether a pod belongs in Endpoints/EndpointSlices at all: not finished, has an IP, and (unless
/// `include_terminating`) not being deleted.
pub fn include_pod(pod: &Value, include_terminating: bool) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    if pod_ipv4(pod).is_none() {
        return false;
    }
    include_terminating || pod["metadata"]["deletionTimestamp"].is_null()
}

/// The container port a service port targets on `pod`: a named targetPort is looked up among the
/// pod's container ports by name and protocol; a number is taken as is.
pub fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let protocol = svc_port["protocol"].as_str().unwrap_or("TCP");
    match &svc_port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"] == *name && p["protocol"].as_str().unwrap_or("TCP") == protocol)
            .and_then(|p| p["containerPort"].as_i64()),
        _ => svc_port["port"].as_i64(),
    }
}

/// The endpoint ports of `pod` for `svc`: one per service port that resolves.
pub fn pod_ports(svc: &Value, pod: &Value) -> Vec<Value> {
    let mut ports: Vec<Value> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            let mut p = Map::new();
            if let Some(name) = sp["name"].as_str().filter(|n| !n.is_empty()) {
                p.insert("name".into(), json!(name));
            }
            p.insert("port".into(), json!(port));
            p.insert(
                "protocol".into(),
                json!(sp["protocol"].as_str().unwrap_or("TCP")),
            );
            if let Some(ap) = sp["appProtocol"].as_str() {
                p.insert("appProtocol".into(), json!(ap));
            }
            Some(Value::Object(p))
        })
        .collect();
    ports.sort_by_key(port_order);
    ports
}

fn port_order(p: &Value) -> (String, i64, String) {
    (
        p["name"].as_str().unwrap_or_default().to_string(),
        p["port"].as_i64().unwrap_or_default(),
        p["protocol"].as_str().unwrap_or_default().to_string(),
    )
}

pub fn publish_not_ready(svc: &Value) -> bool {
    svc["spec"]["publishNotReadyAddresses"] == true
}

pub fn headless(svc: &Value) -> bool {
    svc["spec"]["clusterIP"]
        .as_str()
        .is_none_or(|ip| ip.is_empty() || ip == "None")
}

fn target_ref(pod: &Value) -> Value {
    let m = &pod["metadata"];
    json!({"kind": "Pod", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"]})
}

/// The hostname a pod publishes under a headless service (`spec.hostname` when `spec.subdomain` is
/// the service's name).
fn hostname<'a>(svc: &Value, pod: &'a Value) -> Option<&'a str> {
    let h = pod["spec"]["hostname"].as_str().filter(|h| !h.is_empty())?;
    (pod["spec"]["subdomain"] == svc["metadata"]["name"]).then_some(h)
}

/// One subset being built: its ports, ready and not-ready addresses.
type Subset = (Vec<Value>, Vec<Value>, Vec<Value>);

/// The most addresses an Endpoints object holds (upstream's capacity); beyond it, it is truncated
/// and annotated `endpoints.kubernetes.io/over-capacity: truncated`.
pub const MAX_ENDPOINTS: usize = 1000;

/// The `subsets` of a Service's Endpoints (pods grouped by their resolved ports, addresses sorted by
/// IP) and whether they were truncated to [`MAX_ENDPOINTS`].
pub fn subsets(svc: &Value, pods: &[Arc<Value>]) -> (Vec<Value>, bool) {
    let publish = publish_not_ready(svc);
    let no_ports = svc["spec"]["ports"].as_array().is_none_or(Vec::is_empty);
    let mut groups: BTreeMap<String, Subset> = BTreeMap::new();
    let mut count = 0;
    let mut ordered: Vec<&Arc<Value>> = pods.iter().collect();
    // Ready pods first, so truncation keeps them.
    ordered.sort_by_key(|p| !(publish || pod_ready(p)));
    let mut truncated = false;
    for pod in ordered {
        if !include_pod(pod, publish) {
            continue;
        }
        let ports = if no_ports {
            if !headless(svc) {
                continue;
            }
            Vec::new()
        } else {
            let p = pod_ports(svc, pod);
            if p.is_empty() {
                continue;
            }
            p
        };
        if count == MAX_ENDPOINTS {
            truncated = true;
            break;
        }
        count += 1;
        let mut addr = Map::new();
        addr.insert("ip".into(), json!(pod_ipv4(pod)));
        if let Some(h) = hostname(svc, pod) {
            addr.insert("hostname".into(), json!(h));
        }
        if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            addr.insert("nodeName".into(), json!(node));
        }
        addr.insert("targetRef".into(), target_ref(pod));
        let key = Value::Array(ports.clone()).to_string();
        let g = groups
            .entry(key)
            .or_insert_with(|| (ports, Vec::new(), Vec::new()));
        if publish || pod_ready(pod) {
            g.1.push(Value::Object(addr));
        } else {
            g.2.push(Value::Object(addr));
        }
    }
    let by_ip = |a: &Value, b: &Value| ip_order(a["ip"].as_str()).cmp(&ip_order(b["ip"].as_str()));
    let subsets = groups
        .into_values()
        .map(|(ports, mut ready, mut not_ready)| {
            ready.sort_by(by_ip);
            not_ready.sort_by(by_ip);
            let mut s = Map::new();
            if !ready.is_empty() {
                s.insert("addresses".into(), Value::Array(ready));
            }
            if !not_ready.is_empty() {
                s.insert("notReadyAddresses".into(), Value::Array(not_ready));
            }
            if !ports.is_empty() {
                s.insert("ports".into(), Value::Array(ports));
            }
            Value::Object(s)
        })
        .collect();
    (subsets, truncated)
}

fn ip_order(ip: Option<&str>) -> (u32, String) {
    let s = ip.unwrap_or_default();
    (
        s.parse::<std::net::Ipv4Addr>().map(u32::from).unwrap_or(0),
        s.to_string(),
    )
}

/// One EndpointSlice endpoint, keyed by its pod uid (or IP).
pub struct SliceEndpoint {
    pub key: String,
    pub ip: String,
    pub value: Value,
}

/// The EndpointSlice endpoints of a Service, grouped by their resolved ports (serialised as the
/// map key). Terminating pods are included, with `ready: false` and `terminating: true`.
pub fn slice_endpoints(
    svc: &Value,
    pods: &[Arc<Value>],
) -> BTreeMap<String, (Vec<Value>, Vec<SliceEndpoint>)> {
    let publish = publish_not_ready(svc);
    let mut groups: BTreeMap<String, (Vec<Value>, Vec<SliceEndpoint>)> = BTreeMap::new();
    for pod in pods {
        if !include_pod(pod, true) {
            continue;
        }
        let ports = pod_ports(svc, pod);
        let ip = pod_ipv4(pod).unwrap_or_default().to_string();
        let terminating = !pod["metadata"]["deletionTimestamp"].is_null();
        let serving = publish || pod_ready(pod);
        let ready = publish || (pod_ready(pod) && !terminating);
        let mut ep = Map::new();
        ep.insert("addresses".into(), json!([ip]));
        ep.insert(
            "conditions".into(),
            json!({"ready": ready, "serving": serving, "terminating": terminating}),
        );
        if let Some(h) = hostname(svc, pod) {
            ep.insert("hostname".into(), json!(h));
        }
        if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            ep.insert("nodeName".into(), json!(node));
        }
        ep.insert("targetRef".into(), target_ref(pod));
        let key = pod["metadata"]["uid"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| ip.clone());
        let port_key = Value::Array(ports.clone()).to_string();
        groups
            .entry(port_key)
            .or_insert_with(|| (ports, Vec::new()))
            .1
            .push(SliceEndpoint {
                key,
                ip,
                value: Value::Object(ep),
            });
    }
    groups
}

/// Sorts slice endpoints by IP (the order they are written in).
pub fn sort_endpoints(eps: &mut [Value]) {
    eps.sort_by(|a, b| {
        ip_order(a["addresses"][0].as_str()).cmp(&ip_order(b["addresses"][0].as_str()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: Option<&str>, ready: bool, ports: Value) -> Arc<Value> {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        });
        if let Some(ip) = ip {
            p["status"]["podIP"] = json!(ip);
        }
        Arc::new(p)
    }

    fn svc() -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": {"clusterIP": "10.43.0.9", "ports": [
            {"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "targetPort": 9100, "protocol": "TCP"},
        ]}})
    }

    #[test]
    fn named_ports_resolve_per_pod_and_group_subsets() {
        let pods = vec![
            pod(
                "a",
                Some("10.0.0.2"),
                true,
                json!([{"name": "web", "containerPort": 8080}]),
            ),
            pod(
                "b",
                Some("10.0.0.1"),
                false,
                json!([{"name": "web", "containerPort": 8080}]),
            ),
            pod(
                "c",
                Some("10.0.0.3"),
                true,
                json!([{"name": "web", "containerPort": 9000}]),
            ),
            pod(
                "d",
                None,
                true,
                json!([{"name": "web", "containerPort": 8080}]),
            ),
            // Wrong protocol: the named port does not resolve; the numeric one still does.
            pod(
                "e",
                Some("10.0.0.5"),
                true,
                json!([{"name": "web", "containerPort": 8080, "protocol": "UDP"}]),
            ),
        ];
        let (subsets, truncated) = subsets(&svc(), &pods);
        assert!(!truncated);
        assert_eq!(subsets.len(), 3);
        let find = |port: i64| {
            subsets
                .iter()
                .find(|s| {
                    s["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["port"] == port)
                })
                .unwrap()
                .clone()
        };
        let s8080 = find(8080);
        assert_eq!(s8080["addresses"][0]["ip"], "10.0.0.2");
        assert_eq!(s8080["notReadyAddresses"][0]["ip"], "10.0.0.1");
        assert_eq!(s8080["addresses"][0]["targetRef"]["kind"], "Pod");
        assert_eq!(s8080["addresses"][0]["nodeName"], "n1");
        assert_eq!(
            s8080["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9100, "protocol": "TCP"}])
        );
        assert_eq!(find(9000)["addresses"][0]["ip"], "10.0.0.3");
        let only_metrics = subsets
            .iter()
            .find(|s| s["ports"].as_array().unwrap().len() == 1)
            .unwrap();
        assert_eq!(only_metrics["addresses"][0]["ip"], "10.0.0.5");
    }

    #[test]
    fn slices_mark_terminating_pods() {
        let mut p = (*pod(
            "a",
            Some("10.0.0.2"),
            true,
            json!([{"name": "web", "containerPort": 8080}]),
        ))
        .clone();
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let pods = vec![Arc::new(p)];
        let groups = slice_endpoints(&svc(), &pods);
        let (_, eps) = groups.values().next().unwrap();
        assert_eq!(
            eps[0].value["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        // Endpoints leave terminating pods out.
        assert!(subsets(&svc(), &pods).0.is_empty());
    }
}
