//! This node's pods: a list + watch of pods filtered to `spec.nodeName == <node>`, one
//! [`worker`] task per pod fed through a channel, and at start the clean-up of runtime objects
//! whose pod no longer exists.
//!
//! Invariants: a worker exists per pod UID bound here and not yet cleaned up; only runtime
//! objects the kubelet made (ids starting with a pod UID) are ever cleaned up, so containers of
//! `k1s runtime run` in the same state directory are left alone; after a watch expires (410) the
//! pods are listed again and workers of vanished pods are told their pod is gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k1s_apiserver::client::Change;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::PODS;
use crate::containers::{cgroup_parent, parse_id};
use crate::qos::QosClass;
use crate::worker::{self, Msg};
use crate::{Ctx, Runtime};

const RELIST_AFTER_ERROR: Duration = Duration::from_secs(1);

fn uid(pod: &Value) -> &str {
    pod["metadata"]["uid"].as_str().unwrap_or_default()
}

/// Whether `s` looks like a Kubernetes UID (the kubelet's runtime ids start with one).
fn is_uid(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

struct Dispatcher {
    ctx: Arc<Ctx>,
    workers: HashMap<String, mpsc::UnboundedSender<Msg>>,
    shutdown: CancellationToken,
}

impl Dispatcher {
    fn ours(&self, pod: &Value) -> bool {
        pod["spec"]["nodeName"].as_str() == Some(self.ctx.config.node_name.as_str())
    }

    /// Hands `msg` to the pod's worker, starting one for a live pod.
    fn send(&mut self, pod: Value, deleted: bool) {
        let id = uid(&pod).to_string();
        if id.is_empty() {
            return;
        }
        let msg = if deleted {
            Msg::Deleted
        } else {
            Msg::Update(pod.clone())
        };
        if let Some(tx) = self.workers.get(&id) {
            match tx.send(msg) {
                Ok(()) => return,
                Err(_) => {
                    self.workers.remove(&id);
                }
            }
            // The worker ended (its pod terminated): a late event for the same pod.
            if deleted || !pod["metadata"]["deletionTimestamp"].is_null() {
                return;
            }
        }
        if deleted {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(worker::run(
            self.ctx.clone(),
            pod,
            tx.clone(),
            rx,
            self.shutdown.clone(),
        ));
        self.workers.insert(id, tx);
    }

    /// Lists this node's pods, syncs every worker, tells workers of vanished pods; returns the
    /// list's revision.
    async fn relist(&mut self) -> Option<u64> {
        let (items, rv) = match self.ctx.client.list(PODS, None, None).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e.message, "listing pods failed; retrying");
                return None;
            }
        };
        let mut live = HashSet::new();
        let ours: Vec<Value> = items.into_iter().filter(|p| self.ours(p)).collect();
        for p in ours {
            live.insert(uid(&p).to_string());
            self.send(p, false);
        }
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|u| !live.contains(*u))
            .cloned()
            .collect();
        for u in gone {
            if let Some(tx) = self.workers.get(&u) {
                let _ = tx.send(Msg::Deleted);
            }
        }
        Some(rv)
    }
}

/// Removes runtime objects and volumes of pods that are not in `live` (blocking).
fn cleanup_orphans(
    rt: &Runtime,
    cgroup_root: &str,
    runtime_root: &std::path::Path,
    live: &HashSet<String>,
) {
    let mut orphans: HashSet<String> = HashSet::new();
    let pods_dir = runtime_root.join("pods");
    for e in std::fs::read_dir(&pods_dir).into_iter().flatten().flatten() {
        let u = e.file_name().to_string_lossy().into_owned();
        if is_uid(&u) && !live.contains(&u) {
            orphans.insert(u);
        }
    }
    for c in rt.containers.list().unwrap_or_default() {
        if let Some((u, _, _)) = parse_id(&c.id)
            && is_uid(u)
            && !live.contains(u)
        {
            orphans.insert(u.to_string());
        }
    }
    for sb in rt.sandboxes.list() {
        if is_uid(&sb.id) && !live.contains(&sb.id) {
            orphans.insert(sb.id.clone());
        }
    }
    for u in orphans {
        tracing::info!(pod_uid = %u, "removing containers and sandbox of a pod that no longer exists");
        let parents: Vec<String> = [
            QosClass::Guaranteed,
            QosClass::Burstable,
            QosClass::BestEffort,
        ]
        .iter()
        .map(|q| cgroup_parent(cgroup_root, *q, &u))
        .collect();
        if let Err(e) = worker::cleanup_pod(rt, &u, &parents) {
            tracing::warn!(pod_uid = %u, error = %e, "cleaning up an orphaned pod failed");
        }
        if let Err(e) = crate::volumes::teardown(&crate::volumes::pod_dir(runtime_root, &u)) {
            tracing::warn!(pod_uid = %u, error = %e, "removing an orphaned pod's volumes failed");
        }
    }
}

/// Runs the pods of this node until `shutdown`.
pub async fn run(ctx: Arc<Ctx>, shutdown: CancellationToken) {
    let mut d = Dispatcher {
        ctx: ctx.clone(),
        workers: HashMap::new(),
        shutdown: shutdown.clone(),
    };
    // Orphans first, from one consistent list, before any worker creates anything.
    let mut first = true;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        if first {
            match ctx.client.list(PODS, None, None).await {
                Ok((items, _)) => {
                    let live: HashSet<String> = items
                        .iter()
                        .filter(|p| d.ours(p))
                        .map(|p| uid(p).to_string())
                        .collect();
                    let rt = ctx.runtime.clone();
                    let root = ctx.config.cgroup_root.clone();
                    let rt_root = ctx.config.runtime_root.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        cleanup_orphans(&rt, &root, &rt_root, &live)
                    })
                    .await;
                    first = false;
                }
                Err(e) => tracing::warn!(error = %e.message, "listing pods failed; retrying"),
            }
        }
        let Some(rv) = d.relist().await else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RELIST_AFTER_ERROR) => continue,
            }
        };
        let mut watch = match ctx.client.watch(PODS, None, rv) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e.message, "watching pods failed; relisting");
                continue;
            }
        };
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = watch.next() => c,
            };
            match change {
                Some(Ok(Change::Added(p) | Change::Modified(p))) if d.ours(&p) => d.send(p, false),
                Some(Ok(Change::Deleted(p))) if d.ours(&p) => d.send(p, true),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e.message, "pod watch ended; relisting");
                    break;
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_uid;

    #[test]
    fn only_uid_prefixed_objects_are_ours() {
        assert!(is_uid("0b7c7c4e-4c1e-4a53-9f61-1f2d3c4b5a69"));
        assert!(!is_uid("web"));
        assert!(!is_uid("0b7c7c4e-4c1e-4a53-9f61-1f2d3c4b5a6z"));
    }
}
