//! cgroups of pods and containers, v1 or v2 as the host mounts them (cgroups-rs picks): a pod
//! cgroup `<parent>` (e.g. `k1s/pod<uid>`) and one per container `<parent>/<id>` with cpu shares,
//! CFS quota, memory and pids limits.
//!
//! Invariants: a container's cgroup exists from `create` until `remove` (the shim never deletes
//! it, so stats and the OOM counter stay readable after exit); v1 child cgroups get
//! `cpuset.cpus`/`cpuset.mems` copied from the parent before a task moves in (cgroups-rs does
//! this when it creates the cpuset directory; an empty cpuset makes the move fail with ENOSPC).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cgroups_rs::CgroupPid;
use cgroups_rs::fs::cgroup_builder::CgroupBuilder;
use cgroups_rs::fs::hierarchies;
use cgroups_rs::fs::{Cgroup, MaxValue, Subsystem};

use super::ContainerError;
use super::spec::Resources;

/// Usage figures of one container (what `stats` and the kubelet's summary API report).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Total CPU time, nanoseconds.
    pub cpu_usage_ns: u64,
    pub memory_usage_bytes: u64,
    /// Usage minus inactive file cache (the kubelet's eviction signal).
    pub memory_working_set_bytes: u64,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    pub pids: u64,
}

fn cg_err(what: &str, path: &str, e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Cgroup(format!("{what} {path}: {e}"))
}

/// `<parent>/<id>`, with `k1s` as the default parent.
pub fn container_path(parent: &str, id: &str) -> String {
    let parent = parent.trim_matches('/');
    let parent = if parent.is_empty() { "k1s" } else { parent };
    format!("{parent}/{id}")
}

/// The hierarchy of this host (v1 or v2, as cgroups-rs detects it).
pub type Hierarchy = Box<dyn cgroups_rs::fs::Hierarchy>;

/// Makes a handle on the hierarchy to use; the host's is [`hierarchies::auto`]. A function, not a
/// value, because cgroups-rs consumes one per cgroup it builds or loads.
pub type HierarchyFn<'a> = &'a dyn Fn() -> Hierarchy;

/// Creates the container's cgroup (and its parents) with `res` applied, on the host's hierarchy.
pub fn create(path: &str, res: &Resources) -> Result<Cgroup, ContainerError> {
    create_in(&hierarchies::auto, path, res)
}

/// [`create`] on the hierarchy `hier` makes (a fake v2 tree in tests).
///
/// v1: only the [`controllers`] the runtime uses; memory+swap limited to the memory limit.
/// v2: like runc, every controller the root offers is enabled down the path (naming a subset would
/// fail outright on a host that lacks one, e.g. no `cpuset` or `io` delegated); CPU shares become
/// `cpu.weight` and swap is off (`memory.swap.max` is swap alone, not memory+swap as in v1).
pub fn create_in(hier: HierarchyFn, path: &str, res: &Resources) -> Result<Cgroup, ContainerError> {
    let h = hier();
    let v2 = h.v2();
    let mut b = CgroupBuilder::new(path);
    if let Some(limit) = res.memory_limit_bytes {
        // A limit that swap could evade is no limit (kubelet does the same when swap is off).
        let swap = if v2 { 0 } else { limit as i64 };
        b = b
            .memory()
            .memory_hard_limit(limit as i64)
            .memory_swap_limit(swap)
            .done();
    }
    if let Some(pids) = res.pids_limit {
        b = b
            .pid()
            .maximum_number_of_processes(MaxValue::Value(pids))
            .done();
    }
    let mut cpu = b.cpu();
    if let Some(shares) = res.cpu_shares() {
        cpu = cpu.shares(if v2 { shares_to_weight(shares) } else { shares });
    }
    if let Some((quota, period)) = res.cpu_quota() {
        cpu = cpu.quota(quota).period(period);
    }
    b = cpu.done();
    if !v2 {
        b = b.set_specified_controllers(controllers_v1());
    }
    match b.build(h) {
        Ok(cg) => Ok(cg),
        // memory.memsw.* (v1) or memory.swap.max (v2) is absent without swap accounting: retry
        // without the swap limit.
        Err(_) if res.memory_limit_bytes.is_some() => {
            let mut r = res.clone();
            let limit = r.memory_limit_bytes.take();
            let cg = create_in(hier, path, &r)?;
            let mem = cgroups_rs::fs::Resources {
                memory: cgroups_rs::fs::MemoryResources {
                    memory_hard_limit: limit.map(|l| l as i64),
                    ..Default::default()
                },
                ..Default::default()
            };
            cg.apply(&mem)
                .map_err(|e| cg_err("limit memory of", path, e))?;
            Ok(cg)
        }
        Err(e) => Err(cg_err("create", path, e)),
    }
}

