//! ReplicaSet controller: keeps `spec.replicas` pods matching a ReplicaSet's selector, as
//! kube-controller-manager's replicaset controller does.
//!
//! Driven by two informers (replicasets, pods); pod events enqueue the owning ReplicaSet (through the
//! pod's controller reference) or, for orphans, every ReplicaSet whose selector matches. A sync
//! (`sync.rs`) runs in upstream order: expectations satisfied? → claim pods (adopt orphans, release
//! pods that stopped matching) → create or delete when synced and not being deleted → status.
//!
//! Invariants:
//! - a sync is level-triggered and idempotent: it reads the informer caches, never remembers pods;
//! - creates and deletes happen only when the ReplicaSet's [`Expectations`] are satisfied, so a
//!   burst of watch events while writes are in flight never over-creates or over-deletes;
//! - pods being deleted or finished never count and are never adopted or released;
//! - status is written (through `update_status`) only when it changed.

pub mod events;
mod expectations;
mod index;
pub mod pods;
pub mod status;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k1s_apimachinery::meta;
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

pub use expectations::Expectations;

use crate::informers::Informers;
use crate::runtime::{Event, Informer, Key, WorkQueue, key_of};
use crate::worker;

/// `apps/v1` replicasets.
pub const REPLICASETS: Gvr = Gvr::new("apps", "v1", "replicasets");
/// `v1` pods.
pub const PODS: Gvr = Gvr::new("", "v1", "pods");

/// Most pods created or deleted in one sync (upstream's burst replicas).
const BURST: usize = 500;
/// Workers syncing ReplicaSets in parallel (distinct keys only).
const WORKERS: usize = 4;
/// Field manager and user agent of this controller's writes.
const COMPONENT: &str = "replicaset-controller";

/// What failed in a sync; the key is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} for replica set {rs}: {source}")]
    Api {
        action: &'static str,
        rs: String,
        #[source]
        source: StatusError,
    },
}

impl Error {
    fn is_conflict(&self) -> bool {
        let Error::Api { source, .. } = self;
        source.code == 409
    }
}

/// Runs the ReplicaSet controller until `shutdown` with its own informers.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let informers = Informers::new(client.clone(), shutdown.clone());
    run_with(client, &informers, shutdown).await
}

/// Runs the ReplicaSet controller until `shutdown` on shared informers.
pub async fn run_with(client: Client, informers: &Informers, shutdown: CancellationToken) {
    let client = Client::new(client.state().clone(), COMPONENT);
    let ctrl = Arc::new(Controller {
        recorder: events::Recorder::new(client.clone(), COMPONENT, "apps/v1", "ReplicaSet"),
        rs: informers.get(REPLICASETS),
        pods: informers.get(PODS),
        client,
        queue: WorkQueue::new(),
        expectations: Expectations::new(),
        index: index::PodIndex::default(),
        failures: Mutex::default(),
    });
    let mut rs_events = ctrl.rs.subscribe();
    let mut pod_events = ctrl.pods.subscribe();
    ctrl.rs.wait_synced().await;
    ctrl.pods.wait_synced().await;
    // The informers' first Resync may have gone out before we subscribed.
    ctrl.resync();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let c = ctrl.clone();
        let s = shutdown.clone();
        workers.spawn(async move { worker::work(&*c, s).await });
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = rs_events.recv() => match ev {
                Ok(ev) => ctrl.on_replicaset(ev),
                Err(RecvError::Lagged(_)) => ctrl.on_replicaset(Event::Resync),
                Err(RecvError::Closed) => break,
            },
            ev = pod_events.recv() => match ev {
                Ok(ev) => ctrl.on_pod(ev),
                Err(RecvError::Lagged(_)) => ctrl.on_pod(Event::Resync),
                Err(RecvError::Closed) => break,
            },
        }
    }
    workers.shutdown().await;
}

pub(crate) struct Controller {
    client: Client,
    rs: Informer,
    pods: Informer,
    queue: WorkQueue,
    expectations: Expectations,
    index: index::PodIndex,
    recorder: events::Recorder,
    /// Consecutive failed syncs per key, for backoff.
    failures: Mutex<HashMap<Key, u32>>,
}

impl Controller {
    fn on_replicaset(&self, ev: Event) {
        match ev {
            Event::Upsert { new, .. } => self.queue.add(key_of(&new)),
            Event::Delete(rs) => {
                let key = key_of(&rs);
                self.expectations.forget(&key);
                self.queue.add(key);
            }
            Event::Resync => self.resync(),
        }
    }

