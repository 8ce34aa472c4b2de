//! Planning a Service's EndpointSlices: which to create, update and delete so that they hold the
//! desired endpoints, moving as few endpoints between slices as possible.
//!
//! Endpoints with the same resolved ports share slices of at most [`MAX_PER_SLICE`]; an endpoint
//! already in a slice stays there; a Service without endpoints keeps one empty placeholder slice.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::compute::{self, SliceEndpoint};
use super::{MANAGED_BY, SERVICE_NAME, TRIGGER_TIME};

/// This controller's `endpointslice.kubernetes.io/managed-by` value.
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";
/// Endpoints per slice (upstream's default `--max-endpoints-per-slice`).
pub const MAX_PER_SLICE: usize = 100;
const HEADLESS: &str = "service.kubernetes.io/headless";

/// One write.
#[derive(Debug)]
pub enum Op {
    Create(Value),
    Update(Value),
    Delete(String),
}

/// The labels a Service's slices carry: the Service's own, plus the headless, service-name and
/// managed-by labels.
pub fn labels(svc: &Value) -> Map<String, Value> {
    let mut l: Map<String, Value> = svc["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    l.remove(SERVICE_NAME);
    l.remove(MANAGED_BY);
    l.remove(HEADLESS);
    if compute::headless(svc) {
        l.insert(HEADLESS.into(), json!(""));
    }
    l.insert(SERVICE_NAME.into(), svc["metadata"]["name"].clone());
    l.insert(MANAGED_BY.into(), json!(CONTROLLER));
    l
}

fn owner_ref(svc: &Value) -> Value {
    json!([{"apiVersion": "v1", "kind": "Service", "name": svc["metadata"]["name"],
            "uid": svc["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

fn owned_by(slice: &Value, svc: &Value) -> bool {
    slice["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["controller"] == true && r["uid"] == svc["metadata"]["uid"])
        })
}

fn ports_key(slice: &Value) -> String {
    match &slice["ports"] {
        Value::Array(p) => Value::Array(p.clone()).to_string(),
        _ => "[]".into(),
    }
}

fn endpoint_key(ep: &Value) -> String {
    ep["targetRef"]["uid"]
        .as_str()
        .or_else(|| ep["addresses"][0].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The slice `base` (an existing slice, or `None` for a new one) with the desired content; `None`
/// when `base` already has it.
fn build(
    svc: &Value,
    base: Option<&Value>,
    ports: &[Value],
    mut endpoints: Vec<Value>,
    now: &str,
) -> Option<Value> {
    compute::sort_endpoints(&mut endpoints);
    let labels = Value::Object(labels(svc));
    let owners = owner_ref(svc);
    let ports_v = (!ports.is_empty()).then(|| Value::Array(ports.to_vec()));
    if let Some(b) = base {
        let same = b["metadata"]["labels"] == labels
            && b["metadata"]["ownerReferences"] == owners
            && b["addressType"] == "IPv4"
            && b["endpoints"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                == endpoints
            && b.get("ports").filter(|p| !p.is_null()) == ports_v.as_ref();
        if same {
            return None;
        }
    }
    let mut s = base.cloned().unwrap_or_else(|| {
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "generateName": format!("{}-", svc["metadata"]["name"].as_str().unwrap_or_default()),
                "namespace": svc["metadata"]["namespace"],
            },
        })
    });
    s["metadata"]["labels"] = labels;
    s["metadata"]["ownerReferences"] = owners;
    if !s["metadata"]["annotations"].is_object() {
        s["metadata"]["annotations"] = json!({});
    }
    s["metadata"]["annotations"][TRIGGER_TIME] = json!(now);
    s["addressType"] = json!("IPv4");
    s["endpoints"] = Value::Array(endpoints);
    match ports_v {
        Some(p) => s["ports"] = p,
        None => {
            if let Some(m) = s.as_object_mut() {
                m.remove("ports");
            }
        }
    }
    Some(s)
}

/// The writes that bring `existing` (the slices labelled with the Service's name and managed by this
/// controller) to the desired state for `svc` and its selected `pods`.
pub fn plan(svc: &Value, pods: &[Arc<Value>], existing: &[Arc<Value>], now: &str) -> Vec<Op> {
    let mut ops = Vec::new();
    let name_of = |s: &Value| {
        s["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let mut owned: Vec<&Arc<Value>> = Vec::new();
    for s in existing {
        if owned_by(s, svc) {
            owned.push(s);
        } else {
            ops.push(Op::Delete(name_of(s)));
        }
    }
    owned.sort_by_key(|s| name_of(s));
    let groups = compute::slice_endpoints(svc, pods);
    if groups.values().all(|(_, eps)| eps.is_empty()) {
        // One placeholder: no endpoints, no ports.
        let keep = owned
            .iter()
            .position(|s| s["endpoints"].as_array().is_none_or(Vec::is_empty))
            .unwrap_or(0);
        for (i, s) in owned.iter().enumerate() {
            if i != keep {
                ops.push(Op::Delete(name_of(s)));
            }
        }
        match owned.get(keep) {
            Some(s) => ops.extend(build(svc, Some(s), &[], Vec::new(), now).map(Op::Update)),
            None => ops.extend(build(svc, None, &[], Vec::new(), now).map(Op::Create)),
        }
        return ops;
    }
    let mut by_ports: BTreeMap<String, Vec<&Arc<Value>>> = BTreeMap::new();
    for s in owned {
        by_ports.entry(ports_key(s)).or_default().push(s);
    }
    for (key, (ports, mut eps)) in groups {
        eps.sort_by(|a, b| a.ip.cmp(&b.ip));
        let slices = by_ports.remove(&key).unwrap_or_default();
        let mut placed: HashSet<String> = HashSet::new();
        let wanted: BTreeMap<&str, &SliceEndpoint> =
            eps.iter().map(|e| (e.key.as_str(), e)).collect();
        // Endpoints stay in the slice that holds them.
        let mut contents: Vec<Vec<Value>> = slices
            .iter()
            .map(|s| {
                s["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|ep| {
                        let k = endpoint_key(ep);
                        let want = wanted.get(k.as_str())?;
                        placed.insert(k).then(|| want.value.clone())
                    })
                    .take(MAX_PER_SLICE)
                    .collect()
            })
            .collect();
        let mut rest = eps
            .iter()
            .filter(|e| !placed.contains(&e.key))
            .map(|e| e.value.clone());
        // New endpoints fill the slices with room, then new slices.
        for c in contents.iter_mut() {
            while c.len() < MAX_PER_SLICE {
                match rest.next() {
                    Some(v) => c.push(v),
                    None => break,
                }
            }
        }
        for (s, c) in slices.iter().zip(contents) {
            if c.is_empty() {
                ops.push(Op::Delete(name_of(s)));
            } else {
                ops.extend(build(svc, Some(s), &ports, c, now).map(Op::Update));
            }
        }
        let rest: Vec<Value> = rest.collect();
        for chunk in rest.chunks(MAX_PER_SLICE) {
            ops.extend(build(svc, None, &ports, chunk.to_vec(), now).map(Op::Create));
        }
    }
    for s in by_ports.into_values().flatten() {
        ops.push(Op::Delete(name_of(s)));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"app": "web"}},
               "spec": {"clusterIP": "10.43.0.9", "selector": {"app": "web"},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    }

    fn pod(i: usize) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": format!("p{i}"), "namespace": "ns", "uid": format!("u{i}")},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": format!("10.1.{}.{}", i / 200, i % 200 + 1),
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }))
    }

    /// Applies a plan to a simulated set of slices.
    fn apply(existing: &mut Vec<Arc<Value>>, ops: Vec<Op>, next: &mut usize) {
        for op in ops {
            match op {
                Op::Create(mut s) => {
                    *next += 1;
                    s["metadata"]["name"] = json!(format!("web-{next}"));
                    existing.push(Arc::new(s));
                }
                Op::Update(s) => {
                    let i = existing
                        .iter()
                        .position(|e| e["metadata"]["name"] == s["metadata"]["name"])
                        .unwrap();
                    existing[i] = Arc::new(s);
                }
                Op::Delete(n) => existing.retain(|e| e["metadata"]["name"] != n),
            }
        }
    }

    #[test]
    fn placeholder_then_chunks_then_stable() {
        let svc = svc();
        let mut slices = Vec::new();
        let mut n = 0;
        let ops = plan(&svc, &[], &slices, "t");
        assert!(matches!(ops.as_slice(), [Op::Create(_)]));
        apply(&mut slices, ops, &mut n);
        assert!(plan(&svc, &[], &slices, "t").is_empty());
        let pods: Vec<_> = (0..250).map(pod).collect();
        let ops = plan(&svc, &pods, &slices, "t");
        apply(&mut slices, ops, &mut n);
        assert_eq!(slices.len(), 3);
        let total: usize = slices
            .iter()
            .map(|s| s["endpoints"].as_array().unwrap().len())
            .sum();
        assert_eq!(total, 250);
        assert_eq!(
            slices[0]["metadata"]["labels"]["kubernetes.io/service-name"],
            "web"
        );
        assert_eq!(
            slices[0]["metadata"]["ownerReferences"][0]["controller"],
            true
        );
        assert_eq!(
            slices[0]["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );
        assert!(
            plan(&svc, &pods, &slices, "t2").is_empty(),
            "no change, no write"
        );
        // Removing one pod touches only its slice.
        let fewer: Vec<_> = pods.iter().skip(1).cloned().collect();
        let ops = plan(&svc, &fewer, &slices, "t3");
        assert_eq!(ops.len(), 1);
        // A slice owned by another uid (an earlier Service of the same name) is deleted.
        let mut foreign = (*slices[0]).clone();
        foreign["metadata"]["name"] = json!("web-old");
        foreign["metadata"]["ownerReferences"][0]["uid"] = json!("old");
        slices.push(Arc::new(foreign));
        let ops = plan(&svc, &pods, &slices, "t4");
        assert!(matches!(ops.as_slice(), [Op::Delete(n)] if n == "web-old"));
    }
}
