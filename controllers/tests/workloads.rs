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
const EVENTS: Gvr = Gvr::new("", "v1", "events");
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
    let k = server().await;
    start(&k, kubelet);
    k
}

/// An in-memory API server, nothing running yet.
async fn server() -> Cluster {
    let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
    let state = AppState::new(store, Default::default());
    k1s_apiserver::bootstrap::run(&state).await.unwrap();
    Cluster {
        client: Client::new(state, "workloads-test"),
        shutdown: CancellationToken::new(),
    }
}

/// Starts the controllers (and the fake kubelet) against `k`.
fn start(k: &Cluster, kubelet: bool) {
    let (client, shutdown) = (k.client.clone(), k.shutdown.clone());
    tokio::spawn(k1s_controllers::replicaset::run(
        client.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(k1s_controllers::deployment::run(
        client.clone(),
        shutdown.clone(),
    ));
    if kubelet {
        tokio::spawn(fake_kubelet(client, shutdown));
    }
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

/// A merge patch as a user would send it. The API server currently answers 409 when a controller
/// wrote the object between its read and its write (it does not retry merge patches without a
/// resourceVersion precondition, as upstream does), so retry here.
async fn patch(c: &Client, gvr: Gvr, name: &str, body: Value) {
    for _ in 0..50 {
        match c.merge_patch(gvr, Some(NS), name, None, &body).await {
            Ok(_) => return,
            Err(e) if e.code == 409 => tokio::task::yield_now().await,
            Err(e) => panic!("patch {name}: {e}"),
        }
    }
    panic!("patch {name} kept conflicting");
}

async fn scale(c: &Client, gvr: Gvr, name: &str, n: i64) {
    patch(c, gvr, name, json!({"spec": {"replicas": n}})).await;
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
    // `kubectl describe rs` shows what the controller did.
    eventually("pod events on the replica set", || async {
        let (items, _) = c.list(EVENTS, Some(NS), None).await.unwrap();
        let reasons: Vec<_> = items
            .iter()
            .filter(|e| {
                e["involvedObject"]["kind"] == "ReplicaSet"
                    && e["involvedObject"]["name"] == "web"
                    && e["source"]["component"] == "replicaset-controller"
            })
            .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
            .collect();
        (reasons.iter().any(|r| r == "SuccessfulCreate")
            && reasons.iter().any(|r| r == "SuccessfulDelete"))
        .then_some(())
    })
    .await;
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
    patch(
        c,
        PODS,
        "stray",
        json!({"metadata": {"labels": {"app": "other"}}}),
    )
    .await;
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

// ---------------------------------------------------------------------------------------------
// Deployments

const DEPLOY: Gvr = Gvr::new("apps", "v1", "deployments");
const HASH: &str = "pod-template-hash";

fn deployment(name: &str, replicas: i64, strategy: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": template(name, "nginx:1"),
        },
    })
}

fn surge_one() -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
}

