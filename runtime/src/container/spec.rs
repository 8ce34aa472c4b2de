//! What a container is made of: the [`ContainerSpec`] the kubelet (or `k1s runtime run`) hands to
//! [`super::ContainerManager::create`], and Kubernetes' rules for merging a pod's `command`/`args`/`env`
//! with the image config.
//!
//! The spec is stored as `spec.json` in the container's directory: the shim re-reads it, so it must
//! stay self-contained (absolute paths only, no references to in-memory state).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything needed to create one container. Paths are absolute host paths.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Unique id; names the directory `<root>/containers/<id>`, so `[A-Za-z0-9_.-]` only.
    pub id: String,
    /// The pod (sandbox) this container belongs to: its containers share one shim. Empty: the
    /// container gets a shim of its own.
    pub pod_id: String,
    /// Namespaces to join by nsfs path: kinds `net`, `ipc`, `uts` and optionally `pid`. A kind not
    /// listed gets a fresh private namespace (a fresh netns has only loopback).
    pub namespaces: Vec<(String, PathBuf)>,
    /// Set in a fresh UTS namespace; ignored when `uts` is joined (the sandbox set it).
    pub hostname: String,
    /// Host files bind-mounted over `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub hosts_file: Option<PathBuf>,
    pub hostname_file: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
    /// Unpacked image layers, lowest first.
    pub layers: Vec<PathBuf>,
    /// The full argv (see [`merge_command`]); `argv[0]` is looked up in `PATH` of `env` if relative.
    pub args: Vec<String>,
    /// `KEY=VALUE` (see [`merge_env`]).
    pub env: Vec<String>,
    /// Absolute working directory inside the container; `/` if empty.
    pub working_dir: String,
    /// `uid[:gid]` numbers or `name[:group]` looked up in the rootfs; root if empty.
    pub user: String,
    /// Extra supplementary groups (pod `supplementalGroups`).
    pub supplemental_groups: Vec<u32>,
    /// Capability names without the `CAP_` prefix, applied to containerd's default set.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// All capabilities, no seccomp, no masked or read-only paths.
    pub privileged: bool,
    pub no_new_privs: bool,
    pub seccomp: SeccompProfile,
    pub readonly_rootfs: bool,
    /// Limits; clamped to what the host allows.
    pub rlimits: Vec<Rlimit>,
    /// Run with a pseudo-terminal as stdio (stdout and stderr are then one stream).
    pub tty: bool,
    /// Keep stdin open for attaching: the shim holds the write side of a pipe (or the pty
    /// master with `tty`) and hands it to [`super::ContainerManager::attach`] callers. Without
    /// it the container's stdin is `/dev/null` (or the pty, read-only for attachers).
    pub stdin: bool,
    /// With `stdin`: the first attacher gets the shim's own copy, so the container sees EOF
    /// once that attacher closes it; later attachers get no stdin (`stdinOnce`; not for `tty`).
    #[serde(default)]
    pub stdin_once: bool,
    /// Join the pod's shared PID namespace (`shareProcessNamespace`), held by the pod shim's pause
    /// process, instead of a fresh one; ignored if `namespaces` lists `pid`.
    #[serde(default)]
    pub share_process_namespace: bool,
    /// Bind mounts from the host: the kubelet's volumes.
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    /// Parent cgroup, relative to the hierarchy root, e.g. `k1s/pod<uid>`; `k1s` if empty.
    pub cgroup_parent: String,
    /// CRI log file; `<dir>/container.log` if `None`.
    pub log_path: Option<PathBuf>,
    /// Rotate the log when it grows past this many bytes (0: 10 MiB).
    pub log_max_size: u64,
    /// Rotated files kept besides the live one (0: 4).
    pub log_max_files: u32,
}

