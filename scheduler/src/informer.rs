//! A watched cache that keeps only what its user reads of each object.
//!
//! Like `k1s_controllers::runtime::Informer` (same [`Event`]s, relist on 410), but every object goes
//! through a projection first: a fully defaulted pod with managed fields costs tens of kilobytes
//! as a `serde_json::Value`, and the scheduler and the node simulator each watch every pod, so at
//! 10,000 pods whole copies would cost hundreds of megabytes. A projection may also drop an object
//! (`None`): it is then not cached, and leaving the projection reads as a deletion.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k1s_apiserver::client::{Change, Client, Gvr};
use k1s_controllers::runtime::{Event, Key, key_of};
use serde_json::{Map, Value};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// What to keep of an object; `None` keeps nothing.
pub type Projection = Arc<dyn Fn(&Value) -> Option<Value> + Send + Sync>;

#[derive(Clone)]
pub struct SlimInformer {
    cache: Arc<RwLock<HashMap<Key, Arc<Value>>>>,
    events: broadcast::Sender<Event>,
    synced: watch::Receiver<bool>,
}

impl SlimInformer {
    /// Starts listing and watching `gvr` (all namespaces) until `shutdown`.
    pub fn start(
        client: Client,
        gvr: Gvr,
        project: Projection,
        shutdown: CancellationToken,
    ) -> SlimInformer {
        let (events, _) = broadcast::channel(k1s_controllers::runtime::EVENT_BUFFER);
        let (synced_tx, synced) = watch::channel(false);
        let informer = SlimInformer {
            cache: Arc::default(),
            events,
            synced,
        };
        let this = informer.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = this.run(client, gvr, project, synced_tx) => {}
            }
        });
        informer
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Key, Arc<Value>>> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(
        &self,
        client: Client,
        gvr: Gvr,
        project: Projection,
        synced: watch::Sender<bool>,
    ) {
        loop {
            let (items, rv) = match client.list(gvr, None, None).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(resource = gvr.plural, error = %e.message, "list failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            {
                let mut cache = self.write();
                cache.clear();
                for obj in items {
                    if let Some(p) = project(&obj) {
                        cache.insert(key_of(&obj), Arc::new(p));
                    }
                }
            }
            let _ = synced.send(true);
            let _ = self.events.send(Event::Resync);
            let Ok(mut w) = client.watch(gvr, None, rv) else {
                continue;
            };
            while let Some(change) = w.next().await {
                let ev = match change {
                    Err(_) => break, // fell behind: relist
                    Ok(Change::Added(obj)) | Ok(Change::Modified(obj)) => {
                        let key = key_of(&obj);
                        match project(&obj) {
                            Some(p) => {
                                let new = Arc::new(p);
                                let old = self.write().insert(key, new.clone());
                                Some(Event::Upsert { old, new })
                            }
                            None => self.write().remove(&key).map(Event::Delete),
                        }
                    }
                    Ok(Change::Deleted(obj)) => {
                        let old = self.write().remove(&key_of(&obj));
                        old.map(|o| Event::Delete(project(&obj).map(Arc::new).unwrap_or(o)))
                    }
                };
                if let Some(ev) = ev {
                    let _ = self.events.send(ev);
                }
            }
        }
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

    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<Value>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// The listed fields of an object (those it has).
pub fn pick(obj: &Value, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for k in keys {
        if let Some(v) = obj.get(*k)
            && !v.is_null()
        {
            out.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// `pick` applied to every element of a list field.
pub fn pick_each(obj: &Value, field: &str, keys: &[&str]) -> Option<Value> {
    obj.get(field)
        .and_then(Value::as_array)
        .map(|items| Value::Array(items.iter().map(|i| pick(i, keys)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pick_copies_only_present_fields() {
        let o = json!({"a": 1, "b": null, "c": {"d": 2}});
        assert_eq!(
            pick(&o, &["a", "b", "c", "x"]),
            json!({"a": 1, "c": {"d": 2}})
        );
        let l = json!({"items": [{"n": 1, "m": 2}, {"m": 3}]});
        assert_eq!(pick_each(&l, "items", &["n"]), Some(json!([{"n": 1}, {}])));
        assert_eq!(pick_each(&l, "none", &["n"]), None);
    }
}
