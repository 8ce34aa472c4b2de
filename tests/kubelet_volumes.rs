//! Pod volumes end to end: `k1s server` with its kubelet runs a pod that reads a ConfigMap and a
//! Secret as files (items, modes, subPath) and env (`resourceFieldRef` too), a downward API
//! volume, an emptyDir shared by two containers and a Memory emptyDir that is a tmpfs; an update
//! of the ConfigMap reaches the running pod through the atomic `..data` swap, while its subPath
//! mount keeps the old content (upstream semantics); deleting the pod removes its volumes and
//! unmounts its tmpfs volumes. A pod past its `activeDeadlineSeconds` is stopped and `Failed`.
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

use common::eventually;

fn pod(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: vols
  labels: {{app: vols}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: cfg
    configMap:
      name: app-config
      items: [{{key: greeting, path: conf/greeting.txt}}]
  - name: cfg-all
    configMap: {{name: app-config}}
  - name: sec
    secret: {{secretName: app-secret, defaultMode: 0400}}
  - name: info
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
      - {{path: mem, resourceFieldRef: {{containerName: reader, resource: limits.memory, divisor: 1Mi}}}}
  - name: shared
    emptyDir: {{}}
  - name: mem
    emptyDir: {{medium: Memory, sizeLimit: 8Mi}}
  containers:
  - name: writer
    image: {image}
    command: ["/bin/sh", "-c", "echo from-writer > /shared/note && exec sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
  - name: reader
    image: {image}
    resources:
      limits: {{memory: 32Mi, cpu: 250m}}
    env:
    - name: CPU_MILLIS
      valueFrom:
        resourceFieldRef: {{resource: limits.cpu, divisor: 1m}}
    command:
    - /bin/sh
    - -c
    - |
      echo "env cpu=$CPU_MILLIS"
      ls -lnL /sec/password | awk '{{print "secmode " $1}}'
      echo "secret=$(cat /sec/password)"
      echo "labels=$(cat /info/labels)"
      echo "mem=$(cat /info/mem)"
      grep " /mem " /proc/mounts | awk '{{print "memfs " $3}}'
      echo "pinned=$(cat /pinned)"
      while true; do
        echo "greeting=$(cat /cfg/conf/greeting.txt) all=$(cat /all/greeting) note=$(cat /shared/note 2>/dev/null)"
        sleep 1
      done
    volumeMounts:
    - {{name: cfg, mountPath: /cfg}}
    - {{name: cfg-all, mountPath: /all}}
    - {{name: cfg-all, mountPath: /pinned, subPath: greeting}}
    - {{name: sec, mountPath: /sec}}
    - {{name: info, mountPath: /info}}
    - {{name: shared, mountPath: /shared, readOnly: true}}
    - {{name: mem, mountPath: /mem}}
"#
    )
}

#[test]
fn kubelet_projects_volumes() {
    netns::in_own_netns("kubelet_projects_volumes", inner);
}

fn inner(scratch: &Path) {
    let fixture = guard::KubeletFixture::start_in(scratch, "volumes");
    fixture.wait_node_ready();
    let guard::KubeletFixture {
        registry: _registry,
        image,
        cluster,
        ..
    } = fixture;
    let c = &*cluster;
    c.ok(&[
        "create",
        "configmap",
        "app-config",
        "--from-literal=greeting=hello",
    ]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "app-secret",
        "--from-literal=password=s3cret",
    ]);
    c.ok_stdin(&["apply", "-f", "-"], &pod(&image));
    c.ok(&["wait", "--for=condition=Ready", "pod/vols", "--timeout=90s"]);
    let uid = c.jsonpath(&["pod", "vols"], "{.metadata.uid}");
    let pod_dir = c.data_dir().join("runtime/pods").join(&uid);
    assert!(
        pod_dir
            .join("volumes/kubernetes.io~configmap/cfg/..data")
            .is_symlink()
    );

    let logs = || c.kubectl(&["logs", "vols", "-c", "reader"]).stdout;
    eventually(Duration::from_secs(20), "the reader's first loop", || {
        logs().contains("greeting=")
    });
    let out = logs();
    for want in [
        "env cpu=250\n",
        "secmode -r--------\n",
        "secret=s3cret\n",
        "mem=32\n",
        "memfs tmpfs\n",
        "pinned=hello\n",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    assert!(out.contains("labels=app=\"vols\""), "{out}");
    eventually(Duration::from_secs(10), "the shared emptyDir", || {
        logs().contains("greeting=hello all=hello note=from-writer")
    });

    // An update reaches the running pod (not through the subPath mount).
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {greeting: updated}\n",
    );
    eventually(Duration::from_secs(20), "the update in the pod", || {
        logs().contains("greeting=updated all=updated")
    });
    let restarts = c.jsonpath(
        &["pod", "vols"],
        "{.status.containerStatuses[*].restartCount}",
    );
    assert_eq!(restarts, "0 0");

    // Deletion removes the volumes and unmounts the tmpfs ones.
    c.ok(&["delete", "pod", "vols", "--timeout=30s"]);
    eventually(Duration::from_secs(10), "the pod's volumes gone", || {
        !pod_dir.exists()
    });
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&uid), "{mounts}");

    // activeDeadlineSeconds: the pod is stopped and Failed with DeadlineExceeded.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: deadline}}\nspec:\n  activeDeadlineSeconds: 3\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: sleep, image: {image}, command: [/bin/sleep, '3600']}}\n"
        ),
    );
    eventually(
        Duration::from_secs(30),
        "the deadline to fail the pod",
        || {
            let p = c.get_json(&["pod", "deadline"]);
            p["status"]["phase"] == "Failed"
                && p["status"]["reason"] == "DeadlineExceeded"
                && p["status"]["containerStatuses"][0]["state"]["terminated"].is_object()
        },
    );
    c.ok(&["delete", "pod", "deadline", "--timeout=30s"]);
}
