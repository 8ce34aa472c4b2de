//! Atomic projection of a set of files into a volume directory, laid out as upstream's
//! `AtomicWriter`: the payload lives in a hidden timestamped directory `..<timestamp>`, the
//! symlink `..data` points at it, and each top-level user-visible entry is a symlink through
//! `..data` (`key -> ..data/key`). An update writes a new timestamped directory, then swaps
//! `..data` with one `rename(2)` of a fresh symlink, so a reader sees either the old or the new
//! payload, never a mix.
//!
//! Invariants: every payload path is validated first ([`validate_path`]): relative, no `..`
//! component, not starting with `..`, so nothing is written outside the volume directory; an
//! unchanged payload writes nothing; old timestamped directories and user-visible symlinks no
//! longer in the payload are removed after the swap.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Component, Path, PathBuf};

/// The symlink naming the current payload directory.
pub const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// One projected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    /// Permission bits (e.g. `0o644`).
    pub mode: u32,
}

/// A payload: relative path → file.
pub type Payload = BTreeMap<String, File>;

/// Why a payload could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    #[error("invalid path {0:?}: must be relative, without '..' elements, not starting with '..'")]
    InvalidPath(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AtomicError {
    let path = path.to_path_buf();
    move |source| AtomicError::Io { op, path, source }
}

/// Upstream's path rules for projected files (and `subPath`).
pub fn validate_path(p: &str) -> Result<(), AtomicError> {
    let bad = || AtomicError::InvalidPath(p.to_string());
    if p.is_empty() || p.len() > 4096 || p.starts_with("..") {
        return Err(bad());
    }
    for c in Path::new(p).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// The payload currently visible in `dir` (through `..data`), if any.
fn current(dir: &Path) -> Option<(PathBuf, Payload)> {
    let target = fs::read_link(dir.join(DATA)).ok()?;
    let ts_dir = dir.join(&target);
    let mut out = Payload::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(ts_dir.join(&rel)).ok()?.flatten() {
            let rel = rel.join(entry.file_name());
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                stack.push(rel);
            } else {
                let data = fs::read(ts_dir.join(&rel)).ok()?;
                let mode = meta.permissions().mode() & 0o7777;
                out.insert(rel.to_string_lossy().into_owned(), File { data, mode });
            }
        }
    }
    Some((target, out))
}

/// A new, unique timestamped directory name, as upstream's `..2006_01_02_15_04_05.<random>`.
fn ts_name() -> String {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    format!(
        "..{}.{}",
        now.strftime("%Y_%m_%d_%H_%M_%S"),
        uuid::Uuid::new_v4().simple()
    )
}

/// The first path component of each payload entry (the user-visible names).
fn top_level(payload: &Payload) -> BTreeMap<String, ()> {
    payload
        .keys()
        .filter_map(|p| {
            Path::new(p)
                .components()
                .find(|c| matches!(c, Component::Normal(_)))
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
        })
        .map(|k| (k, ()))
        .collect()
}

/// Writes `payload` into `dir` atomically; `Ok(false)` when it was already there.
pub fn write(dir: &Path, payload: &Payload) -> Result<bool, AtomicError> {
    for p in payload.keys() {
        validate_path(p)?;
    }
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let old = current(dir);
    let normalized: Payload = payload
        .iter()
        .map(|(k, v)| {
            let k: PathBuf = Path::new(k)
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            (k.to_string_lossy().into_owned(), v.clone())
        })
        .collect();
    if old.as_ref().is_some_and(|(_, p)| *p == normalized) {
        return Ok(false);
    }
    let name = ts_name();
    let ts_dir = dir.join(&name);
    fs::create_dir(&ts_dir).map_err(io("creating", &ts_dir))?;
    // Group-readable like upstream's 0755 timestamped directory.
    fs::set_permissions(&ts_dir, fs::Permissions::from_mode(0o755))
        .map_err(io("chmod", &ts_dir))?;
    for (rel, file) in &normalized {
        let path = ts_dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        let mut f = fs::File::create(&path).map_err(io("creating", &path))?;
        f.write_all(&file.data).map_err(io("writing", &path))?;
        f.sync_all().map_err(io("syncing", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io("chmod", &path))?;
    }
    let tmp = dir.join(DATA_TMP);
    let _ = fs::remove_file(&tmp);
    symlink(&name, &tmp).map_err(io("symlinking", &tmp))?;
    let data = dir.join(DATA);
    fs::rename(&tmp, &data).map_err(io("renaming", &data))?;
    let new_top = top_level(&normalized);
    for top in new_top.keys() {
        let link = dir.join(top);
        if fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA).join(top), &link).map_err(io("symlinking", &link))?;
        }
    }
    if let Some((old_name, old_payload)) = old {
        for top in top_level(&old_payload).keys() {
            if !new_top.contains_key(top) {
                let _ = fs::remove_file(dir.join(top));
            }
        }
        let old_dir = dir.join(old_name);
        // Only ever a `..` entry of this directory, never a path from the payload.
        if old_dir.parent() == Some(dir) {
            let _ = fs::remove_dir_all(old_dir);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(s: &str, mode: u32) -> File {
        File {
            data: s.as_bytes().to_vec(),
            mode,
        }
    }

    fn tmpdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("k1s-atomic-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn paths_are_validated() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "..data", "..x/y"] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
        for ok in ["a", "a/b/c", "./a", "a..b"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        let d = tmpdir();
        let mut p = Payload::new();
        p.insert("../escape".into(), file("x", 0o644));
        assert!(write(&d, &p).is_err());
        assert!(!d.parent().unwrap().join("escape").exists());
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn layout_update_and_removal() {
        let d = tmpdir();
        let mut p = Payload::new();
        p.insert("a".into(), file("1", 0o644));
        p.insert("dir/b".into(), file("2", 0o400));
        assert!(write(&d, &p).unwrap());
        assert_eq!(fs::read_link(d.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(
            fs::read_link(d.join("dir")).unwrap(),
            Path::new("..data/dir")
        );
        assert_eq!(fs::read_to_string(d.join("dir/b")).unwrap(), "2");
        let mode = fs::metadata(d.join("dir/b")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        let first = fs::read_link(d.join(DATA)).unwrap();
        assert!(first.to_string_lossy().starts_with(".."));
        // Unchanged: nothing written.
        assert!(!write(&d, &p).unwrap());
        assert_eq!(fs::read_link(d.join(DATA)).unwrap(), first);
        // Update: new data dir, old one and the dropped entry gone.
        let mut q = Payload::new();
        q.insert("a".into(), file("3", 0o644));
        assert!(write(&d, &q).unwrap());
        let second = fs::read_link(d.join(DATA)).unwrap();
        assert_ne!(first, second);
        assert!(!d.join(&first).exists());
        assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "3");
        assert!(fs::symlink_metadata(d.join("dir")).is_err());
        let names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        fs::remove_dir_all(d).unwrap();
    }
}
