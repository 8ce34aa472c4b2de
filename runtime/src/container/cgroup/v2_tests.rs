//! The cgroup v2 paths (create with limits, load, stats, OOM detection, removal) against a fake v2
//! tree in a temp dir: this host mounts v1, so a real cgroup2 hierarchy with controllers cannot
//! be had here. The fake holds what the kernel would: `cgroup.controllers` and the default
//! interface files of a new cgroup (`cpu.max` reads `max 100000` until written).

use std::fs;
use std::path::{Path, PathBuf};

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, Subsystem};

use super::*;

/// A cgroup v2 hierarchy rooted at a directory of our choosing, offering cpu, io, cpuset, memory
/// and pids as a unified mount would.
#[derive(Debug, Clone)]
struct FakeV2 {
    root: PathBuf,
}

impl cgroups_rs::fs::Hierarchy for FakeV2 {
    fn subsystems(&self) -> Vec<Subsystem> {
        let (p, r) = (self.root.clone(), PathBuf::new());
        vec![
            Subsystem::Cpu(CpuController::new(p.clone(), r.clone(), true)),
            Subsystem::BlkIo(BlkIoController::new(p.clone(), r.clone(), true)),
            Subsystem::CpuSet(CpuSetController::new(p.clone(), r.clone(), true)),
            Subsystem::Mem(MemController::new(p.clone(), r.clone(), true)),
            Subsystem::Pid(PidController::new(p, r, true)),
        ]
    }
    fn root(&self) -> PathBuf {
        self.root.clone()
    }
    fn root_control_group(&self) -> Cgroup {
        Cgroup::load(Box::new(self.clone()), "")
    }
    fn parent_control_group(&self, path: &str) -> Cgroup {
        let parent = Path::new(path).parent().unwrap_or(Path::new(""));
        Cgroup::load(Box::new(self.clone()), parent.to_string_lossy().as_ref())
    }
    fn v2(&self) -> bool {
        true
    }
}

/// A fake root with the kernel's default files in the cgroup `cg` (what mkdir would make).
fn tree(cg: &str) -> (tempfile::TempDir, impl Fn() -> Hierarchy) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    let d = dir.path().join(cg);
    fs::create_dir_all(&d).unwrap();
    for (name, text) in [
        ("cpu.max", "max 100000\n"),
        ("cpu.weight", "100\n"),
        ("memory.max", "max\n"),
        ("memory.swap.max", "max\n"),
        ("pids.max", "max\n"),
    ] {
        fs::write(d.join(name), text).unwrap();
    }
    let root = dir.path().to_path_buf();
    let hier = move || -> Hierarchy { Box::new(FakeV2 { root: root.clone() }) };
    (dir, hier)
}

fn read(dir: &Path, cg: &str, name: &str) -> String {
    fs::read_to_string(dir.join(cg).join(name))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn weights_follow_kubernetes() {
    // One CPU (1024 shares) is weight 39, the minimum share 1, the maximum 10000.
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(0), 1);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1 << 30), 10_000);
}

#[test]
fn create_writes_v2_limits() {
    let cg = "k1s/podA/c1";
    let (dir, hier) = tree(cg);
    let res = Resources {
        cpu_request_millis: Some(2000),
        cpu_limit_millis: Some(500),
        memory_limit_bytes: Some(64 << 20),
        pids_limit: Some(100),
    };
    let made = create_in(&hier, cg, &res).unwrap();
    assert!(made.v2());
    let d = dir.path();
    assert_eq!(read(d, cg, "memory.max"), (64u64 << 20).to_string());
    // Swap off: v2's memory.swap.max is swap alone; the v1 value (= the memory limit) would
    // double what the container can use.
    assert_eq!(read(d, cg, "memory.swap.max"), "0");
    assert_eq!(read(d, cg, "pids.max"), "100");
    // 2048 shares, not written raw (cpu.weight only takes 1..10000, and 100 is the default).
    assert_eq!(read(d, cg, "cpu.weight"), "79");
    assert_eq!(read(d, cg, "cpu.max"), "50000 100000");
    // The pod cgroup and k1s/ exist as parents of the container's.
    assert!(d.join("k1s/podA").is_dir());
}

#[test]
fn create_without_limits_leaves_defaults() {
    let cg = "k1s/podB/c1";
    let (dir, hier) = tree(cg);
    create_in(&hier, cg, &Resources::default()).unwrap();
    assert_eq!(read(dir.path(), cg, "memory.max"), "max");
    assert_eq!(read(dir.path(), cg, "cpu.max"), "max 100000");
    assert_eq!(read(dir.path(), cg, "pids.max"), "max");
}

#[test]
fn stats_and_oom_read_the_cgroups_own_root() {
    let cg = "k1s/podC/c1";
    let (dir, hier) = tree(cg);
    let d = dir.path().join(cg);
    fs::write(d.join("memory.current"), "8192\n").unwrap();
    fs::write(d.join("memory.stat"), "anon 4096\ninactive_file 4096\n").unwrap();
    fs::write(d.join("cpu.stat"), "usage_usec 7\n").unwrap();
    fs::write(d.join("pids.current"), "2\n").unwrap();
    fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n",
    )
    .unwrap();
    let loaded = load_in(&hier, cg);
    assert!(loaded.v2());
    let s = stats(&loaded);
    assert_eq!(s.memory_usage_bytes, 8192);
    assert_eq!(s.memory_working_set_bytes, 4096);
    assert_eq!(s.cpu_usage_ns, 7000);
    assert_eq!(s.pids, 2);
    // `oom` counts limit hits; only `oom_kill` means a task was killed.
    assert!(!oom_killed(&loaded));
    fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert!(oom_killed(&loaded));
}

#[test]
fn remove_deletes_container_then_pod() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("k1s/podD/c1")).unwrap();
    let root = dir.path().to_path_buf();
    let hier = move || -> Hierarchy { Box::new(FakeV2 { root: root.clone() }) };
    // Removing what does not exist is done already.
    remove_in(&hier, "k1s/podD/none").unwrap();
    remove_in(&hier, "k1s/podD/c1").unwrap();
    assert!(!dir.path().join("k1s/podD/c1").exists());
    assert!(dir.path().join("k1s/podD").is_dir());
    remove_in(&hier, "k1s/podD").unwrap();
    assert!(!dir.path().join("k1s/podD").exists());
}
