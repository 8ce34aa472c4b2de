//! [`ContainerManager`]: the runtime API the kubelet and `k1s runtime` call. Blocking, so async
//! callers go through `spawn_blocking`; it forks nothing itself (the shim is started with
//! `std::process::Command`, i.e. `posix_spawn`/`exec`).
//!
//! All state is in files under `<root>/containers/<id>/` (see the module docs of
//! [`super`]), so a manager opened after a restart of k1s sees exactly what the one before it saw.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ContainerError;
use super::attach::AttachSession;
use super::cgroup::{self, Stats};
use super::exec::{ExecSession, ExecSpec};
use super::podshim;
use super::proto::Client;
use super::spec::{ContainerSpec, valid_id};
use super::state::{self, Phase, State};

/// A created container.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    pub log_path: PathBuf,
}

/// A container's status as the kubelet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub pod_id: String,
    pub phase: Phase,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Host pid of its shim.
    pub shim_pid: i32,
    pub exit_code: Option<i32>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub log_path: PathBuf,
}

/// Creates, runs and finds containers under `<root>/containers`.
#[derive(Debug, Clone)]
pub struct ContainerManager {
    root: PathBuf,
    /// `<root>/shims`: one directory per pod shim (see [`podshim`]).
    shims: PathBuf,
    shim_exe: PathBuf,
}

