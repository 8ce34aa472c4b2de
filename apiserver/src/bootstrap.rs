//! What exists at boot: the system namespaces and the `kubernetes` Service, created through the same
//! create path as any request (defaults, validation, managed fields) when missing.

use serde_json::{Value, json};

use crate::response::ApiError;
use crate::rest::{Ctx, create_object};
use crate::state::AppState;

/// Namespaces every cluster has.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

async fn ensure(
    state: &AppState,
    group: &str,
    plural: &str,
    namespace: Option<&str>,
    obj: Value,
) -> Result<(), ApiError> {
    let table = state.table();
    let Some(res) = table.get(group, "v1", plural) else {
        return Ok(());
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if state
        .store()
        .get(&res.key(namespace, &name))
        .ok()
        .flatten()
        .is_some()
    {
        return Ok(());
    }
    let mut ctx = Ctx::internal(state, res, namespace, None, "k1s-apiserver");
    match create_object(&mut ctx, obj).await {
        Ok(_) => Ok(()),
        Err(ApiError(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the system namespaces and the `kubernetes` Service if they are missing.
pub async fn run(state: &AppState) -> Result<(), ApiError> {
    let creates = SYSTEM_NAMESPACES.iter().map(|ns| {
        ensure(
            state,
            "",
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
    });
    for r in futures::future::join_all(creates).await {
        r?;
    }
    let (base, _) = state.config().service_cidr;
    let first = std::net::Ipv4Addr::from(u32::from(base) + 1).to_string();
    let port: u16 = state
        .config()
        .advertise_address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(6443);
    ensure(
        state,
        "",
        "services",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": first, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}], "sessionAffinity": "None", "type": "ClusterIP"}
        }),
    )
    .await
}

/// Creates the `kube-dns` Service in `kube-system` at `cluster_ip` if it is missing: the address
/// pods are told to use for DNS, with CoreDNS's ports and kubeadm's/k3s's labels so tools that look
/// for cluster DNS find it. It has no selector: k1s serves DNS in-process.
pub async fn ensure_kube_dns(
    state: &AppState,
    cluster_ip: std::net::Ipv4Addr,
) -> Result<(), ApiError> {
    ensure(
        state,
        "",
        "services",
        Some("kube-system"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {
                "name": "kube-dns", "namespace": "kube-system",
                "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
                "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}
            },
            "spec": {
                "clusterIP": cluster_ip.to_string(),
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}
                ],
                "sessionAffinity": "None", "type": "ClusterIP"
            }
        }),
    )
    .await
}
