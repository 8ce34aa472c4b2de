//! `metrics.k8s.io/v1beta1`: NodeMetrics (`nodes`) and PodMetrics (`pods`, namespaced), list and
//! get with label selectors, served in-process from a [`ResourceMetrics`] source the node installs
//! ([`crate::state::AppState::set_resource_metrics`]), so `kubectl top` works without a
//! metrics-server pod.
//!
//! Invariants: the group is in the resource table (and so in discovery) only while a source is
//! installed; without one kubectl sees no Metrics API, as on a cluster without metrics-server;
//! requests never reach the store (nothing of this group is stored), and only `get`/`list` exist.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use k1s_apimachinery::selector::label::LabelSelector;
use k1s_apimachinery::status::StatusError;
use serde_json::{Value, json};

use crate::request::{Query, ResourcePath};
use crate::resources::{Resource, StrategyKind};
use crate::response::{ApiError, ApiResult, json_value};

/// The API group.
pub const GROUP: &str = "metrics.k8s.io";
const VERSION: &str = "v1beta1";

/// The current usage objects: complete `NodeMetrics` and `PodMetrics` (metadata with the pod's
/// labels, `timestamp`, `window`, usage).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: Vec<Value>,
    pub pods: Vec<Value>,
}

/// A snapshot being computed (it may read cgroups, off the async workers).
pub type SnapshotFuture = Pin<Box<dyn Future<Output = Snapshot> + Send>>;

/// Where the metrics come from (the kubelet).
pub trait ResourceMetrics: Send + Sync {
    /// The usage of the node and its pods now.
    fn snapshot(&self) -> SnapshotFuture;
}

/// A shared source.
pub type SharedResourceMetrics = Arc<dyn ResourceMetrics>;

fn row(kind: &str, plural: &str, namespaced: bool) -> Resource {
    Resource {
        group: GROUP.into(),
        version: VERSION.into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: String::new(),
        namespaced,
        short_names: Vec::new(),
        categories: Vec::new(),
        subresources: Vec::new(),
        // Never used: requests of this group are answered here, before any strategy.
        strategy: StrategyKind::Custom,
        custom: None,
        preferred: true,
    }
}

/// The group's rows of the resource table.
pub fn resources() -> Vec<Resource> {
    vec![
        row("NodeMetrics", "nodes", false),
        row("PodMetrics", "pods", true),
    ]
}

/// Serves one request of the group.
pub async fn handle(
    source: Option<SharedResourceMetrics>,
    method: &Method,
    path: &ResourcePath,
    query: &Query,
) -> ApiResult {
    let Some(source) = source else {
        return Err(ApiError(StatusError::service_unavailable(
            "the server is currently unable to handle the request",
        )));
    };
    let nodes = match path.plural.as_str() {
        "nodes" if path.namespace.is_none() => true,
        "pods" => false,
        _ => return Err(ApiError(crate::response::unknown_path())),
    };
    if method != Method::GET || query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return Err(ApiError(StatusError::method_not_supported(
            GROUP,
            &path.plural,
            method.as_str(),
        )));
    }
    let selector = match query.get("labelSelector") {
        Some(s) => {
            LabelSelector::parse(s).map_err(|e| ApiError(StatusError::bad_request(e.0.clone())))?
        }
        None => LabelSelector::everything(),
    };
    let snap = source.snapshot().await;
    let (items, kind) = if nodes {
        (snap.nodes, "NodeMetrics")
    } else {
        (snap.pods, "PodMetrics")
    };
    let ns = path.namespace.as_deref();
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|o| ns.is_none_or(|ns| o["metadata"]["namespace"] == ns))
        .filter(|o| selector.matches_object(o))
        .collect();
    if let Some(name) = &path.name {
        let found = items
            .into_iter()
            .find(|o| o["metadata"]["name"] == name.as_str())
            .ok_or_else(|| ApiError(StatusError::not_found(GROUP, &path.plural, name)))?;
        return Ok(json_value(StatusCode::OK, &found));
    }
    items.sort_by(|a, b| {
        let key = |o: &Value| {
            (
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let list = json!({
        "kind": format!("{kind}List"),
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {},
        "items": items,
    });
    Ok(json_value(StatusCode::OK, &list))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Snapshot);

    impl ResourceMetrics for Fixed {
        fn snapshot(&self) -> SnapshotFuture {
            let s = self.0.clone();
            Box::pin(async move { s })
        }
    }

    fn pod(ns: &str, name: &str, app: &str) -> Value {
        json!({"kind": "PodMetrics", "metadata": {"namespace": ns, "name": name, "labels": {"app": app}},
               "containers": [{"name": "c", "usage": {"cpu": "1m", "memory": "1Ki"}}]})
    }

    fn path(ns: Option<&str>, plural: &str, name: Option<&str>) -> ResourcePath {
        ResourcePath {
            group: GROUP.into(),
            version: VERSION.into(),
            plural: plural.into(),
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            subresource: None,
        }
    }

    async fn body(r: ApiResult) -> Value {
        let resp = r.unwrap_or_else(|e| panic!("{:?}", e.0));
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn lists_filter_by_namespace_and_labels_and_get_finds_one() {
        let src: SharedResourceMetrics = Arc::new(Fixed(Snapshot {
            nodes: vec![json!({"kind": "NodeMetrics", "metadata": {"name": "n1"}})],
            pods: vec![
                pod("b", "p2", "web"),
                pod("a", "p1", "web"),
                pod("a", "p3", "db"),
            ],
        }));
        let q = Query::parse(None);
        let all = body(
            handle(
                Some(src.clone()),
                &Method::GET,
                &path(None, "pods", None),
                &q,
            )
            .await,
        )
        .await;
        let names: Vec<&str> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["p1", "p3", "p2"]);
        assert_eq!(all["kind"], "PodMetricsList");
        let q = Query::parse(Some("labelSelector=app%3Dweb"));
        let web = body(
            handle(
                Some(src.clone()),
                &Method::GET,
                &path(Some("a"), "pods", None),
                &q,
            )
            .await,
        )
        .await;
        assert_eq!(web["items"].as_array().unwrap().len(), 1);
        assert_eq!(web["items"][0]["metadata"]["name"], "p1");
        let q = Query::parse(None);
        let one = body(
            handle(
                Some(src.clone()),
                &Method::GET,
                &path(Some("b"), "pods", Some("p2")),
                &q,
            )
            .await,
        )
        .await;
        assert_eq!(one["metadata"]["name"], "p2");
        let missing = handle(
            Some(src.clone()),
            &Method::GET,
            &path(Some("a"), "pods", Some("p2")),
            &q,
        )
        .await;
        assert_eq!(missing.err().unwrap().0.code, 404);
        let node = body(
            handle(
                Some(src.clone()),
                &Method::GET,
                &path(None, "nodes", Some("n1")),
                &q,
            )
            .await,
        )
        .await;
        assert_eq!(node["kind"], "NodeMetrics");
        let post = handle(Some(src), &Method::POST, &path(None, "nodes", None), &q).await;
        assert_eq!(post.err().unwrap().0.code, 405);
        let none = handle(None, &Method::GET, &path(None, "nodes", None), &q).await;
        assert_eq!(none.err().unwrap().0.code, 503);
    }
}
