//! Container lifecycle end to end with stock kubectl: a startup probe that never passes kills
//! and restarts its container (Unhealthy and Killing events); a slow startup probe holds back a
//! liveness probe that would otherwise kill the container, and `started`/`ready` follow it; a
//! postStart hook writes a file the container sees, a failing one kills the container with a
//! FailedPostStartHook event; a preStop hook runs on delete before the container stops (it
//! writes into a hostPath the test reads afterwards). `kubectl top pods|nodes` shows a busy-loop
//! pod's CPU and the node from the built-in metrics.k8s.io; without a kubelet, `kubectl top` says
//! the Metrics API is not available.
//!
//! Runs in a network namespace it creates (re-executing itself under `unshare --net`), like
//! `tests/kubelet.rs`; guards remove containers, sandboxes and cgroups even when it fails.
//! Needs: docker-registry, skopeo, umoci, busybox-static, util-linux (unshare), iproute2.

mod common;
#[path = "runtime_support/guard.rs"]
mod guard;
#[path = "runtime_support/netns.rs"]
mod netns;
#[path = "../runtime/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use common::{Cluster, eventually};

fn pods(image: &str, host_dir: &Path) -> String {
    let host_dir = host_dir.display();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: startup-fail
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {image}
    command: ["/bin/sh", "-c", "exec sleep 3600"]
    startupProbe:
      exec: {{command: ["false"]}}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: startup-slow
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {image}
    command: ["/bin/sh", "-c", "sleep 4; touch /tmp/up; exec sleep 3600"]
    startupProbe:
      exec: {{command: ["test", "-f", "/tmp/up"]}}
      periodSeconds: 1
      failureThreshold: 30
    # Fails until /tmp/up exists: run before the startup probe passed, it would kill the
    # container within two seconds.
    livenessProbe:
      exec: {{command: ["test", "-f", "/tmp/up"]}}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: hooks
spec:
  terminationGracePeriodSeconds: 5
  volumes:
  - name: host
    hostPath: {{path: "{host_dir}", type: DirectoryOrCreate}}
  containers:
  - name: app
    image: {image}
    command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumeMounts:
    - {{name: host, mountPath: /host}}
    lifecycle:
      postStart:
        exec: {{command: ["/bin/sh", "-c", "echo post-start-ran > /tmp/post"]}}
      preStop:
        exec: {{command: ["/bin/sh", "-c", "echo pre-stop-ran > /host/prestop; cat /tmp/post >> /host/prestop"]}}
---
apiVersion: v1
kind: Pod
metadata:
  name: poststart-fail
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {image}
    command: ["/bin/sh", "-c", "exec sleep 3600"]
    lifecycle:
      postStart:
        exec: {{command: ["/bin/sh", "-c", "exit 3"]}}
---
apiVersion: v1
kind: Pod
metadata:
  name: busy
  labels: {{app: busy}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: spin
    image: {image}
    command: ["/bin/sh", "-c", "while :; do :; done"]
    resources:
      limits: {{cpu: 300m, memory: 64Mi}}
"#
    )
}

/// The millicores of a `kubectl top` CPU column (`250m`, or whole cores).
fn millicores(s: &str) -> u64 {
    match s.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or(0),
        None => s.parse::<u64>().map_or(0, |c| c * 1000),
    }
}

#[test]
fn kubectl_top_without_a_kubelet_finds_no_metrics_api() {
    let c = Cluster::start();
    let err = c.fails(&["top", "pods"]);
    assert!(err.contains("Metrics API not available"), "{err}");
    let err = c.fails(&["top", "nodes"]);
    assert!(err.contains("Metrics API not available"), "{err}");
}

/// Event lines `<object> <reason> <message>` of the default namespace.
fn events(c: &Cluster) -> String {
    c.ok(&[
        "get",
        "events",
        "-o",
        r#"jsonpath={range .items[*]}{.involvedObject.name} {.reason} {.message}{"\n"}{end}"#,
    ])
}

fn has_event(c: &Cluster, pod: &str, reason: &str, text: &str) -> bool {
    events(c)
        .lines()
        .any(|l| l.starts_with(&format!("{pod} {reason} ")) && l.contains(text))
}

fn restarts(c: &Cluster, pod: &str) -> u32 {
    c.jsonpath(&["pod", pod], "{.status.containerStatuses[0].restartCount}")
        .parse()
        .unwrap_or(0)
}

