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

/// A merge patch, retried on conflicts with the controllers' concurrent writes (the server does
/// not retry unpinned merge patches itself).
async fn patch(c: &Client, gvr: Gvr, ns: Option<&str>, name: &str, sub: Option<&str>, p: &Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c.merge_patch(gvr, ns, name, sub, p).await {
            Ok(_) => return,
            Err(e) if e.code == 409 && tokio::time::Instant::now() < deadline => {}
            Err(e) => panic!("patching {name}: {e:?}"),
        }
    }
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
    patch(
        &c,
        CM,
        Some("default"),
        "child",
        None,
        &json!({"metadata": {"finalizers": ["test/hold"]}}),
    )
    .await;
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
    patch(
        &c,
        CM,
        Some("default"),
        "child",
        None,
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
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
    patch(
        &c,
        CM,
        Some("default"),
        "a",
        None,
        &json!({"metadata": {"ownerReferences": refs}}),
    )
    .await;
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
        assert_eq!(
            cm["metadata"]["annotations"]["kubernetes.io/description"],
            k1s_controllers::rootca::DESCRIPTION
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
    patch(
        &c,
        CM,
        Some("team-a"),
        "kube-root-ca.crt",
        None,
        &json!({"data": {"ca.crt": "tampered"}}),
    )
    .await;
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

const PODS: Gvr = Gvr::new("", "v1", "pods");
const SVC: Gvr = Gvr::new("", "v1", "services");
const EP: Gvr = Gvr::new("", "v1", "endpoints");
const SLICES: Gvr = Gvr::new("discovery.k8s.io", "v1", "endpointslices");

async fn create_pod(c: &Client, name: &str, port: i64) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx",
                                 "ports": [{"name": "web", "containerPort": port}]}]}});
    c.create(PODS, Some("default"), &pod).await.unwrap();
}

/// Writes the pod's status as a kubelet would: running with `ip`, Ready or not.
async fn set_status(c: &Client, name: &str, ip: &str, ready: bool) {
    let mut pod = c.get(PODS, Some("default"), name).await.unwrap().unwrap();
    pod["status"] = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    c.update_status(PODS, &pod).await.unwrap();
}

/// Polls the Endpoints `name` until `check` holds.
async fn endpoints_until(
    c: &Client,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let c2 = c.clone();
    let check = &check;
    eventually(what, || {
        let c = c2.clone();
        async move {
            let ep = c.get(EP, Some("default"), name).await.unwrap()?;
            check(&ep).then_some(ep)
        }
    })
    .await
}

