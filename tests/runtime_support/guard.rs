//! A guard that removes what a kubelet test's pods left in the runtime (containers, sandboxes,
//! the node's bridge and routes) and the test's cgroup tree, also when the test fails.
//!
//! Order matters: the server must be gone first (its kubelet would restart what the guard stops),
//! and the cluster's data dir (where the runtime state lives) must still exist. [`Guarded`] does
//! both: its `drop` kills the server, then the guard cleans up, then the cluster's dir goes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::Cluster;
use k1s_runtime::container::ContainerManager;
use k1s_runtime::sandbox::{NetworkConfig, SandboxManager};

/// Removes every container, sandbox and the test's cgroup tree, whatever state the test left.
pub struct RuntimeGuard {
    pub runtime: PathBuf,
    pub cgroup_root: String,
}

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_k1s"));
        if let Ok(mgr) = ContainerManager::open(&self.runtime, exe) {
            for c in mgr.list().unwrap_or_default() {
                let _ = mgr.stop(&c.id, 9, Duration::ZERO);
                let _ = mgr.remove(&c.id);
            }
        }
        if self.runtime.join("sandboxes").exists()
            && let Ok(sb) = SandboxManager::open(self.runtime.clone(), NetworkConfig::default())
        {
            for s in sb.list() {
                let _ = sb.remove(&s.id);
            }
            let _ = sb.teardown_node();
        }
        for hierarchy in cgroup_hierarchies() {
            remove_tree(&hierarchy.join(&self.cgroup_root));
        }
    }
}

pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        out.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    out
}

/// rmdir a cgroup directory tree, children first.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

pub fn cgroup_exists(root: &str, rel: &str) -> bool {
    cgroup_hierarchies()
        .iter()
        .any(|h| h.join(root).join(rel).exists())
}

/// A kubelet cluster with its runtime guard, dropped in the right order (see the module docs).
pub struct Guarded {
    // Field order is drop order: the guard cleans up before the cluster removes its data dir.
    guard: RuntimeGuard,
    cluster: Cluster,
}

impl Guarded {
    /// Guards `cluster`, whose pods' cgroups live under `cgroup_root`.
    pub fn new(cluster: Cluster, cgroup_root: &str) -> Self {
        Guarded {
            guard: RuntimeGuard {
                runtime: cluster.data_dir().join("runtime"),
                cgroup_root: cgroup_root.to_string(),
            },
            cluster,
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.cluster.kill_if_running();
    }
}

impl std::ops::Deref for Guarded {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// What a kubelet test starts from: a registry on loopback holding the offline busybox image
/// (`image`), and a guarded `k1s server` with its kubelet pulling from it as node `node`, its
/// pods' cgroups under `cgroup_root` (`k1s-test-<tag>-<pid>`). Call it only inside a network
/// namespace the test made.
pub struct KubeletFixture {
    pub registry: crate::support::Registry,
    pub image: String,
    pub cgroup_root: String,
    pub cluster: Guarded,
    pub node: String,
}

/// The node name of the kubelet tests that need no particular one.
pub const TEST_NODE: &str = "k1s-test-node";

impl KubeletFixture {
    /// The common case: node [`TEST_NODE`], no service proxy, the cluster DNS on a free loopback
    /// port; the cluster's data dir must lie in the test's `scratch` dir (its netns's cleanup).
    pub fn start_in(scratch: &Path, tag: &str) -> Self {
        let f = Self::start(tag, TEST_NODE, false, &["--dns-listen", "127.0.0.1:0"]);
        assert!(f.cluster.data_dir().starts_with(scratch));
        f
    }

    /// Waits until `kubectl get node` shows the fixture's node Ready.
    pub fn wait_node_ready(&self) {
        crate::common::eventually(Duration::from_secs(20), "the node to be Ready", || {
            let out = self.cluster.kubectl(&["get", "node", &self.node]);
            out.success() && out.stdout.contains(" Ready ")
        });
    }

    /// `proxy`: run the service proxy too (and so the DNS defaults); `extra`: more server flags.
    pub fn start(tag: &str, node: &str, proxy: bool, extra: &[&str]) -> Self {
        let registry = crate::support::Registry::start().expect("starting docker-registry");
        registry.push("base", "k1s/busybox:1", false).unwrap();
        let image = format!("{}/k1s/busybox:1", registry.addr);
        let cgroup_root = format!("k1s-test-{tag}-{}", std::process::id());
        let mut args = vec![
            "--insecure-registry",
            &registry.addr,
            "--node-name",
            node,
            "--cgroup-root",
            &cgroup_root,
        ];
        args.extend_from_slice(extra);
        let cluster = if proxy {
            Cluster::start_with_kubelet_and_proxy(&args)
        } else {
            Cluster::start_with_kubelet(&args)
        };
        let cluster = Guarded::new(cluster, &cgroup_root);
        KubeletFixture {
            registry,
            image,
            cgroup_root,
            cluster,
            node: node.to_string(),
        }
    }
}
