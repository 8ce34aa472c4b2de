//! Static pods end to end: a manifest in `<data-dir>/manifests/pods` runs as pod
//! `NAME-NODENAME` (a mirror pod owned by the Node, with the config annotations, status
//! mirrored); a deleted mirror pod comes back; an edited manifest replaces the pod; the pod is
//! still there after a restart of `k1s server`; removing the file stops and removes the pod.
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

const NODE: &str = "k1s-test-node";
const MIRROR: &str = "web-k1s-test-node";

fn manifest(image: &str, msg: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, labels: {{tier: static}}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {image}\n    command: [/bin/sh, -c, 'echo {msg}; exec sleep 3600']\n"
    )
}

#[test]
fn static_pods_run_from_files() {
    netns::in_own_netns("static_pods_run_from_files", inner);
}

fn inner(scratch: &Path) {
    let guard::KubeletFixture {
        registry: _registry,
        image,
        mut cluster,
        ..
    } = guard::KubeletFixture::start("static", NODE, false, &["--dns-listen", "127.0.0.1:0"]);
    assert!(cluster.data_dir().starts_with(scratch));
    let dir = cluster.data_dir().join("manifests/pods");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("web.yaml"), manifest(&image, "first")).unwrap();

    let c = &*cluster;
    let ready = |what: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        eventually(Duration::from_secs(60), what, || {
            let out = c.kubectl(&["get", "pod", MIRROR, "-o", "json"]);
            if !out.success() {
                return false;
            }
            let p: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            ready && p["metadata"]["deletionTimestamp"].is_null() && pred(&p)
        })
    };
    ready("the mirror pod Ready", &|_| true);
    let p = c.get_json(&["pod", MIRROR]);
    let a = &p["metadata"]["annotations"];
    assert_eq!(a["kubernetes.io/config.source"], "file");
    assert_eq!(
        a["kubernetes.io/config.mirror"],
        a["kubernetes.io/config.hash"]
    );
    assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(p["metadata"]["ownerReferences"][0]["name"], NODE);
    assert_eq!(p["spec"]["nodeName"], NODE);
    assert_eq!(p["metadata"]["labels"]["tier"], "static");
    let first_uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    let first_hash = a["kubernetes.io/config.hash"].clone();
    eventually(Duration::from_secs(10), "the first logs", || {
        c.kubectl(&["logs", MIRROR]).stdout.contains("first")
    });

    // A deleted mirror pod is recreated.
    c.ok(&["delete", "pod", MIRROR, "--timeout=30s"]);
    ready("the mirror pod back", &|p| {
        p["metadata"]["uid"] != first_uid.as_str()
    });

    // An edited manifest replaces the pod.
    std::fs::write(dir.join("web.yaml"), manifest(&image, "second")).unwrap();
    ready("the edited pod", &|p| {
        p["metadata"]["annotations"]["kubernetes.io/config.hash"] != first_hash
    });
    eventually(Duration::from_secs(10), "the second logs", || {
        c.kubectl(&["logs", MIRROR]).stdout.contains("second")
    });
    let uid = c.jsonpath(&["pod", MIRROR], "{.metadata.uid}");

    // Across a restart: the same pod, not restarted.
    cluster.stop();
    cluster.restart();
    let c = &*cluster;
    eventually(Duration::from_secs(60), "the pod after the restart", || {
        let out = c.kubectl(&[
            "get",
            "pod",
            MIRROR,
            "-o",
            "jsonpath={.metadata.uid} {.status.phase}",
        ]);
        out.success() && out.stdout == format!("{uid} Running")
    });

    // Removing the file stops and removes the pod.
    std::fs::remove_file(dir.join("web.yaml")).unwrap();
    eventually(Duration::from_secs(30), "the mirror pod gone", || {
        let out = c.kubectl(&["get", "pod", MIRROR]);
        !out.success() && out.stderr.contains("NotFound")
    });
}