    fn resync(&self) {
        // Individual events may have been lost: expectations can no longer be trusted, and the
        // index is rebuilt (before anything is enqueued) from the cache.
        self.index.rebuild(&self.pods.list(None));
        self.expectations.clear();
        for key in self.rs.keys() {
            self.queue.add(key);
        }
    }

    fn on_pod(&self, ev: Event) {
        // The index first: what expectations wait for must be visible once they are met.
        match &ev {
            Event::Upsert { new, .. } => self.index.upsert(new),
            Event::Delete(pod) => self.index.remove(pod),
            Event::Resync => {}
        }
        match ev {
            Event::Upsert { old: None, new } => {
                if meta::deletion_timestamp(&new).is_some() {
                    return self.pod_deleted(&new);
                }
                match self.owner_of(&new) {
                    Some(key) => {
                        self.expectations.creation_observed(&key);
                        self.queue.add(key);
                    }
                    None if meta::controller_ref(&new).is_none() => self.enqueue_matching(&new),
                    None => {}
                }
            }
            Event::Upsert {
                old: Some(old),
                new,
            } => {
                if meta::resource_version(&old) == meta::resource_version(&new) {
                    return;
                }
                if meta::deletion_timestamp(&new).is_some() {
                    self.pod_deleted(&new);
                    if meta::labels(&old) != meta::labels(&new) {
                        self.enqueue_matching(&old);
                    }
                    return;
                }
                let old_owner = self.owner_of(&old);
                let new_owner = self.owner_of(&new);
                if old_owner != new_owner
                    && let Some(k) = old_owner
                {
                    self.queue.add(k);
                }
                match new_owner {
                    Some(k) => {
                        if pods::is_ready(&new) != pods::is_ready(&old) {
                            // Becoming available takes minReadySeconds after becoming ready.
                            if let Some(min) = self.min_ready_seconds(&k).filter(|m| *m > 0) {
                                self.queue
                                    .add_after(k.clone(), Duration::from_secs(min as u64 + 1));
                            }
                        }
                        self.queue.add(k);
                    }
                    None if meta::controller_ref(&new).is_none() => {
                        // An orphan (or one just released): anyone matching may adopt it.
                        self.enqueue_matching(&new);
                        if meta::labels(&old) != meta::labels(&new) {
                            self.enqueue_matching(&old);
                        }
                    }
                    None => {}
                }
            }
            Event::Delete(pod) => self.pod_deleted(&pod),
            Event::Resync => self.resync(),
        }
    }

    fn pod_deleted(&self, pod: &Value) {
        if let Some(key) = self.owner_of(pod) {
            self.expectations.deletion_observed(&key, &key_of(pod));
            self.queue.add(key);
        }
    }

    /// The key of the cached ReplicaSet that controls `pod`, if any.
    fn owner_of(&self, pod: &Value) -> Option<Key> {
        let r = meta::controller_ref(pod)?;
        if r.get("kind")?.as_str()? != "ReplicaSet"
            || !r.get("apiVersion")?.as_str()?.starts_with("apps/")
        {
            return None;
        }
        let key = format!("{}/{}", meta::namespace(pod)?, r.get("name")?.as_str()?);
        let rs = self.rs.get(&key)?;
        (meta::uid(&rs) == r.get("uid")?.as_str()).then_some(key)
    }

    fn min_ready_seconds(&self, key: &str) -> Option<i64> {
        self.rs.get(key)?["spec"]["minReadySeconds"].as_i64()
    }

    /// Enqueues every ReplicaSet in the pod's namespace whose selector matches it.
    fn enqueue_matching(&self, pod: &Value) {
        let Some(ns) = meta::namespace(pod) else {
            return;
        };
        for rs in self.rs.list(Some(ns)) {
            let Ok(sel) = LabelSelector::from_metav1(&rs["spec"]["selector"]) else {
                continue;
            };
            if !sel.is_everything() && sel.matches_object(pod) {
                self.queue.add(key_of(&rs));
            }
        }
    }
}

impl worker::KeyedSync for Controller {
    type Error = Error;
    const NAME: &'static str = "replica set";

    fn queue(&self) -> &WorkQueue {
        &self.queue
    }

    fn failures(&self) -> &Mutex<HashMap<Key, u32>> {
        &self.failures
    }

    fn sync_key(&self, key: &str) -> impl Future<Output = Result<Option<Duration>, Error>> + Send {
        self.sync(key)
    }

    fn is_conflict(e: &Error) -> bool {
        e.is_conflict()
    }
}
