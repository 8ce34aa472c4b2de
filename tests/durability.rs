//! End-to-end durability: SIGKILL the server in the middle of a write load and check, after a restart
//! on the same data dir, that every acknowledged write is there and the store still works.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Cluster, kube_client};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};

/// Concurrent writers: enough to exercise group commit on 2 cores.
const WRITERS: usize = 8;
/// Acknowledged creates to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 300;

fn named<T: Default>(name: &str, set: impl FnOnce(&mut T, ObjectMeta)) -> T {
    let mut obj = T::default();
    set(
        &mut obj,
        ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
    );
    obj
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_no_acknowledged_object() {
    let mut c = Cluster::start();
    let kube = kube_client(&c).await;
    Api::<Namespace>::all(kube.clone())
        .create(
            &PostParams::default(),
            &named::<Namespace>("durable", |n, m| n.metadata = m),
        )
        .await
        .unwrap();

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let api: Api<ConfigMap> = Api::namespaced(kube.clone(), "durable");
        let acked = acked.clone();
        let count_tx = count_tx.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                let mut cm = named::<ConfigMap>(&name, |c, m| c.metadata = m);
                cm.data = Some([("payload".to_string(), "x".repeat(512))].into());
                match api.create(&PostParams::default(), &cm).await {
                    Ok(_) => {
                        let n = {
                            let mut acked = acked.lock().unwrap();
                            acked.push(name);
                            acked.len()
                        };
                        count_tx.send_replace(n);
                    }
                    // The server is gone: stop writing.
                    Err(_) => return,
                }
            }
        }));
    }
    drop(count_tx);
    tokio::time::timeout(
        Duration::from_secs(60),
        count_rx.wait_for(|n| *n >= ACKED_BEFORE_KILL),
    )
    .await
    .expect("writers acknowledged enough creates within 60s")
    .expect("writers stopped early");

    // Kill while writes are in flight.
    c.kill9();
    for w in writers {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("writers notice the dead server")
            .unwrap();
    }
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    c.restart();
    let kube = kube_client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(kube, "durable");
    let present: BTreeSet<String> = api
        .list(&ListParams::default())
        .await
        .expect("listing after restart")
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    let lost: Vec<&String> = acked.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost after SIGKILL: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(20)]
    );
    // Every stored object is whole, and the store takes writes again.
    for name in acked.iter().take(50) {
        let cm = api.get(name).await.unwrap();
        assert_eq!(cm.data.unwrap()["payload"].len(), 512);
    }
    api.create(
        &PostParams::default(),
        &named::<ConfigMap>("after-restart", |c, m| c.metadata = m),
    )
    .await
    .expect("writing after restart");
}

#[test]
fn sigkill_with_kubectl_keeps_acknowledged_creates() {
    let mut c = Cluster::start();
    let mut acked = Vec::new();
    for i in 0..20 {
        let name = format!("k{i}");
        c.ok(&["create", "configmap", &name, "--from-literal=i=1"]);
        acked.push(name);
    }
    c.kill9();
    c.restart();
    let out = c.ok(&["get", "cm", "-o", "name"]);
    for name in &acked {
        assert!(
            out.lines().any(|l| l == format!("configmap/{name}")),
            "configmap/{name} lost:\n{out}"
        );
    }
}
