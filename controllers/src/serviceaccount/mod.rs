//! ServiceAccount controller: every active namespace has a `default` ServiceAccount; a deleted one is
//! created again. (Token Secrets are not created, as upstream since 1.24: tokens are bound and
//! requested per pod.)

use std::time::Duration;

use k1s_apiserver::client::{Client, Gvr};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::runtime::{Event, Informer, WorkQueue, key_of, split_key};

const NAMESPACES: Gvr = Gvr::new("", "v1", "namespaces");
const SERVICE_ACCOUNTS: Gvr = Gvr::new("", "v1", "serviceaccounts");

/// The ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

/// Whether a cached namespace accepts new objects (exists and is not terminating).
pub(crate) fn namespace_active(namespaces: &Informer, ns: &str) -> bool {
    namespaces.get(ns).is_some_and(|n| {
        n["metadata"]["deletionTimestamp"].is_null() && n["status"]["phase"] != "Terminating"
    })
}

/// Runs the controller until `shutdown`.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let namespaces = Informer::start(client.clone(), NAMESPACES, shutdown.clone());
    let accounts = Informer::start(client.clone(), SERVICE_ACCOUNTS, shutdown.clone());
    let queue = WorkQueue::new();
    let mut ns_events = namespaces.subscribe();
    let mut sa_events = accounts.subscribe();
    namespaces.wait_synced().await;
    accounts.wait_synced().await;
    for ns in namespaces.keys() {
        queue.add(ns);
    }
    let worker = {
        let queue = queue.clone();
        let (namespaces, accounts) = (namespaces.clone(), accounts.clone());
        async move {
            loop {
                let ns = queue.next().await;
                if let Err(e) = sync(&client, &namespaces, &accounts, &ns).await {
                    tracing::warn!(namespace = %ns, error = %e.message, "default ServiceAccount: sync failed");
                    queue.add_after(ns.clone(), Duration::from_secs(1));
                }
                queue.done(&ns);
            }
        }
    };
    let events = async {
        loop {
            tokio::select! {
                ev = ns_events.recv() => match ev {
                    Ok(Event::Upsert { new, .. }) => queue.add(key_of(&new)),
                    Ok(Event::Delete(_)) => {}
                    Ok(Event::Resync) | Err(_) => namespaces.keys().into_iter().for_each(|k| queue.add(k)),
                },
                ev = sa_events.recv() => match ev {
                    Ok(Event::Delete(sa)) | Ok(Event::Upsert { new: sa, .. })
                        if sa["metadata"]["name"] == DEFAULT =>
                    {
                        if let (Some(ns), _) = split_key(&key_of(&sa)) {
                            queue.add(ns.to_string());
                        }
                    }
                    Ok(Event::Resync) | Err(_) => namespaces.keys().into_iter().for_each(|k| queue.add(k)),
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

async fn sync(
    client: &Client,
    namespaces: &Informer,
    accounts: &Informer,
    ns: &str,
) -> Result<(), k1s_apimachinery::status::StatusError> {
    if !namespace_active(namespaces, ns) || accounts.get(&format!("{ns}/{DEFAULT}")).is_some() {
        return Ok(());
    }
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT}});
    match client.create(SERVICE_ACCOUNTS, Some(ns), &sa).await {
        Ok(_) => Ok(()),
        // Exists already (the cache lags), or the namespace is going away.
        Err(e) if e.code == 409 || e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
