//! The `kube` crate against an in-process k1s API server: the same wiring as `k1s server` (in-memory
//! store, PKI, TLS, authentication, bootstrap), started on the test's own runtime and stopped
//! through its cancellation token. Covers CRUD and patch flavours, watches, server-side apply,
//! paging and custom resources, with the error codes and reasons kube-apiserver answers with.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use k1s_apiserver::{ApiConfig, AppState};
use k1s_store::{Store, StoreConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use kube::core::Status;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bound on a whole test.
const TEST_DEADLINE: Duration = Duration::from_secs(90);
/// Bound on waiting for a single watch event.
const EVENT_DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// An API server running on the current tokio runtime, and an admin client for it.
struct Server {
    client: kube::Client,
    shutdown: CancellationToken,
    serve: JoinHandle<std::io::Result<()>>,
    lifecycle: JoinHandle<()>,
    store: Store,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("k1s-inproc-")
            .tempdir()
            .expect("creating a temporary directory");

        let store = tokio::task::spawn_blocking(|| {
            Store::open(StoreConfig {
                path: None,
                ..Default::default()
            })
        })
        .await
        .expect("store task")
        .expect("opening the in-memory store");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let url = format!("https://127.0.0.1:{}", addr.port());

        let pki_dir = dir.path().join("pki");
        let pki = tokio::task::spawn_blocking(move || {
            k1s_apiserver::tls::ensure_pki(&pki_dir, &[])
        })
        .await
        .expect("PKI task")
        .expect("generating the PKI");
        let tls = k1s_apiserver::tls::server_config(&pki).expect("TLS server configuration");

        let state = AppState::new(
            store.clone(),
            ApiConfig {
                advertise_address: format!("127.0.0.1:{}", addr.port()),
                ..Default::default()
            },
        );
        k1s_apiserver::crd::rebuild_table(&state);
        k1s_apiserver::bootstrap::run(&state)
            .await
            .unwrap_or_else(|e| panic!("bootstrap: {}", e.0.message));

        let auth = k1s_apiserver::auth::Authenticator::new(vec![(
            pki.admin_token.clone(),
            k1s_apiserver::auth::UserInfo {
                name: "k1s-admin".into(),
                groups: vec!["system:masters".into()],
            },
        )]);
        let app = k1s_apiserver::with_auth(state.clone(), auth);
        let kubeconfig_yaml = k1s_apiserver::kubeconfig::render_kubeconfig(&url, &pki, "k1s")
            .expect("rendering the kubeconfig");

        let shutdown = CancellationToken::new();
        let serve = tokio::spawn(k1s_apiserver::serve::serve(
            listener,
            Some(tls),
            app,
            shutdown.clone(),
        ));
        let lifecycle = tokio::spawn(k1s_apiserver::namespace_lifecycle::run(
            state.clone(),
            shutdown.clone(),
        ));
        state.set_ready();

        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&kubeconfig_yaml).expect("parsing the kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("loading the kubeconfig");
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(30));
        config.write_timeout = Some(Duration::from_secs(30));
        let client = kube::Client::try_from(config).expect("building the client");

        Server {
            client,
            shutdown,
            serve,
            lifecycle,
            store,
            _dir: dir,
        }
    }

    fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Cancels the server and waits for the accept loop, the lifecycle task and the store.
    async fn stop(self) {
        let Server {
            client,
            shutdown,
            serve,
            lifecycle,
            store,
            _dir,
        } = self;
        drop(client);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), serve)
            .await
            .expect("server stops within the deadline")
            .expect("server task")
            .expect("server result");
        tokio::time::timeout(Duration::from_secs(10), lifecycle)
            .await
            .expect("namespace lifecycle stops within the deadline")
            .expect("namespace lifecycle task");
        tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .expect("store shutdown");
    }
}

/// Runs `body` against a fresh server, bounded by [`TEST_DEADLINE`], then shuts the server down.
async fn with_server<F, Fut>(body: F)
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::time::timeout(TEST_DEADLINE, async {
        let server = Server::start().await;
        body(server.client()).await;
        server.stop().await;
    })
    .await
    .expect("test finished within the deadline");
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn api_status(e: kube::Error) -> Box<Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn assert_api_error(e: kube::Error, code: u16, reason: &str) -> Box<Status> {
    let s = api_status(e);
    assert_eq!(
        (s.code, s.reason.as_str()),
        (code, reason),
        "unexpected status: {s:?}"
    );
    assert!(s.is_failure(), "status should be Failure: {s:?}");
    s
}

