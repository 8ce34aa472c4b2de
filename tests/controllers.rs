//! End-to-end: the control plane of the real `k1s server` with one simulated node, driven by stock
//! kubectl — deployments roll out and back, services get endpoints, namespace deletion cascades.

mod common;

use std::time::Duration;

use common::{Cluster, Table, eventually};

const ROLLOUT: &str = "--timeout=60s";

#[test]
fn deployment_scales_rolls_out_and_rolls_back() {
    let c = Cluster::start_with(&["--simulated-nodes", "1"]);
    // The simulated node registers itself after the API is ready, as a kubelet would.
    eventually(
        Duration::from_secs(30),
        "the simulated node to register",
        || {
            c.ok(&["get", "nodes", "-o", "name"])
                .contains("node/k1s-sim-0")
        },
    );
    let nodes = Table::parse(&c.ok(&["get", "nodes"]));
    assert_eq!(nodes.headers, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(nodes.cell("k1s-sim-0", "STATUS"), "Ready");

    assert_eq!(
        c.ok(&[
            "create",
            "deployment",
            "web",
            "--image=busybox:1",
            "--replicas=2"
        ])
        .trim(),
        "deployment.apps/web created"
    );
    let out = c.ok(&["rollout", "status", "deploy/web", ROLLOUT]);
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
    let t = Table::parse(&c.ok(&["get", "deploy", "web"]));
    assert_eq!(t.cell("web", "READY"), "2/2");

    assert_eq!(
        c.ok(&["scale", "deploy", "web", "--replicas=4"]).trim(),
        "deployment.apps/web scaled"
    );
    c.ok(&["rollout", "status", "deploy/web", ROLLOUT]);
    eventually(Duration::from_secs(30), "4 running pods", || {
        let pods = Table::parse(&c.ok(&["get", "pods", "-l", "app=web"]));
        pods.names().len() == 4
            && pods
                .names()
                .iter()
                .all(|p| pods.cell(p, "STATUS") == "Running")
    });

    assert_eq!(
        c.ok(&["set", "image", "deploy/web", "busybox=busybox:2"])
            .trim(),
        "deployment.apps/web image updated"
    );
    c.ok(&["rollout", "status", "deploy/web", ROLLOUT]);
    let image = c.jsonpath(
        &["deploy", "web"],
        "{.spec.template.spec.containers[0].image}",
    );
    assert_eq!(image, "busybox:2");
    let history = c.ok(&["rollout", "history", "deploy/web"]);
    assert!(
        history.contains("REVISION") && history.contains('2'),
        "{history}"
    );

    assert_eq!(
        c.ok(&["rollout", "undo", "deploy/web"]).trim(),
        "deployment.apps/web rolled back"
    );
    c.ok(&["rollout", "status", "deploy/web", ROLLOUT]);
    let image = c.jsonpath(
        &["deploy", "web"],
        "{.spec.template.spec.containers[0].image}",
    );
    assert_eq!(image, "busybox:1");
    eventually(
        Duration::from_secs(30),
        "only the busybox:1 ReplicaSet has replicas",
        || {
            let rs = Table::parse(&c.ok(&["get", "rs", "-o", "wide"]));
            rs.names().iter().all(|n| {
                let want = if rs.cell(n, "IMAGES") == "busybox:1" {
                    "4"
                } else {
                    "0"
                };
                rs.cell(n, "CURRENT") == want
            })
        },
    );
    let events = c.ok(&["describe", "deploy", "web"]);
    assert!(events.contains("ScalingReplicaSet"), "{events}");
    // The same Events through events.k8s.io/v1 (one storage, the v1 field names).
    let v1 = c.ok(&["get", "events.events.k8s.io", "-A"]);
    assert!(
        v1.contains("ScalingReplicaSet") && v1.contains("deployment/web"),
        "{v1}"
    );
    let notes = c.ok(&[
        "get",
        "events.events.k8s.io",
        "-o",
        "jsonpath={range .items[*]}{.reason} {.regarding.kind}/{.regarding.name}: {.note}{\"\\n\"}{end}",
    ]);
    assert!(
        notes
            .lines()
            .any(|l| l.starts_with("ScalingReplicaSet Deployment/web: Scaled up replica set web-")),
        "{notes}"
    );
}

#[test]
fn exposed_deployment_gets_endpoints_and_namespace_deletion_cascades() {
    let c = Cluster::start_with(&["--simulated-nodes", "1"]);
    c.ok(&["create", "namespace", "shop"]);
    c.ok(&[
        "-n",
        "shop",
        "create",
        "deployment",
        "api",
        "--image=busybox:1",
        "--replicas=2",
        "--port=8080",
    ]);
    c.ok(&["-n", "shop", "rollout", "status", "deploy/api", ROLLOUT]);
    assert_eq!(
        c.ok(&[
            "-n",
            "shop",
            "expose",
            "deploy",
            "api",
            "--port=80",
            "--target-port=8080"
        ])
        .trim(),
        "service/api exposed"
    );
    eventually(Duration::from_secs(30), "two endpoints", || {
        let t = Table::parse(&c.ok(&["-n", "shop", "get", "endpoints", "api"]));
        t.cell("api", "ENDPOINTS").matches(":8080").count() == 2
    });
    let slices = c.ok(&[
        "-n",
        "shop",
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=api",
    ]);
    let t = Table::parse(&slices);
    assert_eq!(
        t.headers,
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
        "{slices}"
    );
    assert_eq!(t.names().len(), 1, "{slices}");
    assert_eq!(t.cell(t.names()[0], "PORTS"), "8080");

    // The default ServiceAccount and the root CA exist in a new namespace, as upstream.
    c.ok(&["-n", "shop", "get", "serviceaccount", "default"]);
    c.ok(&["-n", "shop", "get", "configmap", "kube-root-ca.crt"]);

    assert_eq!(
        c.ok(&["delete", "namespace", "shop"]).trim(),
        "namespace \"shop\" deleted"
    );
    let out = c.fails(&["get", "namespace", "shop"]);
    assert!(out.contains("namespaces \"shop\" not found"), "{out}");
    let left = c.ok(&["get", "pods,rs,deploy,svc", "-n", "shop", "-o", "name"]);
    assert!(left.trim().is_empty(), "{left}");
}

fn deployment_yaml(
    name: &str,
    replicas: i64,
    selector: &str,
    label: &str,
    strategy: &str,
) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n{strategy}  selector:\n    matchLabels:\n      app: {selector}\n  template:\n    metadata:\n      labels:\n        app: {label}\n    spec:\n      containers:\n      - name: c\n        image: busybox:1\n"
    )
}

