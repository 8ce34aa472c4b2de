//! Garbage collector: deletes the dependents of owners that are gone, finishes foreground and orphan
//! deletions, as kube-controller-manager's garbage collector does.
//!
//! An informer per watched resource feeds one [`graph::Graph`] (owner uid → dependent uids). Work is
//! keyed by uid and level-triggered: processing an object looks only at the current graph (plus a live
//! GET before believing an owner is absent), so it can run any number of times with the same outcome.
//!
//! - A dependent whose owners are all gone (or never existed) is deleted with Background propagation;
//!   one that still has an existing owner only loses the dangling ownerReferences.
//! - An owner with `deletionTimestamp` and finalizer `foregroundDeletion` gets its dependents deleted
//!   (Foreground when they have dependents of their own, so the deletion recurses); once no dependent
//!   with `blockOwnerDeletion: true` remains, the finalizer is removed and the API server deletes it.
//! - An owner with finalizer `orphan` has its ownerReferences removed from every dependent, then the
//!   finalizer.
//! - Cycles: an object being deleted in the foreground that reaches itself through blocking dependents
//!   which are all deleting in the foreground stops blocking its owners (`blockOwnerDeletion: false`),
//!   which breaks the wait; graph walks are bounded by visited sets, so nothing loops.
//!
//! Watched: the built-in namespaced kinds controllers create and own (pods, services, endpoints,
//! endpointslices, configmaps, secrets, serviceaccounts, core events, leases, limitranges,
//! resourcequotas, deployments, replicasets, statefulsets, daemonsets) and nodes and namespaces as
//! cluster-scoped owners. Custom resources are not watched: their dependents are not collected, but
//! they can be owners (found with a live GET through the resource table).

mod graph;
mod process;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k1s_apiserver::client::{Client, Gvr};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::informers::Informers;
use crate::runtime::{Event, Informer, WorkQueue};
use graph::{Graph, deleting, deleting_dependents, has_finalizer, owner_uids, uid_of};

/// Finalizer of a foreground deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer of an orphaning deletion.
pub const ORPHAN: &str = "orphan";

/// Workers processing the queue concurrently.
const WORKERS: usize = 4;
/// Every object is looked at again this often, in case an event was missed.
const RESYNC: Duration = Duration::from_secs(300);

/// The resources whose objects join the graph.
pub const WATCHED: &[Gvr] = &[
    Gvr::new("", "v1", "pods"),
    Gvr::new("", "v1", "services"),
    Gvr::new("", "v1", "endpoints"),
    Gvr::new("", "v1", "configmaps"),
    Gvr::new("", "v1", "secrets"),
    Gvr::new("", "v1", "serviceaccounts"),
    Gvr::new("", "v1", "events"),
    Gvr::new("", "v1", "limitranges"),
    Gvr::new("", "v1", "resourcequotas"),
    Gvr::new("", "v1", "nodes"),
    Gvr::new("", "v1", "namespaces"),
    Gvr::new("apps", "v1", "deployments"),
    Gvr::new("apps", "v1", "replicasets"),
    Gvr::new("apps", "v1", "statefulsets"),
    Gvr::new("apps", "v1", "daemonsets"),
    Gvr::new("discovery.k8s.io", "v1", "endpointslices"),
    Gvr::new("coordination.k8s.io", "v1", "leases"),
];

/// Shared state of the collector.
#[derive(Clone)]
pub(crate) struct Gc {
    client: Client,
    graph: Arc<Mutex<Graph>>,
    queue: WorkQueue,
    /// Consecutive failures per uid, for the requeue backoff.
    failures: Arc<Mutex<HashMap<String, u32>>>,
}