async fn web_slices(c: &Client) -> Vec<Value> {
    c.list(
        SLICES,
        Some("default"),
        Some("kubernetes.io/service-name=web"),
    )
    .await
    .unwrap()
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_follow_pod_readiness() {
    let c = client().await;
    let token = CancellationToken::new();
    let _stop = Stop(token.clone());
    tokio::spawn(k1s_controllers::endpoints::run(c.clone(), token.clone()));
    tokio::spawn(k1s_controllers::gc::run(c.clone(), token.clone()));
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "admin", "port": 81, "targetPort": 7000}]}});
    let svc = c.create(SVC, Some("default"), &svc).await.unwrap();
    create_pod(&c, "a", 8080).await;
    create_pod(&c, "b", 9090).await;
    create_pod(&c, "no-ip", 8080).await;
    // Created empty (no pod has an IP yet), with the Service's labels.
    let ep = endpoints_until(&c, "web", "empty endpoints", |ep| {
        ep.get("subsets").is_none()
    })
    .await;
    assert_eq!(
        ep["metadata"]["labels"],
        json!({"tier": "front", "endpoints.kubernetes.io/managed-by": "endpoint-controller"})
    );
    assert!(
        ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
            .is_string()
    );

    set_status(&c, "a", "10.1.0.1", false).await;
    let ep = endpoints_until(&c, "web", "a not ready", |ep| {
        ep["subsets"][0]["notReadyAddresses"][0]["ip"] == "10.1.0.1"
    })
    .await;
    let s = &ep["subsets"][0];
    assert!(s.get("addresses").is_none());
    let a_ref = &s["notReadyAddresses"][0]["targetRef"];
    assert_eq!(
        (a_ref["kind"].as_str(), a_ref["name"].as_str()),
        (Some("Pod"), Some("a"))
    );
    assert!(a_ref["uid"].is_string());
    assert_eq!(
        s["ports"],
        json!([{"name": "admin", "port": 7000, "protocol": "TCP"}, {"name": "http", "port": 8080, "protocol": "TCP"}])
    );

    set_status(&c, "a", "10.1.0.1", true).await;
    set_status(&c, "b", "10.1.0.2", true).await;
    let ep = endpoints_until(&c, "web", "a and b ready", |ep| {
        ep["subsets"].as_array().is_some_and(|s| {
            s.len() == 2
                && s.iter()
                    .all(|s| s["addresses"].is_array() && s.get("notReadyAddresses").is_none())
        })
    })
    .await;
    // b's named port resolves to its own container port.
    let b = ep["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["addresses"][0]["ip"] == "10.1.0.2")
        .unwrap();
    assert!(
        b["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["port"] == 9090)
    );

    // Slices: one per port set, owned by the Service, with conditions.
    let c2 = c.clone();
    let slices = eventually("slices for a and b", || {
        let c = c2.clone();
        async move {
            let s = web_slices(&c).await;
            let ready: usize = s
                .iter()
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["conditions"]["ready"] == true)
                .count();
            (s.len() == 2 && ready == 2).then_some(s)
        }
    })
    .await;
    for s in &slices {
        assert!(s["metadata"]["name"].as_str().unwrap().starts_with("web-"));
        assert_eq!(s["addressType"], "IPv4");
        let l = &s["metadata"]["labels"];
        assert_eq!(
            l["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(l["tier"], "front");
        let o = &s["metadata"]["ownerReferences"][0];
        assert_eq!(
            (
                o["kind"].as_str(),
                o["controller"].as_bool(),
                o["blockOwnerDeletion"].as_bool()
            ),
            (Some("Service"), Some(true), Some(true))
        );
        assert_eq!(o["uid"], svc["metadata"]["uid"]);
        let e = &s["endpoints"][0];
        assert_eq!(e["targetRef"]["kind"], "Pod");
        assert_eq!(
            e["conditions"],
            json!({"ready": true, "serving": true, "terminating": false})
        );
    }
    let a_slice = slices
        .iter()
        .find(|s| s["endpoints"][0]["addresses"][0] == "10.1.0.1")
        .unwrap();
    assert_eq!(
        a_slice["ports"],
        json!([{"name": "admin", "port": 7000, "protocol": "TCP"}, {"name": "http", "port": 8080, "protocol": "TCP"}])
    );

    // Readiness lost: back to notReadyAddresses and ready=false.
    set_status(&c, "b", "10.1.0.2", false).await;
    endpoints_until(&c, "web", "b not ready", |ep| {
        ep["subsets"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["notReadyAddresses"][0]["ip"] == "10.1.0.2")
        })
    })
    .await;
    let c2 = c.clone();
    eventually("b's slice endpoint not ready", || {
        let c = c2.clone();
        async move {
            web_slices(&c)
                .await
                .iter()
                .any(|s| {
                    s["endpoints"][0]["addresses"][0] == "10.1.0.2"
                        && s["endpoints"][0]["conditions"]
                            == json!({"ready": false, "serving": false, "terminating": false})
                })
                .then_some(())
        }
    })
    .await;

    // A terminating pod (bound, so deleted gracefully) leaves the Endpoints but stays in its slice.
    let t = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "t", "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx",
                 "ports": [{"name": "web", "containerPort": 8080}]}]}});
    c.create(PODS, Some("default"), &t).await.unwrap();
    set_status(&c, "t", "10.1.0.3", true).await;
    endpoints_until(&c, "web", "t ready", |ep| {
        ep["subsets"].as_array().is_some_and(|s| {
            s.iter().any(|s| {
                s["addresses"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| a["ip"] == "10.1.0.3"))
            })
        })
    })
    .await;
    c.delete(PODS, Some("default"), "t", None).await.unwrap();
    endpoints_until(&c, "web", "t gone from endpoints", |ep| {
        !ep.to_string().contains("10.1.0.3")
    })
    .await;
    let c2 = c.clone();
    eventually("t terminating in its slice", || {
        let c = c2.clone();
        async move {
            web_slices(&c)
                .await
                .iter()
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .any(|e| {
                    e["addresses"][0] == "10.1.0.3"
                        && e["nodeName"] == "n1"
                        && e["conditions"]
                            == json!({"ready": false, "serving": true, "terminating": true})
                })
                .then_some(())
        }
    })
    .await;
    assert!(c.get(PODS, Some("default"), "t").await.unwrap().is_some());

    // Endpoints written by hand, without a Service, are left alone.
    let hand = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "by-hand"},
                      "subsets": [{"addresses": [{"ip": "192.168.9.9"}], "ports": [{"port": 80}]}]});
    c.create(EP, Some("default"), &hand).await.unwrap();

    // A Service without a selector is left alone.
    let manual = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual"},
                        "spec": {"ports": [{"port": 80}]}});
    c.create(SVC, Some("default"), &manual).await.unwrap();

    // The Service goes: its Endpoints (deleted by the controller) and slices (garbage collected) too.
    c.delete(SVC, Some("default"), "web", None).await.unwrap();
    let c2 = c.clone();
    eventually("endpoints and slices deleted", || {
        let c = c2.clone();
        async move {
            let ep = c.get(EP, Some("default"), "web").await.unwrap();
            (ep.is_none() && web_slices(&c).await.is_empty()).then_some(())
        }
    })
    .await;
    assert!(
        c.get(EP, Some("default"), "manual")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        c.get(EP, Some("default"), "by-hand")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_service_points_at_the_node() {
    let c = client().await;
    let Some(ip) = k1s_controllers::endpoints::kubernetes::host_address("127.0.0.1:6443") else {
        eprintln!("no non-loopback address on this machine; nothing to publish");
        return;
    };
    let token = CancellationToken::new();
    let _stop = Stop(token.clone());
    tokio::spawn(k1s_controllers::endpoints::run(c.clone(), token.clone()));
    let ep = endpoints_until(&c, "kubernetes", "kubernetes endpoints", |_| true).await;
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], ip.to_string());
    assert_eq!(
        ep["subsets"][0]["ports"],
        json!([{"name": "https", "port": 6443, "protocol": "TCP"}])
    );
    let c2 = c.clone();
    let slice = eventually("kubernetes slice", || {
        let c = c2.clone();
        async move { c.get(SLICES, Some("default"), "kubernetes").await.unwrap() }
    })
    .await;
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "kubernetes"
    );
    assert_eq!(slice["endpoints"][0]["addresses"][0], ip.to_string());
    // Deleted: restored.
    c.delete(EP, Some("default"), "kubernetes", None)
        .await
        .unwrap();
    endpoints_until(&c, "kubernetes", "kubernetes endpoints restored", |_| true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_cascades_across_kinds() {
    let c = client().await;
    let _gc = gc(&c);
    const RS: Gvr = Gvr::new("apps", "v1", "replicasets");
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let rs = c.create(RS, Some("default"), &rs).await.unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-x", "labels": {"app": "web"}, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
             "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    c.create(PODS, Some("default"), &pod).await.unwrap();
    // Foreground: the ReplicaSet goes only after its pod.
    c.delete(RS, Some("default"), "web", Some("Foreground"))
        .await
        .unwrap();
    let c2 = c.clone();
    eventually("pod and replicaset deleted", || {
        let c = c2.clone();
        async move {
            let pod = c.get(PODS, Some("default"), "web-x").await.unwrap();
            let rs = c.get(RS, Some("default"), "web").await.unwrap();
            (pod.is_none() && rs.is_none()).then_some(())
        }
    })
    .await;
}
