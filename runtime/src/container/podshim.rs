//! The manager's side of pod shims: which shim serves a container, and starting one or asking
//! the running one.
//!
//! A pod's shim lives in `<root>/shims/pod-<pod id>/` (`ctr-<container id>/` for a container
//! without a pod): `shim.sock` is its socket, `lock` serialises managers (several k1s threads or
//! processes) that create or remove the pod's containers. Under that lock a live socket means a
//! live shim that will stay (a shim unlinks its socket before acknowledging the removal of its
//! last container), and a missing or refusing one means a new shim must be started. Each
//! container directory holds a `shim.sock` symlink to its pod shim's socket.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ContainerError;
use super::proto::Client;
use super::spec::{ContainerSpec, valid_id};

/// The name of the shim directory serving `spec`.
pub fn key(spec: &ContainerSpec) -> String {
    if valid_id(&spec.pod_id) && spec.pod_id.len() <= 124 {
        format!("pod-{}", spec.pod_id)
    } else {
        format!("ctr-{}", spec.id)
    }
}

/// Takes the exclusive lock of the shim directory `dir` (creating it), blocking until free.
/// A remover may delete the directory while others wait on its lock file: a lock on a file that
/// is no longer the one at the path is retried.
pub fn lock(dir: &Path) -> Result<File, ContainerError> {
    let path = dir.join("lock");
    loop {
        std::fs::create_dir_all(dir).map_err(|e| ContainerError::io("create", dir, e))?;
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ContainerError::io("open", &path, e))?;
        f.lock().map_err(|e| ContainerError::io("lock", &path, e))?;
        let held = f
            .metadata()
            .map_err(|e| ContainerError::io("stat", &path, e))?;
        if std::fs::metadata(&path).is_ok_and(|m| m.ino() == held.ino() && m.dev() == held.dev()) {
            return Ok(f);
        }
    }
}

/// With the pod's lock held: creates the container in `dir` (spec written) in the running shim
/// of `shim_dir`, or starts that shim with it.
pub fn create(
    shim_exe: &Path,
    shim_dir: &Path,
    dir: &Path,
    id: &str,
) -> Result<(), ContainerError> {
    if let Ok(mut shim) = Client::connect(shim_dir) {
        return shim.call(&format!("create {id}"));
    }
    spawn(shim_exe, shim_dir, dir)
}

/// Starts `k1s __shim <shim_dir> <dir>` and reads its report.
fn spawn(shim_exe: &Path, shim_dir: &Path, dir: &Path) -> Result<(), ContainerError> {
    let mut child = Command::new(shim_exe)
        .arg("__shim")
        .arg(shim_dir)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ContainerError::io("spawn shim", shim_exe, e))?;
    // The shim reports one line on its stdout. Not read to EOF: the container's init holds a
    // copy of the pipe until it execs. The first process exits right after forking the daemon.
    let mut report = String::new();
    if let Some(out) = child.stdout.take() {
        use std::io::{BufRead, Read};
        let _ = std::io::BufReader::new(out.take(64 * 1024)).read_line(&mut report);
    }
    let _ = child.wait();
    let report = report.trim();
    if report == "ok" {
        return Ok(());
    }
    let msg = report.strip_prefix("err ").unwrap_or(report);
    Err(ContainerError::Failed(if msg.is_empty() {
        "shim exited without a report".to_string()
    } else {
        msg.to_string()
    }))
}

/// With the pod's lock held: tells the shim to forget container `id` (exited); once the shim
/// went away with its last container, removes its directory.
pub fn remove(shim_dir: &Path, id: &str) -> Result<(), ContainerError> {
    if let Ok(mut shim) = Client::connect(shim_dir) {
        match shim.call(&format!("remove {id}")) {
            Ok(()) => {}
            // A shim started after this container's shim died does not know it.
            Err(ContainerError::Failed(msg)) if msg.contains("not in this shim") => {}
            Err(e) => return Err(e),
        }
    }
    let sock: PathBuf = shim_dir.join("shim.sock");
    if !sock.exists() || Client::connect(shim_dir).is_err() {
        let _ = std::fs::remove_dir_all(shim_dir);
    }
    Ok(())
}
