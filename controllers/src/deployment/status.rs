//! Deployment status and conditions, computed from its ReplicaSets: exactly the fields
//! `kubectl rollout status` reads (observedGeneration, replicas, updatedReplicas, availableReplicas)
//! plus readiness counters and the `Available` and `Progressing` conditions.

use k1s_apimachinery::meta;
use serde_json::{Value, json};

use super::util::{replicas, status_count};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

/// A condition with both timestamps at `now`.
pub fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind, "status": status,
        "lastUpdateTime": now, "lastTransitionTime": now,
        "reason": reason, "message": message,
    })
}

/// The condition of `kind` in a status.
pub fn get<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Sets a condition as upstream does: unchanged when status and reason are the same (so
/// `lastUpdateTime` says when the reason last changed); otherwise replaced, keeping the transition
/// time when only the reason changes.
pub fn set(status: &mut Value, cond: Value) {
    let kind = cond["type"].as_str().unwrap_or_default();
    if get(status, kind)
        .is_some_and(|cur| cur["status"] == cond["status"] && cur["reason"] == cond["reason"])
    {
        return;
    }
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        k1s_apimachinery::conditions::set(list, cond);
    }
}

/// Removes the condition of `kind`.
pub fn remove(status: &mut Value, kind: &str) {
    if let Some(a) = status["conditions"].as_array_mut() {
        a.retain(|c| c["type"] != kind);
    }
}

/// Whether the Deployment has a progress deadline (unset or MaxInt32 means none).
pub fn has_deadline(d: &Value) -> bool {
    d["spec"]["progressDeadlineSeconds"]
        .as_i64()
        .is_some_and(|s| s != i64::from(i32::MAX))
}

