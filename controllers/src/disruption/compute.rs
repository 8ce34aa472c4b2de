//! The disruption arithmetic as pure functions, with upstream's worked examples as tests.
//!
//! - `minAvailable: N` → desired = N, expected = the matching pods;
//! - `minAvailable: P%` → expected = the controllers' scale, desired = ceil(P% × expected);
//! - `maxUnavailable: N|P%` → expected = the controllers' scale,
//!   desired = max(expected − N (or ceil(P% × expected)), 0);
//! - healthy = Ready pods that are neither being deleted nor recently evicted (`disruptedPods`
//!   younger than the deletion timeout); allowed = max(healthy − desired, 0).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::deployment::rolling::scaled_value;

/// What a budget's spec asks for: `minAvailable` or `maxUnavailable` as int-or-percent values
/// (validated on write, resolved with the Deployment controller's `scaled_value`).
#[derive(Clone, Debug, PartialEq)]
pub enum Budget {
    MinAvailable(Value),
    MaxUnavailable(Value),
    /// Neither set: no voluntary disruption below the current size.
    Unset,
}

/// Upstream's `GetScaledValueFromIntOrPercent(v, total, roundUp=true)`.
fn scaled_up(v: &Value, total: i64) -> i64 {
    let total = i32::try_from(total).unwrap_or(i32::MAX);
    i64::from(scaled_value(v, total, true).unwrap_or(0))
}

impl Budget {
    pub fn from_spec(spec: &Value) -> Budget {
        let usable = |key: &str| {
            spec.get(key)
                .filter(|v| scaled_value(v, 0, true).is_ok())
                .cloned()
        };
        if let Some(v) = usable("minAvailable") {
            return Budget::MinAvailable(v);
        }
        if let Some(v) = usable("maxUnavailable") {
            return Budget::MaxUnavailable(v);
        }
        Budget::Unset
    }

    /// Whether the expected count comes from the pods' controllers rather than the pods.
    pub fn needs_controllers(&self) -> bool {
        match self {
            Budget::MinAvailable(v) => v.is_string(),
            Budget::MaxUnavailable(_) => true,
            Budget::Unset => false,
        }
    }

    fn desired(&self, expected: i64) -> i64 {
        match self {
            Budget::MinAvailable(v) => scaled_up(v, expected),
            Budget::MaxUnavailable(v) => (expected - scaled_up(v, expected)).max(0),
            Budget::Unset => expected,
        }
    }
}

/// A computed status.
#[derive(Debug, PartialEq)]
pub struct Expected {
    pub current_healthy: i64,
    pub desired_healthy: i64,
    pub expected_pods: i64,
    pub disruptions_allowed: i64,
    /// Evicted pods still counted as disrupted, with their eviction time.
    pub disrupted_pods: Map<String, Value>,
    /// When the oldest still-disrupted pod times out, to sync again then.
    pub recheck_after: Option<Duration>,
}

/// Computes a budget's status from its pods and its previous `disruptedPods`.
pub fn compute(
    budget: &Budget,
    expected: i64,
    pods: &[Value],
    disrupted: &Value,
    now: jiff::Timestamp,
    timeout: Duration,
) -> Expected {
    let mut still = Map::new();
    let mut recheck: Option<Duration> = None;
    let mut healthy = 0;
    for pod in pods {
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            continue;
        }
        if let Some(at) = disrupted.get(name) {
            let evicted = at.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok());
            if let Some(evicted) = evicted {
                let deadline =
                    evicted + jiff::SignedDuration::try_from(timeout).unwrap_or_default();
                if deadline > now {
                    still.insert(name.to_string(), at.clone());
                    let left = Duration::try_from(deadline - now).unwrap_or_default();
                    recheck = Some(recheck.map_or(left, |r| r.min(left)));
                    continue;
                }
            }
        }
        if k1s_apimachinery::pod::is_ready(pod) {
            healthy += 1;
        }
    }
    let desired = budget.desired(expected);
    Expected {
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: (healthy - desired).max(0),
        disrupted_pods: still,
        recheck_after: recheck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name}, "status": {"conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}
        ]}})
    }

    fn run(spec: Value, expected: i64, pods: &[Value]) -> (i64, i64, i64) {
        let b = Budget::from_spec(&spec);
        let out = compute(
            &b,
            expected,
            pods,
            &json!({}),
            jiff::Timestamp::now(),
            Duration::from_secs(120),
        );
        (
            out.current_healthy,
            out.desired_healthy,
            out.disruptions_allowed,
        )
    }

    #[test]
    fn min_available_int_counts_matching_pods() {
        let pods = [pod("a", true), pod("b", true), pod("c", false)];
        assert_eq!(run(json!({"minAvailable": 2}), 3, &pods), (2, 2, 0));
        assert_eq!(run(json!({"minAvailable": 1}), 3, &pods), (2, 1, 1));
    }

    #[test]
    fn percentages_round_up_like_upstream() {
        // Upstream example: minAvailable 28% of 3 → 1 (0.84 rounded up).
        let pods = [pod("a", true), pod("b", true), pod("c", true)];
        assert_eq!(run(json!({"minAvailable": "28%"}), 3, &pods), (3, 1, 2));
        // maxUnavailable 25% of 10 → 3 may be down (2.5 rounded up), desired 7.
        let ten: Vec<Value> = (0..10).map(|i| pod(&format!("p{i}"), true)).collect();
        assert_eq!(run(json!({"maxUnavailable": "25%"}), 10, &ten), (10, 7, 3));
        assert_eq!(run(json!({"maxUnavailable": 1}), 10, &ten), (10, 9, 1));
        // More unavailable allowed than there are pods: desired never goes negative.
        assert_eq!(run(json!({"maxUnavailable": 20}), 10, &ten), (10, 0, 10));
    }

    #[test]
    fn evicted_pods_stop_counting_until_the_timeout() {
        let now = jiff::Timestamp::now();
        let recent = (now - jiff::SignedDuration::from_secs(10)).to_string();
        let old = (now - jiff::SignedDuration::from_secs(300)).to_string();
        let pods = [pod("a", true), pod("b", true), pod("c", true)];
        let out = compute(
            &Budget::from_spec(&json!({"minAvailable": 2})),
            3,
            &pods,
            &json!({"a": recent, "b": old}),
            now,
            Duration::from_secs(120),
        );
        assert_eq!(out.current_healthy, 2);
        assert_eq!(out.disruptions_allowed, 0);
        assert_eq!(out.disrupted_pods.keys().collect::<Vec<_>>(), ["a"]);
        let left = out
            .recheck_after
            .expect("a recheck for the pending eviction");
        assert!(
            left <= Duration::from_secs(110) && left > Duration::from_secs(100),
            "{left:?}"
        );
    }

    #[test]
    fn terminating_pods_are_not_healthy() {
        let mut p = pod("a", true);
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(run(json!({"minAvailable": 1}), 1, &[p]), (0, 1, 0));
    }
}