/// Seccomp profile, as `securityContext.seccompProfile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompProfile {
    /// containerd's default allowlist; everything else fails with EPERM.
    #[default]
    RuntimeDefault,
    Unconfined,
    /// An OCI/Docker seccomp JSON profile on the host.
    Localhost(PathBuf),
}

/// One resource limit (`RLIMIT_*` name without the prefix, e.g. `NOFILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// A bind mount of a host path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub host_path: PathBuf,
    /// Absolute path inside the container; created if missing.
    pub container_path: String,
    pub readonly: bool,
}

/// cgroup limits, in Kubernetes' units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// From `requests.cpu`, in millicores: cpu shares = millis * 1024 / 1000 (min 2).
    pub cpu_request_millis: Option<u64>,
    /// From `limits.cpu`, in millicores: CFS quota over a 100 ms period.
    pub cpu_limit_millis: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// Kubernetes' `MilliCPUToShares`.
    pub fn cpu_shares(&self) -> Option<u64> {
        self.cpu_request_millis.map(|m| (m * 1024 / 1000).max(2))
    }

    /// Kubernetes' `MilliCPUToQuota` with a 100 ms period: `(quota, period)` in microseconds.
    pub fn cpu_quota(&self) -> Option<(i64, u64)> {
        const PERIOD: u64 = 100_000;
        self.cpu_limit_millis
            .map(|m| (((m * PERIOD) / 1000).max(1000) as i64, PERIOD))
    }
}

/// Kubernetes' rule for the argv of a container: a pod `command` replaces the image `Entrypoint`
/// and drops its `Cmd`; pod `args` alone replace `Cmd` and keep `Entrypoint`.
pub fn merge_command(
    command: &[String],
    args: &[String],
    entrypoint: &[String],
    cmd: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = if command.is_empty() {
        entrypoint.to_vec()
    } else {
        command.to_vec()
    };
    if !args.is_empty() {
        out.extend_from_slice(args);
    } else if command.is_empty() {
        out.extend_from_slice(cmd);
    }
    out
}

/// Image env first, spec env overriding by key, order of first appearance kept.
pub fn merge_env(image_env: &[String], spec_env: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(image_env.len() + spec_env.len());
    for entry in image_env.iter().chain(spec_env) {
        let key = entry.split('=').next().unwrap_or_default();
        match out
            .iter_mut()
            .find(|e| e.split('=').next().unwrap_or_default() == key)
        {
            Some(slot) => *slot = entry.clone(),
            None => out.push(entry.clone()),
        }
    }
    out
}

/// Whether `id` is safe as a directory and cgroup name.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_rules() {
        let ep = v(&["/ep"]);
        let cmd = v(&["c1", "c2"]);
        assert_eq!(merge_command(&[], &[], &ep, &cmd), v(&["/ep", "c1", "c2"]));
        assert_eq!(merge_command(&v(&["/x"]), &[], &ep, &cmd), v(&["/x"]));
        assert_eq!(merge_command(&[], &v(&["a"]), &ep, &cmd), v(&["/ep", "a"]));
        assert_eq!(
            merge_command(&v(&["/x"]), &v(&["a"]), &ep, &cmd),
            v(&["/x", "a"])
        );
        assert_eq!(merge_command(&[], &[], &[], &cmd), v(&["c1", "c2"]));
    }

    #[test]
    fn env_overrides_by_key() {
        let merged = merge_env(&v(&["PATH=/bin", "A=1"]), &v(&["A=2", "B=3"]));
        assert_eq!(merged, v(&["PATH=/bin", "A=2", "B=3"]));
    }

    #[test]
    fn cpu_units() {
        let r = Resources {
            cpu_request_millis: Some(250),
            cpu_limit_millis: Some(500),
            ..Default::default()
        };
        assert_eq!(r.cpu_shares(), Some(256));
        assert_eq!(r.cpu_quota(), Some((50_000, 100_000)));
        assert!(!valid_id("../x"));
        assert!(valid_id("abc-1.2_3"));
    }
}
