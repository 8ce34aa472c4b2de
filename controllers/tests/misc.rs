//! Integration tests of the garbage collector, ServiceAccount, root CA publisher and endpoints
//! controllers against an in-process API server.

use std::future::Future;
use std::time::Duration;

use k1s_apiserver::client::{Client, Gvr};
use k1s_apiserver::state::AppState;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const CM: Gvr = Gvr::new("", "v1", "configmaps");
const NS: Gvr = Gvr::new("", "v1", "namespaces");

async fn client() -> Client {
    let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
    let state = AppState::new(store, Default::default());
    k1s_apiserver::bootstrap::run(&state).await.unwrap();
    Client::new(state, "misc-test")
}

/// Polls `f` until it yields `Some`, failing after 10 s.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Shuts the controllers down when the test ends.
struct Stop(CancellationToken);
impl Drop for Stop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn gc(c: &Client) -> Stop {
    let token = CancellationToken::new();
    tokio::spawn(k1s_controllers::gc::run(c.clone(), token.clone()));
    Stop(token)
}

async fn cm(c: &Client, name: &str, owners: &[&Value]) -> Value {
    let refs: Vec<Value> = owners
        .iter()
        .map(|o| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"],
                   "uid": o["metadata"]["uid"], "blockOwnerDeletion": true})
        })
        .collect();
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": name, "ownerReferences": refs}});
    c.create(CM, Some("default"), &obj).await.unwrap()
}

async fn get_cm(c: &Client, name: &str) -> Option<Value> {
    c.get(CM, Some("default"), name).await.unwrap()
}

