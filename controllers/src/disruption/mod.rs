//! Disruption controller: keeps each PodDisruptionBudget's status (`currentHealthy`,
//! `desiredHealthy`, `expectedPods`, `disruptionsAllowed`, `disruptedPods`, the `DisruptionAllowed`
//! condition) in line with its pods, as kube-controller-manager's disruption controller does. The
//! eviction subresource spends `disruptionsAllowed`; this controller gives it back once the pods
//! are gone or healthy again.
//!
//! Invariants:
//! - no pod cache: budgets are few, so a sync lists the budget's pods by selector; pod changes are
//!   seen through a bare watch that only maps a pod to the budgets of its namespace;
//! - a sync is level-triggered and idempotent and writes status only when it changed;
//! - when the expected pod count cannot be computed (a pod without a controller under a percentage
//!   or `maxUnavailable` budget), the budget fails safe: no disruptions allowed, reason SyncFailed.

mod compute;

use std::sync::Arc;
use std::time::Duration;

use k1s_apimachinery::meta;
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::{Change, Client, Gvr};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::replicaset::events::Recorder;
use crate::runtime::{Event, Informer, Key, WorkQueue, key_of, split_key};

pub use compute::{Budget, Expected, compute};

/// `policy/v1` poddisruptionbudgets.
pub const PDBS: Gvr = Gvr::new("policy", "v1", "poddisruptionbudgets");
const PODS: Gvr = Gvr::new("", "v1", "pods");
const COMPONENT: &str = "controllermanager";
/// How long an eviction may take to show up as a deleted pod before the budget stops holding
/// a disruption for it (upstream's `DeletionTimeout`).
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the disruption controller until `shutdown`.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let client = Client::new(client.state().clone(), "disruption-controller");
    let ctrl = Arc::new(Controller {
        recorder: Recorder::new(
            client.clone(),
            COMPONENT,
            "policy/v1",
            "PodDisruptionBudget",
        ),
        pdbs: Informer::start(client.clone(), PDBS, shutdown.clone()),
        client,
        queue: WorkQueue::new(),
    });
    let mut pdb_events = ctrl.pdbs.subscribe();
    ctrl.pdbs.wait_synced().await;
    ctrl.enqueue_all();
    let worker = {
        let c = ctrl.clone();
        let s = shutdown.clone();
        tokio::spawn(async move { c.work(s).await })
    };
    let pods = {
        let c = ctrl.clone();
        let s = shutdown.clone();
        tokio::spawn(async move { c.watch_pods(s).await })
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = pdb_events.recv() => match ev {
                Ok(Event::Upsert { new, .. }) => ctrl.queue.add(key_of(&new)),
                Ok(Event::Delete(_)) => {}
                Ok(Event::Resync) | Err(RecvError::Lagged(_)) => ctrl.enqueue_all(),
                Err(RecvError::Closed) => break,
            },
        }
    }
    worker.abort();
    pods.abort();
}

struct Controller {
    client: Client,
    pdbs: Informer,
    queue: WorkQueue,
    recorder: Recorder,
}

impl Controller {
    fn enqueue_all(&self) {
        for key in self.pdbs.keys() {
            self.queue.add(key);
        }
    }

