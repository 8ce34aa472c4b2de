//! The machinery every controller shares: informers (list + watch into a cache, with change
//! notifications) and a de-duplicating work queue with delayed requeues.
//!
//! Invariants:
//! - an [`Informer`]'s cache holds each object as [`project`] trims it, never the stored whole;
//! - an [`Informer`]'s cache is a consistent copy of the resource as of some revision; after a watch
//!   falls behind (410) it relists, replaces the cache and notifies a [`Event::Resync`];
//! - a key is in a [`WorkQueue`] at most once, and is never handed to two workers at the same time:
//!   a key added while it is being processed is handed out again after [`WorkQueue::done`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k1s_apiserver::client::{Change, Client, Gvr};
use serde_json::Value;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::projection::project;

/// `namespace/name`, or `name` for cluster-scoped objects.
pub type Key = String;

/// Notifications an informer buffers per subscriber. Each slot keeps its event's objects (the old
/// and new state) alive until it is overwritten, so this is memory; a subscriber that lags further
/// gets `Lagged` and rebuilds from the cache (a [`Event::Resync`]).
pub const EVENT_BUFFER: usize = 1024;

/// The cache key of an object.
pub fn key_of(obj: &Value) -> Key {
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    match meta["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Splits a key into (namespace, name).
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// A change an informer saw.
#[derive(Clone, Debug)]
pub enum Event {
    /// Created or changed; `old` is the previous cached state.
    Upsert {
        old: Option<Arc<Value>>,
        new: Arc<Value>,
    },
    /// Deleted; the last state.
    Delete(Arc<Value>),
    /// The cache was rebuilt from a fresh list: anything may have changed.
    Resync,
}

/// A cached, watched copy of one resource (each object trimmed by [`project`]).
#[derive(Clone)]
pub struct Informer {
    pub gvr: Gvr,
    cache: Arc<RwLock<HashMap<Key, Arc<Value>>>>,
    events: broadcast::Sender<Event>,
    synced: watch::Receiver<bool>,
}

impl Informer {
    /// Starts listing and watching `gvr` (all namespaces) until `shutdown`.
    pub fn start(client: Client, gvr: Gvr, shutdown: CancellationToken) -> Informer {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (synced_tx, synced) = watch::channel(false);
        let informer = Informer {
            gvr,
            cache: Arc::default(),
            events,
            synced,
        };
        let this = informer.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = this.run(client, synced_tx) => {}
            }
        });
        informer
    }

    async fn run(&self, client: Client, synced: watch::Sender<bool>) {
        client
            .reflect(
                self.gvr,
                |items| {
                    let items: Vec<_> = items
                        .into_iter()
                        .map(|obj| Arc::new(project(self.gvr, obj)))
                        .collect();
                    {
                        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
                        cache.clear();
                        for obj in items {
                            cache.insert(key_of(&obj), obj);
                        }
                    }
                    let _ = synced.send(true);
                    let _ = self.events.send(Event::Resync);
                },
                |change| {
                    let ev = match change {
                        Change::Added(obj) | Change::Modified(obj) => {
                            let new = Arc::new(project(self.gvr, obj));
                            let old = self
                                .cache
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(key_of(&new), new.clone());
                            Event::Upsert { old, new }
                        }
                        Change::Deleted(obj) => {
                            self.cache
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&key_of(&obj));
                            Event::Delete(Arc::new(project(self.gvr, obj)))
                        }
                    };
                    let _ = self.events.send(ev);
                },
            )
            .await
    }

    /// Notifications of changes; a receiver that lags should treat it as a [`Event::Resync`].
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Waits until the first list has filled the cache.
    pub async fn wait_synced(&self) {
        let mut s = self.synced.clone();
        let _ = s.wait_for(|v| *v).await;
    }

    /// One cached object.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Every cached object, optionally of one namespace.
    pub fn list(&self, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache
            .values()
            .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"].as_str() == Some(ns)))
            .cloned()
            .collect()
    }

    /// Every cached key.
    pub fn keys(&self) -> Vec<Key> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

#[derive(Default)]
struct QueueState {
    queue: VecDeque<Key>,
    queued: HashSet<Key>,
    active: HashSet<Key>,
    /// Added while active: re-queued on `done`.
    dirty: HashSet<Key>,
}

/// A de-duplicating work queue.
#[derive(Clone, Default)]
pub struct WorkQueue {
    state: Arc<Mutex<QueueState>>,
    notify: Arc<Notify>,
}

impl WorkQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `key` unless it is already queued.
    pub fn add(&self, key: Key) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.active.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: Key, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// The next key to work on; the caller must call [`WorkQueue::done`] with it.
    pub async fn next(&self) -> Key {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(key) = s.queue.pop_front() {
                    s.queued.remove(&key);
                    s.active.insert(key.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` finished; re-queues it if it was added meanwhile.
    pub fn done(&self, key: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.active.remove(key);
        if s.dirty.remove(key) && s.queued.insert(key.to_string()) {
            s.queue.push_back(key.to_string());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drives a controller that keeps one object named `name` (among `objects`) in every namespace: a
/// change to a namespace, or to an object of that name, queues the namespace for `sync`; a failed
/// sync is retried after a second. Runs until `shutdown`.
pub async fn keep_in_every_namespace<F, Fut>(
    namespaces: Informer,
    objects: Informer,
    name: &'static str,
    shutdown: CancellationToken,
    sync: F,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), k1s_apimachinery::status::StatusError>>,
{
    let queue = WorkQueue::new();
    let mut ns_events = namespaces.subscribe();
    let mut obj_events = objects.subscribe();
    namespaces.wait_synced().await;
    objects.wait_synced().await;
    for ns in namespaces.keys() {
        queue.add(ns);
    }
    let worker = async {
        loop {
            let ns = queue.next().await;
            if let Err(e) = sync(ns.clone()).await {
                tracing::warn!(namespace = %ns, object = name, error = %e.message, "sync failed");
                queue.add_after(ns.clone(), Duration::from_secs(1));
            }
            queue.done(&ns);
        }
    };
    let requeue_all = || namespaces.keys().into_iter().for_each(|k| queue.add(k));
    let events = async {
        loop {
            tokio::select! {
                ev = ns_events.recv() => match ev {
                    Ok(Event::Upsert { new, .. }) => queue.add(key_of(&new)),
                    Ok(Event::Delete(_)) => {}
                    Ok(Event::Resync) | Err(_) => requeue_all(),
                },
                ev = obj_events.recv() => match ev {
                    Ok(Event::Delete(obj)) | Ok(Event::Upsert { new: obj, .. })
                        if obj["metadata"]["name"] == name =>
                    {
                        if let (Some(ns), _) = split_key(&key_of(&obj)) {
                            queue.add(ns.to_string());
                        }
                    }
                    Ok(Event::Resync) | Err(_) => requeue_all(),
                    Ok(_) => {}
                },
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = worker => {}
        _ = events => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queue_dedups_and_requeues_dirty_keys() {
        let q = WorkQueue::new();
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, "a");
        q.add("a".into()); // while active: dirty
        assert_eq!(q.len(), 1);
        q.done("a");
        assert_eq!(q.next().await, "b");
        assert_eq!(q.next().await, "a");
    }

    #[test]
    fn keys() {
        let o = serde_json::json!({"metadata": {"name": "x", "namespace": "ns"}});
        assert_eq!(key_of(&o), "ns/x");
        assert_eq!(split_key("ns/x"), (Some("ns"), "x"));
        assert_eq!(split_key("node1"), (None, "node1"));
    }
}
