//! The pod status the kubelet writes through `pods/status`, computed from what the pod worker
//! knows: phase (upstream's `getPhase`), the five conditions, container statuses, IPs, start
//! time and QoS class.
//!
//! Invariants: pure (no I/O, `now` is passed in); a condition's transition time and the
//! `PodScheduled` condition the scheduler wrote are kept; the output depends only on the inputs,
//! so an unchanged pod gives a byte-identical status and is not rewritten.

use k1s_apimachinery::conditions;
use serde_json::{Value, json};

/// A finished container run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub container_id: String,
}

impl Terminated {
    fn to_json(&self) -> Value {
        let mut t = json!({
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": self.container_id,
        });
        if let Some(m) = &self.message {
            t["message"] = json!(m);
        }
        t
    }
}

/// A container's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated(Terminated),
}

/// What the worker knows of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub image_id: String,
    /// `k1s://<id>` of the current run, if there is one.
    pub container_id: Option<String>,
    pub state: State,
    pub last: Option<Terminated>,
    pub restart_count: u32,
    /// Running and passing its readiness probe (an init container: completed).
    pub ready: bool,
    /// Running and past its startup probe (if it has one).
    pub started: bool,
}

impl ContainerView {
    pub fn ready(&self) -> bool {
        self.ready
    }

    fn to_json(&self) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated(t) => json!({"terminated": t.to_json()}),
        };
        let mut s = json!({
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": self.ready(),
            "started": self.started,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": self.last.as_ref().map_or(json!({}), |t| json!({"terminated": t.to_json()})),
        });
        if let Some(id) = &self.container_id {
            s["containerID"] = json!(id);
        }
        s
    }
}

/// What the worker knows of the pod.
#[derive(Debug, Clone)]
pub struct PodView {
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub start_time: String,
    pub qos: &'static str,
    pub containers: Vec<ContainerView>,
    pub init_containers: Vec<ContainerView>,
    /// Ephemeral containers (`kubectl debug`): reported, never part of the phase or readiness.
    pub ephemeral: Vec<ContainerView>,
    /// Init containers exist and did not all complete: the Initialized condition's message.
    pub init_pending: Option<String>,
    /// An init container failed and the pod's restartPolicy is Never.
    pub init_failed: bool,
    /// The pod ran past `activeDeadlineSeconds` (Failed, `DeadlineExceeded`).
    pub deadline_exceeded: bool,
}

