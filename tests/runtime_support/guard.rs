//! A guard that removes what a kubelet test's pods left in the runtime (containers, sandboxes,
//! the node's bridge and routes) and the test's cgroup tree, also when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

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