async fn gone(c: &Client, name: &str) {
    let c2 = c.clone();
    eventually(&format!("{name} deleted"), || {
        let c = c2.clone();
        async move { get_cm(&c, name).await.is_none().then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_background_cascade() {
    let c = client().await;
    let _gc = gc(&c);
    let owner = cm(&c, "owner", &[]).await;
    let child = cm(&c, "child", &[&owner]).await;
    let _grandchild = cm(&c, "grandchild", &[&child]).await;
    let other = cm(&c, "other", &[]).await;
    let shared = cm(&c, "shared", &[&owner, &other]).await;
    c.delete(CM, Some("default"), "owner", Some("Background"))
        .await
        .unwrap();
    gone(&c, "child").await;
    gone(&c, "grandchild").await;
    // A dependent with another existing owner only loses the dangling reference.
    let c2 = c.clone();
    let kept = eventually("shared loses its dangling ref", || {
        let c = c2.clone();
        async move {
            let s = get_cm(&c, "shared").await?;
            (s["metadata"]["ownerReferences"].as_array()?.len() == 1).then_some(s)
        }
    })
    .await;
    assert_eq!(kept["metadata"]["uid"], shared["metadata"]["uid"]);
    assert_eq!(
        kept["metadata"]["ownerReferences"][0]["uid"],
        other["metadata"]["uid"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_foreground_waits_for_dependents() {
    let c = client().await;
    let _gc = gc(&c);
    let owner = cm(&c, "owner", &[]).await;
    let child = cm(&c, "child", &[&owner]).await;
    // A finalizer on the child holds the owner in foreground deletion.
    c.merge_patch(
        CM,
        Some("default"),
        "child",
        None,
        &json!({"metadata": {"finalizers": ["test/hold"]}}),
    )
    .await
    .unwrap();
    let _grandchild = cm(&c, "grandchild", &[&child]).await;
    c.delete(CM, Some("default"), "owner", Some("Foreground"))
        .await
        .unwrap();
    let c2 = c.clone();
    eventually("child marked for deletion", || {
        let c = c2.clone();
        async move {
            let ch = get_cm(&c, "child").await?;
            ch["metadata"]["deletionTimestamp"]
                .is_string()
                .then_some(())
        }
    })
    .await;
    gone(&c, "grandchild").await;
    let o = get_cm(&c, "owner")
        .await
        .expect("owner waits for its child");
    assert!(o["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(o["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    c.merge_patch(
        CM,
        Some("default"),
        "child",
        None,
        &json!({"metadata": {"finalizers": null}}),
    )
    .await
    .unwrap();
    gone(&c, "child").await;
    gone(&c, "owner").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_orphan_keeps_dependents() {
    let c = client().await;
    let _gc = gc(&c);
    let owner = cm(&c, "owner", &[]).await;
    let child = cm(&c, "child", &[&owner]).await;
    c.delete(CM, Some("default"), "owner", Some("Orphan"))
        .await
        .unwrap();
    gone(&c, "owner").await;
    let ch = get_cm(&c, "child")
        .await
        .expect("child is orphaned, not deleted");
    assert_eq!(ch["metadata"]["uid"], child["metadata"]["uid"]);
    assert!(ch["metadata"].get("ownerReferences").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_deletes_dependents_of_owners_that_never_existed() {
    let c = client().await;
    let _gc = gc(&c);
    let ghost =
        json!({"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}});
    cm(&c, "orphaned", &[&ghost]).await;
    // Same name, other uid: still not the owner.
    cm(&c, "impostor-owner", &[]).await;
    let fake = json!({"metadata": {"name": "impostor-owner", "uid": "00000000-0000-0000-0000-000000000002"}});
    cm(&c, "fooled", &[&fake]).await;
    gone(&c, "orphaned").await;
    gone(&c, "fooled").await;
    assert!(get_cm(&c, "impostor-owner").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_foreground_cycle_finishes() {
    let c = client().await;
    let _gc = gc(&c);
    let a = cm(&c, "a", &[]).await;
    let b = cm(&c, "b", &[&a]).await;
    let refs = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "b",
                       "uid": b["metadata"]["uid"], "blockOwnerDeletion": true}]);
    c.merge_patch(
        CM,
        Some("default"),
        "a",
        None,
        &json!({"metadata": {"ownerReferences": refs}}),
    )
    .await
    .unwrap();
    c.delete(CM, Some("default"), "a", Some("Foreground"))
        .await
        .unwrap();
    gone(&c, "a").await;
    gone(&c, "b").await;
}

async fn create_ns(c: &Client, name: &str) {
    c.create(
        NS,
        None,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await
    .unwrap();
}

const SA: Gvr = Gvr::new("", "v1", "serviceaccounts");
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_service_account_and_root_ca_in_every_namespace() {
    let c = client().await;
    let token = CancellationToken::new();
    let _stop = Stop(token.clone());
    tokio::spawn(k1s_controllers::serviceaccount::run(
        c.clone(),
        token.clone(),
    ));
    tokio::spawn(k1s_controllers::rootca::run(
        c.clone(),
        PEM.into(),
        token.clone(),
    ));
    create_ns(&c, "team-a").await;
    for ns in ["default", "kube-system", "team-a"] {
        let c2 = c.clone();
        eventually(&format!("default SA in {ns}"), || {
            let c = c2.clone();
            async move { c.get(SA, Some(ns), "default").await.unwrap() }
        })
        .await;
        let c2 = c.clone();
        let cm = eventually(&format!("kube-root-ca.crt in {ns}"), || {
            let c = c2.clone();
            async move { c.get(CM, Some(ns), "kube-root-ca.crt").await.unwrap() }
        })
        .await;
        assert_eq!(cm["data"], json!({"ca.crt": PEM}));
        assert!(
            cm["metadata"]["annotations"]["kubernetes.io/description"]
                .as_str()
                .unwrap()
                .starts_with("Contains a CA bundle")
        );
    }
    // Deleted: recreated.
    let old = c.get(SA, Some("team-a"), "default").await.unwrap().unwrap();
    c.delete(SA, Some("team-a"), "default", None).await.unwrap();
    let c2 = c.clone();
    let old_uid = old["metadata"]["uid"].clone();
    eventually("default SA recreated", || {
        let (c, old_uid) = (c2.clone(), old_uid.clone());
        async move {
            let sa = c.get(SA, Some("team-a"), "default").await.unwrap()?;
            (sa["metadata"]["uid"] != old_uid).then_some(())
        }
    })
    .await;
    c.delete(CM, Some("team-a"), "kube-root-ca.crt", None)
        .await
        .unwrap();
    // Changed: restored.
    let c2 = c.clone();
    eventually("kube-root-ca.crt recreated", || {
        let c = c2.clone();
        async move { c.get(CM, Some("team-a"), "kube-root-ca.crt").await.unwrap() }
    })
    .await;
    c.merge_patch(
        CM,
        Some("team-a"),
        "kube-root-ca.crt",
        None,
        &json!({"data": {"ca.crt": "tampered"}}),
    )
    .await
    .unwrap();
    let c2 = c.clone();
    eventually("kube-root-ca.crt restored", || {
        let c = c2.clone();
        async move {
            let cm = c
                .get(CM, Some("team-a"), "kube-root-ca.crt")
                .await
                .unwrap()?;
            (cm["data"]["ca.crt"] == PEM).then_some(())
        }
    })
    .await;
}
