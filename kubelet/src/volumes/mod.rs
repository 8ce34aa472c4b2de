//! A pod's volumes on the host, in the upstream kubelet's layout:
//! `<runtime-root>/pods/<uid>/volumes/<plugin>/<name>` (`kubernetes.io~empty-dir`,
//! `kubernetes.io~configmap`, `kubernetes.io~secret`, `kubernetes.io~downward-api`,
//! `kubernetes.io~projected`), bind-mounted into containers per `volumeMounts`.
//!
//! - `emptyDir`: a directory (mode 0777); `medium: Memory` is a tmpfs (`size=` from `sizeLimit`).
//! - `hostPath`: the host path itself, after the type check ([`hostpath`]).
//! - `configMap`, `secret`, `downwardAPI`, `projected`: payloads ([`project`]) written by the
//!   atomic writer ([`atomic`]); secrets live on a tmpfs so they never reach the disk. These are
//!   mounted read-only, as upstream mounts them.
//!
//! Invariants: [`setup`] is idempotent and cheap when nothing changed, so the worker calls it on
//! every sync to re-project updated ConfigMaps and Secrets; a `subPath` is validated and must
//! resolve inside its volume (a symlink cannot escape); `mountPropagation` is ignored (every mount
//! is private to the container); [`teardown`] unmounts every tmpfs under the pod's directory
//! before removing it, and is safe to call for a pod that never had volumes.

pub mod atomic;
pub mod hostpath;
pub mod project;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use k1s_runtime::container::Mount;
use nix::mount::{MntFlags, MsFlags};
use serde_json::Value;

pub use project::Sources;

use crate::node::parse_bytes;

/// Why a pod's volumes cannot be set up or mounted (a `FailedMount` event upstream).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {name:?}: {source}")]
    Project {
        name: String,
        #[source]
        source: project::ProjectError,
    },
    #[error("volume {name:?}: {source}")]
    Write {
        name: String,
        #[source]
        source: atomic::AtomicError,
    },
    #[error("volume {name:?}: {source}")]
    HostPath {
        name: String,
        #[source]
        source: hostpath::HostPathError,
    },
    #[error(
        "volume {name:?}: unsupported volume type (emptyDir, hostPath, configMap, secret, downwardAPI and projected are supported)"
    )]
    Unsupported { name: String },
    #[error("volumeMount {0:?} names no volume of the pod")]
    NoVolume(String),
    #[error("invalid subPath {path:?} of volumeMount {name:?}")]
    SubPath { name: String, path: String },
    #[error("subPathExpr of volumeMount {0:?} is not supported")]
    SubPathExpr(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Mount {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let path = path.to_path_buf();
    move |source| VolumeError::Io { op, path, source }
}

/// `<runtime-root>/pods/<uid>`: everything the kubelet keeps on the host for one pod.
pub fn pod_dir(runtime_root: &Path, uid: &str) -> PathBuf {
    runtime_root.join("pods").join(uid)
}

/// One set-up volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The host path bind-mounted into containers.
    pub path: PathBuf,
    /// Always mounted read-only (configMap, secret, downwardAPI, projected).
    pub readonly: bool,
    /// Its content is re-projected on updates (not through a `subPath` mount).
    pub projected: bool,
}

/// The pod's volumes by name.
pub type PodVolumes = HashMap<String, Volume>;

/// Whether `path` is a mount point (its device differs from its parent's).
fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(m), Some(Ok(p))) = (
        fs::symlink_metadata(path),
        path.parent().map(fs::symlink_metadata),
    ) else {
        return false;
    };
    m.dev() != p.dev()
}

/// A tmpfs on `dir` (created) unless one is there already.
fn tmpfs(dir: &Path, size: Option<u64>, mode: u32) -> Result<(), VolumeError> {
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    if is_mount_point(dir) {
        return Ok(());
    }
    let mut data = format!("mode={mode:o}");
    if let Some(size) = size {
        data.push_str(&format!(",size={size}"));
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .map_err(|source| VolumeError::Mount {
        op: "mounting tmpfs on",
        path: dir.to_path_buf(),
        source,
    })
}

fn plugin_of(vol: &Value) -> Option<&'static str> {
    let has = |k: &str| vol.get(k).is_some_and(Value::is_object);
    [
        ("emptyDir", "kubernetes.io~empty-dir"),
        ("configMap", "kubernetes.io~configmap"),
        ("secret", "kubernetes.io~secret"),
        ("downwardAPI", "kubernetes.io~downward-api"),
        ("projected", "kubernetes.io~projected"),
    ]
    .into_iter()
    .find(|(k, _)| has(k))
    .map(|(_, p)| p)
}

