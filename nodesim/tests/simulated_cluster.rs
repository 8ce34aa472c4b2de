//! The scheduler and three simulated nodes against an in-process API server: pods are bound, run,
//! turn ready and finish deletion, as on a cluster with kubelets.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use k1s_apiserver::AppState;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const PODS: Gvr = Gvr::new("", "v1", "pods");
const NODES: Gvr = Gvr::new("", "v1", "nodes");
const LEASES: Gvr = Gvr::new("coordination.k8s.io", "v1", "leases");
const EVENTS: Gvr = Gvr::new("", "v1", "events");
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

async fn cluster(nodes: usize) -> Cluster {
    let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
    let state = AppState::new(store, Default::default());
    k1s_apiserver::bootstrap::run(&state).await.unwrap();
    let client = Client::new(state.clone(), "test");
    let shutdown = CancellationToken::new();
    tokio::spawn(k1s_scheduler::run(
        Client::new(state.clone(), "default-scheduler"),
        shutdown.clone(),
    ));
    tokio::spawn(k1s_nodesim::run(
        Client::new(state, "k1s-nodesim"),
        nodes,
        k1s_nodesim::Capacity::default(),
        shutdown.clone(),
    ));
    let cl = Cluster { client, shutdown };
    eventually("nodes registered", || async {
        let (items, _) = cl.client.list(NODES, None, None).await.unwrap();
        (items.len() == nodes).then_some(())
    })
    .await;
    cl
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
    })
}

fn condition<'a>(p: &'a Value, type_: &str) -> Option<&'a Value> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn ready(p: &Value) -> bool {
    condition(p, "Ready").is_some_and(|c| c["status"] == "True")
}

async fn get(c: &Client, name: &str) -> Option<Value> {
    c.get(PODS, Some("default"), name).await.unwrap()
}

/// Waits for a `FailedScheduling` event with exactly `want` (an attempt made before the scheduler
/// saw every node may have said less); the pod stays Pending and unbound.
async fn assert_failed_scheduling(c: &Client, pod: &str, want: &str) {
    eventually(&format!("FailedScheduling {want:?}"), || async {
        let (items, _) = c.list(EVENTS, Some("default"), None).await.unwrap();
        items.into_iter().find(|e| {
            e["involvedObject"]["name"] == pod
                && e["reason"] == "FailedScheduling"
                && e["message"] == want
        })
    })
    .await;
    let p = get(c, pod).await.unwrap();
    assert_eq!(p["status"]["phase"], "Pending");
    assert!(p["spec"]["nodeName"].is_null());
}

#[tokio::test]
async fn nodes_register_with_status_and_leases() {
    let cl = cluster(3).await;
    let c = &cl.client;
    let n = c.get(NODES, None, "k1s-sim-1").await.unwrap().unwrap();
    assert_eq!(
        n["metadata"]["labels"]["kubernetes.io/hostname"],
        "k1s-sim-1"
    );
    assert_eq!(
        n["metadata"]["labels"]["node.kubernetes.io/instance-type"],
        "k1s-sim"
    );
    assert_eq!(n["status"]["capacity"]["cpu"], "8");
    assert_eq!(n["status"]["allocatable"]["memory"], "32Gi");
    assert_eq!(n["status"]["addresses"][0]["address"], "10.44.0.2");
    assert_eq!(
        n["status"]["nodeInfo"]["containerRuntimeVersion"],
        "k1s-sim://0.1"
    );
    assert!(condition(&n, "Ready").is_some_and(|r| r["reason"] == "KubeletReady"));
    assert!(condition(&n, "PIDPressure").is_some_and(|r| r["status"] == "False"));
    let lease = eventually("lease", || async {
        c.get(LEASES, Some("kube-node-lease"), "k1s-sim-1")
            .await
            .unwrap()
    })
    .await;
    assert_eq!(lease["spec"]["holderIdentity"], "k1s-sim-1");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(
        lease["metadata"]["ownerReferences"][0]["uid"],
        n["metadata"]["uid"]
    );
}