impl Gc {
    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one informer event to the graph and queues what it affects.
    fn handle(&self, informer: &Informer, ev: Event) {
        match ev {
            Event::Upsert { new, .. } => {
                let Some(uid) = uid_of(&new).map(str::to_string) else {
                    return;
                };
                let mut touched: Vec<String> = owner_uids(&new).map(str::to_string).collect();
                let old = self.graph().upsert(informer.gvr, new.clone());
                if let Some(old) = old {
                    touched.extend(owner_uids(&old.obj).map(str::to_string));
                }
                // An object being deleted for other reasons needs nothing until it is gone.
                let others_finish_it =
                    deleting(&new) && !has_finalizer(&new, ORPHAN) && !deleting_dependents(&new);
                if !others_finish_it {
                    self.queue.add(uid.clone());
                }
                if deleting_dependents(&new) {
                    // Its dependents must go; they are deleted when processed.
                    for d in self.graph().dependents(&uid) {
                        self.queue.add(d);
                    }
                }
                self.touch_owners(touched);
            }
            Event::Delete(obj) => {
                let Some(uid) = uid_of(&obj).map(str::to_string) else {
                    return;
                };
                let deps = {
                    let mut g = self.graph();
                    g.remove(&uid);
                    g.dependents(&uid)
                };
                for d in deps {
                    self.queue.add(d);
                }
                self.touch_owners(owner_uids(&obj).map(str::to_string).collect());
            }
            Event::Resync => self.resync(informer),
        }
    }

    /// Queues the owners (among `uids`) that wait for their dependents.
    fn touch_owners(&self, uids: Vec<String>) {
        let g = self.graph();
        for u in uids {
            if g.get(&u).is_some_and(|n| deleting_dependents(&n.obj)) {
                self.queue.add(u);
            }
        }
    }

    /// Rebuilds one resource's part of the graph from its informer's cache.
    fn resync(&self, informer: &Informer) {
        let items = informer.list(None);
        let mut queued = Vec::new();
        {
            let mut g = self.graph();
            let mut gone: std::collections::HashSet<String> =
                g.uids_of(informer.gvr).into_iter().collect();
            for obj in items {
                if let Some(uid) = uid_of(&obj) {
                    gone.remove(uid);
                    queued.push(uid.to_string());
                }
                g.upsert(informer.gvr, obj);
            }
            for uid in gone {
                if let Some(n) = g.remove(&uid) {
                    queued.extend(owner_uids(&n.obj).map(str::to_string));
                }
                queued.extend(g.dependents(&uid));
            }
        }
        for u in queued {
            self.queue.add(u);
        }
    }

    async fn worker(self) {
        loop {
            let uid = self.queue.next().await;
            let result = process::process(&self, &uid).await;
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(()) => {
                    failures.remove(&uid);
                }
                Err(e) => {
                    let n = failures.entry(uid.clone()).or_default();
                    *n = (*n + 1).min(10);
                    let delay = Duration::from_millis(50u64 << *n).min(Duration::from_secs(30));
                    tracing::debug!(%uid, error = %e.message, "garbage collection failed; retrying");
                    self.queue.add_after(uid.clone(), delay);
                }
            }
            drop(failures);
            self.queue.done(&uid);
        }
    }
}

/// Runs the garbage collector until `shutdown` with its own informers.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let informers = Informers::new(client.clone(), shutdown.clone());
    run_with(client, &informers, shutdown).await
}

/// Runs the garbage collector until `shutdown` on shared informers.
pub async fn run_with(client: Client, shared: &Informers, shutdown: CancellationToken) {
    let table = client.state().table();
    let informers: Vec<Informer> = WATCHED
        .iter()
        .filter(|g| table.get(g.group, g.version, g.plural).is_some())
        .map(|g| shared.get(*g))
        .collect();
    let gc = Gc {
        client,
        graph: Arc::default(),
        queue: WorkQueue::new(),
        failures: Arc::default(),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut receivers: Vec<_> = informers.iter().map(Informer::subscribe).collect();
    for i in &informers {
        i.wait_synced().await;
    }
    for i in &informers {
        gc.resync(i);
    }
    for (informer, mut rx) in informers.into_iter().zip(receivers.drain(..)) {
        let gc = gc.clone();
        tasks.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => gc.handle(&informer, ev),
                    Err(RecvError::Lagged(_)) => gc.resync(&informer),
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }
    for _ in 0..WORKERS {
        tasks.spawn(gc.clone().worker());
    }
    let resync = gc.clone();
    tasks.spawn(async move {
        loop {
            tokio::time::sleep(RESYNC).await;
            let uids = resync.graph().all_uids();
            for u in uids {
                resync.queue.add(u);
            }
        }
    });
    shutdown.cancelled().await;
    tasks.abort_all();
}