/// Creates, checks and (re-)projects every volume of `pod` under `pod_dir`. Blocking.
pub fn setup(pod_dir: &Path, pod: &Value, sources: &Sources) -> Result<PodVolumes, VolumeError> {
    let mut out = PodVolumes::new();
    for vol in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = vol["name"].as_str().unwrap_or_default().to_string();
        // The name becomes a directory: the API server validates it as a DNS label, but the
        // kubelet does not trust that.
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(VolumeError::Unsupported { name });
        }
        if let Some(hp) = vol.get("hostPath").filter(|v| v.is_object()) {
            let path = hp["path"].as_str().unwrap_or_default();
            hostpath::check(path, hp["type"].as_str().unwrap_or_default()).map_err(|source| {
                VolumeError::HostPath {
                    name: name.clone(),
                    source,
                }
            })?;
            out.insert(
                name,
                Volume {
                    path: PathBuf::from(path),
                    readonly: false,
                    projected: false,
                },
            );
            continue;
        }
        let Some(plugin) = plugin_of(vol) else {
            return Err(VolumeError::Unsupported { name });
        };
        let dir = pod_dir.join("volumes").join(plugin).join(&name);
        if let Some(ed) = vol.get("emptyDir").filter(|v| v.is_object()) {
            if ed["medium"] == "Memory" {
                let size = ed["sizeLimit"].as_str().and_then(parse_bytes);
                tmpfs(&dir, size, 0o777)?;
            } else if !dir.is_dir() {
                fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
                // Any user of the pod may write, as upstream's emptyDir.
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))
                    .map_err(io("chmod", &dir))?;
            }
            out.insert(
                name,
                Volume {
                    path: dir,
                    readonly: false,
                    projected: false,
                },
            );
            continue;
        }
        let payload = match project::payload(pod, vol, sources) {
            Some(p) => p.map_err(|source| VolumeError::Project {
                name: name.clone(),
                source,
            })?,
            None => return Err(VolumeError::Unsupported { name }),
        };
        if plugin == "kubernetes.io~secret" {
            tmpfs(&dir, None, 0o755)?;
        }
        atomic::write(&dir, &payload).map_err(|source| VolumeError::Write {
            name: name.clone(),
            source,
        })?;
        out.insert(
            name,
            Volume {
                path: dir,
                readonly: true,
                projected: true,
            },
        );
    }
    Ok(out)
}

/// Container `c`'s bind mounts for its `volumeMounts`. A `subPath` is created in the volume
/// when missing (a directory, as upstream) and must resolve inside it. Blocking.
pub fn mounts(c: &Value, volumes: &PodVolumes) -> Result<Vec<Mount>, VolumeError> {
    let mut out = Vec::new();
    for vm in c["volumeMounts"].as_array().into_iter().flatten() {
        let name = vm["name"].as_str().unwrap_or_default();
        let vol = volumes
            .get(name)
            .ok_or_else(|| VolumeError::NoVolume(name.to_string()))?;
        if vm["subPathExpr"].as_str().is_some_and(|s| !s.is_empty()) {
            return Err(VolumeError::SubPathExpr(name.to_string()));
        }
        let mut host = vol.path.clone();
        if let Some(sub) = vm["subPath"].as_str().filter(|s| !s.is_empty()) {
            let bad = || VolumeError::SubPath {
                name: name.to_string(),
                path: sub.to_string(),
            };
            atomic::validate_path(sub).map_err(|_| bad())?;
            let joined = vol.path.join(sub);
            let base = fs::canonicalize(&vol.path).map_err(io("resolving", &vol.path))?;
            if fs::symlink_metadata(&joined).is_err() && !vol.readonly {
                // What exists of the path must already be inside the volume, so a symlink
                // planted by a container cannot make the kubelet create directories elsewhere.
                let mut existing = joined.as_path();
                while fs::symlink_metadata(existing).is_err() {
                    existing = existing.parent().unwrap_or(&vol.path);
                }
                let real = fs::canonicalize(existing).map_err(io("resolving", existing))?;
                if !real.starts_with(&base) {
                    return Err(bad());
                }
                fs::create_dir_all(&joined).map_err(io("creating", &joined))?;
            }
            let real = fs::canonicalize(&joined).map_err(io("resolving", &joined))?;
            if !real.starts_with(&base) {
                return Err(bad());
            }
            host = real;
        }
        out.push(Mount {
            host_path: host,
            container_path: vm["mountPath"].as_str().unwrap_or_default().to_string(),
            readonly: vol.readonly || vm["readOnly"].as_bool().unwrap_or(false),
        });
    }
    Ok(out)
}