/// Kubernetes' conversion of v1 CPU shares (2..262144) to a v2 `cpu.weight` (1..10000), so that
/// 1024 shares (one CPU) weigh as in runc/crun: `1 + (shares - 2) * 9999 / 262142`.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + (shares - 2) * 9999 / 262_142
}

/// The v1 controllers a container's cgroup lives in. Only these: every other v1 hierarchy
/// (freezer, devices, net_cls, perf_event, name=systemd, ...) would cost a mkdir, a task migration
/// on every start and an rmdir, for nothing the runtime sets or reads.
fn controllers_v1() -> Vec<String> {
    ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio"]
        .iter()
        .map(|n| n.to_string())
        .collect()
}

/// The cgroup at `path` on the host's hierarchy, without creating anything.
pub fn load(path: &str) -> Cgroup {
    load_in(&hierarchies::auto, path)
}

/// [`load`] on the hierarchy `hier` makes.
pub fn load_in(hier: HierarchyFn, path: &str) -> Cgroup {
    let h = hier();
    if h.v2() {
        Cgroup::load(h, path)
    } else {
        Cgroup::load_with_specified_controllers(h, path, controllers_v1())
    }
}

/// Moves process `pid` (all its threads) into `cg`.
pub fn add(cg: &Cgroup, pid: u32) -> Result<(), ContainerError> {
    cg.add_task_by_tgid(CgroupPid::from(pid as u64))
        .map_err(|e| cg_err("add task to", cg.path(), e))
}

/// File `name` of controller `kind` (v1: `memory`, `cpuacct`, `blkio`, `pids`) of `cg`. On v2 every
/// controller's directory is the cgroup's one directory, found through the memory controller (or
/// any other the hierarchy offers) so that the cgroup's own hierarchy root is used.
fn file(cg: &Cgroup, kind: &str, name: &str) -> Option<PathBuf> {
    let subs = cg.subsystems();
    if cg.v2() {
        let any = subs
            .iter()
            .find(|s| matches!(s, Subsystem::Mem(_)))
            .or(subs.first())?;
        return Some(any.to_controller().path().join(name));
    }
    subs.iter().find_map(|s| {
        let c = s.to_controller();
        let matches = matches!(
            (kind, s),
            ("memory", Subsystem::Mem(_))
                | ("cpuacct", Subsystem::CpuAcct(_))
                | ("blkio", Subsystem::BlkIo(_))
                | ("pids", Subsystem::Pid(_))
        );
        matches.then(|| c.path().join(name))
    })
}

fn read(path: Option<PathBuf>) -> String {
    path.and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

/// Value of `key` in a flat-keyed file (`key value` lines).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Whether the kernel's OOM killer killed a task of `cg` (v1 `memory.oom_control`, v2
/// `memory.events`).
pub fn oom_killed(cg: &Cgroup) -> bool {
    let (name, key) = if cg.v2() {
        ("memory.events", "oom_kill")
    } else {
        ("memory.oom_control", "oom_kill")
    };
    keyed(&read(file(cg, "memory", name)), key).unwrap_or(0) > 0
}

/// Usage of `cg`.
pub fn stats(cg: &Cgroup) -> Stats {
    if cg.v2() {
        return match file(cg, "memory", "") {
            Some(dir) => stats_v2(&dir),
            None => Stats::default(),
        };
    }
    let num =
        |kind: &str, name: &str| -> u64 { read(file(cg, kind, name)).trim().parse().unwrap_or(0) };
    let usage = num("memory", "memory.usage_in_bytes");
    let inactive = keyed(
        &read(file(cg, "memory", "memory.stat")),
        "total_inactive_file",
    )
    .unwrap_or(0);
    let (mut rd, mut wr) = (0, 0);
    // blkio.throttle.io_service_bytes: "MAJ:MIN Read N" lines.
    for line in read(file(cg, "blkio", "blkio.throttle.io_service_bytes")).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, n] = f[..] {
            match op {
                "Read" => rd += n.parse::<u64>().unwrap_or(0),
                "Write" => wr += n.parse::<u64>().unwrap_or(0),
                _ => {}
            }
        }
    }
    Stats {
        cpu_usage_ns: num("cpuacct", "cpuacct.usage"),
        memory_usage_bytes: usage,
        memory_working_set_bytes: usage.saturating_sub(inactive),
        io_read_bytes: rd,
        io_write_bytes: wr,
        pids: num("pids", "pids.current"),
    }
}

