//! core/v1 Events about pods, as kube-scheduler's recorder writes them (`kubectl describe pod`
//! shows them under "Events").

use std::sync::atomic::{AtomicU64, Ordering};

use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Value, json};

pub const EVENTS: Gvr = Gvr::new("", "v1", "events");
pub const COMPONENT: &str = "default-scheduler";

/// A unique event name for an object: `<object>.<hex>`, as upstream's recorder (nanoseconds, made
/// strictly increasing so two events in the same nanosecond differ).
pub fn event_name(object: &str) -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut prev = LAST.load(Ordering::Relaxed);
    let id = loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    format!("{object}.{id:x}")
}

/// Builds an Event about `pod`.
pub fn pod_event(
    pod: &Value,
    name: &str,
    type_: &str,
    reason: &str,
    action: &str,
    message: &str,
) -> Value {
    let meta = &pod["metadata"];
    let now = k1s_apimachinery::meta::now_rfc3339();
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": COMPONENT},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "action": action,
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
    })
}

/// Creates an Event; returns its name.
pub async fn emit(
    client: &Client,
    pod: &Value,
    type_: &str,
    reason: &str,
    action: &str,
    message: &str,
) -> Result<String, StatusError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let name = event_name(pod_name);
    let ev = pod_event(pod, &name, type_, reason, action, message);
    client
        .create(EVENTS, pod["metadata"]["namespace"].as_str(), &ev)
        .await?;
    Ok(name)
}

/// Bumps the count of a repeated event.
pub async fn repeat(
    client: &Client,
    namespace: &str,
    name: &str,
    count: i64,
) -> Result<(), StatusError> {
    let patch = json!({"count": count, "lastTimestamp": k1s_apimachinery::meta::now_rfc3339()});
    client
        .merge_patch(EVENTS, Some(namespace), name, None, &patch)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_shaped_like_upstream() {
        let a = event_name("web-1");
        let b = event_name("web-1");
        assert_ne!(a, b);
        assert!(a.starts_with("web-1."));
        assert!(a["web-1.".len()..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn event_shape() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7"}});
        let e = pod_event(
            &pod,
            "p.1",
            "Warning",
            "FailedScheduling",
            "Scheduling",
            "m",
        );
        assert_eq!(e["involvedObject"]["uid"], "u");
        assert_eq!(e["source"]["component"], "default-scheduler");
        assert_eq!(e["metadata"]["namespace"], "ns");
        assert_eq!(e["count"], 1);
    }
}
