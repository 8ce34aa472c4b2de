//! The pod row: READY, the aggregate STATUS and RESTARTS computed as upstream's `printPod`.
//!
//! STATUS starts from `status.reason` or the phase, is overridden by the first init container
//! that has not finished (`Init:0/2`, `Init:CrashLoopBackOff`, `Init:ExitCode:1`), then — once
//! initialised — by the last regular container that is waiting or terminated (`CrashLoopBackOff`,
//! `Completed`, `Signal:9`), and finally by deletion (`Terminating`, or `Unknown` for pods on a
//! lost node). RESTARTS reads `5 (3m ago)` when a container has restarted and its last
//! termination time is known.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::util::{arr_at, bool_at, int_at, parse_time, present, since, str_at};

/// Cells for the pod columns, wide ones included.
pub fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let spec_containers = arr_at(pod, &["spec", "containers"]);
    let spec_init = arr_at(pod, &["spec", "initContainers"]);
    let conditions = arr_at(pod, &["status", "conditions"]);
    let phase = str_at(pod, &["status", "phase"]);

    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total = spec_containers.len();
    let mut ready = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let mut reason = phase.to_string();
    let status_reason = str_at(pod, &["status", "reason"]);
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for c in conditions {
        if str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }

    let is_restartable = |name: &str| {
        spec_init
            .iter()
            .any(|c| str_at(c, &["name"]) == name && str_at(c, &["restartPolicy"]) == "Always")
    };
    total += spec_init
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count();

    let mut initializing = false;
    for (i, cs) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(cs, &["restartCount"]);
        restarts += count;
        let finished = last_termination(cs);
        later(&mut last_restart, finished);
        let restartable = is_restartable(str_at(cs, &["name"]));
        if restartable {
            restartable_init_restarts += count;
            later(&mut last_restartable_init_restart, finished);
        }
        let terminated = present(cs, &["state", "terminated"]);
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated && int_at(cs, &["state", "terminated", "exitCode"]) == 0 {
            continue;
        }
        if restartable && bool_at(cs, &["started"]) {
            if bool_at(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if terminated {
            reason = format!("Init:{}", terminated_reason(cs));
        } else if present(cs, &["state", "waiting"])
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", spec_init.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .any(|c| str_at(c, &["type"]) == "Initialized" && str_at(c, &["status"]) == "True");
    if !initializing || initialized {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(cs, &["restartCount"]);
            later(&mut last_restart, last_termination(cs));
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated_reason_str = str_at(cs, &["state", "terminated", "reason"]);
            if present(cs, &["state", "waiting"]) && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if present(cs, &["state", "terminated"]) && !terminated_reason_str.is_empty() {
                reason = terminated_reason_str.to_string();
            } else if present(cs, &["state", "terminated"]) {
                reason = terminated_reason(cs);
            } else if bool_at(cs, &["ready"]) && present(cs, &["state", "running"]) {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }

    let deleting = present(pod, &["metadata", "deletionTimestamp"]);
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".into();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => {
            format!(
                "{restarts} ({} ago)",
                super::human_duration(now.duration_since(t))
            )
        }
        _ => restarts.to_string(),
    };

    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let pod_ip = arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|ip| str_at(ip, &["ip"]))
        .unwrap_or("");
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == t)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };

    vec![
        json!(str_at(pod, &["metadata", "name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_str),
        json!(since(str_at(pod, &["metadata", "creationTimestamp"]), now)),
        json!(or_none(pod_ip)),
        json!(or_none(str_at(pod, &["spec", "nodeName"]))),
        json!(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ]
}

/// `finishedAt` of the container's last termination, if any.
fn last_termination(cs: &Value) -> Option<Timestamp> {
    parse_time(str_at(cs, &["lastState", "terminated", "finishedAt"]))
}

fn later(slot: &mut Option<Timestamp>, candidate: Option<Timestamp>) {
    if let Some(c) = candidate
        && slot.is_none_or(|s| s < c)
    {
        *slot = Some(c);
    }
}

/// The current termination's reason, or `Signal:N` / `ExitCode:N` when it has none.
fn terminated_reason(cs: &Value) -> String {
    let reason = str_at(cs, &["state", "terminated", "reason"]);
    if !reason.is_empty() {
        return reason.to_string();
    }
    let signal = int_at(cs, &["state", "terminated", "signal"]);
    if signal != 0 {
        format!("Signal:{signal}")
    } else {
        format!(
            "ExitCode:{}",
            int_at(cs, &["state", "terminated", "exitCode"])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-06-01T12:00:00Z".parse().unwrap()
    }

    fn base(status: Value) -> Value {
        json!({
            "metadata": {"name": "web-0", "creationTimestamp": "2024-06-01T11:55:00Z"},
            "spec": {"containers": [{"name": "app"}, {"name": "side"}], "nodeName": "node1"},
            "status": status,
        })
    }

    fn cells(p: &Value) -> Vec<Value> {
        pod_cells(p, now())
    }

    #[test]
    fn running_pod() {
        let p = base(json!({
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "side", "ready": true, "restartCount": 0, "state": {"running": {}}},
            ]
        }));
        assert_eq!(
            cells(&p),
            vec![
                json!("web-0"),
                json!("2/2"),
                json!("Running"),
                json!("0"),
                json!("5m"),
                json!("10.0.0.5"),
                json!("node1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn crash_loop_with_restart_age() {
        let p = base(json!({
            "phase": "Running",
            "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 5,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-06-01T11:58:30Z"}}},
                {"name": "side", "ready": true, "restartCount": 0, "state": {"running": {}}},
            ]
        }));
        let c = cells(&p);
        assert_eq!(c[1], json!("1/2"));
        assert_eq!(c[2], json!("CrashLoopBackOff"));
        assert_eq!(c[3], json!("5 (90s ago)"));
    }

    #[test]
    fn completed_and_error() {
        let p = base(json!({
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "side", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ]
        }));
        assert_eq!(cells(&p)[2], json!("Completed"));
        let p = base(json!({
            "phase": "Failed",
            "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}},
            ]
        }));
        assert_eq!(cells(&p)[2], json!("Signal:9"));
        let p = base(json!({
            "phase": "Failed",
            "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 2}}}]
        }));
        assert_eq!(cells(&p)[2], json!("ExitCode:2"));
    }

    #[test]
    fn completed_container_but_another_running() {
        let p = base(json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {"name": "app", "ready": true, "state": {"running": {}}},
                {"name": "side", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ]
        }));
        assert_eq!(cells(&p)[2], json!("NotReady"));
    }

    #[test]
    fn init_containers() {
        let mut p = base(json!({
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "init1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "init2", "state": {"running": {}}},
            ],
            "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}},
            ]
        }));
        p["spec"]["initContainers"] = json!([{"name": "init1"}, {"name": "init2"}]);
        assert_eq!(cells(&p)[2], json!("Init:1/2"));

        p["status"]["initContainerStatuses"][1]["state"] =
            json!({"waiting": {"reason": "CrashLoopBackOff"}});
        p["status"]["initContainerStatuses"][1]["restartCount"] = json!(3);
        let c = cells(&p);
        assert_eq!(c[2], json!("Init:CrashLoopBackOff"));
        // Restarts of a failing init container count while initialising.
        assert_eq!(c[3], json!("3"));

        p["status"]["initContainerStatuses"][1]["state"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error"}});
        assert_eq!(cells(&p)[2], json!("Init:Error"));
        p["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 3}});
        assert_eq!(cells(&p)[2], json!("Init:ExitCode:3"));
    }

    #[test]
    fn sidecar_init_containers_count_as_containers() {
        let mut p = base(json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [
                {"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                 "state": {"running": {}}},
            ],
            "containerStatuses": [
                {"name": "app", "ready": true, "state": {"running": {}}},
                {"name": "side", "ready": true, "state": {"running": {}}},
            ]
        }));
        p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
        let c = cells(&p);
        assert_eq!(c[1], json!("3/3"));
        assert_eq!(c[2], json!("Running"));
        assert_eq!(c[3], json!("1"));
    }

    #[test]
    fn terminating_unknown_and_gated() {
        let mut p = base(json!({"phase": "Running"}));
        p["metadata"]["deletionTimestamp"] = json!("2024-06-01T11:59:00Z");
        assert_eq!(cells(&p)[2], json!("Terminating"));
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells(&p)[2], json!("Unknown"));
        let mut p = base(json!({"phase": "Succeeded"}));
        p["metadata"]["deletionTimestamp"] = json!("2024-06-01T11:59:00Z");
        assert_eq!(cells(&p)[2], json!("Succeeded"));
        let p = base(json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
        }));
        assert_eq!(cells(&p)[2], json!("SchedulingGated"));
    }

    #[test]
    fn readiness_gates_and_odd_input() {
        let mut p = base(json!({
            "phase": "Running",
            "conditions": [{"type": "example.com/ready", "status": "True"}]
        }));
        p["spec"]["readinessGates"] =
            json!([{"conditionType": "example.com/ready"}, {"conditionType": "other"}]);
        assert_eq!(cells(&p)[8], json!("1/2"));
        let odd = pod_cells(&json!({"spec": 3, "status": []}), now());
        assert_eq!(odd.len(), 9);
        assert_eq!(odd[1], json!("0/0"));
        assert_eq!(odd[4], json!("<unknown>"));
    }
}
