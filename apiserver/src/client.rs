//! The in-process API client the control plane (controllers, scheduler, node simulator) uses.
//!
//! Reads and writes go through the same router as a network request (defaults, validation, field
//! management, finalizers), only without TLS and sockets; watches come straight from the store. So a
//! controller can never write what `kubectl` could not, and the code it exercises is the code users hit.

use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use k1s_apimachinery::status::StatusError;
use k1s_store::{EventType, Revision, StoreError};
use serde_json::Value;
use tower::ServiceExt;

use crate::router::router;
use crate::state::AppState;

/// Which resource a call addresses: group (`""` for core), version and plural.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gvr {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
}

impl Gvr {
    pub const fn new(group: &'static str, version: &'static str, plural: &'static str) -> Self {
        Gvr {
            group,
            version,
            plural,
        }
    }

    fn base(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// URL path of a collection or object.
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>) -> String {
        let mut p = self.base();
        if let Some(ns) = namespace {
            p.push_str("/namespaces/");
            p.push_str(ns);
        }
        p.push('/');
        p.push_str(self.plural);
        if let Some(n) = name {
            p.push('/');
            p.push_str(n);
        }
        if let Some(s) = sub {
            p.push('/');
            p.push_str(s);
        }
        p
    }

    /// Store prefix of the resource (optionally one namespace), as the REST path keys it.
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        match namespace {
            Some(ns) => format!("/registry/{group}/{}/{ns}/", self.plural),
            None => format!("/registry/{group}/{}/", self.plural),
        }
    }
}

/// One change seen by a [`Watch`].
#[derive(Clone, Debug)]
pub enum Change {
    Added(Value),
    Modified(Value),
    /// The last state of a deleted object.
    Deleted(Value),
}

/// A watch over one resource, from a revision.
pub struct Watch {
    inner: k1s_store::Watcher,
}

impl Watch {
    /// The next change; `Err` with code 410 when the watch fell behind (relist and watch again).
    pub async fn next(&mut self) -> Option<Result<Change, StatusError>> {
        let ev = self.inner.next().await?;
        Some(match ev {
            Err(StoreError::Expired { requested, oldest }) => Err(StatusError::expired(format!(
                "too old resource version: {requested} ({oldest})"
            ))),
            Err(e) => Err(StatusError::internal(&e.to_string())),
            Ok(ev) => match serde_json::from_slice::<Value>(&ev.kv.value) {
                Ok(obj) => Ok(match ev.kind {
                    EventType::Added => Change::Added(obj),
                    EventType::Modified => Change::Modified(obj),
                    EventType::Deleted => Change::Deleted(obj),
                }),
                Err(e) => Err(StatusError::internal(&e.to_string())),
            },
        })
    }
}

/// In-process client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    state: AppState,
    agent: &'static str,
}

