//! Root CA publisher: every active namespace has a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the
//! cluster CA, as kube-controller-manager publishes it; one deleted or changed is restored.

use k1s_apimachinery::status::StatusError;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::informers::Informers;
use crate::runtime::{Informer, keep_in_every_namespace};
use crate::serviceaccount::namespace_active;

const NAMESPACES: Gvr = Gvr::new("", "v1", "namespaces");
const CONFIG_MAPS: Gvr = Gvr::new("", "v1", "configmaps");

/// The published ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
/// Its data key.
pub const KEY: &str = "ca.crt";
const DESCRIPTION_KEY: &str = "kubernetes.io/description";
/// What the ConfigMap is for, in its description annotation (the text clusters show).
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver \
when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other \
usage is guaranteed across distributions of Kubernetes clusters.";

/// Runs the publisher until `shutdown` with its own informers.
pub async fn run(client: Client, ca_pem: String, shutdown: CancellationToken) {
    let informers = Informers::new(client.clone(), shutdown.clone());
    run_with(client, &informers, ca_pem, shutdown).await
}

/// Runs the publisher until `shutdown` on shared informers.
pub async fn run_with(
    client: Client,
    informers: &Informers,
    ca_pem: String,
    shutdown: CancellationToken,
) {
    let namespaces = informers.get(NAMESPACES);
    let maps = informers.get(CONFIG_MAPS);
    let (ns_cache, cm_cache) = (namespaces.clone(), maps.clone());
    keep_in_every_namespace(namespaces, maps, NAME, shutdown, move |ns| {
        let (client, ns_cache, cm_cache) = (client.clone(), ns_cache.clone(), cm_cache.clone());
        let ca_pem = ca_pem.clone();
        async move { sync(&client, &ns_cache, &cm_cache, &ca_pem, &ns).await }
    })
    .await;
}

fn up_to_date(cm: &Value, ca_pem: &str) -> bool {
    cm["data"] == json!({KEY: ca_pem})
        && cm["metadata"]["annotations"][DESCRIPTION_KEY] == DESCRIPTION
}

async fn sync(
    client: &Client,
    namespaces: &Informer,
    maps: &Informer,
    ca_pem: &str,
    ns: &str,
) -> Result<(), StatusError> {
    if !namespace_active(namespaces, ns) {
        return Ok(());
    }
    let result = match maps.get(&format!("{ns}/{NAME}")) {
        Some(cm) if up_to_date(&cm, ca_pem) => return Ok(()),
        Some(cm) => {
            let mut cm = (*cm).clone();
            cm["data"] = json!({KEY: ca_pem});
            if !cm["metadata"]["annotations"].is_object() {
                cm["metadata"]["annotations"] = json!({});
            }
            cm["metadata"]["annotations"][DESCRIPTION_KEY] = json!(DESCRIPTION);
            client.update(CONFIG_MAPS, &cm).await
        }
        None => {
            let cm = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": NAME, "annotations": {DESCRIPTION_KEY: DESCRIPTION}},
                "data": {KEY: ca_pem},
            });
            client.create(CONFIG_MAPS, Some(ns), &cm).await
        }
    };
    match result {
        Ok(_) => Ok(()),
        // A stale cache (409 is retried when the informer catches up, which queues the namespace
        // again) or a namespace going away.
        Err(e) if e.code == 409 || e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
