//! Keeping the index current: list Services and EndpointSlices, then watch each from its list's
//! revision; a watch that falls behind (410) or fails relists and replaces that half of the index.
//!
//! Invariants: each object is parsed once into its compact entry and the JSON dropped; the index
//! lock is held per event, never across an await; every change wakes the sync loop.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use k1s_apiserver::client::{Change, Client, Gvr};
use serde_json::Value;

use crate::model::{Index, Key, service_from_json, slice_from_json};
use crate::sync::Shared;

pub(crate) const SERVICES: Gvr = Gvr::new("", "v1", "services");
const SLICES: Gvr = Gvr::new("discovery.k8s.io", "v1", "endpointslices");

#[derive(Clone, Copy)]
pub(crate) enum Resource {
    Services,
    Slices,
}

impl Resource {
    fn gvr(self) -> Gvr {
        match self {
            Resource::Services => SERVICES,
            Resource::Slices => SLICES,
        }
    }

    fn replace(self, idx: &mut Index, items: &[Value], node: &str) {
        match self {
            Resource::Services => {
                idx.services.clear();
                for svc in items.iter().filter_map(service_from_json) {
                    idx.upsert_service(svc);
                }
            }
            Resource::Slices => {
                idx.slices.clear();
                for (key, name, slice) in items.iter().filter_map(|o| slice_from_json(o, node)) {
                    idx.upsert_slice(key, name, slice);
                }
            }
        }
    }

    /// Applies one change; returns the key of the service it affects.
    fn apply(self, idx: &mut Index, change: &Change, node: &str) -> Option<Key> {
        match (self, change) {
            (Resource::Services, Change::Added(o) | Change::Modified(o)) => {
                let svc = service_from_json(o)?;
                let key: Key = format!("{}/{}", svc.namespace, svc.name).into();
                idx.upsert_service(svc);
                Some(key)
            }
            (Resource::Services, Change::Deleted(o)) => {
                let svc = service_from_json(o)?;
                let key: Key = format!("{}/{}", svc.namespace, svc.name).into();
                idx.remove_service(&key);
                Some(key)
            }
            (Resource::Slices, Change::Added(o) | Change::Modified(o)) => {
                let (key, name, slice) = slice_from_json(o, node)?;
                idx.upsert_slice(key.clone(), name, slice);
                Some(key)
            }
            (Resource::Slices, Change::Deleted(o)) => {
                let (key, name, _) = slice_from_json(o, node)?;
                idx.remove_slice(&key, &name);
                Some(key)
            }
        }
    }
}

/// Lists and watches one resource into `shared.index` forever (the caller cancels it).
pub(crate) async fn informer(client: Client, shared: Arc<Shared>, res: Resource) {
    let mut first = true;
    client
        .reflect(
            res.gvr(),
            |items| {
                res.replace(&mut shared.lock_index(), &items, &shared.node_name);
                shared.mark_all();
                drop(items);
                if std::mem::take(&mut first) {
                    shared.listed.fetch_add(1, Ordering::AcqRel);
                }
                shared.dirty.notify_one();
            },
            |change| {
                tracing::trace!(resource = res.gvr().plural, "proxy watch event");
                if let Some(key) = res.apply(&mut shared.lock_index(), &change, &shared.node_name) {
                    shared.mark(key);
                }
                shared.dirty.notify_one();
            },
        )
        .await
}
