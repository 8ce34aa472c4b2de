//! ReplicaSet and Deployment controllers against an in-process API server.
//!
//! There is no kubelet here: [`fake_kubelet`] marks every pod Running and Ready as soon as it appears,
//! as the node simulator will. Every wait polls a condition against a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k1s_apiserver::AppState;
use k1s_apiserver::client::{Change, Client, Gvr};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const PODS: Gvr = Gvr::new("", "v1", "pods");
const RS: Gvr = Gvr::new("apps", "v1", "replicasets");
const NS: &str = "default";
const DEADLINE: Duration = Duration::from_secs(20);

struct Cluster {
    client: Client,
    shutdown: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An in-memory API server with the workload controllers running; `kubelet` adds the fake kubelet.
async fn cluster(kubelet: bool) -> Cluster {
    let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
    let state = AppState::new(store, Default::default());
    k1s_apiserver::bootstrap::run(&state).await.unwrap();
    let client = Client::new(state, "workloads-test");
    let shutdown = CancellationToken::new();
    tokio::spawn(k1s_controllers::replicaset::run(
        client.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(k1s_controllers::deployment::run(
        client.clone(),
        shutdown.clone(),
    ));
    if kubelet {
        tokio::spawn(fake_kubelet(client.clone(), shutdown.clone()));
    }
    Cluster { client, shutdown }
}

/// Marks every pod that is not ready yet (and not being deleted) Running and Ready.
async fn fake_kubelet(client: Client, shutdown: CancellationToken) {
    let (pods, rv) = client.list(PODS, None, None).await.unwrap();
    for p in pods {
        make_ready(&client, p).await;
    }
    let mut w = client.watch(PODS, None, rv).unwrap();
    loop {
        let change = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = w.next() => c,
        };
        match change {
            Some(Ok(Change::Added(p))) | Some(Ok(Change::Modified(p))) => {
                make_ready(&client, p).await
            }
            Some(Ok(Change::Deleted(_))) => {}
            Some(Err(e)) => panic!("fake kubelet watch failed: {e}"),
            None => return,
        }
    }
}

static NEXT_IP: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(2);

async fn make_ready(client: &Client, mut pod: Value) {
    if pod["metadata"]["deletionTimestamp"].is_string() || is_ready(&pod) {
        return;
    }
    let ip = NEXT_IP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = k1s_apimachinery::meta::now_rfc3339();
    pod["status"]["phase"] = json!("Running");
    pod["status"]["podIP"] = json!(format!("10.42.{}.{}", ip / 250, ip % 250 + 1));
    pod["status"]["startTime"] = json!(now);
    pod["status"]["conditions"] = json!([
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
    ]);
    // A conflict means a newer version exists; its watch event brings it back here.
    let _ = client.update_status(PODS, &pod).await;
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Polls `f` every 10 ms until it returns `Some`, failing after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn pods(c: &Client, selector: &str) -> Vec<Value> {
    c.list(PODS, Some(NS), Some(selector)).await.unwrap().0
}

fn template(app: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": image}]},
    })
}

fn replicaset(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name, "nginx:1")},
    })
}

/// Waits until the ReplicaSet has exactly `n` pods, all ready, and its status says so.
async fn rs_converged(c: &Client, name: &str, n: usize) -> Vec<Value> {
    eventually(&format!("replica set {name} at {n} ready pods"), || async {
        let rs = c.get(RS, Some(NS), name).await.unwrap()?;
        let p = pods(c, &format!("app={name}")).await;
        let s = &rs["status"];
        (p.len() == n
            && p.iter().all(is_ready)
            && s["replicas"].as_i64().unwrap_or(0) == n as i64
            && s["readyReplicas"].as_i64().unwrap_or(0) == n as i64
            && s["availableReplicas"].as_i64().unwrap_or(0) == n as i64
            && s["fullyLabeledReplicas"].as_i64().unwrap_or(0) == n as i64
            && s["observedGeneration"] == rs["metadata"]["generation"])
            .then_some(p)
    })
    .await
}