#[test]
fn bad_workload_input_gets_upstream_errors() {
    let c = Cluster::start_with(&["--disable", "scheduler"]);
    let rejected = |yaml: &str| {
        let out = c.kubectl_stdin(&["apply", "-f", "-"], yaml);
        assert!(!out.success(), "expected a rejection: {out}");
        out.stderr
    };
    let err = rejected(&deployment_yaml("d", 1, "a", "b", ""));
    assert!(err.contains("The Deployment \"d\" is invalid"), "{err}");
    assert!(
        err.contains(
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}"
        ),
        "{err}"
    );
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );

    let err = rejected(&deployment_yaml("d", -1, "a", "a", ""));
    assert!(
        err.contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{err}"
    );

    let surge = "  strategy:\n    rollingUpdate:\n      maxSurge: abc\n";
    let err = rejected(&deployment_yaml("d", 1, "a", "a", surge));
    assert!(
        err.contains("spec.strategy.rollingUpdate.maxSurge: Invalid value: \"abc\""),
        "{err}"
    );

    c.ok_stdin(
        &["apply", "-f", "-"],
        &deployment_yaml("d", 1, "a", "a", ""),
    );
    let moved = deployment_yaml("d", 1, "b", "b", "");
    let err = rejected(&moved);
    assert!(err.contains("spec.selector: Invalid value"), "{err}");
    assert!(err.contains("field is immutable"), "{err}");
}
