//! The simulator's loops: node registration and heartbeats, and a pod worker pool fed by a pod
//! informer.
//!
//! Invariants: only pods bound to the simulator's own nodes are touched; a pod's status is written
//! only when it differs from what a kubelet would report, so the simulator's own writes do not
//! loop; an address is freed only when its pod is gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k1s_apimachinery::meta::{now_rfc3339, now_rfc3339_micro};
use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::{Client, Gvr};
use k1s_controllers::informers::Informers;
use k1s_controllers::runtime::{Event, Informer, WorkQueue, key_of, split_key};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::pod::{IpAllocator, Observed};
use crate::{Capacity, node, pod};

const PODS: Gvr = Gvr::new("", "v1", "pods");
const NODES: Gvr = Gvr::new("", "v1", "nodes");
const LEASES: Gvr = Gvr::new("coordination.k8s.io", "v1", "leases");

/// How often Leases and the Ready heartbeat are renewed (upstream's `nodeLeaseRenewInterval`).
const RENEW_EVERY: Duration = Duration::from_secs(10);
const WORKERS: usize = 8;
const RETRY: Duration = Duration::from_secs(1);

pub struct Sim {
    client: Client,
    capacity: Capacity,
    /// Node name → index.
    nodes: HashMap<String, usize>,
    /// When each node's conditions last transitioned (registration).
    since: Vec<String>,
    /// The shared pod cache (every pod; [`Sim::ours`] picks those of our nodes).
    pods: Informer,
    queue: WorkQueue,
    ips: Mutex<IpAllocator>,
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

fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

/// Whole seconds from an RFC 3339 time to now (0 when unparsable).
pub(crate) fn seconds_since(t: &Value) -> i64 {
    t.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map_or(0, |t| {
            jiff::Timestamp::now().duration_since(t).as_secs().max(0)
        })
}

impl Sim {
    fn ips(&self) -> MutexGuard<'_, IpAllocator> {
        self.ips.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn run(
        client: Client,
        informers: &Informers,
        n: usize,
        capacity: Capacity,
        shutdown: CancellationToken,
    ) {
        let pods = informers.get(PODS);
        let events = pods.subscribe();
        let now = now_rfc3339();
        let sim = Arc::new(Sim {
            client,
            capacity,
            nodes: (0..n).map(|i| (node::node_name(i), i)).collect(),
            since: vec![now; n],
            pods,
            queue: WorkQueue::new(),
            ips: Mutex::default(),
        });
        for i in 0..n {
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = sim.register(i).await {
                tracing::warn!(node = %node::node_name(i), error = %e.message, "registering simulated node failed; retrying at the next heartbeat");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sim.pods.wait_synced() => {}
        }
        sim.resync();
        sim.remove_stale_nodes().await;
        tokio::spawn(sim.clone().watch_pods(events, shutdown.clone()));
        for _ in 0..WORKERS {
            tokio::spawn(sim.clone().worker(shutdown.clone()));
        }
        tracing::info!(nodes = n, capacity = %sim.capacity, "simulated nodes ready");
        sim.heartbeats(shutdown).await;
    }

    /// Creates (or refreshes) node `i` and its Lease.
    async fn register(&self, i: usize) -> Result<(), StatusError> {
        let name = node::node_name(i);
        let obj = node::node(i, &self.capacity, &self.since[i]);
        let created = match self.client.create(NODES, None, &obj).await {
            Ok(c) => c,
            Err(e) if e.code == 409 => {
                self.client
                    .merge_patch(
                        NODES,
                        None,
                        &name,
                        None,
                        &json!({"metadata": {"labels": obj["metadata"]["labels"]}}),
                    )
                    .await?;
                self.client
                    .merge_patch(
                        NODES,
                        None,
                        &name,
                        Some("status"),
                        &json!({"status": obj["status"]}),
                    )
                    .await?
            }
            Err(e) => return Err(e),
        };
        self.renew_lease(&name, uid(&created)).await
    }

    async fn renew_lease(&self, name: &str, node_uid: &str) -> Result<(), StatusError> {
        let renew = now_rfc3339_micro();
        let patch = json!({"spec": {"holderIdentity": name, "leaseDurationSeconds": node::LEASE_DURATION_SECONDS, "renewTime": renew}});
        match self
            .client
            .merge_patch(LEASES, Some(node::LEASE_NAMESPACE), name, None, &patch)
            .await
        {
            Err(e) if e.code == 404 => {
                let node_uid = if node_uid.is_empty() {
                    let n = self.client.get(NODES, None, name).await?;
                    n.as_ref().map(|n| uid(n).to_string()).unwrap_or_default()
                } else {
                    node_uid.to_string()
                };
                let lease = node::lease(name, &node_uid, &renew);
                match self
                    .client
                    .create(LEASES, Some(node::LEASE_NAMESPACE), &lease)
                    .await
                {
                    Err(e) if e.code != 409 => Err(e),
                    _ => Ok(()),
                }
            }
            other => other.map(|_| ()),
        }
    }

    /// Every [`RENEW_EVERY`]: renew each node's Lease and Ready heartbeat; re-register a node that
    /// was deleted.
    async fn heartbeats(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RENEW_EVERY) => {}
            }
            for i in 0..self.since.len() {
                let name = node::node_name(i);
                let now = now_rfc3339();
                let conditions = node::heartbeat(&node::conditions(&self.since[i]), &now);
                let res = self
                    .client
                    .merge_patch(
                        NODES,
                        None,
                        &name,
                        Some("status"),
                        &json!({"status": {"conditions": conditions}}),
                    )
                    .await;
                let res = match res {
                    Ok(_) => self.renew_lease(&name, "").await,
                    Err(e) if e.code == 404 => self.register(i).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = res {
                    tracing::warn!(node = %name, error = %e.message, "simulated node heartbeat failed");
                }
            }
        }
    }

