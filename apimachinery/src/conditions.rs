//! `status.conditions` lists, kept as upstream's `meta.SetStatusCondition` keeps them.

use serde_json::Value;

/// Puts `new` in `conditions` in place of the condition of the same `type`. When the status did not
/// change, the previous `lastTransitionTime` is kept: a condition's transition time says when its
/// status last changed, not when it was last written.
pub fn set(conditions: &mut Vec<Value>, mut new: Value) {
    match conditions.iter_mut().find(|c| c["type"] == new["type"]) {
        Some(old) => {
            if old["status"] == new["status"]
                && let Some(t) = old.get("lastTransitionTime").filter(|t| !t.is_null())
            {
                new["lastTransitionTime"] = t.clone();
            }
            *old = new;
        }
        None => conditions.push(new),
    }
}

/// Gives each condition of a freshly computed list the `lastTransitionTime` of the condition of
/// the same `type` and `status` in `old` (a `status.conditions` value), so that only conditions
/// whose status changed get the fresh time.
pub fn keep_transition_times(fresh: &mut [Value], old: &Value) {
    for c in fresh {
        let prev = old
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["type"] == c["type"] && o["status"] == c["status"]);
        if let Some(t) = prev.and_then(|p| p.get("lastTransitionTime")) {
            c["lastTransitionTime"] = t.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let mut cs = vec![
            json!({"type": "A", "status": "True", "lastTransitionTime": "t0"}),
            json!({"type": "B", "status": "True", "lastTransitionTime": "t0"}),
        ];
        set(
            &mut cs,
            json!({"type": "A", "status": "True", "reason": "x", "lastTransitionTime": "t1"}),
        );
        set(
            &mut cs,
            json!({"type": "B", "status": "False", "lastTransitionTime": "t1"}),
        );
        set(
            &mut cs,
            json!({"type": "C", "status": "True", "lastTransitionTime": "t1"}),
        );
        assert_eq!(
            cs[0],
            json!({"type": "A", "status": "True", "reason": "x", "lastTransitionTime": "t0"})
        );
        assert_eq!(cs[1]["lastTransitionTime"], "t1");
        assert_eq!(cs.len(), 3);
    }

    #[test]
    fn fresh_lists_keep_times_of_unchanged_statuses() {
        let old = json!([
            {"type": "A", "status": "True", "lastTransitionTime": "t0"},
            {"type": "B", "status": "True", "lastTransitionTime": "t0"},
        ]);
        let mut fresh = vec![
            json!({"type": "A", "status": "True", "lastTransitionTime": "t1"}),
            json!({"type": "B", "status": "False", "lastTransitionTime": "t1"}),
            json!({"type": "C", "status": "True", "lastTransitionTime": "t1"}),
        ];
        keep_transition_times(&mut fresh, &old);
        let times: Vec<_> = fresh
            .iter()
            .map(|c| c["lastTransitionTime"].clone())
            .collect();
        assert_eq!(times, [json!("t0"), json!("t1"), json!("t1")]);
    }
}
