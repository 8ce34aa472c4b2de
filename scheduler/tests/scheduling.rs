//! The scheduler against an in-process API server with hand-made Ready nodes (no simulator: pods
//! are bound, nobody runs them).

use std::time::{Duration, Instant};

use k1s_apiserver::AppState;
use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const PODS: Gvr = Gvr::new("", "v1", "pods");
const NODES: Gvr = Gvr::new("", "v1", "nodes");
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

async fn cluster() -> Cluster {
    let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
    let state = AppState::new(store, Default::default());
    k1s_apiserver::bootstrap::run(&state).await.unwrap();
    let client = Client::new(state, "test");
    let shutdown = CancellationToken::new();
    tokio::spawn(k1s_scheduler::run(
        Client::new(client.state().clone(), "default-scheduler"),
        shutdown.clone(),
    ));
    Cluster { client, shutdown }
}

fn node(name: &str, cpu: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {
            "capacity": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
        }
    })
}

fn pod(name: &str, cpu: Option<&str>) -> Value {
    let resources = match cpu {
        Some(c) => json!({"requests": {"cpu": c}}),
        None => json!({}),
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx", "resources": resources}]}
    })
}

/// Polls `f` until it returns `Some`, or panics at the deadline.
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

async fn node_of(c: &Client, name: &str) -> Option<String> {
    let p = c.get(PODS, Some("default"), name).await.unwrap()?;
    p["spec"]["nodeName"].as_str().map(str::to_string)
}

async fn events_for(c: &Client, pod: &str, reason: &str) -> Vec<Value> {
    let (items, _) = c.list(EVENTS, Some("default"), None).await.unwrap();
    items
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod && e["reason"] == reason)
        .collect()
}

/// Waits for a `FailedScheduling` event with exactly `want` (an earlier attempt may have seen
/// fewer nodes) and for the pod's PodScheduled=False condition saying the same.
async fn assert_failed_scheduling(c: &Client, pod: &str, want: &str) {
    let ev = eventually(&format!("FailedScheduling {want:?}"), || async {
        events_for(c, pod, "FailedScheduling")
            .await
            .into_iter()
            .find(|e| e["message"] == want)
    })
    .await;
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["source"]["component"], "default-scheduler");
    let p = eventually("PodScheduled=False", || async {
        let p = c.get(PODS, Some("default"), pod).await.unwrap()?;
        let cond = p["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|x| x["type"] == "PodScheduled")?
            .clone();
        (cond["status"] == "False" && cond["message"] == want).then_some((p, cond))
    })
    .await;
    assert_eq!(p.1["reason"], "Unschedulable");
    assert_eq!(p.0["status"]["phase"], "Pending");
    assert!(p.0["spec"]["nodeName"].is_null());
}

#[tokio::test]
async fn pods_spread_over_ready_nodes_with_a_scheduled_event() {
    let cl = cluster().await;
    let c = &cl.client;
    for n in ["n1", "n2", "n3"] {
        c.create(NODES, None, &node(n, "2", json!({})))
            .await
            .unwrap();
    }
    for i in 0..6 {
        c.create(PODS, Some("default"), &pod(&format!("p{i}"), Some("500m")))
            .await
            .unwrap();
    }
    let mut per_node = std::collections::HashMap::new();
    for i in 0..6 {
        let name = format!("p{i}");
        let n = eventually("binding", || node_of(c, &name)).await;
        *per_node.entry(n).or_insert(0) += 1;
    }
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    assert!(per_node.values().all(|&v| v == 2), "{per_node:?}");
    let p = c.get(PODS, Some("default"), "p0").await.unwrap().unwrap();
    let node = p["spec"]["nodeName"].as_str().unwrap().to_string();
    let cond = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == "PodScheduled")
        .unwrap()
        .clone();
    assert_eq!(cond["status"], "True");
    let ev = eventually("Scheduled event", || async {
        events_for(c, "p0", "Scheduled").await.into_iter().next()
    })
    .await;
    assert_eq!(ev["type"], "Normal");
    assert_eq!(
        ev["message"],
        format!("Successfully assigned default/p0 to {node}")
    );
}