    /// Maps pod changes to the budgets of their namespace whose selector matched before or after.
    async fn watch_pods(&self, shutdown: CancellationToken) {
        loop {
            let from = self.client.state().store().revision();
            let mut watch = match self.client.watch(PODS, None, from) {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e.message, "pod watch failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    }
                }
            };
            // Anything may have changed while no watch was open.
            self.enqueue_all();
            while let Some(change) = watch.next().await {
                let pod = match change {
                    Err(_) => break,
                    Ok(Change::Added(p) | Change::Modified(p) | Change::Deleted(p)) => p,
                };
                let ns = meta::namespace(&pod);
                for pdb in self.pdbs.list(ns) {
                    let selects = LabelSelector::from_metav1_opt(pdb.pointer("/spec/selector"))
                        .is_ok_and(|s| s.matches_object(&pod));
                    if selects || listed_as_disrupted(&pdb, meta::name(&pod).unwrap_or_default()) {
                        self.queue.add(key_of(&pdb));
                    }
                }
            }
        }
    }

    async fn work(&self, shutdown: CancellationToken) {
        loop {
            let key = tokio::select! {
                _ = shutdown.cancelled() => return,
                k = self.queue.next() => k,
            };
            match self.sync(&key).await {
                Ok(Some(after)) => self.queue.add_after(key.clone(), after),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(key = %key, error = %e.message, "disruption budget sync failed; retrying");
                    self.queue.add_after(key.clone(), Duration::from_secs(1));
                }
            }
            self.queue.done(&key);
        }
    }

    /// One budget: list its pods, compute the status, write it if it changed. Returns when to
    /// look again for a disrupted pod whose deletion is overdue.
    async fn sync(&self, key: &Key) -> Result<Option<Duration>, StatusError> {
        let Some(pdb) = self.pdbs.get(key) else {
            return Ok(None);
        };
        let (ns, _) = split_key(key);
        let selector = LabelSelector::from_metav1_opt(pdb.pointer("/spec/selector"))
            .unwrap_or_else(|_| LabelSelector::nothing());
        let pods = if selector.is_nothing() {
            Vec::new()
        } else {
            let sel = selector.to_string();
            let sel = (!sel.is_empty()).then_some(sel);
            self.client.list(PODS, ns, sel.as_deref()).await?.0
        };
        if pods.is_empty() {
            self.recorder
                .normal(&pdb, "NoPods", "No matching pods found");
        }
        let budget = Budget::from_spec(&pdb["spec"]);
        let expected = match budget.needs_controllers() {
            true => self.expected_from_controllers(ns, &pods).await,
            false => Ok(pods.len() as i64),
        };
        let now = jiff::Timestamp::now();
        let mut status = match expected {
            Ok(expected) => {
                let disrupted = pdb
                    .pointer("/status/disruptedPods")
                    .cloned()
                    .unwrap_or(json!({}));
                let out = compute(&budget, expected, &pods, &disrupted, now, DELETION_TIMEOUT);
                let mut status = json!({
                    "observedGeneration": pdb.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
                    "disruptionsAllowed": out.disruptions_allowed,
                    "currentHealthy": out.current_healthy,
                    "desiredHealthy": out.desired_healthy,
                    "expectedPods": out.expected_pods,
                });
                if !out.disrupted_pods.is_empty() {
                    status["disruptedPods"] = Value::Object(out.disrupted_pods);
                }
                let (state, reason) = if out.disruptions_allowed > 0 {
                    ("True", "SufficientPods")
                } else {
                    ("False", "InsufficientPods")
                };
                set_condition(&pdb, &mut status, state, reason, "", now);
                (status, out.recheck_after)
            }
            Err(msg) => {
                self.recorder.warning(
                    &pdb,
                    "CalculateExpectedPodCountFailed",
                    &format!("Failed to calculate the number of expected pods: {msg}"),
                );
                let mut status = pdb.get("status").cloned().unwrap_or(json!({}));
                status["disruptionsAllowed"] = json!(0);
                status["observedGeneration"] = pdb
                    .pointer("/metadata/generation")
                    .cloned()
                    .unwrap_or(json!(1));
                set_condition(&pdb, &mut status, "False", "SyncFailed", &msg, now);
                (status, None)
            }
        };
        if pdb.get("status") != Some(&status.0) {
            let mut updated = (*pdb).clone();
            updated["status"] = std::mem::take(&mut status.0);
            self.client.update_status(PDBS, &updated).await?;
        }
        Ok(status.1)
    }

    /// The scale of the controllers of `pods` (ReplicaSets, through their Deployment if they have
    /// one; StatefulSets), each counted once; an error names a pod without a controller.
    async fn expected_from_controllers(
        &self,
        ns: Option<&str>,
        pods: &[Value],
    ) -> Result<i64, String> {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for pod in pods {
            let Some((kind, name, uid)) = controller_of(pod) else {
                return Err(format!(
                    "found no controllers for pod {:?}",
                    meta::name(pod).unwrap_or_default()
                ));
            };
            if !seen.insert(uid.to_string()) {
                continue;
            }
            let scale = match kind {
                "ReplicaSet" => {
                    let rs = self
                        .get(Gvr::new("apps", "v1", "replicasets"), ns, name)
                        .await?;
                    match controller_of(&rs).filter(|(kind, ..)| *kind == "Deployment") {
                        Some((_, d_name, d_uid)) => {
                            if !seen.insert(d_uid.to_string()) {
                                continue;
                            }
                            let dep = self
                                .get(Gvr::new("apps", "v1", "deployments"), ns, d_name)
                                .await?;
                            replicas(&dep)
                        }
                        None => replicas(&rs),
                    }
                }
                "StatefulSet" => replicas(
                    &self
                        .get(Gvr::new("apps", "v1", "statefulsets"), ns, name)
                        .await?,
                ),
                "ReplicationController" => replicas(
                    &self
                        .get(Gvr::new("", "v1", "replicationcontrollers"), ns, name)
                        .await?,
                ),
                _ => {
                    return Err(format!(
                        "found no controllers for pod {:?}",
                        meta::name(pod).unwrap_or_default()
                    ));
                }
            };
            total += scale;
        }
        Ok(total)
    }

    async fn get(&self, gvr: Gvr, ns: Option<&str>, name: &str) -> Result<Value, String> {
        match self.client.get(gvr, ns, name).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(format!("{} {name:?} not found", gvr.plural)),
            Err(e) => Err(e.message),
        }
    }
}

/// `spec.replicas` of a workload, as a count of expected pods.
fn replicas(obj: &Value) -> i64 {
    i64::from(crate::deployment::util::replicas(obj))
}

/// `(kind, name, uid)` of the object's controller reference.
fn controller_of(obj: &Value) -> Option<(&str, &str, &str)> {
    let r = meta::controller_ref(obj)?;
    let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
    Some((field("kind"), field("name"), field("uid")))
}

fn listed_as_disrupted(pdb: &Value, pod: &str) -> bool {
    pdb.pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(pod))
}

/// Sets the `DisruptionAllowed` condition on the budget's previous conditions.
fn set_condition(
    pdb: &Value,
    status: &mut Value,
    state: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) {
    let mut conditions: Vec<Value> = pdb
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    k1s_apimachinery::conditions::set(
        &mut conditions,
        json!({
            "type": "DisruptionAllowed",
            "status": state,
            "reason": reason,
            "message": message,
            "observedGeneration": pdb.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }),
    );
    status["conditions"] = json!(conditions);
}
