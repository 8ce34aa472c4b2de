//! Facts about pods that the API server and several controllers read the same way.

use serde_json::Value;

/// Whether the pod's `Ready` condition is `True` (upstream's `podutil.IsPodReady`).
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_only_when_the_ready_condition_is_true() {
        let pod = |s: &str| json!({"status": {"conditions": [{"type": "Ready", "status": s}]}});
        assert!(is_ready(&pod("True")));
        assert!(!is_ready(&pod("False")));
        assert!(!is_ready(&json!({"status": {}})));
        assert!(!is_ready(
            &json!({"status": {"conditions": [{"type": "ContainersReady", "status": "True"}]}})
        ));
    }
}