#[tokio::test]
async fn node_selector_nobody_matches_stays_pending() {
    let cl = cluster().await;
    let c = &cl.client;
    for n in ["n1", "n2", "n3"] {
        c.create(NODES, None, &node(n, "2", json!({"disk": "hdd"})))
            .await
            .unwrap();
    }
    let mut p = pod("picky", None);
    p["spec"]["nodeSelector"] = json!({"disk": "ssd"});
    c.create(PODS, Some("default"), &p).await.unwrap();
    assert_failed_scheduling(
        c,
        "picky",
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
    )
    .await;
    // A matching node appears: the pod is retried and lands there.
    c.create(NODES, None, &node("ssd", "2", json!({"disk": "ssd"})))
        .await
        .unwrap();
    assert_eq!(eventually("binding", || node_of(c, "picky")).await, "ssd");
}

#[tokio::test]
async fn too_large_cpu_request_stays_pending_until_a_pod_leaves() {
    let cl = cluster().await;
    let c = &cl.client;
    c.create(NODES, None, &node("n1", "2", json!({})))
        .await
        .unwrap();
    c.create(PODS, Some("default"), &pod("small", Some("1")))
        .await
        .unwrap();
    eventually("binding", || node_of(c, "small")).await;
    c.create(PODS, Some("default"), &pod("big", Some("1500m")))
        .await
        .unwrap();
    assert_failed_scheduling(c, "big", "0/1 nodes are available: 1 Insufficient cpu.").await;
    // Freeing the node (the bound pod finishes) lets it fit.
    c.merge_patch(
        PODS,
        Some("default"),
        "small",
        Some("status"),
        &json!({"status": {"phase": "Succeeded"}}),
    )
    .await
    .unwrap();
    assert_eq!(eventually("binding", || node_of(c, "big")).await, "n1");
}

#[tokio::test]
async fn mixed_reasons_are_counted_and_sorted() {
    let cl = cluster().await;
    let c = &cl.client;
    c.create(NODES, None, &node("a", "1", json!({"zone": "z1"})))
        .await
        .unwrap();
    c.create(NODES, None, &node("b", "8", json!({"zone": "z2"})))
        .await
        .unwrap();
    let mut cordoned = node("c", "8", json!({"zone": "z1"}));
    cordoned["spec"] = json!({"unschedulable": true});
    c.create(NODES, None, &cordoned).await.unwrap();
    let mut tainted = node("d", "8", json!({"zone": "z1"}));
    tainted["spec"] =
        json!({"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]});
    c.create(NODES, None, &tainted).await.unwrap();
    let mut p = pod("p", Some("2"));
    p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]}}});
    c.create(PODS, Some("default"), &p).await.unwrap();
    assert_failed_scheduling(c, "p", "0/4 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were unschedulable.").await;
    // Tolerating the taint is a spec change the pod cannot make; instead remove the taint.
    c.merge_patch(NODES, None, "d", None, &json!({"spec": {"taints": null}}))
        .await
        .unwrap();
    assert_eq!(eventually("binding", || node_of(c, "p")).await, "d");
}

#[tokio::test]
async fn concurrent_decisions_never_oversubscribe() {
    let cl = cluster().await;
    let c = &cl.client;
    for n in ["n1", "n2", "n3"] {
        c.create(NODES, None, &node(n, "1", json!({})))
            .await
            .unwrap();
    }
    let creates: Vec<_> = (0..10)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.create(PODS, Some("default"), &pod(&format!("p{i}"), Some("500m")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for h in creates {
        h.await.unwrap();
    }
    let bound = eventually("six bindings", || async {
        let (items, _) = c.list(PODS, Some("default"), None).await.unwrap();
        let bound: Vec<String> = items
            .iter()
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
            .collect();
        let pending = items.len() - bound.len();
        let failed = count_unschedulable(&items);
        (bound.len() == 6 && failed == pending).then_some(bound)
    })
    .await;
    for n in ["n1", "n2", "n3"] {
        assert_eq!(bound.iter().filter(|b| *b == n).count(), 2);
    }
}

/// How many pods carry PodScheduled=False.
fn count_unschedulable(items: &[Value]) -> usize {
    items
        .iter()
        .filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|x| x["type"] == "PodScheduled" && x["status"] == "False")
            })
        })
        .count()
}