impl ContainerManager {
    /// Opens (creating) `<root>/containers` and `<root>/shims`. `shim_exe` is the `k1s` binary
    /// (it runs `__shim`).
    pub fn open(root: &Path, shim_exe: PathBuf) -> Result<Self, ContainerError> {
        // Canonical, so every manager names a shim dir with the same bytes (the shim's argv is
        // matched against it to tell a live shim from a reused pid).
        let canonical = |name: &str| {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).map_err(|e| ContainerError::io("create", &dir, e))?;
            dir.canonicalize()
                .map_err(|e| ContainerError::io("resolve", &dir, e))
        };
        Ok(Self {
            root: canonical("containers")?,
            shims: canonical("shims")?,
            shim_exe,
        })
    }

    fn shim_dir(&self, spec: &ContainerSpec) -> PathBuf {
        self.shims.join(podshim::key(spec))
    }

    fn dir(&self, id: &str) -> Result<PathBuf, ContainerError> {
        if !valid_id(id) {
            return Err(ContainerError::NotFound(id.to_string()));
        }
        let dir = self.root.join(id);
        if !dir.join("spec.json").exists() {
            return Err(ContainerError::NotFound(id.to_string()));
        }
        Ok(dir)
    }

    fn spec(&self, id: &str) -> Result<ContainerSpec, ContainerError> {
        let path = self.dir(id)?.join("spec.json");
        let bytes = std::fs::read(&path).map_err(|e| ContainerError::io("read", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ContainerError::State(e.to_string()))
    }

    fn log_file(spec: &ContainerSpec, dir: &Path) -> PathBuf {
        spec.log_path
            .clone()
            .unwrap_or_else(|| dir.join("container.log"))
    }

    /// Creates the container: its directory, the shim, the cgroup and the init process, which
    /// waits for [`start`](Self::start). Fails with the shim's message (e.g. a bad mount).
    pub fn create(&self, spec: &ContainerSpec) -> Result<Container, ContainerError> {
        if !valid_id(&spec.id) {
            return Err(ContainerError::Spec(format!(
                "bad container id {:?}",
                spec.id
            )));
        }
        let dir = self.root.join(&spec.id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ContainerError::Exists(spec.id.clone()));
            }
            Err(e) => return Err(ContainerError::io("create", &dir, e)),
        }
        let result = self.create_in(spec, &dir);
        if result.is_err() {
            let _ = cgroup::remove(&cgroup::container_path(&spec.cgroup_parent, &spec.id));
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    fn create_in(&self, spec: &ContainerSpec, dir: &Path) -> Result<Container, ContainerError> {
        for sub in ["rootfs", "upper", "work"] {
            let p = dir.join(sub);
            std::fs::create_dir(&p).map_err(|e| ContainerError::io("create", &p, e))?;
        }
        let bytes = serde_json::to_vec(spec).map_err(|e| ContainerError::Spec(e.to_string()))?;
        let spec_path = dir.join("spec.json");
        std::fs::write(&spec_path, bytes)
            .map_err(|e| ContainerError::io("write", &spec_path, e))?;
        let shim_dir = self.shim_dir(spec);
        let link = dir.join("shim.sock");
        std::os::unix::fs::symlink(shim_dir.join("shim.sock"), &link)
            .map_err(|e| ContainerError::io("link", &link, e))?;
        let _lock = podshim::lock(&shim_dir)?;
        podshim::create(&self.shim_exe, &shim_dir, dir, &spec.id)?;
        Ok(Container {
            id: spec.id.clone(),
            dir: dir.to_path_buf(),
            log_path: Self::log_file(spec, dir),
        })
    }

    /// Starts a created container; fails with the reason `execve` failed, if it did.
    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        Client::connect(&self.dir(id)?)?.call(&format!("start {id}"))
    }

    /// Sends `signal` to the container's init.
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), ContainerError> {
        let dir = self.dir(id)?;
        match Client::connect(&dir) {
            Ok(mut c) => c.call(&format!("kill {id} {signal}")),
            // No shim: the container has exited (or its shim died, and then nothing can be sent).
            Err(_) => Ok(()),
        }
    }

    /// `signal`, then up to `grace` for the exit, then SIGKILL; returns the final status.
    pub fn stop(
        &self,
        id: &str,
        signal: i32,
        grace: Duration,
    ) -> Result<ContainerStatus, ContainerError> {
        self.kill(id, signal)?;
        if let Some(status) = self.wait_timeout(id, grace)? {
            return Ok(status);
        }
        self.kill(id, libc::SIGKILL)?;
        self.wait(id)
    }

    /// Blocks until the container exited.
    pub fn wait(&self, id: &str) -> Result<ContainerStatus, ContainerError> {
        let dir = self.dir(id)?;
        if let Ok(mut c) = Client::connect(&dir) {
            c.send(&format!("wait {id}"), &[])?;
            // The shim may exit between writing the state and replying: the state decides.
            let _ = c.wait_exit();
        }
        let status = self.status(id)?;
        if status.phase == Phase::Exited || status.phase == Phase::Unknown {
            return Ok(status);
        }
        // The shim closed without an exit: poll its state until it dies.
        loop {
            let status = self.status(id)?;
            if status.phase != Phase::Running && status.phase != Phase::Created {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `timeout`; `None` if still running then.
    pub fn wait_timeout(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<ContainerStatus>, ContainerError> {
        let deadline = Instant::now() + timeout;
        let dir = self.dir(id)?;
        if let Ok(mut c) = Client::connect(&dir) {
            c.send(&format!("wait {id}"), &[])?;
            let _ = c
                .stream()
                .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
            let _ = c.wait_exit();
        }
        loop {
            let status = self.status(id)?;
            if matches!(status.phase, Phase::Exited | Phase::Unknown) {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The container's current status, from its state file; `Unknown` if its shim died without
    /// recording an exit.
    pub fn status(&self, id: &str) -> Result<ContainerStatus, ContainerError> {
        let dir = self.dir(id)?;
        let spec = self.spec(id)?;
        let mut st = match state::read(&dir) {
            Ok(st) => st,
            // Between `mkdir` and the shim's first write.
            Err(_) => State::new(id, 0),
        };
        if matches!(st.phase, Phase::Created | Phase::Running)
            && !shim_alive(&st, &self.shim_dir(&spec))
        {
            // Re-read: the shim may have written `exited` just before leaving.
            st = state::read(&dir).unwrap_or(st);
            if st.phase != Phase::Exited {
                st.phase = Phase::Unknown;
            }
        }
        Ok(ContainerStatus {
            id: st.id,
            pod_id: spec.pod_id.clone(),
            phase: st.phase,
            pid: st.pid,
            shim_pid: st.shim_pid,
            exit_code: st.exit_code,
            created_at: st.created_at,
            started_at: st.started_at,
            finished_at: st.finished_at,
            reason: st.reason,
            message: st.message,
            log_path: Self::log_file(&spec, &dir),
        })
    }

    /// Every container under the root, running or not (this is how a restarted k1s re-attaches).
    pub fn list(&self) -> Result<Vec<ContainerStatus>, ContainerError> {
        let mut out = Vec::new();
        let entries =
            std::fs::read_dir(&self.root).map_err(|e| ContainerError::io("list", &self.root, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(st) = self.status(&name) {
                out.push(st);
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    /// Removes an exited (or never started) container: kills what is left, its cgroup, its
    /// directory. A running container must be stopped first.
    pub fn remove(&self, id: &str) -> Result<(), ContainerError> {
        let status = self.status(id)?;
        if status.phase == Phase::Running {
            return Err(ContainerError::BadPhase {
                id: id.to_string(),
                phase: status.phase,
                action: "remove",
            });
        }
        if status.phase == Phase::Created {
            self.kill(id, libc::SIGKILL)?;
            self.wait(id)?;
        }
        let spec = self.spec(id)?;
        {
            let shim_dir = self.shim_dir(&spec);
            let _lock = podshim::lock(&shim_dir)?;
            podshim::remove(&shim_dir, id)?;
        }
        cgroup::remove(&cgroup::container_path(&spec.cgroup_parent, id))?;
        let dir = self.dir(id)?;
        std::fs::remove_dir_all(&dir).map_err(|e| ContainerError::io("remove", &dir, e))?;
        if let Some(log) = &spec.log_path {
            let _ = std::fs::remove_file(log);
        }
        Ok(())
    }

    /// Attaches to a running (or created) container: its stdin if the spec keeps one open, and
    /// its live output from now on (the log has what came before).
    pub fn attach(&self, id: &str) -> Result<AttachSession, ContainerError> {
        let spec = self.spec(id)?;
        AttachSession::start(&self.dir(id)?, id, spec.tty)
    }

    /// Runs a process in a running container.
    pub fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecSession, ContainerError> {
        ExecSession::start(&self.dir(id)?, spec)
    }

    /// CPU, memory and I/O usage from the container's cgroup.
    pub fn stats(&self, id: &str) -> Result<Stats, ContainerError> {
        let spec = self.spec(id)?;
        Ok(cgroup::stats(&cgroup::load(&cgroup::container_path(
            &spec.cgroup_parent,
            id,
        ))))
    }

    /// The container's CRI log file.
    pub fn log_path(&self, id: &str) -> Result<PathBuf, ContainerError> {
        let dir = self.dir(id)?;
        Ok(Self::log_file(&self.spec(id)?, &dir))
    }
}

/// Whether the shim recorded in `st` is still alive and is the shim of `dir` (pid reuse guard).
fn shim_alive(st: &State, dir: &Path) -> bool {
    if st.shim_pid <= 0 {
        // The shim has not written its state yet: alive if it is about to.
        return true;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", st.shim_pid)) else {
        return false;
    };
    let dir = dir.as_os_str().as_encoded_bytes();
    cmdline.split(|&b| b == 0).any(|arg| arg == dir)
}