/// Mount points at or under `dir` from `/proc/self/mountinfo`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_octal)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything under `pod_dir` (tmpfs volumes) and removes it. Blocking.
pub fn teardown(pod_dir: &Path) -> Result<(), VolumeError> {
    for m in mounts_under(pod_dir) {
        nix::mount::umount2(&m, MntFlags::MNT_DETACH).map_err(|source| VolumeError::Mount {
            op: "unmounting",
            path: m.clone(),
            source,
        })?;
    }
    match fs::remove_dir_all(pod_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", pod_dir)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tmpdir() -> PathBuf {
        std::env::temp_dir().join(format!("k1s-vol-{}", uuid::Uuid::new_v4().simple()))
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape_octal(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape_octal(r"/x\04"), r"/x\04");
    }

    /// Unmounts and removes a test's directory even when the test fails.
    struct Cleanup(PathBuf);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = teardown(&self.0);
        }
    }

    /// Needs root (tmpfs mounts), which the tests have.
    #[test]
    fn setup_mounts_and_teardown() {
        let root = tmpdir();
        let _cleanup = Cleanup(root.clone());
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
            {"name": "host", "hostPath": {"path": root.join("host").to_string_lossy(), "type": "DirectoryOrCreate"}},
        ]}});
        let mut sources = Sources::default();
        sources
            .configmaps
            .insert("cfg".into(), Some(json!({"data": {"k": "v1"}})));
        sources
            .secrets
            .insert("sec".into(), Some(json!({"data": {"pw": "cHc="}})));
        let pd = root.join("pod");
        let vols = setup(&pd, &pod, &sources).unwrap();
        let mem = pd.join("volumes/kubernetes.io~empty-dir/mem");
        assert_eq!(vols["mem"].path, mem);
        assert!(is_mount_point(&mem));
        let st = nix::sys::statfs::statfs(&mem).unwrap();
        assert_eq!(st.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC);
        assert!(is_mount_point(&pd.join("volumes/kubernetes.io~secret/sec")));
        let cfg = pd.join("volumes/kubernetes.io~configmap/cfg/k");
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "v1");
        assert!(root.join("host").is_dir());
        // Idempotent; an update re-projects.
        setup(&pd, &pod, &sources).unwrap();
        sources
            .configmaps
            .insert("cfg".into(), Some(json!({"data": {"k": "v2"}})));
        setup(&pd, &pod, &sources).unwrap();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "v2");

        let c = json!({"volumeMounts": [
            {"name": "scratch", "mountPath": "/data", "subPath": "sub/dir"},
            {"name": "cfg", "mountPath": "/etc/k", "subPath": "k"},
            {"name": "mem", "mountPath": "/m", "readOnly": true},
        ]});
        let m = mounts(&c, &vols).unwrap();
        assert!(m[0].host_path.ends_with("scratch/sub/dir") && m[0].host_path.is_dir());
        assert!(!m[0].readonly);
        assert!(m[1].readonly && m[1].host_path.to_string_lossy().contains("..20"));
        assert!(m[2].readonly);
        for bad in ["../x", "/etc"] {
            let c =
                json!({"volumeMounts": [{"name": "scratch", "mountPath": "/d", "subPath": bad}]});
            assert!(mounts(&c, &vols).is_err(), "{bad}");
        }
        // A symlink out of the volume is refused.
        std::os::unix::fs::symlink("/etc", vols["scratch"].path.join("out")).unwrap();
        for sub in ["out", "out/new/dir"] {
            let c =
                json!({"volumeMounts": [{"name": "scratch", "mountPath": "/d", "subPath": sub}]});
            assert!(
                matches!(mounts(&c, &vols), Err(VolumeError::SubPath { .. })),
                "{sub}"
            );
        }
        assert!(!Path::new("/etc/new").exists());
        let c = json!({"volumeMounts": [{"name": "nope", "mountPath": "/d"}]});
        assert!(mounts(&c, &vols).is_err());

        teardown(&pd).unwrap();
        assert!(!pd.exists());
        assert!(mounts_under(&pd).is_empty());
        teardown(&pd).unwrap();
    }

    #[test]
    fn unsupported_volumes_fail() {
        let root = tmpdir();
        let pod = json!({"spec": {"volumes": [{"name": "pvc", "persistentVolumeClaim": {"claimName": "x"}}]}});
        assert!(matches!(
            setup(&root, &pod, &Sources::default()),
            Err(VolumeError::Unsupported { .. })
        ));
        let pod = json!({"spec": {"volumes": [{"name": "../x", "emptyDir": {}}]}});
        assert!(setup(&root, &pod, &Sources::default()).is_err());
        let _ = fs::remove_dir_all(root);
    }
}
