//! Deployment controller: rolls a Deployment's pod template out through ReplicaSets named
//! `<deployment>-<pod-template-hash>`, as kube-controller-manager's deployment controller does.
//!
//! Driven by informers on deployments and replicasets, plus a watch of pod deletions. ReplicaSet
//! events enqueue the owning Deployment (or, for orphans, every Deployment whose selector matches);
//! pod deletions enqueue the Deployment of the pod's ReplicaSet (Recreate waits for old pods to be
//! gone). A sync (`sync.rs`):
//! claim ReplicaSets → paused condition → scale only (paused, or `spec.replicas` changed) or roll
//! out (`rollout.rs`: RollingUpdate within maxSurge/maxUnavailable, or Recreate) → clean up old
//! ReplicaSets beyond `revisionHistoryLimit` → status and conditions.
//!
//! Invariants:
//! - level-triggered and idempotent: every decision is recomputed from the caches; every write
//!   carries the `resourceVersion` it was computed from, so a decision made on a stale cache fails
//!   with a conflict and is retried instead of being applied;
//! - the arithmetic lives in pure functions ([`rolling`]) with table tests;
//! - the Deployment's status is written only when it changed.

mod claim;
mod new_rs;
mod progress;
pub mod rolling;
mod rollout;
mod scale;
pub mod status;
mod sync;
pub mod util;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k1s_apimachinery::meta;
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::informers::Informers;
use crate::replicaset::events::Recorder;
use crate::replicaset::{PODS, REPLICASETS};
use crate::runtime::{Event, Informer, Key, WorkQueue, key_of};
use crate::worker;

/// `apps/v1` deployments.
pub const DEPLOYMENTS: Gvr = Gvr::new("apps", "v1", "deployments");

const WORKERS: usize = 4;
const COMPONENT: &str = "deployment-controller";

/// What failed in a sync; the key is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} for deployment {deployment}: {source}")]
    Api {
        action: &'static str,
        deployment: String,
        #[source]
        source: StatusError,
    },
    #[error("deployment {deployment}: {message}")]
    Invalid { deployment: String, message: String },
}

impl Error {
    fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source, .. } if source.code == 409)
    }
}

/// Runs the Deployment controller until `shutdown` with its own informers.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let informers = Informers::new(client.clone(), shutdown.clone());
    run_with(client, &informers, shutdown).await
}

/// Runs the Deployment controller until `shutdown` on shared informers.
pub async fn run_with(client: Client, informers: &Informers, shutdown: CancellationToken) {
    let client = Client::new(client.state().clone(), COMPONENT);
    let ctrl = Arc::new(Controller {
        deployments: informers.get(DEPLOYMENTS),
        rs: informers.get(REPLICASETS),
        recorder: Recorder::new(client.clone(), COMPONENT, "apps/v1", "Deployment"),
        client,
        queue: WorkQueue::new(),
        failures: Mutex::default(),
        delayed: Mutex::default(),
    });
    let mut d_events = ctrl.deployments.subscribe();
    let mut rs_events = ctrl.rs.subscribe();
    let pod_events = informers.get(PODS).subscribe();
    ctrl.deployments.wait_synced().await;
    ctrl.rs.wait_synced().await;
    // The informers' first Resync may have gone out before we subscribed.
    ctrl.enqueue_all();
    let mut workers = tokio::task::JoinSet::new();
    {
        let c = ctrl.clone();
        workers.spawn(async move { c.watch_pod_deletions(pod_events).await });
    }
    for _ in 0..WORKERS {
        let (c, s) = (ctrl.clone(), shutdown.clone());
        workers.spawn(async move { worker::work(&*c, s).await });
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = d_events.recv() => match ev {
                Ok(Event::Upsert { new, .. }) => ctrl.queue.add(key_of(&new)),
                Ok(Event::Delete(d)) => ctrl.queue.add(key_of(&d)),
                Ok(Event::Resync) | Err(RecvError::Lagged(_)) => ctrl.enqueue_all(),
                Err(RecvError::Closed) => break,
            },
            ev = rs_events.recv() => match ev {
                Ok(ev) => ctrl.on_replicaset(ev),
                Err(RecvError::Lagged(_)) => ctrl.enqueue_all(),
                Err(RecvError::Closed) => break,
            },
        }
    }
    workers.shutdown().await;
}