#[tokio::test]
async fn other_schedulers_and_deleting_pods_are_left_alone() {
    let cl = cluster().await;
    let c = &cl.client;
    c.create(NODES, None, &node("n1", "2", json!({})))
        .await
        .unwrap();
    let mut other = pod("other", None);
    other["spec"]["schedulerName"] = json!("my-scheduler");
    c.create(PODS, Some("default"), &other).await.unwrap();
    c.create(PODS, Some("default"), &pod("mine", None))
        .await
        .unwrap();
    eventually("binding", || node_of(c, "mine")).await;
    let p = c
        .get(PODS, Some("default"), "other")
        .await
        .unwrap()
        .unwrap();
    assert!(p["spec"]["nodeName"].is_null());
    assert!(events_for(c, "other", "FailedScheduling").await.is_empty());
}

/// Throughput: a backlog of pods is bound quickly (the rate is printed; the bound is loose because
/// tests run unoptimised and in parallel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_a_backlog_quickly() {
    const N: usize = 1000;
    let store = k1s_store::Store::open(k1s_store::StoreConfig::default()).unwrap();
    let state = AppState::new(store, Default::default());
    k1s_apiserver::bootstrap::run(&state).await.unwrap();
    let c = Client::new(state, "test");
    for i in 0..10 {
        let mut n = node(&format!("n{i}"), "64", json!({}));
        n["status"]["allocatable"]["pods"] = json!("200");
        c.create(NODES, None, &n).await.unwrap();
    }
    let creators: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in (t..N).step_by(8) {
                    c.create(PODS, Some("default"), &pod(&format!("p{i}"), Some("100m")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for h in creators {
        h.await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let start = Instant::now();
    tokio::spawn(k1s_scheduler::run(
        Client::new(c.state().clone(), "default-scheduler"),
        shutdown.clone(),
    ));
    let end = start + Duration::from_secs(60);
    loop {
        let (items, _) = c.list(PODS, Some("default"), None).await.unwrap();
        let bound = items
            .iter()
            .filter(|p| p["spec"]["nodeName"].is_string())
            .count();
        if bound == N {
            break;
        }
        assert!(Instant::now() < end, "only {bound}/{N} bound");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "bound {N} pods in {secs:.2}s: {:.0} pods/s",
        N as f64 / secs
    );
    let (items, _) = c.list(PODS, Some("default"), None).await.unwrap();
    let mut per_node = std::collections::HashMap::new();
    for p in &items {
        *per_node
            .entry(p["spec"]["nodeName"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert!(per_node.values().all(|&v| v == N / 10), "{per_node:?}");
}

#[tokio::test]
async fn a_repeated_failure_bumps_the_event_count() {
    let cl = cluster().await;
    let c = &cl.client;
    c.create(NODES, None, &node("n1", "1", json!({})))
        .await
        .unwrap();
    c.create(PODS, Some("default"), &pod("big", Some("2")))
        .await
        .unwrap();
    let msg = "0/1 nodes are available: 1 Insufficient cpu.";
    let count = || async {
        let evs: Vec<Value> = events_for(c, "big", "FailedScheduling")
            .await
            .into_iter()
            .filter(|e| e["message"] == msg)
            .collect();
        assert!(evs.len() <= 1, "one event, counted: {evs:?}");
        evs.first().and_then(|e| e["count"].as_i64())
    };
    let before = eventually("FailedScheduling for cpu", count).await;
    // A node change that does not help: retried after the backoff, fails the same way.
    c.merge_patch(
        NODES,
        None,
        "n1",
        None,
        &json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await
    .unwrap();
    eventually("a higher count", || async {
        count().await.filter(|n| *n > before)
    })
    .await;
    assert!(node_of(c, "big").await.is_none());
}
