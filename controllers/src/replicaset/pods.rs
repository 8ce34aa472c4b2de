//! Pod predicates and orderings the workload controllers share: which pods count, which are ready or
//! available, which to delete first, and how a pod is made from a template.

use std::cmp::Ordering;

use k1s_apimachinery::meta;
use serde_json::{Map, Value, json};

/// Whether a pod still counts toward a controller: not finished and not being deleted.
pub fn is_active(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    phase != "Succeeded" && phase != "Failed" && meta::deletion_timestamp(pod).is_none()
}

/// The pod's `Ready` condition, if any.
fn ready_condition(pod: &Value) -> Option<&Map<String, Value>> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
}

pub use k1s_apimachinery::pod::is_ready;

/// When the pod became ready, if it is.
fn ready_since(pod: &Value) -> Option<jiff::Timestamp> {
    let c = ready_condition(pod)?;
    if c.get("status")?.as_str()? != "True" {
        return None;
    }
    meta::parse_rfc3339(c.get("lastTransitionTime")?.as_str()?)
}

/// Whether the pod has been ready for at least `min_ready_seconds` at `now`. A ready pod without a
/// transition time counts as available only when no minimum is asked for.
pub fn is_available(pod: &Value, min_ready_seconds: i64, now: jiff::Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match ready_since(pod) {
        Some(t) => t.as_second() + min_ready_seconds <= now.as_second(),
        None => false,
    }
}

fn phase_rank(pod: &Value) -> u8 {
    match pod["status"]["phase"].as_str() {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn restarts(pod: &Value) -> i64 {
    pod["status"]["containerStatuses"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["restartCount"].as_i64()).sum())
        .unwrap_or(0)
}

fn created(pod: &Value) -> Option<jiff::Timestamp> {
    meta::creation_timestamp(pod).and_then(meta::parse_rfc3339)
}

/// Orders pods from least to most valuable, the order in which a scale-down deletes them:
/// unscheduled before scheduled, Pending before Unknown before Running, not ready before ready,
/// ready for less time before longer, more restarts before fewer, newer before older.
pub fn deletion_order(a: &Value, b: &Value) -> Ordering {
    let scheduled = |p: &Value| {
        p["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        // Later ready time (shorter readiness) first; a missing time counts as newest.
        .then_with(|| cmp_newer_first(ready_since(a), ready_since(b)))
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| cmp_newer_first(created(a), created(b)))
        .then_with(|| meta::name(b).cmp(&meta::name(a)))
}

/// `None` (unknown) first, then the later time first.
fn cmp_newer_first(a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

/// An owner reference naming `owner` (of `api_version`/`kind`) as the controller.
pub fn controller_ref_to(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": meta::name(owner).unwrap_or_default(),
        "uid": meta::uid(owner).unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `obj`'s controller reference points at the object with `uid`.
pub fn controlled_by(obj: &Value, uid: &str) -> bool {
    meta::controller_ref(obj)
        .and_then(|r| r.get("uid")?.as_str())
        .is_some_and(|u| u == uid)
}

/// A new pod from a ReplicaSet's template: generateName `<rs>-`, the template's labels,
/// annotations and finalizers, and a controller reference to the ReplicaSet.
pub fn pod_from_template(rs: &Value) -> Value {
    let template = &rs["spec"]["template"];
    let tmeta = &template["metadata"];
    let mut metadata = Map::new();
    metadata.insert(
        "generateName".into(),
        json!(format!("{}-", meta::name(rs).unwrap_or_default())),
    );
    if let Some(ns) = meta::namespace(rs) {
        metadata.insert("namespace".into(), json!(ns));
    }
    for key in ["labels", "annotations", "finalizers"] {
        if let Some(v) = tmeta.get(key).filter(|v| !v.is_null()) {
            metadata.insert(key.into(), v.clone());
        }
    }
    metadata.insert(
        "ownerReferences".into(),
        json!([controller_ref_to(rs, "apps/v1", "ReplicaSet")]),
    );
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template["spec"].clone(),
    })
}

/// Batch sizes for creating `count` objects in slow start: 1, 2, 4, ... starting at `initial`,
/// the last batch holding what is left.
pub fn slow_start_batches(count: usize, initial: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = count;
    let mut size = initial.max(1);
    while left > 0 {
        let b = size.min(left);
        out.push(b);
        left -= b;
        size *= 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: bool, phase: &str, ready: Option<&str>, created: &str) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {},
            "status": {"phase": phase},
        });
        if node {
            p["spec"]["nodeName"] = json!("n1");
        }
        if let Some(t) = ready {
            p["status"]["conditions"] =
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        }
        p
    }

    #[test]
    fn slow_start_doubles() {
        assert_eq!(slow_start_batches(0, 1), Vec::<usize>::new());
        assert_eq!(slow_start_batches(1, 1), vec![1]);
        assert_eq!(slow_start_batches(10, 1), vec![1, 2, 4, 3]);
        assert_eq!(slow_start_batches(15, 1), vec![1, 2, 4, 8]);
    }

    #[test]
    fn least_valuable_pods_sort_first() {
        let t0 = "2024-01-01T00:00:00Z";
        let t1 = "2024-01-01T00:01:00Z";
        let mut pods = [
            pod("running-ready-old", true, "Running", Some(t0), t0),
            pod("running-ready-new", true, "Running", Some(t1), t1),
            pod("running-notready", true, "Running", None, t0),
            pod("unknown", true, "Unknown", None, t0),
            pod("pending-bound", true, "Pending", None, t0),
            pod("unscheduled", false, "Pending", None, t0),
        ];
        pods.sort_by(deletion_order);
        let names: Vec<_> = pods.iter().map(|p| meta::name(p).unwrap()).collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending-bound",
                "unknown",
                "running-notready",
                "running-ready-new",
                "running-ready-old"
            ]
        );
    }

    #[test]
    fn availability_honours_min_ready_seconds() {
        let p = pod(
            "p",
            true,
            "Running",
            Some("2024-01-01T00:00:00Z"),
            "2024-01-01T00:00:00Z",
        );
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert!(is_available(&p, 0, at("2024-01-01T00:00:00Z")));
        assert!(!is_available(&p, 10, at("2024-01-01T00:00:09Z")));
        assert!(is_available(&p, 10, at("2024-01-01T00:00:10Z")));
        assert!(!is_available(
            &pod("q", true, "Running", None, "2024-01-01T00:00:00Z"),
            0,
            at("2024-01-01T00:00:10Z")
        ));
    }

    #[test]
    fn pods_are_made_from_the_template() {
        let rs = json!({
            "metadata": {"name": "web-abc", "namespace": "ns", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
        });
        let p = pod_from_template(&rs);
        assert_eq!(p["metadata"]["generateName"], "web-abc-");
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert!(controlled_by(&p, "u1"));
    }
}