fn condition<'a>(d: &'a Value, kind: &str) -> Option<&'a Value> {
    d["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Waits until the rollout is complete as `kubectl rollout status` sees it, with exactly
/// `n` pods left, all from the new ReplicaSet; returns the Deployment and the new ReplicaSet.
async fn rolled_out(c: &Client, name: &str, n: i64) -> (Value, Value) {
    eventually(&format!("deployment {name} rolled out to {n}"), || async {
        let d = c.get(DEPLOY, Some(NS), name).await.unwrap()?;
        let s = &d["status"];
        let count = |f: &str| s[f].as_i64().unwrap_or(0);
        let done = s["observedGeneration"] == d["metadata"]["generation"]
            && count("replicas") == n
            && count("updatedReplicas") == n
            && count("availableReplicas") == n
            && count("readyReplicas") == n
            && count("unavailableReplicas") == 0
            && condition(&d, "Progressing")?["reason"] == "NewReplicaSetAvailable"
            && condition(&d, "Available")?["status"] == "True";
        if !done {
            return None;
        }
        let (rss, _) = c
            .list(RS, Some(NS), Some(&format!("app={name}")))
            .await
            .unwrap();
        let new = rss.into_iter().find(|rs| rs["spec"]["replicas"] == n)?;
        let hash = new["metadata"]["labels"][HASH].as_str()?.to_string();
        let p = pods(c, &format!("app={name}")).await;
        (p.len() == n as usize
            && p.iter()
                .all(|p| p["metadata"]["labels"][HASH] == hash.as_str()))
        .then_some((d, new))
    })
    .await
}

/// What a watch over one app's pods saw: the extremes over every intermediate state.
#[derive(Default, Debug)]
struct Seen {
    /// name → (ready, pod-template-hash)
    live: BTreeMap<String, (bool, String)>,
    max_pods: usize,
    min_ready: usize,
    /// A state with pods of two templates at once.
    mixed: bool,
}

impl Seen {
    fn ready(&self) -> usize {
        self.live.values().filter(|(r, _)| *r).count()
    }
}

/// Follows the app's pods from now on, recording extremes after every change.
async fn observe(c: &Client, app: &str) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (items, rv) = c
        .list(PODS, Some(NS), Some(&format!("app={app}")))
        .await
        .unwrap();
    let record = |s: &mut Seen, p: &Value| {
        let hash = p["metadata"]["labels"][HASH]
            .as_str()
            .unwrap_or_default()
            .to_string();
        s.live.insert(
            p["metadata"]["name"].as_str().unwrap().to_string(),
            (is_ready(p), hash),
        );
    };
    {
        let mut s = seen.lock().unwrap();
        for p in &items {
            record(&mut s, p);
        }
        s.max_pods = s.live.len();
        s.min_ready = s.ready();
    }
    let mut w = c.watch(PODS, Some(NS), rv).unwrap();
    let (app, out) = (app.to_string(), seen.clone());
    tokio::spawn(async move {
        while let Some(Ok(ch)) = w.next().await {
            let mut s = out.lock().unwrap();
            match ch {
                Change::Added(p) | Change::Modified(p) => {
                    if p["metadata"]["labels"]["app"] != app.as_str() {
                        continue;
                    }
                    if p["metadata"]["deletionTimestamp"].is_string() {
                        s.live.remove(p["metadata"]["name"].as_str().unwrap());
                    } else {
                        record(&mut s, &p);
                    }
                }
                Change::Deleted(p) => {
                    s.live.remove(p["metadata"]["name"].as_str().unwrap());
                }
            }
            s.max_pods = s.max_pods.max(s.live.len());
            s.min_ready = s.min_ready.min(s.ready());
            let hashes: std::collections::BTreeSet<_> =
                s.live.values().map(|(_, h)| h.clone()).collect();
            s.mixed |= hashes.len() > 1;
        }
    });
    seen
}

/// Waits until the observer has caught up with a final state of `n` ready pods of `hash`.
async fn observer_settled(seen: &Arc<Mutex<Seen>>, n: usize, hash: &str) {
    eventually("the pod observer to catch up", || async {
        let s = seen.lock().unwrap();
        (s.live.len() == n && s.live.values().all(|(r, h)| *r && h == hash)).then_some(())
    })
    .await
}

async fn set_image(c: &Client, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    self::patch(c, DEPLOY, name, patch).await;
}