/// Records the most pods ever seen at once for a selector, from a watch.
fn track_max_pods(c: &Client, app: &str) -> Arc<Mutex<usize>> {
    let max = Arc::new(Mutex::new(0));
    let (c, app, m) = (c.clone(), app.to_string(), max.clone());
    tokio::spawn(async move {
        let mut w = c.watch(PODS, Some(NS), 0).unwrap();
        let mut live = BTreeMap::new();
        while let Some(Ok(ch)) = w.next().await {
            match ch {
                Change::Added(p) | Change::Modified(p) => {
                    if p["metadata"]["labels"]["app"] == app.as_str() {
                        live.insert(p["metadata"]["name"].as_str().unwrap().to_string(), ());
                    }
                }
                Change::Deleted(p) => {
                    live.remove(p["metadata"]["name"].as_str().unwrap());
                }
            }
            let mut g = m.lock().unwrap();
            *g = (*g).max(live.len());
        }
    });
    max
}

async fn scale(c: &Client, gvr: Gvr, name: &str, n: i64) {
    c.merge_patch(gvr, Some(NS), name, None, &json!({"spec": {"replicas": n}}))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_scales_up_and_down_to_exactly_n() {
    let k = cluster(true).await;
    let c = &k.client;
    let max = track_max_pods(c, "web");
    c.create(RS, Some(NS), &replicaset("web", 3)).await.unwrap();
    let p = rs_converged(c, "web", 3).await;
    let rs = c.get(RS, Some(NS), "web").await.unwrap().unwrap();
    for pod in &p {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-"), "{name}");
        let r = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(r["apiVersion"], "apps/v1");
        assert_eq!(r["kind"], "ReplicaSet");
        assert_eq!(r["name"], "web");
        assert_eq!(r["uid"], rs["metadata"]["uid"]);
        assert_eq!(r["controller"], true);
        assert_eq!(r["blockOwnerDeletion"], true);
    }
    scale(c, RS, "web", 10).await;
    rs_converged(c, "web", 10).await;
    assert_eq!(*max.lock().unwrap(), 10, "never more pods than asked for");
    scale(c, RS, "web", 2).await;
    rs_converged(c, "web", 2).await;
    scale(c, RS, "web", 0).await;
    rs_converged(c, "web", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_replaces_a_deleted_pod() {
    let k = cluster(true).await;
    let c = &k.client;
    c.create(RS, Some(NS), &replicaset("db", 3)).await.unwrap();
    let before = rs_converged(c, "db", 3).await;
    let victim = before[0]["metadata"]["name"].as_str().unwrap().to_string();
    c.delete(PODS, Some(NS), &victim, None).await.unwrap();
    let after = eventually("a replacement pod", || async {
        let p = rs_converged(c, "db", 3).await;
        p.iter()
            .all(|p| p["metadata"]["name"] != victim.as_str())
            .then_some(p)
    })
    .await;
    assert_eq!(after.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_adopts_orphans_and_releases_pods_that_stop_matching() {
    let k = cluster(true).await;
    let c = &k.client;
    let orphan = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stray", "labels": {"app": "cache"}},
        "spec": {"containers": [{"name": "c", "image": "redis"}]},
    });
    c.create(PODS, Some(NS), &orphan).await.unwrap();
    c.create(RS, Some(NS), &replicaset("cache", 2))
        .await
        .unwrap();
    let p = rs_converged(c, "cache", 2).await;
    let stray = p
        .iter()
        .find(|p| p["metadata"]["name"] == "stray")
        .expect("adopted");
    assert_eq!(stray["metadata"]["ownerReferences"][0]["name"], "cache");
    // Relabel the adopted pod: it is released and replaced.
    c.merge_patch(
        PODS,
        Some(NS),
        "stray",
        None,
        &json!({"metadata": {"labels": {"app": "other"}}}),
    )
    .await
    .unwrap();
    rs_converged(c, "cache", 2).await;
    eventually("the relabelled pod to be released", || async {
        let p = c.get(PODS, Some(NS), "stray").await.unwrap()?;
        p["metadata"].get("ownerReferences").is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_status_waits_for_min_ready_seconds() {
    let k = cluster(true).await;
    let c = &k.client;
    let mut rs = replicaset("slow", 2);
    rs["spec"]["minReadySeconds"] = json!(1);
    c.create(RS, Some(NS), &rs).await.unwrap();
    eventually("ready but not yet available", || async {
        let rs = c.get(RS, Some(NS), "slow").await.unwrap()?;
        (rs["status"]["readyReplicas"] == 2).then_some(())
    })
    .await;
    // Ready pods become available a second after they became ready, without further pod events.
    rs_converged(c, "slow", 2).await;
}