    /// Nodes a previous run with more simulated nodes registered (`k1s-sim-<i>`, `i >= N`) have no
    /// kubelet any more: delete them, their Leases and their pods (at once, as the pod garbage
    /// collector does for pods of vanished nodes), so nothing is scheduled where nothing runs.
    async fn remove_stale_nodes(&self) {
        let nodes = match self.client.list(NODES, None, None).await {
            Ok((items, _)) => items,
            Err(e) => {
                tracing::warn!(error = %e.message, "listing nodes failed; stale simulated nodes stay");
                return;
            }
        };
        let stale: HashSet<String> = nodes
            .iter()
            .filter_map(|n| n["metadata"]["name"].as_str())
            .filter(|name| {
                name.strip_prefix(node::NODE_PREFIX)
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i >= self.since.len())
            })
            .map(str::to_string)
            .collect();
        for name in &stale {
            tracing::info!(node = %name, "removing a simulated node this run does not serve");
            let res = self.client.delete(NODES, None, name, None).await;
            let res = match res {
                Ok(()) => {
                    self.client
                        .delete(LEASES, Some(node::LEASE_NAMESPACE), name, None)
                        .await
                }
                e => e,
            };
            if let Err(e) = res {
                tracing::warn!(node = %name, error = %e.message, "removing stale simulated node failed");
            }
        }
        for p in self.pods.list(None) {
            if assigned_node(&p).is_some_and(|n| stale.contains(n)) {
                let key = key_of(&p);
                let (ns, name) = split_key(&key);
                if let Err(e) = self
                    .client
                    .delete_pod_now(ns.unwrap_or_default(), name, uid(&p))
                    .await
                {
                    tracing::warn!(pod = %name, error = %e, "deleting a pod of a stale simulated node failed");
                }
            }
        }
    }

    fn ours<'a>(&self, pod: &'a Value) -> Option<(&'a str, usize)> {
        let n = assigned_node(pod)?;
        self.nodes.get(n).map(|i| (n, *i))
    }

    /// Rebuilds the address allocations from the pod cache and queues every pod of our nodes.
    fn resync(&self) {
        let pods = self.pods.list(None);
        let mut live = HashSet::new();
        let mut keys = Vec::new();
        {
            let mut ips = self.ips();
            for p in &pods {
                let Some((_, i)) = self.ours(p) else { continue };
                live.insert(uid(p).to_string());
                if let Some(ip) = p["status"]["podIP"]
                    .as_str()
                    .and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())
                    && ip.octets()[..3] == node::pod_subnet(i)
                {
                    ips.reserve(uid(p), ip);
                }
                keys.push(key_of(p));
            }
            ips.retain(&live);
        }
        for k in keys {
            self.queue.add(k);
        }
    }

    async fn watch_pods(
        self: Arc<Self>,
        mut events: broadcast::Receiver<Event>,
        shutdown: CancellationToken,
    ) {
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.recv() => ev,
            };
            match ev {
                Ok(Event::Upsert { new, .. }) => {
                    if self.ours(&new).is_some() {
                        self.queue.add(key_of(&new));
                    }
                }
                Ok(Event::Delete(obj)) => self.ips().release(uid(&obj)),
                Ok(Event::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => self.resync(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn worker(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let key = tokio::select! {
                _ = shutdown.cancelled() => return,
                k = self.queue.next() => k,
            };
            self.sync(&key).await;
            self.queue.done(&key);
        }
    }

    /// Brings one pod to what its kubelet would report.
    async fn sync(&self, key: &str) {
        let Some(p) = self.pods.get(key) else { return };
        let Some((_, i)) = self.ours(&p) else { return };
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or_default();
        if !p["metadata"]["deletionTimestamp"].is_null() {
            match self.client.delete_pod_now(ns, name, uid(&p)).await {
                Ok(()) => self.ips().release(uid(&p)),
                Err(e) => {
                    tracing::warn!(pod = %key, error = %e, "finishing pod termination failed; retrying");
                    self.queue.add_after(key.to_string(), RETRY);
                }
            }
            return;
        }
        if terminal(&p) {
            return;
        }
        let running_for = seconds_since(&p["status"]["startTime"]);
        let pod_ip = self.ips().allocate(uid(&p), node::pod_subnet(i));
        if !pod::up_to_date(&p, running_for, pod_ip) {
            if pod_ip.is_none() {
                tracing::warn!(pod = %key, "simulated node's pod range is full; reporting no pod IP");
            }
            let host_ip = node::node_ip(i).to_string();
            let now = now_rfc3339();
            let status = pod::running(
                &p,
                &Observed {
                    now: &now,
                    running_for,
                    host_ip: &host_ip,
                    pod_ip,
                },
            );
            if let Err(e) = self
                .client
                .merge_patch(
                    PODS,
                    Some(ns),
                    name,
                    Some("status"),
                    &json!({"status": status}),
                )
                .await
            {
                if e.code == 404 {
                    self.ips().release(uid(&p));
                } else {
                    tracing::warn!(pod = %key, error = %e.message, "reporting pod status failed; retrying");
                    self.queue.add_after(key.to_string(), RETRY);
                }
                return;
            }
        }
        let wait = pod::not_ready_for(&p, running_for);
        if wait > 0 {
            self.queue
                .add_after(key.to_string(), Duration::from_secs(wait as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_since_counts_whole_seconds() {
        let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(125);
        let s = json!(k1s_apimachinery::meta::format_rfc3339(t));
        assert!((124..=126).contains(&seconds_since(&s)));
        assert_eq!(seconds_since(&json!(null)), 0);
        assert_eq!(seconds_since(&json!("garbage")), 0);
    }

    /// The shared pod cache (the controllers' projection) keeps what a status report reads.
    #[test]
    fn projection_keeps_what_reports_read() {
        let pod = |node: Value| {
            json!({
                "metadata": {"name": "p", "namespace": "ns", "uid": "u", "managedFields": []},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i", "env": [],
                         "readinessProbe": {"initialDelaySeconds": 3}}]},
                "status": {"phase": "Running", "podIP": "10.42.0.2", "qosClass": "BestEffort"},
            })
        };
        let p = k1s_controllers::projection::project(PODS, pod(json!("k1s-sim-7")));
        assert_eq!(
            p["spec"]["containers"][0]["readinessProbe"]["initialDelaySeconds"],
            3
        );
        assert!(p["spec"]["containers"][0].get("env").is_none());
        assert!(p["metadata"].get("managedFields").is_none());
        assert_eq!(p["status"]["podIP"], "10.42.0.2");
        assert!(p["status"].get("qosClass").is_none());
    }
}
