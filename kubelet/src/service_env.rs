//! Docker-link style service environment variables, as the upstream kubelet sets them: for the
//! `kubernetes` service always, and for every service of the pod's namespace unless the pod says
//! `enableServiceLinks: false`. In-cluster clients find the API through
//! `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`.
//!
//! Invariants: headless services and services without a ClusterIP add nothing; the pod's own
//! `env` and `envFrom` come later and win.

use serde_json::Value;

use k1s_apiserver::client::{Client, Gvr};

const SERVICES: Gvr = Gvr::new("", "v1", "services");

/// The variables of `services` (in order; a later service with the same name wins).
pub fn service_env(services: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = svc["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_ascii_uppercase()
            .replace('-', "_");
        let ports: Vec<&Value> = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{name}_SERVICE_PORT"), first["port"].to_string()));
        for p in &ports {
            if let Some(pn) = p["name"].as_str().filter(|n| !n.is_empty()) {
                let pn = pn.to_ascii_uppercase().replace('-', "_");
                out.push((format!("{name}_SERVICE_PORT_{pn}"), p["port"].to_string()));
            }
        }
        let proto = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_string();
        out.push((
            format!("{name}_PORT"),
            format!(
                "{}://{ip}:{}",
                proto(first).to_ascii_lowercase(),
                first["port"]
            ),
        ));
        for p in &ports {
            let (pr, port) = (proto(p), p["port"].to_string());
            let prefix = format!("{name}_PORT_{port}_{pr}");
            out.push((
                prefix.clone(),
                format!("{}://{ip}:{port}", pr.to_ascii_lowercase()),
            ));
            out.push((format!("{prefix}_PROTO"), pr.to_ascii_lowercase()));
            out.push((format!("{prefix}_PORT"), port));
            out.push((format!("{prefix}_ADDR"), ip.to_string()));
        }
    }
    out
}

/// Reads the services a pod in `namespace` sees (`links`: its `enableServiceLinks`).
pub async fn fetch(client: &Client, namespace: &str, links: bool) -> Vec<(String, String)> {
    let mut services = Vec::new();
    if links && let Ok((items, _)) = client.list(SERVICES, Some(namespace), None).await {
        services = items;
    }
    if (namespace != "default" || !links)
        && let Ok(Some(k)) = client.get(SERVICES, Some("default"), "kubernetes").await
    {
        services.push(k);
    }
    service_env(&services)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubernetes_service_vars() {
        let svcs = [
            json!({"metadata": {"name": "kubernetes"}, "spec": {"clusterIP": "10.43.0.1",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}),
            json!({"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
        ];
        let env = service_env(&svcs);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT"), Some("443"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT_HTTPS"), Some("443"));
        assert_eq!(get("KUBERNETES_PORT"), Some("tcp://10.43.0.1:443"));
        assert_eq!(get("KUBERNETES_PORT_443_TCP_ADDR"), Some("10.43.0.1"));
        assert_eq!(get("KUBERNETES_PORT_443_TCP_PROTO"), Some("tcp"));
        assert!(get("HEADLESS_SERVICE_HOST").is_none());
    }
}
