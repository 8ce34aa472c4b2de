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

/// Creates the container's cgroup (and its parents) with `res` applied.
pub fn create(path: &str, res: &Resources) -> Result<Cgroup, ContainerError> {
    let mut b = CgroupBuilder::new(path);
    if let Some(limit) = res.memory_limit_bytes {
        // Swap limited to the same value: a limit that swap could evade is no limit (kubelet does
        // the same when swap is off).
        b = b
            .memory()
            .memory_hard_limit(limit as i64)
            .memory_swap_limit(limit as i64)
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
        cpu = cpu.shares(shares);
    }
    if let Some((quota, period)) = res.cpu_quota() {
        cpu = cpu.quota(quota).period(period);
    }
    b = cpu.done();
    let hier = hierarchies::auto();
    match b.build(hier) {
        Ok(cg) => Ok(cg),
        // memory.memsw.* is absent without swap accounting: retry without the swap limit.
        Err(_) if res.memory_limit_bytes.is_some() => {
            let mut r = res.clone();
            let limit = r.memory_limit_bytes.take();
            let cg = create(path, &r)?;
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

/// The cgroup at `path`, without creating anything.
pub fn load(path: &str) -> Cgroup {
    Cgroup::load(hierarchies::auto(), path)
}

/// Moves process `pid` (all its threads) into `cg`.
pub fn add(cg: &Cgroup, pid: u32) -> Result<(), ContainerError> {
    cg.add_task_by_tgid(CgroupPid::from(pid as u64))
        .map_err(|e| cg_err("add task to", cg.path(), e))
}

/// File `name` of controller `kind` (v1: `memory`, `cpuacct`, `blkio`, `pids`) of `cg`.
fn file(cg: &Cgroup, kind: &str, name: &str) -> Option<PathBuf> {
    if cg.v2() {
        return Some(
            hierarchies::auto()
                .root()
                .join(cg.path().trim_start_matches('/'))
                .join(name),
        );
    }
    cg.subsystems().iter().find_map(|s| {
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
    let mut s = Stats::default();
    if cg.v2() {
        let cpu = read(file(cg, "cpu", "cpu.stat"));
        s.cpu_usage_ns = keyed(&cpu, "usage_usec").unwrap_or(0) * 1000;
        s.memory_usage_bytes = read(file(cg, "memory", "memory.current"))
            .trim()
            .parse()
            .unwrap_or(0);
        let mem = read(file(cg, "memory", "memory.stat"));
        let inactive = keyed(&mem, "inactive_file").unwrap_or(0);
        s.memory_working_set_bytes = s.memory_usage_bytes.saturating_sub(inactive);
        // io.stat: "MAJ:MIN rbytes=N wbytes=N ..."
        for line in read(file(cg, "io", "io.stat")).lines() {
            for field in line.split_whitespace() {
                if let Some(v) = field.strip_prefix("rbytes=") {
                    s.io_read_bytes += v.parse().unwrap_or(0);
                } else if let Some(v) = field.strip_prefix("wbytes=") {
                    s.io_write_bytes += v.parse().unwrap_or(0);
                }
            }
        }
        s.pids = read(file(cg, "pids", "pids.current"))
            .trim()
            .parse()
            .unwrap_or(0);
        return s;
    }
    s.cpu_usage_ns = read(file(cg, "cpuacct", "cpuacct.usage"))
        .trim()
        .parse()
        .unwrap_or(0);
    s.memory_usage_bytes = read(file(cg, "memory", "memory.usage_in_bytes"))
        .trim()
        .parse()
        .unwrap_or(0);
    let mem = read(file(cg, "memory", "memory.stat"));
    let inactive = keyed(&mem, "total_inactive_file").unwrap_or(0);
    s.memory_working_set_bytes = s.memory_usage_bytes.saturating_sub(inactive);
    // blkio.throttle.io_service_bytes: "MAJ:MIN Read N" lines.
    for line in read(file(cg, "blkio", "blkio.throttle.io_service_bytes")).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, n] = f[..] {
            match op {
                "Read" => s.io_read_bytes += n.parse().unwrap_or(0),
                "Write" => s.io_write_bytes += n.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    s.pids = read(file(cg, "pids", "pids.current"))
        .trim()
        .parse()
        .unwrap_or(0);
    s
}

/// Kills what is left in `cg` and deletes it, retrying while the kernel still counts exiting
/// tasks (rmdir gives EBUSY for a moment after the last task died).
pub fn remove(path: &str) -> Result<(), ContainerError> {
    let cg = load(path);
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
}