/// The pod status `reason` of a pod past its `activeDeadlineSeconds`.
pub const DEADLINE_REASON: &str = "DeadlineExceeded";
/// Upstream's message for [`DEADLINE_REASON`].
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// Upstream's `getPhase` over the regular containers.
pub fn phase(
    restart_policy: &str,
    containers: &[ContainerView],
    init_pending: bool,
) -> &'static str {
    if init_pending {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            State::Waiting { .. } if c.last.is_some() => stopped += 1,
            State::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped == 0 {
        return "Pending";
    }
    match restart_policy {
        "Never" if succeeded < stopped => "Failed",
        "Never" => "Succeeded",
        "OnFailure" if succeeded == stopped => "Succeeded",
        _ => "Running",
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &str,
) -> Value {
    let mut c = json!({
        "type": type_,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": now,
    });
    if let Some(r) = reason.filter(|_| !ok) {
        c["reason"] = json!(r);
    }
    if let Some(m) = message.filter(|_| !ok) {
        c["message"] = json!(m);
    }
    c
}

/// The status to write for `pod`.
pub fn pod_status(pod: &Value, view: &PodView, now: &str) -> Value {
    let policy = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always");
    let phase = if view.init_failed || view.deadline_exceeded {
        "Failed"
    } else {
        phase(policy, &view.containers, view.init_pending.is_some())
    };
    let mut conds: Vec<Value> = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let unready: Vec<&str> = view
        .containers
        .iter()
        .filter(|c| !c.ready())
        .map(|c| c.name.as_str())
        .collect();
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let all_ready = unready.is_empty() && !terminal;
    let (reason, message) = if terminal {
        (Some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let initialized = match &view.init_pending {
        Some(msg) => condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(msg.clone()),
            now,
        ),
        None => condition("Initialized", true, None, None, now),
    };
    for c in [
        condition(
            "PodReadyToStartContainers",
            view.sandbox_ready,
            None,
            None,
            now,
        ),
        initialized,
        condition("Ready", all_ready, reason, message.clone(), now),
        condition("ContainersReady", all_ready, reason, message, now),
    ] {
        conditions::set(&mut conds, c);
    }
    if !conds.iter().any(|c| c["type"] == "PodScheduled") {
        conds.push(condition(
            "PodScheduled",
            true,
            None,
            None,
            &view.start_time,
        ));
    }
    // Upstream's order, whatever order they were written in.
    let order = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    conds.sort_by_key(|c| {
        order
            .iter()
            .position(|t| c["type"] == *t)
            .unwrap_or(order.len())
    });
    let mut status = json!({
        "phase": phase,
        "conditions": conds,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": view.start_time,
        "containerStatuses": view.containers.iter().map(ContainerView::to_json).collect::<Vec<_>>(),
        "qosClass": view.qos,
    });
    if !view.init_containers.is_empty() {
        status["initContainerStatuses"] = view
            .init_containers
            .iter()
            .map(ContainerView::to_json)
            .collect();
    }
    if !view.ephemeral.is_empty() {
        status["ephemeralContainerStatuses"] =
            view.ephemeral.iter().map(ContainerView::to_json).collect();
    }
    if let Some(ip) = &view.pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    if view.deadline_exceeded {
        status["reason"] = json!(DEADLINE_REASON);
        status["message"] = json!(DEADLINE_MESSAGE);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(state: State, last: bool) -> ContainerView {
        ContainerView {
            name: "app".into(),
            image: "img".into(),
            image_id: "img@sha256:1".into(),
            container_id: Some("k1s://x".into()),
            ready: matches!(state, State::Running { .. }),
            started: matches!(state, State::Running { .. }),
            state,
            last: last.then(|| term(1)),
            restart_count: u32::from(last),
        }
    }

    fn term(code: i32) -> Terminated {
        Terminated {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: Some("t0".into()),
            finished_at: Some("t1".into()),
            container_id: "k1s://x".into(),
        }
    }

    fn waiting(reason: &str) -> State {
        State::Waiting {
            reason: reason.into(),
            message: None,
        }
    }

    #[test]
    fn phases() {
        let running = State::Running {
            started_at: "t".into(),
        };
        assert_eq!(
            phase("Always", &[c(waiting("ContainerCreating"), false)], false),
            "Pending"
        );
        assert_eq!(
            phase("Always", &[c(running.clone(), false)], false),
            "Running"
        );
        assert_eq!(phase("Always", &[c(running, false)], true), "Pending");
        // A crash-looping container is stopped, not pending: the pod stays Running.
        assert_eq!(
            phase("Always", &[c(waiting("CrashLoopBackOff"), true)], false),
            "Running"
        );
        assert_eq!(
            phase("Never", &[c(State::Terminated(term(0)), false)], false),
            "Succeeded"
        );
        assert_eq!(
            phase("Never", &[c(State::Terminated(term(2)), false)], false),
            "Failed"
        );
        assert_eq!(
            phase("OnFailure", &[c(State::Terminated(term(0)), false)], false),
            "Succeeded"
        );
    }

    #[test]
    fn status_shape_keeps_scheduled_and_transitions() {
        let pod = json!({"spec": {"restartPolicy": "Always"}, "status": {"conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "s0", "lastProbeTime": null},
            {"type": "Ready", "status": "False", "lastTransitionTime": "r0"},
        ]}});
        let view = PodView {
            sandbox_ready: true,
            pod_ip: Some("10.42.0.5".into()),
            host_ip: "192.168.1.2".into(),
            start_time: "st".into(),
            qos: "BestEffort",
            containers: vec![c(waiting("CrashLoopBackOff"), true)],
            init_containers: vec![],
            ephemeral: vec![],
            init_pending: None,
            init_failed: false,
            deadline_exceeded: false,
        };
        let s = pod_status(&pod, &view, "now");
        assert!(s["reason"].is_null());
        let past = PodView {
            deadline_exceeded: true,
            containers: vec![],
            ..view.clone()
        };
        let f = pod_status(&pod, &past, "now");
        assert_eq!(
            (&f["phase"], &f["reason"]),
            (&json!("Failed"), &json!(DEADLINE_REASON))
        );
        let types: Vec<&str> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert_eq!(s["conditions"][2]["lastTransitionTime"], "r0");
        assert_eq!(s["conditions"][2]["reason"], "ContainersNotReady");
        assert_eq!(
            s["conditions"][2]["message"],
            "containers with unready status: [app]"
        );
        assert_eq!(s["conditions"][4]["lastTransitionTime"], "s0");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIPs"][0]["ip"], "10.42.0.5");
        let cs = &s["containerStatuses"][0];
        assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(cs["restartCount"], 1);
        assert_eq!(cs["ready"], false);
        assert_eq!(s, pod_status(&pod, &view, "now"));
    }
}
