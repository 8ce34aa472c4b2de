//! Keeping the index current: list Services and EndpointSlices, then watch each from its list's
//! revision; a watch that falls behind (410) or fails relists and replaces that half of the index.
//!
//! Invariants: each object is parsed once, into its compact index entry, and the JSON is dropped;
//! the index lock is taken once per event (or once per relist), never across an await.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k1s_apiserver::client::{Change, Client, Gvr};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::handler::Shared;
use crate::index::{Index, service_from_json, slice_from_json};

const SERVICES: Gvr = Gvr::new("", "v1", "services");
const SLICES: Gvr = Gvr::new("discovery.k8s.io", "v1", "endpointslices");

/// How one resource maps onto the index.
#[derive(Clone, Copy)]
enum Resource {
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

    fn replace(self, idx: &mut Index, items: &[Value]) {
        match self {
            Resource::Services => idx.replace_services(items.iter().filter_map(service_from_json)),
            Resource::Slices => idx.replace_slices(items.iter().filter_map(slice_from_json)),
        }
    }

    fn apply(self, idx: &mut Index, change: &Change) {
        match (self, change) {
            (Resource::Services, Change::Added(o) | Change::Modified(o)) => {
                if let Some((key, svc)) = service_from_json(o) {
                    idx.upsert_service(key, svc);
                }
            }
            (Resource::Services, Change::Deleted(o)) => {
                if let Some((key, _)) = service_from_json(o) {
                    idx.remove_service(&key);
                }
            }
            (Resource::Slices, Change::Added(o) | Change::Modified(o)) => {
                if let Some((key, name, slice)) = slice_from_json(o) {
                    idx.upsert_slice(key, name, slice);
                }
            }
            (Resource::Slices, Change::Deleted(o)) => {
                if let Some((key, name, _)) = slice_from_json(o) {
                    idx.remove_slice(&key, &name);
                }
            }
        }
    }
}

/// Runs both informers until `shutdown`; marks `shared.synced` once both have listed.
pub async fn run(client: Client, shared: Arc<Shared>, shutdown: CancellationToken) {
    let listed = Arc::new(AtomicUsize::new(0));
    let services = informer(
        client.clone(),
        shared.clone(),
        Resource::Services,
        listed.clone(),
    );
    let slices = informer(client, shared, Resource::Slices, listed);
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = services => {}
        _ = slices => {}
    }
}

async fn informer(client: Client, shared: Arc<Shared>, res: Resource, listed: Arc<AtomicUsize>) {
    let mut first = true;
    client
        .reflect(
            res.gvr(),
            |items| {
                res.replace(
                    &mut shared.index.write().unwrap_or_else(|e| e.into_inner()),
                    &items,
                );
                if std::mem::take(&mut first) && listed.fetch_add(1, Ordering::AcqRel) == 1 {
                    shared.synced.store(true, Ordering::Release);
                }
            },
            |change| {
                res.apply(
                    &mut shared.index.write().unwrap_or_else(|e| e.into_inner()),
                    &change,
                )
            },
        )
        .await
}
