//! The scheduling loop: informer events keep the [`Cache`] current and feed the queue; one loop
//! decides pod after pod (decisions are cheap and sequential, so the assumed state is always
//! exact); binds and the writes that report outcomes run concurrently, bounded by semaphores.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k1s_apiserver::client::{Client, Gvr};
use k1s_controllers::informers::Informers;
use k1s_controllers::runtime::{Event, Informer, WorkQueue, key_of, split_key};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, Decision, Unschedulable};
use crate::events;
use crate::filter::{self, Request};

pub const SCHEDULER_NAME: &str = "default-scheduler";

const PODS: Gvr = Gvr::new("", "v1", "pods");
const NODES: Gvr = Gvr::new("", "v1", "nodes");

/// Binds in flight at once: enough for the store's group commit to batch them.
const BIND_CONCURRENCY: usize = 64;
/// Event and status writes in flight at once. Fewer than binds: during a burst the `Scheduled`
/// events trail the binds instead of taking the store writer's batches from them (upstream's
/// event broadcaster is asynchronous too).
const REPORT_CONCURRENCY: usize = 8;
/// An unschedulable pod is tried again at least this often, even if nothing seems to change.
const FLUSH_AFTER: Duration = Duration::from_secs(60);
const FLUSH_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Scheduler {
    client: Client,
    pods: Informer,
    nodes: Informer,
    queue: WorkQueue,
    cache: Arc<Mutex<Cache>>,
    binds: Arc<Semaphore>,
    reports: Arc<Semaphore>,
}

/// Whether this scheduler should place the pod.
fn responsible(pod: &Value) -> bool {
    let spec = &pod["spec"];
    spec["nodeName"].as_str().is_none_or(str::is_empty)
        && spec["schedulerName"]
            .as_str()
            .is_none_or(|s| s.is_empty() || s == SCHEDULER_NAME)
        && pod["metadata"]["deletionTimestamp"].is_null()
        && spec["schedulingGates"].as_array().is_none_or(Vec::is_empty)
        && !terminal(pod)
}

