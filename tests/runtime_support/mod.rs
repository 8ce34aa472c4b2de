//! Shared harness for the container tests: a busybox rootfs "layer" built from busybox-static (the
//! image store is another module's work), a [`ContainerManager`] on a temp root using the real
//! `k1s` binary as shim, and a Drop guard that kills and removes every container and the test's
//! cgroups whether the test passed or not.

#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use std::io::Read;

use k1s_runtime::container::{ContainerManager, ContainerSpec, ExecSpec, Phase, cgroup};

pub const BUSYBOX: &str = "/bin/busybox";

/// Builds a rootfs directory: busybox, one symlink per applet, passwd/group for root and nobody.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: apt-get install busybox-static"
    );
    let root = dir.join("layer");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list-full").output().unwrap();
    assert!(list.status.success());
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        let path = root.join(applet);
        if path.exists() || applet == "bin/busybox" {
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink("/bin/busybox", &path).unwrap();
    }
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
    for d in ["root", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    root
}

/// A temp runtime root with a manager, a rootfs and a unique cgroup parent; cleans up on drop.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub mgr: ContainerManager,
    pub layer: PathBuf,
    pub cgroup_parent: String,
}

impl Env {
    pub fn new(name: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let layer = busybox_rootfs(tmp.path());
        let mgr = ContainerManager::open(&tmp.path().join("runtime"), shim_exe()).unwrap();
        // Flat, not under a shared parent: removing a shared parent races with other tests.
        let cgroup_parent = format!("k1s-test-{name}-{}", std::process::id());
        Self {
            tmp,
            mgr,
            layer,
            cgroup_parent,
        }
    }

    /// A spec running `args` in the busybox rootfs.
    pub fn spec(&self, id: &str, args: &[&str]) -> ContainerSpec {
        ContainerSpec {
            id: id.to_string(),
            pod_id: "pod1".into(),
            hostname: "testpod".into(),
            layers: vec![self.layer.clone()],
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin:/sbin:/usr/bin:/usr/sbin".into()],
            cgroup_parent: self.cgroup_parent.clone(),
            ..Default::default()
        }
    }

    /// Creates and starts `spec`.
    pub fn run(&self, spec: &ContainerSpec) {
        self.mgr.create(spec).unwrap();
        self.mgr.start(&spec.id).unwrap();
    }

    /// Runs `cmd` in container `id` without stdin or a tty; its exit code and stdout.
    pub fn exec_output(&self, id: &str, cmd: &[&str]) -> (i32, String) {
        let mut session = self
            .mgr
            .exec(
                id,
                &ExecSpec {
                    cmd: cmd.iter().map(|a| a.to_string()).collect(),
                    ..Default::default()
                },
            )
            .unwrap();
        let mut out = String::new();
        session
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (session.wait().unwrap(), out)
    }

    /// The container's log records as `(stream, text)`, full lines only.
    pub fn log_lines(&self, id: &str) -> Vec<(String, String)> {
        let path = self.mgr.log_path(id).unwrap();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ' ').collect();
                assert_eq!(f.len(), 4, "not a CRI record: {l:?}");
                assert!(f[0].ends_with('Z') && f[0].contains('T'), "timestamp {l:?}");
                assert!(f[2] == "F" || f[2] == "P", "tag {l:?}");
                (f[1].to_string(), f[3].to_string())
            })
            .collect()
    }

    /// Polls `cond` until it holds or `timeout` passes.
    pub fn until(&self, timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(list) = self.mgr.list() {
            for c in list {
                if matches!(c.phase, Phase::Running | Phase::Created) {
                    let _ = self.mgr.stop(&c.id, libc::SIGKILL, Duration::from_secs(5));
                }
                let _ = self.mgr.remove(&c.id);
            }
        }
        let _ = cgroup::remove_pod(&self.cgroup_parent);
    }
}

/// The `k1s` binary under test, which is also the shim.
pub fn shim_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_k1s"))
}