#[tokio::test]
async fn pods_are_bound_and_become_running_and_ready() {
    let cl = cluster(3).await;
    let c = &cl.client;
    for i in 0..9 {
        c.create(PODS, Some("default"), &pod(&format!("web-{i}")))
            .await
            .unwrap();
    }
    let mut ips = HashSet::new();
    let mut nodes = HashSet::new();
    for i in 0..9 {
        let name = format!("web-{i}");
        let p = eventually("pod ready", || async { get(c, &name).await.filter(ready) }).await;
        let s = &p["status"];
        assert_eq!(s["phase"], "Running");
        for t in [
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "PodScheduled",
        ] {
            assert!(
                condition(&p, t).is_some_and(|c| c["status"] == "True"),
                "{t}"
            );
        }
        let cs = &s["containerStatuses"][0];
        assert_eq!(cs["name"], "web");
        assert_eq!(cs["ready"], true);
        assert_eq!(cs["started"], true);
        assert_eq!(cs["restartCount"], 0);
        assert!(cs["state"]["running"]["startedAt"].is_string());
        assert!(
            cs["containerID"]
                .as_str()
                .unwrap()
                .starts_with("k1s-sim://")
        );
        assert!(cs["imageID"].as_str().unwrap().starts_with("nginx@sha256:"));
        assert!(s["startTime"].is_string());
        let node: usize = p["spec"]["nodeName"].as_str().unwrap()["k1s-sim-".len()..]
            .parse()
            .unwrap();
        assert_eq!(s["hostIP"], format!("10.44.0.{}", node + 1));
        let ip = s["podIP"].as_str().unwrap().to_string();
        assert!(
            ip.starts_with(&format!("10.42.{node}.")),
            "{ip} on node {node}"
        );
        assert!(ips.insert(ip.clone()), "duplicate pod IP {ip}");
        nodes.insert(node);
    }
    assert_eq!(nodes.len(), 3, "pods spread over every node");
}

#[tokio::test]
async fn unmatched_node_selector_stays_pending() {
    let cl = cluster(3).await;
    let c = &cl.client;
    let mut p = pod("picky");
    p["spec"]["nodeSelector"] = json!({"disktype": "ssd"});
    c.create(PODS, Some("default"), &p).await.unwrap();
    assert_failed_scheduling(
        c,
        "picky",
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
    )
    .await;
}

#[tokio::test]
async fn too_large_cpu_request_stays_pending() {
    let cl = cluster(3).await;
    let c = &cl.client;
    let mut p = pod("huge");
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "9"}});
    c.create(PODS, Some("default"), &p).await.unwrap();
    assert_failed_scheduling(c, "huge", "0/3 nodes are available: 3 Insufficient cpu.").await;
}