fn rv(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .expect("resourceVersion set")
        .parse()
        .expect("numeric resourceVersion")
}

fn configmap(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    let map = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: (!labels.is_empty()).then(|| map(labels)),
            ..Default::default()
        },
        data: Some(map(data)),
        ..Default::default()
    }
}

fn deployment_json(name: &str, replicas: i32, containers: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": containers
                    .iter()
                    .map(|(n, image)| json!({"name": n, "image": image}))
                    .collect::<Vec<_>>()}
            }
        }
    })
}

fn deployment(name: &str, replicas: i32, containers: &[(&str, &str)]) -> Deployment {
    serde_json::from_value(deployment_json(name, replicas, containers)).expect("valid Deployment")
}

fn images(d: &Deployment) -> Vec<(String, String)> {
    d.spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod spec")
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect()
}

/// Next event of a watcher stream, within [`EVENT_DEADLINE`].
async fn next_event<K, S>(events: &mut S) -> watcher::Event<K>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin,
{
    tokio::time::timeout(EVENT_DEADLINE, events.try_next())
        .await
        .expect("watch event within the deadline")
        .expect("watcher error")
        .expect("watch stream ended")
}

/// Consumes the initial list (`Init`, `InitApply`…, `InitDone`) and returns the listed names.
async fn initial_names<S>(events: &mut S) -> Vec<String>
where
    S: Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    match next_event(events).await {
        watcher::Event::Init => {}
        other => panic!("expected Init, got {other:?}"),
    }
    let mut names = Vec::new();
    loop {
        match next_event(events).await {
            watcher::Event::InitApply(cm) => names.extend(cm.metadata.name),
            watcher::Event::InitDone => return names,
            other => panic!("expected InitApply or InitDone, got {other:?}"),
        }
    }
}

/// Reads events until one concerns `name` (events about other objects are skipped) and returns it.
async fn next_event_for<S>(events: &mut S, name: &str) -> watcher::Event<ConfigMap>
where
    S: Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    loop {
        let event = next_event(events).await;
        let about = match &event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o) => {
                o.metadata.name.as_deref()
            }
            watcher::Event::Init | watcher::Event::InitDone => {
                panic!("watcher restarted its initial list: {event:?}")
            }
        };
        if about == Some(name) {
            return event;
        }
    }
}

fn managed_by<'a>(
    meta: &'a ObjectMeta,
    manager: &str,
) -> Vec<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(manager))
        .collect()
}

fn owns_replicas(entry: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry) -> bool {
    entry
        .fields_v1
        .as_ref()
        .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
}