/// Counters and the `Available` condition for `d` given its ReplicaSets (`new` among `all`).
/// `max_unavailable` is the resolved rolling-update budget (0 for Recreate).
pub fn calculate(
    d: &Value,
    all: &[&Value],
    new: Option<&Value>,
    max_unavailable: i32,
    now: &str,
) -> Value {
    let sum = |f: &str| all.iter().map(|rs| status_count(rs, f)).sum::<i32>();
    let available = sum("availableReplicas");
    let total_spec: i32 = all.iter().map(|rs| replicas(rs)).sum();
    let mut status = json!({
        "observedGeneration": meta::generation(d),
        "replicas": sum("replicas"),
        "updatedReplicas": new.map(|n| status_count(n, "replicas")).unwrap_or(0),
        "readyReplicas": sum("readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": (total_spec - available).max(0),
    });
    if let Some(c) = d["status"].get("collisionCount").filter(|c| !c.is_null()) {
        status["collisionCount"] = c.clone();
    }
    if let Some(c) = d["status"].get("conditions").filter(|c| c.is_array()) {
        status["conditions"] = c.clone();
    }
    let cond = if available >= replicas(d) - max_unavailable {
        condition(
            AVAILABLE,
            "True",
            MIN_AVAILABLE,
            "Deployment has minimum availability.",
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    };
    set(&mut status, cond);
    status
}

/// Whether a status shows the rollout finished: every replica updated and available, nothing old
/// left, and the current generation observed.
pub fn complete(d: &Value, status: &Value) -> bool {
    let r = replicas(d) as i64;
    let n = |f: &str| status[f].as_i64().unwrap_or(0);
    n("updatedReplicas") == r
        && n("replicas") == r
        && n("availableReplicas") == r
        && n("observedGeneration") >= meta::generation(d)
}

/// Whether `new` shows progress over the Deployment's current status.
pub fn progressing(d: &Value, new: &Value) -> bool {
    let old = &d["status"];
    let n = |s: &Value, f: &str| s[f].as_i64().unwrap_or(0);
    n(new, "updatedReplicas") > n(old, "updatedReplicas")
        || n(new, "replicas") - n(new, "updatedReplicas")
            < n(old, "replicas") - n(old, "updatedReplicas")
        || n(new, "readyReplicas") > n(old, "readyReplicas")
        || n(new, "availableReplicas") > n(old, "availableReplicas")
}

/// Seconds left before the rollout in `status` times out (negative when past), if it can time out.
pub fn deadline_left(d: &Value, status: &Value, now: jiff::Timestamp) -> Option<i64> {
    if !has_deadline(d) {
        return None;
    }
    let cond = get(status, PROGRESSING)?;
    if cond["reason"] == NEW_RS_AVAILABLE || cond["reason"] == TIMED_OUT {
        return None;
    }
    let from = meta::parse_rfc3339(cond["lastUpdateTime"].as_str()?)?;
    let secs = d["spec"]["progressDeadlineSeconds"].as_i64()?;
    Some(from.as_second() + secs - now.as_second())
}

/// Whether the rollout in `status` ran past its deadline.
pub fn timed_out(d: &Value, status: &Value, now: jiff::Timestamp) -> bool {
    match get(status, PROGRESSING) {
        Some(c) if c["reason"] == TIMED_OUT => true,
        _ => deadline_left(d, status, now).is_some_and(|left| left < 0),
    }
}

/// Whether two statuses differ (ignoring absent-versus-zero counters).
pub fn differs(a: &Value, b: &Value) -> bool {
    let keys = [
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "collisionCount",
    ];
    keys.iter()
        .any(|k| a[k].as_i64().unwrap_or(0) != b[k].as_i64().unwrap_or(0))
        || a["conditions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            != b["conditions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(spec: i64, replicas: i64, ready: i64, available: i64) -> Value {
        json!({"spec": {"replicas": spec}, "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available}})
    }

    #[test]
    fn counters_and_availability() {
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3}, "status": {}});
        let (old, new) = (rs(2, 2, 2, 2), rs(2, 2, 1, 1));
        let s = calculate(&d, &[&old, &new], Some(&new), 0, "2024-01-01T00:00:00Z");
        assert_eq!(s["replicas"], 4);
        assert_eq!(s["updatedReplicas"], 2);
        assert_eq!(s["readyReplicas"], 3);
        assert_eq!(s["availableReplicas"], 3);
        assert_eq!(s["unavailableReplicas"], 1);
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(get(&s, AVAILABLE).unwrap()["reason"], MIN_AVAILABLE);
        assert!(!complete(&d, &s));
        let done = rs(3, 3, 3, 3);
        let s2 = calculate(&d, &[&done], Some(&done), 0, "2024-01-01T00:00:00Z");
        assert!(complete(&d, &s2));
        let short = rs(3, 3, 1, 1);
        let s3 = calculate(&d, &[&short], Some(&short), 1, "2024-01-01T00:00:00Z");
        assert_eq!(get(&s3, AVAILABLE).unwrap()["status"], "False");
    }

    #[test]
    fn conditions_keep_transition_time_and_time_out() {
        let mut s = json!({});
        set(
            &mut s,
            condition(
                PROGRESSING,
                "True",
                NEW_RS_CREATED,
                "m",
                "2024-01-01T00:00:00Z",
            ),
        );
        set(
            &mut s,
            condition(PROGRESSING, "True", RS_UPDATED, "m", "2024-01-01T00:00:05Z"),
        );
        let c = get(&s, PROGRESSING).unwrap();
        assert_eq!(c["lastTransitionTime"], "2024-01-01T00:00:00Z");
        assert_eq!(c["lastUpdateTime"], "2024-01-01T00:00:05Z");
        let d = json!({"spec": {"progressDeadlineSeconds": 10}});
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(deadline_left(&d, &s, at("2024-01-01T00:00:06Z")), Some(9));
        assert!(!timed_out(&d, &s, at("2024-01-01T00:00:15Z")));
        assert!(timed_out(&d, &s, at("2024-01-01T00:00:16Z")));
        let none = json!({"spec": {"progressDeadlineSeconds": i32::MAX}});
        assert!(!timed_out(&none, &s, at("2030-01-01T00:00:00Z")));
    }
}