fn assigned_node(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

fn terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Whether a node change can make a pod fit that did not.
fn node_changed(old: &Value, new: &Value) -> bool {
    old["metadata"]["labels"] != new["metadata"]["labels"]
        || old["spec"] != new["spec"]
        || old["status"]["allocatable"] != new["status"]["allocatable"]
        || filter::ready_status(old) != filter::ready_status(new)
}

impl Scheduler {
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the informers and runs until `shutdown`.
    pub async fn start(client: Client, informers: &Informers, shutdown: CancellationToken) {
        let pods = informers.get(PODS);
        let nodes = informers.get(NODES);
        let s = Scheduler {
            client,
            pods,
            nodes,
            queue: WorkQueue::new(),
            cache: Arc::default(),
            binds: Arc::new(Semaphore::new(BIND_CONCURRENCY)),
            reports: Arc::new(Semaphore::new(REPORT_CONCURRENCY)),
        };
        let pod_events = s.pods.subscribe();
        let node_events = s.nodes.subscribe();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async { s.pods.wait_synced().await; s.nodes.wait_synced().await } => {}
        }
        s.resync_nodes();
        s.resync_pods();
        tokio::spawn(
            s.clone()
                .watch_events(pod_events, node_events, shutdown.clone()),
        );
        tokio::spawn(s.clone().flush_loop(shutdown.clone()));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                key = s.queue.next() => s.schedule_one(key).await,
            }
        }
    }

    async fn watch_events(
        self,
        mut pod_events: broadcast::Receiver<Event>,
        mut node_events: broadcast::Receiver<Event>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = pod_events.recv() => match ev {
                    Ok(Event::Upsert { old, new }) => self.on_pod(old.as_deref(), &new),
                    Ok(Event::Delete(obj)) => self.on_pod_delete(&obj),
                    Ok(Event::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => self.resync_pods(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                ev = node_events.recv() => match ev {
                    Ok(Event::Upsert { old, new }) => {
                        let relevant = old.as_deref().is_none_or(|o| node_changed(o, &new));
                        self.lock().set_node(new);
                        if relevant {
                            self.move_unschedulable();
                        }
                    }
                    Ok(Event::Delete(obj)) => {
                        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                        self.lock().nodes.remove(name);
                    }
                    Ok(Event::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => self.resync_nodes(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    fn on_pod(&self, old: Option<&Value>, new: &Value) {
        let key = key_of(new);
        if let Some(node) = assigned_node(new) {
            let freed = {
                let mut c = self.lock();
                c.unschedulable.remove(&key);
                if terminal(new) {
                    c.release(&key)
                } else {
                    c.account(&key, node, Request::of_pod(new));
                    false
                }
            };
            if freed {
                self.move_unschedulable();
            }
            return;
        }
        if !responsible(new) {
            self.lock().unschedulable.remove(&key);
            return;
        }
        // Our own status writes (the PodScheduled condition) change nothing that matters.
        let changed = old.is_none_or(|o| {
            o["spec"] != new["spec"] || o["metadata"]["labels"] != new["metadata"]["labels"]
        });
        if changed {
            self.queue.add(key);
        }
    }

    fn on_pod_delete(&self, obj: &Value) {
        let key = key_of(obj);
        let freed = {
            let mut c = self.lock();
            c.unschedulable.remove(&key);
            c.release(&key)
        };
        if freed {
            self.move_unschedulable();
        }
    }

    /// Rebuilds the accounting from the pod cache; keeps assumptions whose bind is still in flight.
    fn resync_pods(&self) {
        let pods = self.pods.list(None);
        let mut to_queue = Vec::new();
        {
            let mut c = self.lock();
            let in_flight: Vec<(String, String, Request)> = c
                .assumed
                .iter()
                .filter_map(|k| c.placed.get(k).map(|(n, r)| (k.clone(), n.clone(), *r)))
                .collect();
            c.placed.clear();
            c.usage.clear();
            c.assumed.clear();
            for p in &pods {
                let key = key_of(p);
                match assigned_node(p) {
                    Some(node) if !terminal(p) => c.account(&key, node, Request::of_pod(p)),
                    Some(_) => {}
                    None if responsible(p) => to_queue.push(key),
                    None => {}
                }
            }
            for (key, node, req) in in_flight {
                if !c.placed.contains_key(&key) && self.pods.get(&key).is_some() {
                    c.account(&key, &node, req);
                    c.assumed.insert(key);
                }
            }
            let known: std::collections::HashSet<&String> = to_queue.iter().collect();
            c.unschedulable.retain(|k, _| known.contains(k));
            // Pods that already failed wait for their backoff (below).
            to_queue.retain(|k| !c.unschedulable.contains_key(k));
        }
        for key in to_queue {
            self.queue.add(key);
        }
        self.move_unschedulable();
    }

    fn resync_nodes(&self) {
        {
            let mut c = self.lock();
            c.nodes.clear();
            for n in self.nodes.list(None) {
                c.set_node(n);
            }
        }
        self.move_unschedulable();
    }

    /// Something changed that may make unschedulable pods fit: queue them, each once its backoff has
    /// passed.
    fn move_unschedulable(&self) {
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut later = Vec::new();
        {
            let mut c = self.lock();
            for (key, u) in c.unschedulable.iter_mut() {
                let at = u.ready_at();
                if at <= now {
                    ready.push(key.clone());
                } else if !u.timer_pending {
                    u.timer_pending = true;
                    later.push((key.clone(), at - now));
                }
            }
        }
        for key in ready {
            self.queue.add(key);
        }
        for (key, delay) in later {
            self.queue.add_after(key, delay);
        }
    }

    /// Retries pods that stayed unschedulable for [`FLUSH_AFTER`].
    async fn flush_loop(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
            }
            let now = Instant::now();
            let due: Vec<String> = self
                .lock()
                .unschedulable
                .iter()
                .filter(|(_, u)| u.last_attempt + FLUSH_AFTER <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for key in due {
                self.queue.add(key);
            }
        }
    }

    async fn schedule_one(&self, key: String) {
        let Some(pod) = self.pods.get(&key) else {
            self.lock().unschedulable.remove(&key);
            self.queue.done(&key);
            return;
        };
        if !responsible(&pod) {
            self.lock().unschedulable.remove(&key);
            self.queue.done(&key);
            return;
        }
        let decision = {
            let mut c = self.lock();
            if c.assumed.contains(&key) {
                None
            } else {
                Some(c.decide(&key, &pod))
            }
        };
        match decision {
            None => self.queue.done(&key),
            Some(Decision::Fit(node)) => {
                let Ok(permit) = self.binds.clone().acquire_owned().await else {
                    self.queue.done(&key);
                    return;
                };
                let s = self.clone();
                tokio::spawn(async move {
                    let (ns, name) = split_key(&key);
                    let result = s.client.bind(ns.unwrap_or_default(), name, &node).await;
                    drop(permit);
                    match result {
                        Ok(()) => {
                            s.queue.done(&key);
                            let msg = format!("Successfully assigned {key} to {node}");
                            let _permit = s.reports.acquire().await;
                            if let Err(e) = events::emit(
                                &s.client,
                                &pod,
                                "Normal",
                                "Scheduled",
                                "Binding",
                                &msg,
                            )
                            .await
                            {
                                tracing::debug!(pod = %key, error = %e.message, "recording Scheduled event failed");
                            }
                        }
                        Err(e) => {
                            {
                                let mut c = s.lock();
                                if c.assumed.contains(&key) {
                                    c.release(&key);
                                }
                            }
                            s.queue.done(&key);
                            // 404: the pod is gone. Anything else (a conflict included: the pod
                            // may have been bound elsewhere, or the write lost a race) is looked
                            // at again; a pod that is assigned by then is skipped.
                            if e.code != 404 {
                                tracing::debug!(pod = %key, node = %node, error = %e.message, "binding failed; retrying");
                                s.queue.add_after(key, Duration::from_secs(1));
                            }
                        }
                    }
                });
            }
            Some(Decision::NoFit(message)) => {
                self.record_unschedulable(&key, pod, message);
                self.queue.done(&key);
            }
        }
    }

    /// Notes the failure (backoff) and reports it: PodScheduled=False and a FailedScheduling event
    /// (a repeat of the same message bumps the previous event's count). The event's name is chosen
    /// here, so a repeat decided while the first write is in flight still finds it.
    fn record_unschedulable(&self, key: &str, pod: Arc<Value>, message: String) {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let (name, count) = {
            let mut c = self.lock();
            let u = c
                .unschedulable
                .entry(key.to_string())
                .or_insert(Unschedulable {
                    attempts: 0,
                    last_attempt: Instant::now(),
                    timer_pending: false,
                    event: None,
                });
            u.attempts += 1;
            u.last_attempt = Instant::now();
            u.timer_pending = false;
            match &mut u.event {
                Some((name, count, msg)) if *msg == message => {
                    *count += 1;
                    (name.clone(), *count)
                }
                _ => {
                    let name = events::event_name(pod_name);
                    u.event = Some((name.clone(), 1, message.clone()));
                    (name, 1)
                }
            }
        };
        tracing::debug!(pod = %key, %message, "unschedulable");
        let s = self.clone();
        let key = key.to_string();
        tokio::spawn(async move {
            let _permit = s.reports.acquire().await;
            s.set_unschedulable_condition(&pod, &message).await;
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            let res = if count == 1 {
                let ev = events::pod_event(
                    &pod,
                    &name,
                    "Warning",
                    "FailedScheduling",
                    "Scheduling",
                    &message,
                );
                s.client
                    .create(events::EVENTS, Some(ns), &ev)
                    .await
                    .map(|_| ())
            } else {
                events::repeat(&s.client, ns, &name, count).await
            };
            if let Err(e) = res {
                tracing::debug!(pod = %key, error = %e.message, "recording FailedScheduling event failed");
            }
        });
    }

    async fn set_unschedulable_condition(&self, pod: &Value, message: &str) {
        let conditions: Vec<Value> = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let existing = conditions.iter().find(|c| c["type"] == "PodScheduled");
        if let Some(c) = existing
            && c["status"] == "False"
            && c["reason"] == "Unschedulable"
            && c["message"] == message
        {
            return;
        }
        let since = match existing {
            Some(c) if c["status"] == "False" => c["lastTransitionTime"].clone(),
            _ => json!(k1s_apimachinery::meta::now_rfc3339()),
        };
        let mut list: Vec<Value> = conditions
            .iter()
            .filter(|c| c["type"] != "PodScheduled")
            .cloned()
            .collect();
        list.push(json!({
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": null,
            "lastTransitionTime": since,
            "reason": "Unschedulable",
            "message": message,
        }));
        let meta = &pod["metadata"];
        let patch = json!({"status": {"conditions": list}});
        if let Err(e) = self
            .client
            .merge_patch(
                PODS,
                meta["namespace"].as_str(),
                meta["name"].as_str().unwrap_or_default(),
                Some("status"),
                &patch,
            )
            .await
            && e.code != 404
        {
            tracing::debug!(error = %e.message, "setting PodScheduled=False failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_pod(node: Option<&str>) -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "3",
                         "labels": {"a": "b"}, "managedFields": [{"manager": "kubectl"}],
                         "annotations": {"big": "x"}},
            "spec": {
                "nodeName": node,
                "schedulerName": "default-scheduler",
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"operator": "Exists"}],
                "affinity": {"nodeAffinity": {"x": 1}, "podAntiAffinity": {"y": 2}},
                "containers": [{"name": "c", "image": "i", "env": [{"name": "E"}],
                                "resources": {"requests": {"cpu": "1"}}}],
                "volumes": [{"name": "v"}],
            },
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled"}], "qosClass": "Burstable"},
        })
    }

    fn project_pod(pod: &Value) -> Value {
        k1s_controllers::projection::project(PODS, pod.clone())
    }

    /// The shared pod cache (the controllers' projection) keeps what placement reads.
    #[test]
    fn projection_keeps_what_placement_reads() {
        let p = project_pod(&full_pod(None));
        assert!(responsible(&p));
        assert_eq!(p["metadata"]["labels"]["a"], "b");
        assert!(p["metadata"].get("managedFields").is_none());
        assert_eq!(p["spec"]["nodeSelector"]["disk"], "ssd");
        assert_eq!(p["spec"]["affinity"], json!({"nodeAffinity": {"x": 1}}));
        assert_eq!(
            p["spec"]["containers"],
            json!([{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}}}])
        );
        assert!(p["spec"].get("volumes").is_none());
        assert_eq!(p["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(
            Request::of_pod(&p),
            Request::of_pod(&full_pod(None)),
            "requests survive the projection"
        );
        let b = project_pod(&full_pod(Some("n1")));
        assert_eq!(assigned_node(&b), Some("n1"));
        assert!(!responsible(&b));
        assert_eq!(Request::of_pod(&b).milli_cpu, 1000);
    }
}
