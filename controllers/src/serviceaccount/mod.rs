//! ServiceAccount controller: every active namespace has a `default` ServiceAccount; a deleted one is
//! created again. (Token Secrets are not created, as upstream since 1.24: tokens are bound and
//! requested per pod.)

use k1s_apiserver::client::{Client, Gvr};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informers::Informers;
use crate::runtime::{Informer, keep_in_every_namespace};

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

/// Runs the controller until `shutdown` with its own informers.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let informers = Informers::new(client.clone(), shutdown.clone());
    run_with(client, &informers, shutdown).await
}

/// Runs the controller until `shutdown` on shared informers.
pub async fn run_with(client: Client, informers: &Informers, shutdown: CancellationToken) {
    let namespaces = informers.get(NAMESPACES);
    let accounts = informers.get(SERVICE_ACCOUNTS);
    let (ns_cache, sa_cache) = (namespaces.clone(), accounts.clone());
    keep_in_every_namespace(namespaces, accounts, DEFAULT, shutdown, move |ns| {
        let (client, ns_cache, sa_cache) = (client.clone(), ns_cache.clone(), sa_cache.clone());
        async move { sync(&client, &ns_cache, &sa_cache, &ns).await }
    })
    .await;
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