#[tokio::test]
async fn deleting_a_running_pod_finishes() {
    let cl = cluster(3).await;
    let c = &cl.client;
    c.create(PODS, Some("default"), &pod("doomed"))
        .await
        .unwrap();
    eventually("pod ready", || async {
        get(c, "doomed").await.filter(ready)
    })
    .await;
    // A default delete is graceful (30 s): the pod only gets a deletionTimestamp; the simulated
    // kubelet finishes it.
    c.delete(PODS, Some("default"), "doomed", None)
        .await
        .unwrap();
    eventually("pod gone", || async {
        get(c, "doomed").await.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn readiness_probe_delay_is_honoured() {
    let cl = cluster(1).await;
    let c = &cl.client;
    let mut p = pod("slow");
    p["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"port": 80}, "initialDelaySeconds": 1});
    c.create(PODS, Some("default"), &p).await.unwrap();
    let running = eventually("pod running", || async {
        get(c, "slow")
            .await
            .filter(|p| p["status"]["phase"] == "Running")
    })
    .await;
    assert_eq!(running["status"]["containerStatuses"][0]["ready"], false);
    assert_eq!(
        condition(&running, "Ready").unwrap()["reason"],
        "ContainersNotReady"
    );
    eventually("pod ready", || async { get(c, "slow").await.filter(ready) }).await;
}

/// A thousand pods on ten nodes all run and turn ready (the time is printed; the bound is loose
/// because tests run unoptimised and in parallel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_pods_become_ready() {
    const N: usize = 1000;
    let cl = cluster(10).await;
    let c = &cl.client;
    let start = Instant::now();
    let creators: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in (t..N).step_by(8) {
                    c.create(PODS, Some("default"), &pod(&format!("p{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for h in creators {
        h.await.unwrap();
    }
    let end = start + Duration::from_secs(60);
    let items = loop {
        let (items, _) = c.list(PODS, Some("default"), None).await.unwrap();
        let ready_count = items.iter().filter(|p| ready(p)).count();
        if ready_count == N {
            break items;
        }
        assert!(Instant::now() < end, "only {ready_count}/{N} ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "{N} pods created, bound, running and ready in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    let ips: HashSet<&str> = items
        .iter()
        .map(|p| p["status"]["podIP"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), N, "pod IPs are unique");
}

/// A restarted simulator keeps what it reported: addresses and container IDs stay, and running
/// pods are not rewritten.
#[tokio::test]
async fn a_restarted_simulator_keeps_pod_addresses() {
    let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
    let state = AppState::new(store, Default::default());
    k1s_apiserver::bootstrap::run(&state).await.unwrap();
    let c = Client::new(state.clone(), "test");
    let stop_all = CancellationToken::new();
    let _guard = stop_all.clone().drop_guard();
    tokio::spawn(k1s_scheduler::run(
        Client::new(state.clone(), "default-scheduler"),
        stop_all.clone(),
    ));
    let first = stop_all.child_token();
    tokio::spawn(k1s_nodesim::run(
        Client::new(state.clone(), "k1s-nodesim"),
        2,
        k1s_nodesim::Capacity::default(),
        first.clone(),
    ));
    c.create(PODS, Some("default"), &pod("a")).await.unwrap();
    let a = eventually("a ready", || async { get(&c, "a").await.filter(ready) }).await;
    first.cancel();
    tokio::spawn(k1s_nodesim::run(
        Client::new(state, "k1s-nodesim"),
        2,
        k1s_nodesim::Capacity::default(),
        stop_all.child_token(),
    ));
    // A second pod on the same node must not get the first one's address.
    let mut b = pod("b");
    b["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": a["spec"]["nodeName"]});
    c.create(PODS, Some("default"), &b).await.unwrap();
    let b = eventually("b ready", || async { get(&c, "b").await.filter(ready) }).await;
    assert_ne!(a["status"]["podIP"], b["status"]["podIP"]);
    let a2 = get(&c, "a").await.unwrap();
    assert_eq!(
        a2["metadata"]["resourceVersion"],
        a["metadata"]["resourceVersion"]
    );
}

/// A run with fewer nodes removes the nodes (and their pods and Leases) a bigger run left behind.
#[tokio::test]
async fn fewer_nodes_after_a_restart_removes_the_rest() {
    let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
    let state = AppState::new(store, Default::default());
    k1s_apiserver::bootstrap::run(&state).await.unwrap();
    let c = Client::new(state.clone(), "test");
    let stop_all = CancellationToken::new();
    let _guard = stop_all.clone().drop_guard();
    let first = stop_all.child_token();
    tokio::spawn(k1s_nodesim::run(
        Client::new(state.clone(), "k1s-nodesim"),
        3,
        k1s_nodesim::Capacity::default(),
        first.clone(),
    ));
    let mut p = pod("pinned");
    p["spec"]["nodeName"] = json!("k1s-sim-2");
    c.create(PODS, Some("default"), &p).await.unwrap();
    eventually("pinned ready", || async {
        get(&c, "pinned").await.filter(ready)
    })
    .await;
    eventually("lease", || async {
        c.get(LEASES, Some("kube-node-lease"), "k1s-sim-2")
            .await
            .unwrap()
    })
    .await;
    first.cancel();
    tokio::spawn(k1s_nodesim::run(
        Client::new(state, "k1s-nodesim"),
        2,
        k1s_nodesim::Capacity::default(),
        stop_all.child_token(),
    ));
    eventually("stale node, lease and pod gone", || async {
        let node = c.get(NODES, None, "k1s-sim-2").await.unwrap();
        let lease = c
            .get(LEASES, Some("kube-node-lease"), "k1s-sim-2")
            .await
            .unwrap();
        (node.is_none() && lease.is_none() && get(&c, "pinned").await.is_none()).then_some(())
    })
    .await;
    assert!(c.get(NODES, None, "k1s-sim-1").await.unwrap().is_some());
}