/// Usage from the files of one cgroup v2 directory.
pub fn stats_v2(dir: &std::path::Path) -> Stats {
    let read = |name: &str| read(Some(dir.join(name)));
    let usage: u64 = read("memory.current").trim().parse().unwrap_or(0);
    let inactive = keyed(&read("memory.stat"), "inactive_file").unwrap_or(0);
    let (mut rd, mut wr) = (0, 0);
    // io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device.
    for line in read("io.stat").lines() {
        for field in line.split_whitespace() {
            if let Some(v) = field.strip_prefix("rbytes=") {
                rd += v.parse::<u64>().unwrap_or(0);
            } else if let Some(v) = field.strip_prefix("wbytes=") {
                wr += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    Stats {
        cpu_usage_ns: keyed(&read("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
        memory_usage_bytes: usage,
        memory_working_set_bytes: usage.saturating_sub(inactive),
        io_read_bytes: rd,
        io_write_bytes: wr,
        pids: read("pids.current").trim().parse().unwrap_or(0),
    }
}

/// Kills what is left in `cg` and deletes it, retrying while the kernel still counts exiting
/// tasks (rmdir gives EBUSY for a moment after the last task died).
pub fn remove(path: &str) -> Result<(), ContainerError> {
    remove_in(&hierarchies::auto, path)
}

/// [`remove`] on the hierarchy `hier` makes.
pub fn remove_in(hier: HierarchyFn, path: &str) -> Result<(), ContainerError> {
    let cg = load_in(hier, path);
    if !cg.exists() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for pid in cg.procs() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        match cg.delete() {
            Ok(()) if !cg.exists() => return Ok(()),
            Ok(()) => {}
            Err(e) if Instant::now() > deadline => return Err(cg_err("remove", path, e)),
            Err(_) => {}
        }
        if Instant::now() > deadline {
            return Err(cg_err("remove", path, "still exists"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes a pod cgroup once its containers' cgroups are gone.
pub fn remove_pod(parent: &str) -> Result<(), ContainerError> {
    remove(parent.trim_matches('/'))
}

#[cfg(test)]
mod v2_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        assert_eq!(
            keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill"),
            Some(2)
        );
        assert_eq!(keyed("low 0\noom 1\noom_kill 0\n", "oom_kill"), Some(0));
        assert_eq!(container_path("", "c1"), "k1s/c1");
        assert_eq!(container_path("/k1s/podA/", "c1"), "k1s/podA/c1");
    }

    #[test]
    fn v2_files() {
        let dir = tempfile::tempdir().unwrap();
        let w = |n: &str, t: &str| std::fs::write(dir.path().join(n), t).unwrap();
        w(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        );
        w("memory.current", "10485760\n");
        w("memory.stat", "anon 100\nfile 200\ninactive_file 4194304\n");
        w(
            "io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:16 rbytes=1 wbytes=0\n",
        );
        w("pids.current", "3\n");
        let s = stats_v2(dir.path());
        assert_eq!(
            s,
            Stats {
                cpu_usage_ns: 1_500_000,
                memory_usage_bytes: 10_485_760,
                memory_working_set_bytes: 6_291_456,
                io_read_bytes: 4097,
                io_write_bytes: 8192,
                pids: 3,
            }
        );
        assert_eq!(stats_v2(&dir.path().join("missing")), Stats::default());
    }
}