fn revision(obj: &Value) -> &str {
    obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_within_surge_and_unavailability() {
    let k = cluster(true).await;
    let c = &k.client;
    c.create(DEPLOY, Some(NS), &deployment("web", 3, surge_one()))
        .await
        .unwrap();
    let (d, rs1) = rolled_out(c, "web", 3).await;
    let hash1 = rs1["metadata"]["labels"][HASH]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs1["metadata"]["name"], format!("web-{hash1}"));
    assert_eq!(rs1["spec"]["selector"]["matchLabels"][HASH], hash1.as_str());
    assert_eq!(
        rs1["spec"]["template"]["metadata"]["labels"][HASH],
        hash1.as_str()
    );
    assert_eq!(rs1["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(
        rs1["metadata"]["ownerReferences"][0]["uid"],
        d["metadata"]["uid"]
    );
    assert_eq!((revision(&rs1), revision(&d)), ("1", "1"));

    let seen = observe(c, "web").await;
    set_image(c, "web", "nginx:2").await;
    let (d, rs2) = rolled_out(c, "web", 3).await;
    let hash2 = rs2["metadata"]["labels"][HASH]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(hash1, hash2);
    observer_settled(&seen, 3, &hash2).await;
    {
        let s = seen.lock().unwrap();
        assert!(s.max_pods <= 4, "more than replicas + maxSurge pods: {s:?}");
        assert!(
            s.min_ready >= 3,
            "fewer than replicas - maxUnavailable ready: {s:?}"
        );
        assert_eq!(s.max_pods, 4, "the surge was used");
    }
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);
    assert_eq!((revision(&rs2), revision(&d)), ("2", "2"));
    let old = c
        .get(RS, Some(NS), &format!("web-{hash1}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);

    // `kubectl describe deploy` shows the scaling events.
    let events = eventually("scaling events", || async {
        let (items, _) = c.list(EVENTS, Some(NS), None).await.unwrap();
        let msgs: Vec<String> = items
            .iter()
            .filter(|e| e["reason"] == "ScalingReplicaSet" && e["involvedObject"]["name"] == "web")
            .map(|e| {
                assert_eq!(e["involvedObject"]["kind"], "Deployment");
                assert_eq!(e["source"]["component"], "deployment-controller");
                assert_eq!(e["type"], "Normal");
                assert!(e["count"].as_i64().unwrap() >= 1);
                assert!(e["firstTimestamp"].is_string() && e["lastTimestamp"].is_string());
                e["message"].as_str().unwrap().to_string()
            })
            .collect();
        msgs.iter()
            .any(|m| m == &format!("Scaled down replica set web-{hash1} from 1 to 0"))
            .then_some(msgs)
    })
    .await;
    assert!(
        events.contains(&format!("Scaled up replica set web-{hash1} from 0 to 3")),
        "{events:?}"
    );
    assert!(
        events.contains(&format!("Scaled up replica set web-{hash2} from 0 to 1")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_recreate_removes_old_pods_before_creating_new_ones() {
    let k = cluster(true).await;
    let c = &k.client;
    c.create(
        DEPLOY,
        Some(NS),
        &deployment("batch", 3, json!({"type": "Recreate"})),
    )
    .await
    .unwrap();
    rolled_out(c, "batch", 3).await;
    let seen = observe(c, "batch").await;
    set_image(c, "batch", "nginx:2").await;
    let (_, rs2) = rolled_out(c, "batch", 3).await;
    observer_settled(&seen, 3, rs2["metadata"]["labels"][HASH].as_str().unwrap()).await;
    let s = seen.lock().unwrap();
    assert!(!s.mixed, "old and new pods ran together: {s:?}");
    assert_eq!(s.min_ready, 0, "Recreate goes through zero pods");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_deployment_does_not_roll_out_until_resumed() {
    let k = cluster(true).await;
    let c = &k.client;
    c.create(DEPLOY, Some(NS), &deployment("api", 2, json!({})))
        .await
        .unwrap();
    let (_, rs1) = rolled_out(c, "api", 2).await;
    patch(c, DEPLOY, "api", json!({"spec": {"paused": true}})).await;
    set_image(c, "api", "nginx:2").await;
    eventually("the paused deployment to be observed", || async {
        let d = c.get(DEPLOY, Some(NS), "api").await.unwrap()?;
        (d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && condition(&d, "Progressing")?["reason"] == "DeploymentPaused")
            .then_some(())
    })
    .await;
    let (rss, _) = c.list(RS, Some(NS), Some("app=api")).await.unwrap();
    assert_eq!(rss.len(), 1, "no new replica set while paused");
    let hash1 = rs1["metadata"]["labels"][HASH].as_str().unwrap();
    assert!(
        pods(c, "app=api")
            .await
            .iter()
            .all(|p| p["metadata"]["labels"][HASH] == hash1)
    );
    // Scaling still works while paused.
    scale(c, DEPLOY, "api", 3).await;
    eventually("the paused deployment to scale", || async {
        let p = pods(c, "app=api").await;
        (p.len() == 3 && p.iter().all(|p| p["metadata"]["labels"][HASH] == hash1)).then_some(())
    })
    .await;
    patch(c, DEPLOY, "api", json!({"spec": {"paused": false}})).await;
    let (_, rs2) = rolled_out(c, "api", 3).await;
    assert_ne!(rs2["metadata"]["name"], rs1["metadata"]["name"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_scales_and_rolls_back_and_prunes_history() {
    let k = cluster(true).await;
    let c = &k.client;
    let mut d = deployment("shop", 2, json!({}));
    d["spec"]["revisionHistoryLimit"] = json!(1);
    c.create(DEPLOY, Some(NS), &d).await.unwrap();
    let (_, rs1) = rolled_out(c, "shop", 2).await;
    scale(c, DEPLOY, "shop", 5).await;
    rolled_out(c, "shop", 5).await;
    scale(c, DEPLOY, "shop", 1).await;
    rolled_out(c, "shop", 1).await;
    scale(c, DEPLOY, "shop", 2).await;
    rolled_out(c, "shop", 2).await;

    set_image(c, "shop", "nginx:2").await;
    let (d, rs2) = rolled_out(c, "shop", 2).await;
    assert_eq!(revision(&d), "2");
    assert_eq!(
        rs1["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );

    // `kubectl rollout undo`: the template of revision 1 goes back into the Deployment.
    let mut old_template = rs1["spec"]["template"].clone();
    old_template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(HASH);
    eventually("the template of revision 1 written back", || async {
        let mut undo = c.get(DEPLOY, Some(NS), "shop").await.unwrap()?;
        undo["spec"]["template"] = old_template.clone();
        c.update(DEPLOY, &undo).await.ok()
    })
    .await;
    let (d, back) = rolled_out(c, "shop", 2).await;
    assert_eq!(
        back["metadata"]["name"], rs1["metadata"]["name"],
        "the old replica set is reused"
    );
    assert_eq!(revision(&back), "3");
    assert_eq!(revision(&d), "3");
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );

    // A third template: with revisionHistoryLimit 1 only one old replica set stays.
    set_image(c, "shop", "nginx:3").await;
    rolled_out(c, "shop", 2).await;
    eventually("old replica sets pruned to the history limit", || async {
        let (rss, _) = c.list(RS, Some(NS), Some("app=shop")).await.unwrap();
        let names: Vec<_> = rss.iter().map(|r| r["metadata"]["name"].clone()).collect();
        (rss.len() == 2 && !names.contains(&rs2["metadata"]["name"])).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_rollout_exceeds_its_progress_deadline() {
    // No kubelet: pods never become ready.
    let k = cluster(false).await;
    let c = &k.client;
    let mut d = deployment("stuck", 2, json!({}));
    d["spec"]["progressDeadlineSeconds"] = json!(1);
    c.create(DEPLOY, Some(NS), &d).await.unwrap();
    let d = eventually("ProgressDeadlineExceeded", || async {
        let d = c.get(DEPLOY, Some(NS), "stuck").await.unwrap()?;
        (condition(&d, "Progressing")?["reason"] == "ProgressDeadlineExceeded").then_some(d)
    })
    .await;
    let p = condition(&d, "Progressing").unwrap();
    assert_eq!(p["status"], "False");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .ends_with("has timed out progressing.")
    );
    let a = condition(&d, "Available").unwrap();
    assert_eq!(
        (a["status"].as_str(), a["reason"].as_str()),
        (Some("False"), Some("MinimumReplicasUnavailable"))
    );
    assert_eq!(d["status"]["unavailableReplicas"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converged_controllers_write_nothing() {
    let k = cluster(true).await;
    let c = &k.client;
    c.create(DEPLOY, Some(NS), &deployment("idle", 3, surge_one()))
        .await
        .unwrap();
    rolled_out(c, "idle", 3).await;
    // Give stragglers (status writes racing the last pod event) a moment to land, then measure
    // a quiet window: a converged cluster must not be rewritten by its controllers.
    let settled = eventually("writes to stop", || async {
        let before = c.state().store().revision();
        tokio::time::sleep(Duration::from_millis(250)).await;
        (c.state().store().revision() == before).then_some(before)
    })
    .await;
    // Events are recorded in the background and may land late on a loaded machine; objects must
    // not change at all.
    let mut w = c.state().store().watch("/registry/", settled).unwrap();
    let window = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(ev)) = tokio::time::timeout_at(window, w.next()).await {
        let ev = ev.unwrap();
        assert!(
            ev.kv.key.starts_with("/registry/core/events/"),
            "controllers kept writing: {:?} {}",
            ev.kind,
            String::from_utf8_lossy(&ev.kv.value)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_pick_up_objects_that_existed_before_they_started() {
    let k = server().await;
    let c = &k.client;
    c.create(RS, Some(NS), &replicaset("early", 2))
        .await
        .unwrap();
    c.create(DEPLOY, Some(NS), &deployment("boot", 2, json!({})))
        .await
        .unwrap();
    start(&k, true);
    rs_converged(c, "early", 2).await;
    rolled_out(c, "boot", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentage_rollout_of_forty_replicas_stays_within_bounds() {
    let k = cluster(true).await;
    let c = &k.client;
    // Defaults: maxSurge 25% (10, rounded up), maxUnavailable 25% (10, rounded down).
    c.create(DEPLOY, Some(NS), &deployment("wide", 40, json!({})))
        .await
        .unwrap();
    rolled_out(c, "wide", 40).await;
    let seen = observe(c, "wide").await;
    set_image(c, "wide", "nginx:2").await;
    let (_, rs) = rolled_out(c, "wide", 40).await;
    observer_settled(&seen, 40, rs["metadata"]["labels"][HASH].as_str().unwrap()).await;
    let s = seen.lock().unwrap();
    assert!(s.max_pods <= 50, "more than 40 + 10 pods: {}", s.max_pods);
    assert!(
        s.min_ready >= 30,
        "fewer than 40 - 10 ready: {}",
        s.min_ready
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizing_mid_rollout_scales_replica_sets_proportionally() {
    // No kubelet: only the first template's pods are made ready, so the rollout stalls halfway.
    let k = cluster(false).await;
    let c = &k.client;
    c.create(DEPLOY, Some(NS), &deployment("mid", 4, surge_one()))
        .await
        .unwrap();
    let ready_all = || async {
        for p in pods(c, "app=mid").await {
            make_ready(c, p).await;
        }
    };
    eventually("four pods", || async {
        (pods(c, "app=mid").await.len() == 4).then_some(())
    })
    .await;
    let (_, rs1) = eventually("the first rollout", || async {
        ready_all().await;
        let d = c.get(DEPLOY, Some(NS), "mid").await.unwrap()?;
        (d["status"]["availableReplicas"] == 4).then_some(())?;
        Some(rolled_out(c, "mid", 4).await)
    })
    .await;
    set_image(c, "mid", "nginx:2").await;
    // Stalled: old 4, new 1 (not ready), the surge used up.
    let new_name = eventually("the new replica set at 1", || async {
        let (rss, _) = c.list(RS, Some(NS), Some("app=mid")).await.unwrap();
        let new = rss
            .iter()
            .find(|r| r["metadata"]["name"] != rs1["metadata"]["name"])?;
        (new["spec"]["replicas"] == 1)
            .then(|| new["metadata"]["name"].as_str().unwrap().to_string())
    })
    .await;
    // Once the controller has seen the stalled state (its status counts the new pod); resizing
    // before that would size from a cache without the new replica set.
    eventually("the stall in the deployment's status", || async {
        let d = c.get(DEPLOY, Some(NS), "mid").await.unwrap()?;
        (d["status"]["updatedReplicas"] == 1 && d["status"]["replicas"] == 5).then_some(())
    })
    .await;
    // 4 -> 8 with maxSurge 1: 9 allowed; old gets round(4 * 9 / 5) = 7, new round(1 * 9 / 5) = 2.
    scale(c, DEPLOY, "mid", 8).await;
    eventually("proportional sizes 7 and 2", || async {
        let old = c
            .get(RS, Some(NS), rs1["metadata"]["name"].as_str().unwrap())
            .await
            .unwrap()?;
        let new = c.get(RS, Some(NS), &new_name).await.unwrap()?;
        (old["spec"]["replicas"] == 7
            && new["spec"]["replicas"] == 2
            && old["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "8"
            && new["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "9")
            .then_some(())
    })
    .await;
}
