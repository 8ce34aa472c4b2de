//! The container's on-disk state, `<root>/containers/<id>/state.json`, written only by the shim and
//! always atomically (temp file + rename), so a reader (a new `k1s` after a restart) sees either
//! the old or the new state, never a torn one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ContainerError;

/// Lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The init process is set up and waits for `start`.
    Created,
    Running,
    Exited,
    /// The shim died without recording an exit (seen only by readers).
    Unknown,
}

/// What the shim records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub phase: Phase,
    /// Host pid of the container's init (0 before create finished).
    pub pid: i32,
    pub shim_pid: i32,
    /// RFC 3339 with nanoseconds.
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// 128 + signal number for a killed process, as shells and the kubelet report it.
    pub exit_code: Option<i32>,
    /// `Completed` (exit 0), `Error`, `OOMKilled`; or why start failed.
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl State {
    /// A fresh state for container `id` run by shim `shim_pid`.
    pub fn new(id: &str, shim_pid: i32) -> Self {
        Self {
            id: id.to_string(),
            phase: Phase::Created,
            pid: 0,
            shim_pid,
            created_at: now(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            reason: None,
            message: None,
        }
    }
}

/// The current time as the CRI log and state files write it (UTC, nanoseconds).
pub fn now() -> String {
    super::timestamp::now_string()
}

/// Writes `state` to `dir/state.json` atomically.
pub fn write(dir: &Path, state: &State) -> Result<(), ContainerError> {
    let tmp = dir.join("state.json.tmp");
    let bytes = serde_json::to_vec(state).map_err(|e| ContainerError::State(e.to_string()))?;
    std::fs::write(&tmp, bytes).map_err(|e| ContainerError::io("write state", &tmp, e))?;
    std::fs::rename(&tmp, dir.join("state.json"))
        .map_err(|e| ContainerError::io("write state", &tmp, e))
}

/// Reads `dir/state.json`.
pub fn read(dir: &Path) -> Result<State, ContainerError> {
    let path = dir.join("state.json");
    let bytes = std::fs::read(&path).map_err(|e| ContainerError::io("read state", &path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ContainerError::State(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::new("c1", 42);
        s.phase = Phase::Exited;
        s.exit_code = Some(137);
        write(dir.path(), &s).unwrap();
        assert_eq!(read(dir.path()).unwrap(), s);
        assert!(
            s.created_at.ends_with('Z') && s.created_at.len() == 30,
            "{}",
            s.created_at
        );
    }
}
