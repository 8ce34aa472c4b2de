//! ReplicaSet status, computed from the pods the ReplicaSet owns.

use k1s_apimachinery::meta;
use serde_json::{Map, Value, json};

use super::pods::{is_available, is_ready};

/// Status for `rs` given its active owned `pods`; `failure` is the message of a create/delete that
/// failed in this sync (`ReplicaFailure` condition), kept until a sync succeeds.
pub fn compute(
    rs: &Value,
    pods: &[&Value],
    failure: Option<(&str, &str)>,
    now: jiff::Timestamp,
) -> Value {
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let template_labels = rs["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = meta::labels_map(p);
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    let mut status = Map::new();
    status.insert("replicas".into(), json!(pods.len()));
    status.insert("fullyLabeledReplicas".into(), json!(fully_labeled));
    status.insert("readyReplicas".into(), json!(ready));
    status.insert("availableReplicas".into(), json!(available));
    status.insert("observedGeneration".into(), json!(meta::generation(rs)));
    let mut conditions: Vec<Value> = rs["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let existing = conditions
        .iter()
        .position(|c| c["type"] == "ReplicaFailure");
    match (failure, existing) {
        (Some((reason, message)), Some(i)) => {
            // Same reason: keep the first message. Messages can name generated pods, and a status
            // that changed on every failed sync would wake the controller again at once.
            let c = &mut conditions[i];
            if c["reason"] != reason {
                c["reason"] = json!(reason);
                c["message"] = json!(message);
                c["lastTransitionTime"] = json!(meta::format_rfc3339(now));
            }
        }
        (Some((reason, message)), None) => conditions.push(json!({
            "type": "ReplicaFailure", "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": meta::format_rfc3339(now),
        })),
        (None, Some(i)) => {
            conditions.remove(i);
        }
        (None, None) => {}
    }
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    Value::Object(status)
}

/// Whether two statuses differ in anything this controller writes (zero counters may be absent).
pub fn differs(current: &Value, wanted: &Value) -> bool {
    let keys = [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ];
    keys.iter()
        .any(|k| current[k].as_i64().unwrap_or(0) != wanted[k].as_i64().unwrap_or(0))
        || current["conditions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            != wanted["conditions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_labels_readiness_and_availability() {
        let rs = json!({
            "metadata": {"name": "r", "generation": 4},
            "spec": {"minReadySeconds": 30, "template": {"metadata": {"labels": {"app": "a", "tier": "t"}}}},
        });
        let ready = |t: &str| json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        let pods = [
            json!({"metadata": {"labels": {"app": "a", "tier": "t"}}, "status": {"conditions": ready("2024-01-01T00:00:00Z")}}),
            json!({"metadata": {"labels": {"app": "a", "tier": "t"}}, "status": {"conditions": ready("2024-01-01T00:00:50Z")}}),
            json!({"metadata": {"labels": {"app": "a"}}, "status": {}}),
        ];
        let refs: Vec<&Value> = pods.iter().collect();
        let now = "2024-01-01T00:01:00Z".parse().unwrap();
        let s = compute(&rs, &refs, None, now);
        assert_eq!(s["replicas"], 3);
        assert_eq!(s["fullyLabeledReplicas"], 2);
        assert_eq!(s["readyReplicas"], 2);
        assert_eq!(s["availableReplicas"], 1);
        assert_eq!(s["observedGeneration"], 4);
        assert!(s.get("conditions").is_none());
        let failed = compute(&rs, &refs, Some(("FailedCreate", "quota")), now);
        assert_eq!(failed["conditions"][0]["type"], "ReplicaFailure");
        let mut again = rs.clone();
        again["status"] = failed.clone();
        let failed2 = compute(&again, &refs, Some(("FailedCreate", "quota: pod x")), now);
        assert!(
            !differs(&failed, &failed2),
            "a repeated failure leaves status alone"
        );
        assert!(
            compute(&again, &refs, None, now)
                .get("conditions")
                .is_none()
        );
        assert!(differs(&s, &failed));
        assert!(!differs(&s, &s.clone()));
        assert!(!differs(
            &json!({}),
            &json!({"replicas": 0, "readyReplicas": 0})
        ));
    }
}