pub(crate) struct Controller {
    client: Client,
    deployments: Informer,
    rs: Informer,
    recorder: Recorder,
    queue: WorkQueue,
    failures: Mutex<HashMap<Key, u32>>,
    /// When the pending delayed requeue of each key fires.
    delayed: Mutex<HashMap<Key, Instant>>,
}

impl Controller {
    /// Syncs `key` again after `after`, unless a requeue that fires no later is already pending:
    /// every sync of a rollout asks for one at its progress deadline, and one timer is enough.
    fn requeue_after(&self, key: &Key, after: Duration) {
        let at = Instant::now() + after;
        let mut delayed = self.delayed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&pending) = delayed.get(key)
            && pending > Instant::now()
            && pending <= at
        {
            return;
        }
        delayed.insert(key.clone(), at);
        self.queue.add_after(key.clone(), after);
    }

    fn enqueue_all(&self) {
        for key in self.deployments.keys() {
            self.queue.add(key);
        }
    }

    fn on_replicaset(&self, ev: Event) {
        match ev {
            Event::Upsert { old, new } => {
                if let Some(old) = &old
                    && meta::resource_version(old) == meta::resource_version(&new)
                {
                    return;
                }
                let new_owner = self.owner_of(&new);
                if let Some(old) = &old {
                    let old_owner = self.owner_of(old);
                    if old_owner != new_owner
                        && let Some(k) = old_owner
                    {
                        self.queue.add(k);
                    }
                }
                match new_owner {
                    Some(k) => self.queue.add(k),
                    None if meta::controller_ref(&new).is_none() => {
                        self.enqueue_matching(&new);
                        if let Some(old) = old {
                            self.enqueue_matching(&old);
                        }
                    }
                    None => {}
                }
            }
            Event::Delete(rs) => {
                if let Some(k) = self.owner_of(&rs) {
                    self.queue.add(k);
                }
            }
            Event::Resync => self.enqueue_all(),
        }
    }

    /// Follows pod deletions (Recreate waits for the last old pod to go) through the shared pod
    /// informer, which the ReplicaSet controller caches anyway.
    async fn watch_pod_deletions(&self, mut pods: broadcast::Receiver<Event>) {
        loop {
            match pods.recv().await {
                Ok(Event::Delete(pod)) => self.on_pod_deleted(&pod),
                Ok(Event::Upsert { .. }) => {}
                // Relisted or fell behind: deletions may have been missed.
                Ok(Event::Resync) | Err(RecvError::Lagged(_)) => self.enqueue_all(),
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn on_pod_deleted(&self, pod: &Value) {
        let Some(r) = meta::controller_ref(pod) else {
            return;
        };
        if r.get("kind").and_then(Value::as_str) != Some("ReplicaSet") {
            return;
        }
        let (Some(ns), Some(name)) = (meta::namespace(pod), r.get("name").and_then(Value::as_str))
        else {
            return;
        };
        if let Some(rs) = self.rs.get(&format!("{ns}/{name}"))
            && let Some(k) = self.owner_of(&rs)
        {
            self.queue.add(k);
        }
    }

    /// The key of the cached Deployment controlling `rs`.
    fn owner_of(&self, rs: &Value) -> Option<Key> {
        let r = meta::controller_ref(rs)?;
        if r.get("kind")?.as_str()? != "Deployment" {
            return None;
        }
        let key = format!("{}/{}", meta::namespace(rs)?, r.get("name")?.as_str()?);
        let d = self.deployments.get(&key)?;
        (meta::uid(&d) == r.get("uid")?.as_str()).then_some(key)
    }

    fn enqueue_matching(&self, rs: &Value) {
        let Some(ns) = meta::namespace(rs) else {
            return;
        };
        for d in self.deployments.list(Some(ns)) {
            if let Ok(sel) = LabelSelector::from_metav1(&d["spec"]["selector"])
                && !sel.is_everything()
                && sel.matches_object(rs)
            {
                self.queue.add(key_of(&d));
            }
        }
    }
}

impl worker::KeyedSync for Controller {
    type Error = Error;
    const NAME: &'static str = "deployment";

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

    fn requeue_after(&self, key: &Key, after: Duration) {
        Controller::requeue_after(self, key, after);
    }
}
