//! One informer per resource for all controllers, as client-go's shared informer factory: one
//! list + watch and one cache per resource, however many controllers subscribe to it.
//!
//! Invariants:
//! - [`Informers::get`] returns the same [`Informer`] (same cache, same notifications) for the
//!   same resource for the life of the registry; it is started on first use;
//! - a subscriber may come after the informer's first sync (and its first `Resync`), so every
//!   controller subscribes, waits for the sync, then works through the cache once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k1s_apiserver::client::{Client, Gvr};
use tokio_util::sync::CancellationToken;

use crate::runtime::Informer;

/// A resource's group, version and plural.
type GvrKey = (&'static str, &'static str, &'static str);

/// The informers of one control plane; cheap to clone.
#[derive(Clone)]
pub struct Informers {
    client: Client,
    shutdown: CancellationToken,
    started: Arc<Mutex<HashMap<GvrKey, Informer>>>,
}

impl Informers {
    /// A registry whose informers list and watch through `client` until `shutdown`.
    pub fn new(client: Client, shutdown: CancellationToken) -> Self {
        Informers {
            client,
            shutdown,
            started: Arc::default(),
        }
    }

    /// The informer of `gvr`, started now if nobody asked for it before.
    pub fn get(&self, gvr: Gvr) -> Informer {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        started
            .entry((gvr.group, gvr.version, gvr.plural))
            .or_insert_with(|| Informer::start(self.client.clone(), gvr, self.shutdown.clone()))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k1s_apiserver::state::AppState;

    #[tokio::test]
    async fn one_informer_per_resource() {
        let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
        let state = AppState::new(store, Default::default());
        k1s_apiserver::bootstrap::run(&state).await.unwrap();
        let stop = CancellationToken::new();
        let informers = Informers::new(Client::new(state, "test"), stop.clone());
        let ns = Gvr::new("", "v1", "namespaces");
        let (a, b) = (informers.get(ns), informers.get(ns));
        a.wait_synced().await;
        assert!(Arc::ptr_eq(
            &a.get("default").unwrap(),
            &b.get("default").unwrap()
        ));
        let pods = informers.get(Gvr::new("", "v1", "pods"));
        pods.wait_synced().await;
        assert!(pods.get("default").is_none());
        stop.cancel();
    }
}
