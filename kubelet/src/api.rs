//! The kubelet's API calls besides status: Events about a pod (as `kubelet` from this node),
//! pull-secret reads and the ConfigMaps and Secrets a pod's env and volumes refer to.
//!
//! Invariant: event writes never block or fail a pod's sync (they are fire-and-forget).

use base64::Engine as _;
use k1s_apimachinery::meta::now_rfc3339;
use k1s_apiserver::client::{Client, Gvr};
use k1s_runtime::image::{DockerConfig, RegistryAuth};
use serde_json::{Value, json};

pub const PODS: Gvr = Gvr::new("", "v1", "pods");
const EVENTS: Gvr = Gvr::new("", "v1", "events");
pub const SECRETS: Gvr = Gvr::new("", "v1", "secrets");
pub const CONFIGMAPS: Gvr = Gvr::new("", "v1", "configmaps");

/// Objects by name, `None` where one does not exist (or could not be read).
pub type Named = std::collections::HashMap<String, Option<Value>>;

/// Reads the ConfigMaps `cms` and Secrets `secrets` of namespace `ns`.
pub async fn fetch_config(
    client: &Client,
    ns: &str,
    cms: Vec<String>,
    secrets: Vec<String>,
) -> (Named, Named) {
    let mut out = (Named::new(), Named::new());
    for (gvr, names, map) in [
        (CONFIGMAPS, cms, &mut out.0),
        (SECRETS, secrets, &mut out.1),
    ] {
        for name in names {
            let obj = client.get(gvr, Some(ns), &name).await.ok().flatten();
            map.insert(name, obj);
        }
    }
    out
}

/// Records an Event about `pod` (`field_path` e.g. `spec.containers{web}`).
pub fn event(
    client: &Client,
    node: &str,
    pod: &Value,
    field_path: Option<&str>,
    type_: &str,
    reason: &str,
    message: String,
) {
    let meta = &pod["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or("default").to_string();
    let now = now_rfc3339();
    let mut involved = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": ns,
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
    });
    if let Some(f) = field_path {
        involved["fieldPath"] = json!(f);
    }
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{:x}", meta["name"].as_str().unwrap_or("pod"), uuid::Uuid::new_v4().as_u128() as u64),
            "namespace": ns,
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": "kubelet", "host": node},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": null,
        "count": 1,
        "reportingComponent": "kubelet",
        "reportingInstance": node,
    });
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(e) = client.create(EVENTS, Some(&ns), &ev).await {
            tracing::debug!(error = %e.message, "recording an event failed");
        }
    });
}

/// Registry credentials from the pod's `imagePullSecrets` (`kubernetes.io/dockerconfigjson` and
/// legacy `.dockercfg` are read; missing secrets are skipped, as upstream does with a warning).
pub async fn pull_auth(client: &Client, pod: &Value) -> RegistryAuth {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut config = DockerConfig::default();
    let mut any = false;
    for s in pod["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(name) = s["name"].as_str() else {
            continue;
        };
        let secret = match client.get(SECRETS, Some(ns), name).await {
            Ok(Some(s)) => s,
            _ => {
                tracing::warn!(secret = name, namespace = ns, "image pull secret not found");
                continue;
            }
        };
        let data = secret["data"][".dockerconfigjson"].as_str();
        if let Some(bytes) =
            data.and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            && config.add_json(&bytes).is_ok()
        {
            any = true;
        }
    }
    if any {
        RegistryAuth::DockerConfig(config)
    } else {
        RegistryAuth::Anonymous
    }
}
