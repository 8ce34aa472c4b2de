//! End-to-end with a second real client: the `kube` crate against the real `k1s server` binary
//! (watcher events, create/patch/delete, server-side apply).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, kube_client};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

const STEP: Duration = Duration::from_secs(20);

fn configmap(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating a namespace");
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_patch_delete() {
    let c = Cluster::start();
    let client = kube_client(&c).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let created = cms
        .create(&PostParams::default(), &configmap("crud", &[("a", "1")]))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_deref().is_some_and(|u| !u.is_empty()));
    assert!(meta.creation_timestamp.is_some());
    let rv1: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();

    let err = cms
        .create(&PostParams::default(), &configmap("crud", &[]))
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err),
        (
            409,
            "AlreadyExists".into(),
            "configmaps \"crud\" already exists".into()
        )
    );

    let patched = cms
        .patch(
            "crud",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"b": "2"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["a"], "1");
    assert_eq!(patched.data.as_ref().unwrap()["b"], "2");
    let rv2: u64 = patched
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);

    let patched = cms
        .patch(
            "crud",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "remove", "path": "/data/a"}])).unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap().len(), 1);

    // Replace with a stale resourceVersion is a Conflict.
    let mut stale = created.clone();
    stale.data = Some(BTreeMap::from([("c".to_string(), "3".to_string())]));
    let err = cms
        .replace("crud", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    let (code, reason, _) = api_error(err);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    let list = cms.list(&ListParams::default()).await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|cm| cm.metadata.name.as_deref() == Some("crud"))
    );

    cms.delete("crud", &DeleteParams::default()).await.unwrap();
    let err = cms.get("crud").await.unwrap_err();
    assert_eq!(
        api_error(err),
        (
            404,
            "NotFound".into(),
            "configmaps \"crud\" not found".into()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_create_modify_delete() {
    let c = Cluster::start();
    let client = kube_client(&c).await;
    create_namespace(&client, "watched").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "watched");
    cms.create(&PostParams::default(), &configmap("existing", &[]))
        .await
        .unwrap();

    let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut next_any = async || {
        tokio::time::timeout(STEP, events.try_next())
            .await
            .expect("watcher event within the deadline")
            .expect("watcher error")
            .expect("watch stream ended")
    };
    // Controllers write objects of their own in the namespace (kube-root-ca.crt), as upstream's do:
    // after the initial list, only events about "w" matter.
    let mut next = async || loop {
        let ev = next_any().await;
        let name = match &ev {
            watcher::Event::Apply(cm) | watcher::Event::Delete(cm) => cm.metadata.name.clone(),
            _ => None,
        };
        if name.as_deref() != Some("kube-root-ca.crt") {
            return ev;
        }
    };

    // The initial list (other controllers may add objects of their own, e.g. kube-root-ca.crt).
    assert!(matches!(next().await, watcher::Event::Init));
    let mut initial = Vec::new();
    loop {
        match next().await {
            watcher::Event::InitApply(cm) => initial.extend(cm.metadata.name),
            watcher::Event::InitDone => break,
            other => panic!("expected InitApply or InitDone, got {other:?}"),
        }
    }
    assert!(initial.iter().any(|n| n == "existing"), "{initial:?}");

    cms.create(&PostParams::default(), &configmap("w", &[("k", "1")]))
        .await
        .unwrap();
    match next().await {
        watcher::Event::Apply(cm) => {
            assert_eq!(cm.metadata.name.as_deref(), Some("w"));
            assert_eq!(cm.data.unwrap()["k"], "1");
        }
        other => panic!("expected Apply(w), got {other:?}"),
    }
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    match next().await {
        watcher::Event::Apply(cm) => assert_eq!(cm.data.unwrap()["k"], "2"),
        other => panic!("expected Apply(w modified), got {other:?}"),
    }
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    match next().await {
        watcher::Event::Delete(cm) => assert_eq!(cm.metadata.name.as_deref(), Some("w")),
        other => panic!("expected Delete(w), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_with_managers_and_conflicts() {
    let c = Cluster::start();
    let client = kube_client(&c).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let manifest = |replicas: u32, image: &str| {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ssa", "labels": {"app": "ssa"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "ssa"}},
                "template": {
                    "metadata": {"labels": {"app": "ssa"}},
                    "spec": {"containers": [{"name": "main", "image": image}]}
                }
            }
        })
    };

    let applied = deploys
        .patch(
            "ssa",
            &PatchParams::apply("e2e-owner"),
            &Patch::Apply(manifest(2, "127.0.0.1:5000/busybox:1.35")),
        )
        .await
        .unwrap();
    assert_eq!(applied.spec.as_ref().unwrap().replicas, Some(2));
    let managed = applied.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        managed
            .iter()
            .any(|m| m.manager.as_deref() == Some("e2e-owner")
                && m.operation.as_deref() == Some("Apply")),
        "{managed:?}"
    );

    // A second manager applying a different value for an owned field: 409 Conflict.
    let err = deploys
        .patch(
            "ssa",
            &PatchParams::apply("e2e-other"),
            &Patch::Apply(manifest(3, "127.0.0.1:5000/busybox:1.35")),
        )
        .await
        .unwrap_err();
    let (code, reason, message) = api_error(err);
    assert_eq!((code, reason.as_str()), (409, "Conflict"), "{message}");
    assert!(
        message.contains("conflict with \"e2e-owner\"") && message.contains(".spec.replicas"),
        "{message}"
    );

    // Forced, the other manager takes the field over.
    let forced = deploys
        .patch(
            "ssa",
            &PatchParams::apply("e2e-other").force(),
            &Patch::Apply(manifest(3, "127.0.0.1:5000/busybox:1.35")),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(3));

    // The first manager re-applies without replicas: it no longer owns it, so the value stays. (The
    // image is co-owned by both appliers now, so it must stay the same to avoid a conflict.)
    let mut without_replicas = manifest(0, "127.0.0.1:5000/busybox:1.35");
    without_replicas["spec"]
        .as_object_mut()
        .unwrap()
        .remove("replicas");
    let reapplied = deploys
        .patch(
            "ssa",
            &PatchParams::apply("e2e-owner"),
            &Patch::Apply(without_replicas),
        )
        .await
        .unwrap();
    assert_eq!(reapplied.spec.unwrap().replicas, Some(3));

    // Changing a co-owned field is a conflict with the co-owner.
    let err = deploys
        .patch(
            "ssa",
            &PatchParams::apply("e2e-owner"),
            &Patch::Apply(manifest(3, "127.0.0.1:5000/busybox:1.36")),
        )
        .await
        .unwrap_err();
    let (code, _, message) = api_error(err);
    assert_eq!(code, 409, "{message}");
    assert!(
        message.contains(
            r#"conflict with "e2e-other": .spec.template.spec.containers[name="main"].image"#
        ),
        "{message}"
    );

    // A dry run answers with the result but stores nothing.
    let mut dry = PatchParams::apply("e2e-other").force();
    dry.dry_run = true;
    let answered = deploys
        .patch(
            "ssa",
            &dry,
            &Patch::Apply(manifest(9, "127.0.0.1:5000/busybox:1.35")),
        )
        .await
        .unwrap();
    assert_eq!(answered.spec.unwrap().replicas, Some(9));
    let live = deploys.get("ssa").await.unwrap();
    assert_eq!(live.spec.unwrap().replicas, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_paging_with_limit_and_continue() {
    let c = Cluster::start();
    let client = kube_client(&c).await;
    create_namespace(&client, "paged").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "paged");
    for i in 0..9 {
        cms.create(&PostParams::default(), &configmap(&format!("p{i}"), &[]))
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(4);
    let mut pages = 0;
    loop {
        let page = cms.list(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 4);
        names.extend(page.items.into_iter().filter_map(|cm| cm.metadata.name));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    names.retain(|n| n.starts_with('p'));
    assert_eq!(names, (0..9).map(|i| format!("p{i}")).collect::<Vec<_>>());
    assert!(pages >= 3, "{pages} pages");
}