impl Client {
    /// A client whose writes are recorded under `component` (its User-Agent and field manager).
    pub fn new(state: AppState, component: &'static str) -> Self {
        Client {
            state,
            agent: component,
        }
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    async fn call(
        &self,
        method: Method,
        uri: String,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<Value, StatusError> {
        let body = match body {
            Some(v) => Body::from(
                serde_json::to_vec(v).map_err(|e| StatusError::internal(&e.to_string()))?,
            ),
            None => Body::empty(),
        };
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::USER_AGENT, self.agent)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .map_err(|e| StatusError::internal(&e.to_string()))?;
        let resp = router(self.state.clone())
            .oneshot(req)
            .await
            .map_err(|e| StatusError::internal(&e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| StatusError::internal(&e.to_string()))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(status_error(status.as_u16(), &value))
    }

    /// GET one object; `None` when it does not exist.
    pub async fn get(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, StatusError> {
        match self
            .call(
                Method::GET,
                gvr.path(namespace, Some(name), None),
                "application/json",
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// LIST (optionally one namespace and a label selector): the items and the list's revision.
    pub async fn list(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<(Vec<Value>, Revision), StatusError> {
        let mut uri = gvr.path(namespace, None, None);
        if let Some(sel) = label_selector {
            uri.push_str("?labelSelector=");
            uri.extend(form_urlencoded::byte_serialize(sel.as_bytes()));
        }
        let mut list = self
            .call(Method::GET, uri, "application/json", None)
            .await?;
        let rv = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        Ok((items, rv))
    }

    /// Changes after `from` (a list's revision), straight from the store.
    pub fn watch(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        from: Revision,
    ) -> Result<Watch, StatusError> {
        // The table's prefix: a resource may live in another's storage (events.k8s.io Events).
        let prefix = match self.state.table().get(gvr.group, gvr.version, gvr.plural) {
            Some(res) => res.list_prefix(namespace),
            None => gvr.key_prefix(namespace),
        };
        match self.state.store().watch(&prefix, from) {
            Ok(inner) => Ok(Watch { inner }),
            Err(StoreError::Expired { requested, oldest }) => Err(StatusError::expired(format!(
                "too old resource version: {requested} ({oldest})"
            ))),
            Err(e) => Err(StatusError::internal(&e.to_string())),
        }
    }

    /// POST a new object.
    pub async fn create(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        obj: &Value,
    ) -> Result<Value, StatusError> {
        self.call(
            Method::POST,
            gvr.path(namespace, None, None),
            "application/json",
            Some(obj),
        )
        .await
    }

    /// PUT an object (its `metadata.resourceVersion`, if set, is the precondition).
    pub async fn update(&self, gvr: Gvr, obj: &Value) -> Result<Value, StatusError> {
        let (ns, name) = ns_name(obj);
        self.call(
            Method::PUT,
            gvr.path(ns, Some(name), None),
            "application/json",
            Some(obj),
        )
        .await
    }

    /// PUT the status subresource.
    pub async fn update_status(&self, gvr: Gvr, obj: &Value) -> Result<Value, StatusError> {
        let (ns, name) = ns_name(obj);
        self.call(
            Method::PUT,
            gvr.path(ns, Some(name), Some("status")),
            "application/json",
            Some(obj),
        )
        .await
    }

    /// JSON merge patch of an object (or of a subresource).
    pub async fn merge_patch(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        patch: &Value,
    ) -> Result<Value, StatusError> {
        self.call(
            Method::PATCH,
            gvr.path(namespace, Some(name), subresource),
            "application/merge-patch+json",
            Some(patch),
        )
        .await
    }

    /// Keeps a consumer in step with every object of `gvr` (all namespaces), as client-go's
    /// reflector does: list and hand the items to `on_list`, then watch from the list's revision
    /// and hand each change to `on_change`; when the watch cannot start, ends or falls behind
    /// (410), list again. A failed list is retried after 500 ms. Runs until the caller drops it.
    pub async fn reflect(
        &self,
        gvr: Gvr,
        mut on_list: impl FnMut(Vec<Value>),
        mut on_change: impl FnMut(Change),
    ) {
        loop {
            let (items, rv) = match self.list(gvr, None, None).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(resource = gvr.plural, agent = self.agent, error = %e.message, "list failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    continue;
                }
            };
            on_list(items);
            let Ok(mut watch) = self.watch(gvr, None, rv) else {
                continue;
            };
            while let Some(Ok(change)) = watch.next().await {
                on_change(change);
            }
        }
    }

    /// DELETE with a propagation policy (`Background`, `Foreground`, `Orphan`); a missing object is not an
    /// error.
    pub async fn delete(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        propagation: Option<&str>,
    ) -> Result<(), StatusError> {
        let mut uri = gvr.path(namespace, Some(name), None);
        if let Some(p) = propagation {
            uri.push_str("?propagationPolicy=");
            uri.push_str(p);
        }
        match self
            .call(Method::DELETE, uri, "application/json", None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Finishes a pod's graceful deletion as a kubelet does: `DELETE` with `gracePeriodSeconds=0`
    /// and the pod's uid as precondition. A pod already gone (404) or a name now held by another
    /// pod (409) is not an error.
    pub async fn delete_pod_now(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<(), StatusError> {
        let uri = format!(
            "{}?gracePeriodSeconds=0",
            Gvr::new("", "v1", "pods").path(Some(namespace), Some(name), None)
        );
        let body = serde_json::json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        });
        match self
            .call(Method::DELETE, uri, "application/json", Some(&body))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// POST `body` to subresource `sub` of object `name` (e.g. `serviceaccounts/NAME/token`).
    pub async fn create_subresource(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        sub: &str,
        body: &Value,
    ) -> Result<Value, StatusError> {
        self.call(
            Method::POST,
            gvr.path(namespace, Some(name), Some(sub)),
            "application/json",
            Some(body),
        )
        .await
    }

    /// POST `pods/<name>/binding` to `node`.
    pub async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<(), StatusError> {
        let binding = serde_json::json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let gvr = Gvr::new("", "v1", "pods");
        self.call(
            Method::POST,
            gvr.path(Some(namespace), Some(pod), Some("binding")),
            "application/json",
            Some(&binding),
        )
        .await
        .map(|_| ())
    }
}

fn ns_name(obj: &Value) -> (Option<&str>, &str) {
    let meta = &obj["metadata"];
    (
        meta.get("namespace").and_then(Value::as_str),
        meta.get("name").and_then(Value::as_str).unwrap_or_default(),
    )
}

/// Rebuilds a `StatusError` from a `Status` body.
fn status_error(code: u16, body: &Value) -> StatusError {
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("InternalError");
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("request failed");
    StatusError::new(code, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn state() -> AppState {
        let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
        let state = AppState::new(store, Default::default());
        crate::bootstrap::run(&state).await.unwrap();
        state
    }

    const CM: Gvr = Gvr::new("", "v1", "configmaps");

    #[tokio::test]
    async fn crud_goes_through_the_rest_path() {
        let c = Client::new(state().await, "test-controller");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let created = c.create(CM, Some("default"), &cm).await.unwrap();
        assert_eq!(
            created["metadata"]["managedFields"][0]["manager"],
            "test-controller"
        );
        let err = c.create(CM, Some("default"), &cm).await.unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
        let (items, rv) = c.list(CM, Some("default"), Some("x=1")).await.unwrap();
        assert_eq!(items.len(), 1);
        assert!(rv > 0);
        let mut w = c.watch(CM, Some("default"), rv).unwrap();
        c.merge_patch(CM, Some("default"), "a", None, &json!({"data": {"k": "w"}}))
            .await
            .unwrap();
        match w.next().await.unwrap().unwrap() {
            Change::Modified(o) => assert_eq!(o["data"]["k"], "w"),
            other => panic!("unexpected {other:?}"),
        }
        c.delete(CM, Some("default"), "a", Some("Background"))
            .await
            .unwrap();
        assert!(c.get(CM, Some("default"), "a").await.unwrap().is_none());
        // Validation applies to in-process writes too.
        let bad =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}});
        assert_eq!(
            c.create(CM, Some("default"), &bad).await.unwrap_err().code,
            422
        );
    }
}

/// Asserts that `e` is a 422 Invalid whose message says `says`.
#[cfg(test)]
fn assert_invalid(e: &StatusError, says: &str) {
    assert_eq!(
        (e.code, e.reason.as_str()),
        (422, "Invalid"),
        "{}",
        e.message
    );
    assert!(e.message.contains(says), "{says}: {}", e.message);
}

#[cfg(test)]
mod allocation_tests {
    use super::*;
    use serde_json::json;

    const SVC: Gvr = Gvr::new("", "v1", "services");

    fn service(name: &str, ty: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"type": ty, "selector": {"app": name}, "ports": [{"port": 80}]}})
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_creates_never_share_an_address_or_node_port() {
        let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
        let state = AppState::new(store, Default::default());
        crate::bootstrap::run(&state).await.unwrap();
        let c = Client::new(state, "test");
        let creates = (0..40).map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.create(SVC, Some("default"), &service(&format!("s{i}"), "NodePort"))
                    .await
            })
        });
        let mut ips = std::collections::HashSet::new();
        let mut ports = std::collections::HashSet::new();
        let mut s0_ip = String::new();
        let mut s0_port = 0;
        for t in creates {
            let svc = t.await.unwrap().unwrap();
            let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
            if svc["metadata"]["name"] == "s0" {
                s0_ip = ip.clone();
            }
            assert!(ip.starts_with("10.43."), "{ip}");
            assert_ne!(ip, "10.43.0.1", "the kubernetes Service owns .1");
            assert!(ips.insert(ip.clone()), "duplicate ClusterIP {ip}");
            let port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
            assert!((30000..=32767).contains(&port));
            assert!(ports.insert(port), "duplicate nodePort {port}");
            if svc["metadata"]["name"] == "s0" {
                s0_port = port;
            }
        }
        // A freed address is reused; a taken or out-of-range one is refused with 422.
        c.delete(SVC, Some("default"), "s0", None).await.unwrap();
        ports.remove(&s0_port);
        // Dynamic addresses are random: any address but the one just freed is still taken.
        let taken = ips.iter().find(|ip| **ip != s0_ip).unwrap().clone();
        let mut dup = service("dup", "ClusterIP");
        dup["spec"]["clusterIP"] = json!(taken);
        let e = c.create(SVC, Some("default"), &dup).await.unwrap_err();
        assert_invalid(&e, "provided IP is already allocated");
        // The freed one is taken again at once: the allocator saw the delete.
        let mut again = service("again", "ClusterIP");
        again["spec"]["clusterIP"] = json!(s0_ip);
        let created = c.create(SVC, Some("default"), &again).await.unwrap();
        assert_eq!(created["spec"]["clusterIP"], json!(s0_ip));
        // A ClusterIP Service turned NodePort gets a free node port; asking for one another
        // Service holds, or one outside the range, is refused.
        let turned = c
            .merge_patch(
                SVC,
                Some("default"),
                "again",
                None,
                &json!({"spec": {"type": "NodePort"}}),
            )
            .await
            .unwrap();
        let port = turned["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&port), "{turned}");
        assert!(!ports.contains(&port), "{port} was held by another Service");
        let held = *ports.iter().next().unwrap();
        for (asked, says) in [
            (held, "provided port is already allocated"),
            (
                80,
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            ),
        ] {
            let e = c
                .merge_patch(
                    SVC,
                    Some("default"),
                    "again",
                    None,
                    &json!({"spec": {"ports": [{"port": 80, "nodePort": asked}]}}),
                )
                .await
                .unwrap_err();
            assert_invalid(&e, "spec.ports[0].nodePort");
            assert_invalid(&e, says);
        }
        dup["spec"]["clusterIP"] = json!("192.168.1.1");
        let e = c.create(SVC, Some("default"), &dup).await.unwrap_err();
        assert!(
            e.message.contains("is not in the valid range"),
            "{}",
            e.message
        );
    }
}

