//! A pod's service-account token end to end: the kubelet projects the kube-api-access volume
//! (a pod-bound token, the cluster CA, the namespace); the token read with `kubectl exec` works
//! from the host as the pod's service account (`auth whoami`, `get`), and stops working once the
//! pod is deleted.
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

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn token_kubeconfig(c: &Cluster, token: &str) -> String {
    let ca = c.data_dir().join("pki/ca.crt");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {{server: \"{}\", certificate-authority: \"{}\"}}\nusers:\n- name: u\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\ncurrent-context: c\n",
        c.url(),
        ca.display()
    );
    c.write_file("pod-token.kubeconfig", &yaml)
        .display()
        .to_string()
}

#[test]
fn pod_token_reaches_the_api() {
    netns::in_own_netns("pod_token_reaches_the_api", inner);
}

fn inner(scratch: &Path) {
    let fixture = guard::KubeletFixture::start_in(scratch, "satoken");
    fixture.wait_node_ready();
    let guard::KubeletFixture {
        registry: _registry,
        image,
        cluster,
        ..
    } = fixture;
    let c = &*cluster;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: tok}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: {image}, command: [/bin/sleep, '3600']}}\n"
        ),
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/tok", "--timeout=90s"]);

    let token = c.ok(&["exec", "tok", "--", "cat", &format!("{SA_DIR}/token")]);
    let ns = c.ok(&["exec", "tok", "--", "cat", &format!("{SA_DIR}/namespace")]);
    assert_eq!(ns, "default");
    let ca = c.ok(&["exec", "tok", "--", "cat", &format!("{SA_DIR}/ca.crt")]);
    let host_ca = std::fs::read_to_string(c.data_dir().join("pki/ca.crt")).unwrap();
    assert_eq!(ca, host_ca);
    let env = c.ok(&["exec", "tok", "--", "env"]);
    assert!(env.contains("KUBERNETES_SERVICE_HOST="), "{env}");
    assert!(env.contains("KUBERNETES_SERVICE_PORT="), "{env}");
    // The mount is read-only for the container.
    let w = c.kubectl(&["exec", "tok", "--", "touch", &format!("{SA_DIR}/x")]);
    assert!(!w.success(), "{w}");

    let cfg = token_kubeconfig(c, token.trim());
    let who = c.ok(&["--kubeconfig", &cfg, "auth", "whoami", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&who).unwrap();
    assert_eq!(
        v["status"]["userInfo"]["username"],
        "system:serviceaccount:default:default"
    );
    let pods = c.ok(&["--kubeconfig", &cfg, "get", "pods", "-o", "name"]);
    assert!(pods.contains("pod/tok"), "{pods}");

    // The token is bound to the pod: gone with it.
    c.ok(&["delete", "pod", "tok", "--timeout=30s"]);
    eventually(Duration::from_secs(10), "the bound token refused", || {
        !c.kubectl(&["--kubeconfig", &cfg, "auth", "whoami"])
            .success()
    });
}
