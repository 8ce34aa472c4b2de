//! End-to-end: `kubectl cordon`, `kubectl drain` (through the `pods/eviction` subresource) and
//! PodDisruptionBudgets, against the real `k1s server` with two simulated nodes.

mod common;

use std::time::Duration;

use common::{Cluster, Table, eventually};

fn pods_on(c: &Cluster, node: &str) -> Vec<String> {
    let out = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "name",
    ]);
    out.lines().map(str::to_string).collect()
}

#[test]
fn drain_evicts_within_the_disruption_budget() {
    let c = Cluster::start_with(&["--simulated-nodes", "2"]);
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1",
        "--replicas=4",
    ]);
    c.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);

    // A budget that needs every replica: the drain cannot evict anything.
    assert_eq!(
        c.ok(&[
            "create",
            "pdb",
            "web",
            "--selector=app=web",
            "--min-available=4"
        ])
        .trim(),
        "poddisruptionbudget.policy/web created"
    );
    eventually(
        Duration::from_secs(30),
        "the budget to be processed",
        || {
            let t = Table::parse(&c.ok(&["get", "pdb", "web"]));
            t.cell("web", "MIN AVAILABLE") == "4" && t.cell("web", "ALLOWED DISRUPTIONS") == "0"
        },
    );
    let status = c.get_json(&["pdb", "web"])["status"].clone();
    assert_eq!(status["currentHealthy"], 4, "{status}");
    assert_eq!(status["desiredHealthy"], 4, "{status}");
    assert_eq!(status["expectedPods"], 4, "{status}");
    assert_eq!(
        status["conditions"][0]["reason"], "InsufficientPods",
        "{status}"
    );

    let busy = pods_on(&c, "k1s-sim-0");
    assert!(
        !busy.is_empty(),
        "the scheduler spreads 4 pods over 2 nodes"
    );
    let err = c.fails(&["drain", "k1s-sim-0", "--timeout=6s"]);
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{err}"
    );
    // The drain cordoned the node and evicted nothing.
    let nodes = Table::parse(&c.ok(&["get", "nodes"]));
    assert_eq!(
        nodes.cell("k1s-sim-0", "STATUS"),
        "Ready,SchedulingDisabled"
    );
    assert_eq!(pods_on(&c, "k1s-sim-0"), busy);

    // Relax the budget: the drain now evicts, and the replicas come back on the other node.
    c.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":3}}"#,
    ]);
    let out = c.ok(&["drain", "k1s-sim-0", "--timeout=60s"]);
    assert!(out.contains("evicted"), "{out}");
    assert!(out.contains("node/k1s-sim-0 drained"), "{out}");
    assert!(pods_on(&c, "k1s-sim-0").is_empty());
    c.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert_eq!(pods_on(&c, "k1s-sim-1").len(), 4);
    eventually(Duration::from_secs(30), "the budget to recover", || {
        let t = Table::parse(&c.ok(&["get", "pdb", "web"]));
        t.cell("web", "ALLOWED DISRUPTIONS") == "1"
    });

    assert_eq!(
        c.ok(&["uncordon", "k1s-sim-0"]).trim(),
        "node/k1s-sim-0 uncordoned"
    );
    let nodes = Table::parse(&c.ok(&["get", "nodes"]));
    assert_eq!(nodes.cell("k1s-sim-0", "STATUS"), "Ready");
}

#[test]
fn eviction_and_budget_bad_input() {
    let c = Cluster::start_with(&["--simulated-nodes", "1"]);
    let err = c.fails(&[
        "create",
        "pdb",
        "both",
        "--selector=app=x",
        "--min-available=1",
        "--max-unavailable=1",
    ]);
    // kubectl itself refuses both flags; the server refuses both fields.
    assert!(
        err.contains("min-available") || err.contains("cannot be both set"),
        "{err}"
    );
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"both"},
            "spec":{"minAvailable":1,"maxUnavailable":"150%","selector":{"matchLabels":{"a":"b"}}}}"#,
    );
    assert!(!out.success(), "{}", out.ok());
    let err = out.err();
    assert!(
        err.contains("minAvailable and maxUnavailable cannot be both set"),
        "{err}"
    );
    assert!(err.contains("must not be greater than 100%"), "{err}");
    assert!(err.contains("is invalid"), "{err}");
}