#[test]
fn kubelet_runs_startup_probes_and_lifecycle_hooks() {
    netns::in_own_netns("kubelet_runs_startup_probes_and_lifecycle_hooks", inner);
}

fn inner(scratch: &Path) {
    let fixture = guard::KubeletFixture::start_in(scratch, "lifecycle");
    fixture.wait_node_ready();
    let guard::KubeletFixture {
        registry: _registry,
        image,
        cluster,
        ..
    } = fixture;
    let c = &*cluster;
    let host_dir = scratch.join("hooks-host");
    c.ok_stdin(&["apply", "-f", "-"], &pods(&image, &host_dir));

    // The slow starter: running, but neither started nor ready while its startup probe fails.
    let state = |f: &str| c.jsonpath(&["pod", "startup-slow"], f);
    eventually(Duration::from_secs(60), "startup-slow to run", || {
        !state("{.status.containerStatuses[0].state.running.startedAt}").is_empty()
    });
    assert_eq!(state("{.status.containerStatuses[0].started}"), "false");
    assert_eq!(state("{.status.containerStatuses[0].ready}"), "false");
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/startup-slow",
        "--timeout=30s",
    ]);
    assert_eq!(state("{.status.containerStatuses[0].started}"), "true");
    assert_eq!(
        restarts(c, "startup-slow"),
        0,
        "liveness ran before startup passed"
    );

    // The failing starter is killed and restarted per policy, with upstream's events.
    eventually(Duration::from_secs(30), "startup-fail to restart", || {
        restarts(c, "startup-fail") >= 1
    });
    assert!(has_event(
        c,
        "startup-fail",
        "Unhealthy",
        "Startup probe failed"
    ));
    assert!(has_event(
        c,
        "startup-fail",
        "Killing",
        "failed startup probe"
    ));
    assert_eq!(
        c.jsonpath(
            &["pod", "startup-fail"],
            "{.status.containerStatuses[0].ready}"
        ),
        "false"
    );

    // postStart ran in the container before it was reported Running.
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/hooks",
        "--timeout=30s",
    ]);
    assert_eq!(
        c.ok(&["exec", "hooks", "--", "cat", "/tmp/post"]).trim(),
        "post-start-ran"
    );

    // A failing postStart kills the container: FailedPostStartHook, then a restart.
    eventually(Duration::from_secs(30), "poststart-fail to restart", || {
        restarts(c, "poststart-fail") >= 1
    });
    assert!(has_event(
        c,
        "poststart-fail",
        "FailedPostStartHook",
        "exited with 3"
    ));

    // kubectl top: the busy loop shows its CPU (limited to 300m), the node shows usage.
    eventually(
        Duration::from_secs(30),
        "kubectl top to show the busy pod",
        || {
            let out = c.kubectl(&["top", "pods"]);
            out.success()
                && out.stdout.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.first() == Some(&"busy") && f.get(1).is_some_and(|cpu| millicores(cpu) >= 100)
                })
        },
    );
    let top = c.ok(&["top", "pods", "-A", "--containers"]);
    let row: Vec<&str> = top
        .lines()
        .find(|l| l.starts_with("default ") && l.contains(" busy ") && l.contains(" spin "))
        .unwrap_or_else(|| panic!("no busy/spin row in\n{top}"))
        .split_whitespace()
        .collect();
    assert!(
        millicores(row[3]) >= 100 && millicores(row[3]) <= 400,
        "{top}"
    );
    assert!(row[4].ends_with("Mi"), "{top}");
    let selected = c.ok(&["top", "pods", "-l", "app=busy"]);
    assert_eq!(selected.lines().count(), 2, "{selected}");
    let nodes = c.ok(&["top", "nodes"]);
    let node: Vec<&str> = nodes
        .lines()
        .find(|l| l.starts_with("k1s-test-node "))
        .unwrap_or_else(|| panic!("no node row in\n{nodes}"))
        .split_whitespace()
        .collect();
    assert!(millicores(node[1]) >= 100, "{nodes}");
    assert!(node[3].ends_with("Mi") && node[3] != "0Mi", "{nodes}");

    // preStop runs on delete, in the still running container, before SIGTERM ends it.
    c.ok(&["delete", "pod", "hooks", "--timeout=30s"]);
    let written = std::fs::read_to_string(host_dir.join("prestop")).unwrap_or_default();
    assert_eq!(written, "pre-stop-ran\npost-start-ran\n");
    c.ok(&["delete", "pod", "--all", "--timeout=30s"]);
}