#[cfg(test)]
mod ephemeral_tests {
    use super::*;
    use serde_json::json;

    const PODS: Gvr = Gvr::new("", "v1", "pods");
    const SUB: Option<&str> = Some("ephemeralcontainers");

    fn debugger(name: &str) -> Value {
        json!({"name": name, "image": "busybox", "command": ["sh"], "targetContainerName": "app"})
    }

    #[tokio::test]
    async fn ephemeral_containers_are_added_only_through_their_subresource_and_never_removed() {
        let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
        let state = AppState::new(store, Default::default());
        crate::bootstrap::run(&state).await.unwrap();
        let c = Client::new(state, "test");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "app", "image": "busybox"}]}});
        c.create(PODS, Some("default"), &pod).await.unwrap();
        // Through the pod itself they are ignored, as the subresource owns them.
        let p = c
            .merge_patch(
                PODS,
                Some("default"),
                "p",
                None,
                &json!({"spec": {"ephemeralContainers": [debugger("sneaky")]}}),
            )
            .await
            .unwrap();
        assert!(p["spec"]["ephemeralContainers"].is_null(), "{p}");
        // Through the subresource: added, with container defaults.
        let p = c
            .merge_patch(
                PODS,
                Some("default"),
                "p",
                SUB,
                &json!({"spec": {"ephemeralContainers": [debugger("dbg")]}}),
            )
            .await
            .unwrap();
        let e = &p["spec"]["ephemeralContainers"][0];
        assert_eq!(e["name"], "dbg");
        assert_eq!(e["targetContainerName"], "app");
        assert_eq!(e["terminationMessagePath"], "/dev/termination-log", "{e}");
        assert_eq!(e["imagePullPolicy"], "Always", "{e}");
        // Stored with the pod.
        let got = c.get(PODS, Some("default"), "p").await.unwrap().unwrap();
        assert_eq!(got["spec"]["ephemeralContainers"][0]["name"], "dbg");
        // Removing, changing, a clashing name or a field ephemeral containers may not have: 422.
        let mut changed = debugger("dbg");
        changed["image"] = json!("other");
        let mut ports = debugger("dbg2");
        ports["ports"] = json!([{"containerPort": 80}]);
        let mut clash = debugger("app");
        clash["image"] = json!("busybox");
        for (list, says) in [
            (
                json!([]),
                "existing ephemeral containers \"dbg\" may not be removed",
            ),
            (
                json!([changed]),
                "existing ephemeral containers \"dbg\" may not be changed",
            ),
            (
                json!([debugger("dbg"), ports]),
                "spec.ephemeralContainers[1].ports",
            ),
            (
                json!([debugger("dbg"), clash]),
                "spec.ephemeralContainers[1].name",
            ),
        ] {
            let e = c
                .merge_patch(
                    PODS,
                    Some("default"),
                    "p",
                    SUB,
                    &json!({"spec": {"ephemeralContainers": list}}),
                )
                .await
                .unwrap_err();
            assert_invalid(&e, says);
        }
    }
}