// ---------------------------------------------------------------------------------------------
// 1. CRUD and patches
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_crud_patches_and_errors() {
    with_server(|client| async move {
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");

        let created = cms
            .create(&PostParams::default(), &configmap("crud", &[], &[("a", "1")]))
            .await
            .expect("create");
        assert!(created.metadata.uid.as_deref().is_some_and(|u| !u.is_empty()));
        assert!(created.metadata.creation_timestamp.is_some());
        assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
        // ConfigMaps have no spec and no generation.
        assert_eq!(created.metadata.generation, None);
        let rv1 = rv(&created.metadata);

        // Duplicate create: 409 AlreadyExists.
        let err = cms
            .create(&PostParams::default(), &configmap("crud", &[], &[]))
            .await
            .unwrap_err();
        let s = assert_api_error(err, 409, "AlreadyExists");
        assert_eq!(s.message, r#"configmaps "crud" already exists"#);
        let details = s.details.as_ref().expect("status details");
        assert_eq!((details.name.as_str(), details.kind.as_str()), ("crud", "configmaps"));

        let got = cms.get("crud").await.expect("get");
        assert_eq!(got.metadata.uid, created.metadata.uid);
        assert_eq!(rv(&got.metadata), rv1);

        // Merge patch adds a key.
        let merged = cms
            .patch(
                "crud",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"b": "2"}})),
            )
            .await
            .expect("merge patch");
        let data = merged.data.clone().unwrap();
        assert_eq!((data["a"].as_str(), data["b"].as_str()), ("1", "2"));
        let rv2 = rv(&merged.metadata);
        assert!(rv2 > rv1, "{rv2} > {rv1}");

        // A patch that changes nothing does not write: same resourceVersion.
        let noop = cms
            .patch(
                "crud",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"b": "2"}})),
            )
            .await
            .expect("no-op merge patch");
        assert_eq!(rv(&noop.metadata), rv2, "a no-op patch must not bump resourceVersion");

        // Strategic merge patch: null deletes a key.
        let strategic = cms
            .patch(
                "crud",
                &PatchParams::default(),
                &Patch::Strategic(json!({"data": {"a": null, "c": "3"}})),
            )
            .await
            .expect("strategic patch");
        assert_eq!(
            strategic.data.clone().unwrap(),
            BTreeMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
        );
        let rv3 = rv(&strategic.metadata);
        assert!(rv3 > rv2);

        // JSON patch.
        let jsonp = cms
            .patch(
                "crud",
                &PatchParams::default(),
                &Patch::<()>::Json(
                    serde_json::from_value(json!([
                        {"op": "test", "path": "/data/b", "value": "2"},
                        {"op": "remove", "path": "/data/b"},
                        {"op": "add", "path": "/data/d", "value": "4"}
                    ]))
                    .unwrap(),
                ),
            )
            .await
            .expect("json patch");
        assert_eq!(
            jsonp.data.clone().unwrap(),
            BTreeMap::from([("c".into(), "3".into()), ("d".into(), "4".into())])
        );
        let rv4 = rv(&jsonp.metadata);
        assert!(rv4 > rv3);

        // Replace with a stale resourceVersion: 409 Conflict.
        let mut stale = created.clone();
        stale.data = Some(BTreeMap::from([("x".into(), "stale".into())]));
        let err = cms
            .replace("crud", &PostParams::default(), &stale)
            .await
            .unwrap_err();
        let s = assert_api_error(err, 409, "Conflict");
        assert!(
            s.message.contains(r#"configmaps "crud""#)
                && s.message.contains("the object has been modified"),
            "{}",
            s.message
        );
        assert_eq!(
            cms.get("crud").await.unwrap().data,
            jsonp.data,
            "a conflicting replace must not write"
        );

        // Replace with the current resourceVersion succeeds.
        let mut fresh = jsonp.clone();
        fresh.data = Some(BTreeMap::from([("r".into(), "1".into())]));
        let replaced = cms
            .replace("crud", &PostParams::default(), &fresh)
            .await
            .expect("replace");
        assert_eq!(replaced.data, fresh.data);
        let rv5 = rv(&replaced.metadata);
        assert!(rv5 > rv4);
        assert_eq!(replaced.metadata.uid, created.metadata.uid);

        // ConfigMaps allow unconditional updates: no resourceVersion at all is accepted.
        let mut unconditional = replaced.clone();
        unconditional.metadata.resource_version = None;
        unconditional.data = Some(BTreeMap::from([("u".into(), "1".into())]));
        let replaced = cms
            .replace("crud", &PostParams::default(), &unconditional)
            .await
            .expect("unconditional replace");
        assert!(rv(&replaced.metadata) > rv5);

        // Replace of a missing object: 404 (ConfigMaps do not allow create-on-update).
        let err = cms
            .replace("absent", &PostParams::default(), &configmap("absent", &[], &[]))
            .await
            .unwrap_err();
        assert_api_error(err, 404, "NotFound");

        // Patch of a missing object: 404.
        let err = cms
            .patch(
                "absent",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "1"}})),
            )
            .await
            .unwrap_err();
        assert_api_error(err, 404, "NotFound");

        // List.
        cms.create(&PostParams::default(), &configmap("other", &[("k", "v")], &[]))
            .await
            .expect("create other");
        let list = cms.list(&ListParams::default()).await.expect("list");
        let names: Vec<_> = list
            .items
            .iter()
            .filter_map(|c| c.metadata.name.as_deref())
            .collect();
        assert!(names.contains(&"crud") && names.contains(&"other"), "{names:?}");
        assert!(
            list.metadata
                .resource_version
                .as_deref()
                .is_some_and(|v| v.parse::<u64>().is_ok_and(|v| v >= rv5)),
            "{:?}",
            list.metadata
        );
        let selected = cms
            .list(&ListParams::default().labels("k=v"))
            .await
            .expect("list with a label selector");
        let names: Vec<_> = selected
            .items
            .iter()
            .filter_map(|c| c.metadata.name.as_deref())
            .collect();
        assert_eq!(names, ["other"]);

        // Delete, then 404 on get and on a second delete.
        cms.delete("crud", &DeleteParams::default())
            .await
            .expect("delete");
        let err = cms.get("crud").await.unwrap_err();
        let s = assert_api_error(err, 404, "NotFound");
        assert_eq!(s.message, r#"configmaps "crud" not found"#);
        let details = s.details.as_ref().expect("status details");
        assert_eq!((details.name.as_str(), details.kind.as_str()), ("crud", "configmaps"));
        let err = cms
            .delete("crud", &DeleteParams::default())
            .await
            .unwrap_err();
        assert_api_error(err, 404, "NotFound");

        // Missing namespace: 404 NotFound on create.
        let ghost: Api<ConfigMap> = Api::namespaced(cms.clone().into_client(), "no-such-ns");
        let err = ghost
            .create(&PostParams::default(), &configmap("x", &[], &[]))
            .await
            .unwrap_err();
        let s = assert_api_error(err, 404, "NotFound");
        assert!(s.message.contains(r#"namespaces "no-such-ns" not found"#), "{}", s.message);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_crud_patches_generation_and_errors() {
    with_server(|client| async move {
        let deploys: Api<Deployment> = Api::namespaced(client, "default");

        let created = deploys
            .create(
                &PostParams::default(),
                &deployment("web", 1, &[("a", "nginx:1"), ("b", "busybox:1")]),
            )
            .await
            .expect("create");
        assert_eq!(created.metadata.generation, Some(1));
        let rv1 = rv(&created.metadata);
        // Defaults are applied.
        let spec = created.spec.as_ref().unwrap();
        assert_eq!(spec.revision_history_limit, Some(10));
        assert_eq!(spec.progress_deadline_seconds, Some(600));
        assert_eq!(
            spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
            Some("RollingUpdate")
        );

        let err = deploys
            .create(&PostParams::default(), &deployment("web", 1, &[("a", "x")]))
            .await
            .unwrap_err();
        let s = assert_api_error(err, 409, "AlreadyExists");
        assert_eq!(s.message, r#"deployments.apps "web" already exists"#);
        let details = s.details.as_ref().expect("status details");
        assert_eq!(
            (
                details.name.as_str(),
                details.group.as_str(),
                details.kind.as_str()
            ),
            ("web", "apps", "deployments")
        );

        // Metadata-only change: resourceVersion moves, generation does not.
        let labelled = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
            )
            .await
            .expect("label merge patch");
        let rv2 = rv(&labelled.metadata);
        assert!(rv2 > rv1);
        assert_eq!(labelled.metadata.generation, Some(1));

        // Spec change through a merge patch: generation 2.
        let scaled = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 3}})),
            )
            .await
            .expect("replicas merge patch");
        assert_eq!(scaled.spec.as_ref().unwrap().replicas, Some(3));
        assert_eq!(scaled.metadata.generation, Some(2));
        let rv3 = rv(&scaled.metadata);
        assert!(rv3 > rv2);

        // Strategic merge patch merges the container list by name (a merge patch would replace it).
        let strategic = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Strategic(json!({
                    "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox:2"}]}}}
                })),
            )
            .await
            .expect("strategic patch");
        assert_eq!(
            images(&strategic),
            [
                ("a".to_string(), "nginx:1".to_string()),
                ("b".to_string(), "busybox:2".to_string())
            ]
        );
        assert_eq!(strategic.metadata.generation, Some(3));
        let rv4 = rv(&strategic.metadata);
        assert!(rv4 > rv3);

        // Annotation via JSON patch: no generation bump.
        let annotated = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::<()>::Json(
                    serde_json::from_value(json!([
                        {"op": "add", "path": "/metadata/annotations", "value": {"note": "x"}}
                    ]))
                    .unwrap(),
                ),
            )
            .await
            .expect("annotation json patch");
        assert_eq!(annotated.metadata.generation, Some(3));
        let rv5 = rv(&annotated.metadata);
        assert!(rv5 > rv4);

        // Spec change via JSON patch: generation 4.
        let jsonp = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::<()>::Json(
                    serde_json::from_value(json!([
                        {"op": "replace", "path": "/spec/replicas", "value": 5}
                    ]))
                    .unwrap(),
                ),
            )
            .await
            .expect("replicas json patch");
        assert_eq!(jsonp.spec.as_ref().unwrap().replicas, Some(5));
        assert_eq!(jsonp.metadata.generation, Some(4));
        let rv6 = rv(&jsonp.metadata);
        assert!(rv6 > rv5);

        // Replace with a stale resourceVersion: 409 Conflict, nothing written.
        let err = deploys
            .replace("web", &PostParams::default(), &created)
            .await
            .unwrap_err();
        let s = assert_api_error(err, 409, "Conflict");
        assert!(
            s.message.contains(r#"deployments.apps "web""#)
                && s.message.contains("the object has been modified"),
            "{}",
            s.message
        );
        let live = deploys.get("web").await.expect("get");
        assert_eq!(rv(&live.metadata), rv6);
        assert_eq!(live.metadata.generation, Some(4));

        // Replace with the live object and only a label changed: no generation bump.
        let mut same_spec = live.clone();
        same_spec
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("replaced".into(), "yes".into());
        let replaced = deploys
            .replace("web", &PostParams::default(), &same_spec)
            .await
            .expect("replace, metadata only");
        assert_eq!(replaced.metadata.generation, Some(4));
        let rv7 = rv(&replaced.metadata);
        assert!(rv7 > rv6);

        // Replace with a spec change: generation 5.
        let mut new_spec = replaced.clone();
        new_spec.spec.as_mut().unwrap().replicas = Some(0);
        let replaced = deploys
            .replace("web", &PostParams::default(), &new_spec)
            .await
            .expect("replace, spec change");
        assert_eq!(replaced.spec.as_ref().unwrap().replicas, Some(0));
        assert_eq!(replaced.metadata.generation, Some(5));
        assert!(rv(&replaced.metadata) > rv7);

        let list = deploys.list(&ListParams::default()).await.expect("list");
        assert_eq!(
            list.items
                .iter()
                .filter_map(|d| d.metadata.name.as_deref())
                .collect::<Vec<_>>(),
            ["web"]
        );

        deploys
            .delete("web", &DeleteParams::default())
            .await
            .expect("delete");
        let err = deploys.get("web").await.unwrap_err();
        let s = assert_api_error(err, 404, "NotFound");
        assert_eq!(s.message, r#"deployments.apps "web" not found"#);
        let err = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"replicas": 1}})),
            )
            .await
            .unwrap_err();
        assert_api_error(err, 404, "NotFound");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2. Watches
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_initial_list_create_modify_delete() {
    with_server(|client| async move {
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        cms.create(&PostParams::default(), &configmap("existing", &[], &[]))
            .await
            .expect("create existing");

        let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
        let initial = initial_names(&mut events).await;
        assert!(initial.iter().any(|n| n == "existing"), "{initial:?}");
        assert!(!initial.iter().any(|n| n == "w"), "{initial:?}");

        let created = cms
            .create(&PostParams::default(), &configmap("w", &[], &[("k", "1")]))
            .await
            .expect("create");
        match next_event_for(&mut events, "w").await {
            watcher::Event::Apply(cm) => {
                assert_eq!(cm.data.unwrap()["k"], "1");
                assert_eq!(cm.metadata.resource_version, created.metadata.resource_version);
            }
            other => panic!("expected Apply(w) for the create, got {other:?}"),
        }

        let modified = cms
            .patch(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"k": "2"}})),
            )
            .await
            .expect("patch");
        match next_event_for(&mut events, "w").await {
            watcher::Event::Apply(cm) => {
                assert_eq!(cm.data.unwrap()["k"], "2");
                assert_eq!(cm.metadata.resource_version, modified.metadata.resource_version);
            }
            other => panic!("expected Apply(w) for the modification, got {other:?}"),
        }

        cms.delete("w", &DeleteParams::default())
            .await
            .expect("delete");
        match next_event_for(&mut events, "w").await {
            watcher::Event::Delete(cm) => {
                assert_eq!(cm.data.unwrap()["k"], "2");
                assert!(
                    rv(&cm.metadata) > rv(&modified.metadata),
                    "the DELETED event carries the deletion's resourceVersion"
                );
            }
            other => panic!("expected Delete(w), got {other:?}"),
        }

        // The existing object was never touched: deleting it is the next event.
        cms.delete("existing", &DeleteParams::default())
            .await
            .expect("delete existing");
        match next_event(&mut events).await {
            watcher::Event::Delete(cm) => {
                assert_eq!(cm.metadata.name.as_deref(), Some("existing"))
            }
            other => panic!("expected Delete(existing), got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_with_label_selector_sees_objects_leave_and_enter() {
    with_server(|client| async move {
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        cms.create(
            &PostParams::default(),
            &configmap("in-1", &[("team", "a")], &[]),
        )
        .await
        .expect("create in-1");
        cms.create(
            &PostParams::default(),
            &configmap("out-1", &[("team", "b")], &[]),
        )
        .await
        .expect("create out-1");

        let mut events =
            watcher(cms.clone(), watcher::Config::default().labels("team=a")).boxed();
        let initial = initial_names(&mut events).await;
        assert_eq!(initial, ["in-1"]);

        // Objects outside the selector produce no events: the next event is about in-2.
        cms.create(
            &PostParams::default(),
            &configmap("out-2", &[("team", "b")], &[]),
        )
        .await
        .expect("create out-2");
        cms.patch(
            "out-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "1"}})),
        )
        .await
        .expect("patch out-1");
        cms.create(
            &PostParams::default(),
            &configmap("in-2", &[("team", "a")], &[]),
        )
        .await
        .expect("create in-2");
        match next_event(&mut events).await {
            watcher::Event::Apply(cm) => assert_eq!(cm.metadata.name.as_deref(), Some("in-2")),
            other => panic!("expected Apply(in-2), got {other:?}"),
        }

        // Relabelled out of the selector: a Delete event carrying the new labels.
        cms.patch(
            "in-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})),
        )
        .await
        .expect("relabel in-1 out");
        match next_event(&mut events).await {
            watcher::Event::Delete(cm) => {
                assert_eq!(cm.metadata.name.as_deref(), Some("in-1"));
                assert_eq!(cm.metadata.labels.unwrap()["team"], "b");
            }
            other => panic!("expected Delete(in-1) when it leaves the selector, got {other:?}"),
        }

        // Relabelled into the selector: an Apply event.
        cms.patch(
            "out-2",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .expect("relabel out-2 in");
        match next_event(&mut events).await {
            watcher::Event::Apply(cm) => {
                assert_eq!(cm.metadata.name.as_deref(), Some("out-2"));
                assert_eq!(cm.metadata.labels.unwrap()["team"], "a");
            }
            other => panic!("expected Apply(out-2) when it enters the selector, got {other:?}"),
        }

        // Deleting an object outside the selector is invisible; inside, it is a Delete.
        cms.delete("in-1", &DeleteParams::default())
            .await
            .expect("delete in-1 (now outside)");
        cms.delete("in-2", &DeleteParams::default())
            .await
            .expect("delete in-2");
        match next_event(&mut events).await {
            watcher::Event::Delete(cm) => assert_eq!(cm.metadata.name.as_deref(), Some("in-2")),
            other => panic!("expected Delete(in-2), got {other:?}"),
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3. Server-side apply
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_ownership_conflict_and_force() {
    with_server(|client| async move {
        let deploys: Api<Deployment> = Api::namespaced(client, "default");
        let manifest = |replicas: i32| deployment_json("ssa", replicas, &[("main", "nginx:1")]);

        let applied = deploys
            .patch(
                "ssa",
                &PatchParams::apply("mgr-a"),
                &Patch::Apply(manifest(2)),
            )
            .await
            .expect("first apply creates");
        assert_eq!(applied.spec.as_ref().unwrap().replicas, Some(2));
        assert_eq!(applied.metadata.generation, Some(1));
        let entries = managed_by(&applied.metadata, "mgr-a");
        assert_eq!(entries.len(), 1, "{:?}", applied.metadata.managed_fields);
        let a = entries[0];
        assert_eq!(a.operation.as_deref(), Some("Apply"));
        assert_eq!(a.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(a.fields_type.as_deref(), Some("FieldsV1"));
        assert!(owns_replicas(a), "{a:?}");
        assert!(a.time.is_some());

        // The same apply again is a no-op: nothing is written.
        let again = deploys
            .patch(
                "ssa",
                &PatchParams::apply("mgr-a"),
                &Patch::Apply(manifest(2)),
            )
            .await
            .expect("repeated apply");
        assert_eq!(
            again.metadata.resource_version, applied.metadata.resource_version,
            "a no-op apply must not bump resourceVersion"
        );

        // A second manager applying a different value for an owned field: 409 Conflict.
        let err = deploys
            .patch(
                "ssa",
                &PatchParams::apply("mgr-b"),
                &Patch::Apply(manifest(3)),
            )
            .await
            .unwrap_err();
        let s = assert_api_error(err, 409, "Conflict");
        assert!(
            s.message.contains(r#"conflict with "mgr-a""#) && s.message.contains(".spec.replicas"),
            "{}",
            s.message
        );
        let causes = s
            .details
            .as_ref()
            .map(|d| d.causes.clone())
            .unwrap_or_default();
        assert!(
            causes
                .iter()
                .any(|c| c.reason == "FieldManagerConflict" && c.field == ".spec.replicas"),
            "{causes:?}"
        );
        let live = deploys.get("ssa").await.expect("get");
        assert_eq!(live.spec.as_ref().unwrap().replicas, Some(2));

        // Forced, mgr-b takes replicas over and mgr-a loses it.
        let forced = deploys
            .patch(
                "ssa",
                &PatchParams::apply("mgr-b").force(),
                &Patch::Apply(manifest(3)),
            )
            .await
            .expect("forced apply");
        assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(3));
        assert_eq!(forced.metadata.generation, Some(2));
        let b = managed_by(&forced.metadata, "mgr-b");
        assert_eq!(b.len(), 1, "{:?}", forced.metadata.managed_fields);
        assert_eq!(b[0].operation.as_deref(), Some("Apply"));
        assert!(owns_replicas(b[0]), "{:?}", b[0]);
        let a = managed_by(&forced.metadata, "mgr-a");
        assert_eq!(a.len(), 1, "{:?}", forced.metadata.managed_fields);
        assert!(!owns_replicas(a[0]), "mgr-a must lose .spec.replicas: {:?}", a[0]);
        // mgr-a keeps the fields nobody took from it.
        assert!(
            a[0].fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:selector").is_some()),
            "{:?}",
            a[0]
        );

        // mgr-a re-applying without replicas no longer removes or changes it.
        let mut without_replicas = manifest(0);
        without_replicas["spec"]
            .as_object_mut()
            .unwrap()
            .remove("replicas");
        let reapplied = deploys
            .patch(
                "ssa",
                &PatchParams::apply("mgr-a"),
                &Patch::Apply(without_replicas),
            )
            .await
            .expect("re-apply without replicas");
        assert_eq!(reapplied.spec.as_ref().unwrap().replicas, Some(3));

        // An update (non-apply) manager shows up as an Update entry.
        let updated = deploys
            .patch(
                "ssa",
                &PatchParams {
                    field_manager: Some("mgr-u".into()),
                    ..Default::default()
                },
                &Patch::Merge(json!({"metadata": {"annotations": {"u": "1"}}})),
            )
            .await
            .expect("merge patch with a field manager");
        let u = managed_by(&updated.metadata, "mgr-u");
        assert_eq!(u.len(), 1, "{:?}", updated.metadata.managed_fields);
        assert_eq!(u[0].operation.as_deref(), Some("Update"));
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 4. Paging
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_paging_sees_every_object_once() {
    with_server(|client| async move {
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        let before: Vec<String> = cms
            .list(&ListParams::default())
            .await
            .expect("list before")
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        let mut expected: Vec<String> = (0..25).map(|i| format!("page-{i:02}")).collect();
        for name in &expected {
            cms.create(&PostParams::default(), &configmap(name, &[], &[]))
                .await
                .expect("create");
        }
        expected.extend(before);
        expected.sort();

        let mut seen = Vec::new();
        let mut params = ListParams::default().limit(10);
        let mut page_sizes = Vec::new();
        let mut first_rv = None;
        loop {
            let page = cms.list(&params).await.expect("list page");
            page_sizes.push(page.items.len());
            assert!(page.items.len() <= 10, "{page_sizes:?}");
            let page_rv = page.metadata.resource_version.clone();
            match &first_rv {
                None => {
                    first_rv = Some(page_rv);
                    // After the first page, create an object: pages served from the first page's
                    // snapshot do not include it.
                    cms.create(&PostParams::default(), &configmap("zz-late", &[], &[]))
                        .await
                        .expect("create between pages");
                }
                Some(first) => assert_eq!(
                    &page_rv, first,
                    "continued pages are served at the first page's resourceVersion"
                ),
            }
            seen.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => {
                    assert!(
                        page.metadata
                            .remaining_item_count
                            .is_some_and(|n| n == (expected.len() - seen.len()) as i64),
                        "remainingItemCount {:?}, expected {}",
                        page.metadata.remaining_item_count,
                        expected.len() - seen.len()
                    );
                    params = params.continue_token(&token);
                }
                None => break,
            }
            assert!(page_sizes.len() < 10, "paging does not end: {page_sizes:?}");
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "an object was listed twice: {seen:?}");
        assert_eq!(sorted, expected, "pages: {page_sizes:?}");
        assert_eq!(
            page_sizes.iter().take(2).collect::<Vec<_>>(),
            [&10, &10],
            "{page_sizes:?}"
        );
        assert_eq!(page_sizes.len(), expected.len().div_ceil(10), "{page_sizes:?}");

        // A fresh list sees the late object.
        let all = cms.list(&ListParams::default()).await.expect("list all");
        assert!(
            all.items
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some("zz-late"))
        );
        assert_eq!(all.metadata.continue_.filter(|c| !c.is_empty()), None);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 5. Custom resources
// ---------------------------------------------------------------------------------------------

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
                "shortNames": ["wd"]
            },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "properties": {
                                "size": {"type": "integer"},
                                "color": {"type": "string"}
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {"ready": {"type": "boolean"}}
                        }
                    }
                }}
            }]
        }
    }))
    .expect("valid CRD")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_becomes_served_and_status_subresource_is_separate() {
    with_server(|client| async move {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &widget_crd())
            .await
            .expect("create CRD");
        tokio::time::timeout(
            Duration::from_secs(20),
            await_condition(crds.clone(), "widgets.example.com", conditions::is_crd_established()),
        )
        .await
        .expect("CRD established within the deadline")
        .expect("waiting for the CRD");

        // Discovery finds the new kind.
        let (ar, caps) = kube::discovery::pinned_kind(
            &client,
            &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        )
        .await
        .expect("Widget is discoverable once the CRD is established");
        assert_eq!(ar.plural, "widgets");
        assert_eq!(ar.api_version, "example.com/v1");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        assert!(
            caps.subresources.iter().any(|(sub, _)| sub.plural == "widgets/status"
                || sub.plural == "status"),
            "{:?}",
            caps.subresources
        );
        // And a hand-built ApiResource agrees with it.
        let manual = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", "v1", "Widget"),
            "widgets",
        );
        assert_eq!((manual.group.as_str(), manual.version.as_str()), ("example.com", "v1"));

        let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
        let mut w = DynamicObject::new("w1", &ar);
        w.data = json!({
            "spec": {"size": 3, "color": "red", "unknownField": "pruned"},
            "status": {"ready": true}
        });
        let created = widgets
            .create(&PostParams::default(), &w)
            .await
            .expect("create Widget");
        assert_eq!(created.data["spec"]["size"], 3);
        assert_eq!(
            created.data["spec"].get("unknownField"),
            None,
            "fields outside the structural schema are pruned"
        );
        assert_eq!(
            created.data.get("status"),
            None,
            "status is dropped on create when the status subresource is enabled"
        );
        assert_eq!(created.metadata.generation, Some(1));
        let rv1 = rv(&created.metadata);

        // Schema validation: a string where an integer is required is 422 Invalid.
        let mut bad = DynamicObject::new("bad", &ar);
        bad.data = json!({"spec": {"size": "three"}});
        let err = widgets
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err();
        let s = assert_api_error(err, 422, "Invalid");
        assert!(s.message.contains("spec.size"), "{}", s.message);

        // Listed, both as DynamicObject and through the short name's resource.
        let list = widgets.list(&ListParams::default()).await.expect("list");
        assert_eq!(
            list.items
                .iter()
                .filter_map(|o| o.metadata.name.as_deref())
                .collect::<Vec<_>>(),
            ["w1"]
        );
        let everywhere: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        assert_eq!(
            everywhere
                .list(&ListParams::default())
                .await
                .expect("list all namespaces")
                .items
                .len(),
            1
        );

        // The status subresource writes status and ignores spec.
        let status_patched = widgets
            .patch_status(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 99}, "status": {"ready": true}})),
            )
            .await
            .expect("patch status");
        assert_eq!(status_patched.data["status"]["ready"], true);
        assert_eq!(status_patched.data["spec"]["size"], 3, "spec ignored by /status");
        assert_eq!(status_patched.metadata.generation, Some(1));
        let rv2 = rv(&status_patched.metadata);
        assert!(rv2 > rv1);

        // The main resource writes spec and ignores status.
        let spec_patched = widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 4}, "status": {"ready": false}})),
            )
            .await
            .expect("patch spec");
        assert_eq!(spec_patched.data["spec"]["size"], 4);
        assert_eq!(spec_patched.data["status"]["ready"], true, "status ignored by the main resource");
        assert_eq!(spec_patched.metadata.generation, Some(2));
        assert!(rv(&spec_patched.metadata) > rv2);

        let got = widgets.get("w1").await.expect("get");
        assert_eq!(got.data["spec"]["size"], 4);
        assert_eq!(got.data["status"]["ready"], true);
        let status = widgets.get_status("w1").await.expect("get status");
        assert_eq!(status.data["status"]["ready"], true);

        widgets
            .delete("w1", &DeleteParams::default())
            .await
            .expect("delete Widget");
        let err = widgets.get("w1").await.unwrap_err();
        let s = assert_api_error(err, 404, "NotFound");
        assert_eq!(s.message, r#"widgets.example.com "w1" not found"#);
    })
    .await;
}
