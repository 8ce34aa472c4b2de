//! Static pods: pod manifests in a directory (`<data-dir>/manifests/pods`, or
//! `--pod-manifest-path`), one pod per `.yaml`, `.yml` or `.json` file, shown in the API as
//! upstream's mirror pods.
//!
//! A mirror pod is named `NAME-NODENAME`, bound to this node, owned by the Node, and carries the
//! annotations `kubernetes.io/config.source: file`, `kubernetes.io/config.hash` and
//! `kubernetes.io/config.mirror` (both the hash of the manifest and the node). The pod worker runs
//! it like any pod bound here and mirrors its status to it.
//!
//! Reconciliation is level-triggered and runs every [`RESYNC`] (upstream re-reads the directory
//! every 20 s; k1s's reads are a directory listing, so it looks more often): a missing mirror pod
//! (also one someone deleted) is created, one whose hash differs from its file (an edited
//! manifest) is deleted and recreated once gone, and one whose file was removed is deleted. As
//! everything lives in the API, a restart of `k1s server` finds its mirror pods again.
//!
//! Differences from upstream: the pod runs *through* its mirror pod, so deleting the mirror pod
//! restarts the static pod's containers instead of leaving them running.
//!
//! Invariants: files are read with a size bound ([`MAX_MANIFEST`]) and parsed without panics;
//! an unreadable or invalid manifest is logged and skipped, never fatal; only pods carrying
//! `kubernetes.io/config.source: file` and bound to this node are ever deleted here.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k1s_apiserver::client::{Client, Gvr};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::PODS;

/// How often the directory and the mirror pods are compared.
pub const RESYNC: Duration = Duration::from_secs(2);
/// Largest manifest read; bigger files are skipped.
pub const MAX_MANIFEST: u64 = 1 << 20;
/// Annotation naming the source of a static pod.
pub const SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
/// Annotation with the hash of the manifest.
pub const HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
/// Annotation marking a mirror pod (its value is the hash too).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const NODES: Gvr = Gvr::new("", "v1", "nodes");

/// Why a manifest was skipped.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: larger than 1 MiB")]
    TooLarge(PathBuf),
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// FNV-1a 64: a stable hash (std's hasher may change between builds; the hash must not).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Reads one manifest file into a pod object.
pub fn read_manifest(path: &Path) -> Result<Value, ManifestError> {
    let io = |source| ManifestError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(ManifestError::TooLarge(path.to_owned()));
    }
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        k1s_apiserver::body::decode_json(&bytes)
    } else {
        k1s_apiserver::body::decode_yaml(&bytes)
    };
    let pod = parsed.map_err(|e| ManifestError::Parse {
        path: path.to_owned(),
        message: e.message,
    })?;
    let kind = pod.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = pod.pointer("/metadata/name").and_then(Value::as_str);
    if kind != "Pod" || name.is_none_or(str::is_empty) || !pod["spec"].is_object() {
        return Err(ManifestError::Parse {
            path: path.to_owned(),
            message: "not a Pod with a name and a spec".into(),
        });
    }
    Ok(pod)
}

/// The manifests of `dir` (hidden files and other extensions ignored), sorted by file name.
pub fn read_dir(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or(".");
            !name.starts_with('.')
                && p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                && p.is_file()
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| match read_manifest(p) {
            Ok(pod) => Some(pod),
            Err(e) => {
                tracing::warn!(error = %e, "skipping static pod manifest");
                None
            }
        })
        .collect()
}

/// The mirror pod of manifest `pod` on node `node` (`node_uid` for the ownerReference).
pub fn mirror_pod(pod: &Value, node: &str, node_uid: &str) -> Value {
    let mut m = pod.clone();
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let hash = format!(
        "{:016x}",
        fnv1a(format!("{node}\n{}", serde_json::to_string(pod).unwrap_or_default()).as_bytes())
    );
    let meta = &mut m["metadata"];
    meta["name"] = json!(format!("{name}-{node}"));
    if meta["namespace"].as_str().is_none_or(str::is_empty) {
        meta["namespace"] = json!("default");
    }
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    meta["annotations"][SOURCE_ANNOTATION] = json!("file");
    meta["annotations"][HASH_ANNOTATION] = json!(hash);
    meta["annotations"][MIRROR_ANNOTATION] = json!(hash);
    meta["ownerReferences"] = json!([{
        "apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid, "controller": true,
    }]);
    m["spec"]["nodeName"] = json!(node);
    if let Some(obj) = m.as_object_mut() {
        obj.remove("status");
    }
    m
}

fn is_ours(pod: &Value, node: &str) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(SOURCE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("file")
        && pod["spec"]["nodeName"].as_str() == Some(node)
}

fn key(pod: &Value) -> (String, String) {
    let s = |p: &str| {
        pod.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (s("/metadata/namespace"), s("/metadata/name"))
}

/// One comparison of the directory with the mirror pods.
pub async fn reconcile(client: &Client, dir: &Path, node: &str) {
    let Ok(Some(node_obj)) = client.get(NODES, None, node).await else {
        return; // The Node is registered first; until then there is nothing to own the pods.
    };
    let node_uid = node_obj["metadata"]["uid"].as_str().unwrap_or("");
    let dir = dir.to_owned();
    let manifests = tokio::task::spawn_blocking(move || read_dir(&dir))
        .await
        .unwrap_or_default();
    let mut want: HashMap<(String, String), Value> = manifests
        .iter()
        .map(|p| mirror_pod(p, node, node_uid))
        .map(|m| (key(&m), m))
        .collect();
    let Ok((pods, _)) = client.list(PODS, None, None).await else {
        return;
    };
    for pod in pods.iter().filter(|p| is_ours(p, node)) {
        let k = key(pod);
        let terminating = pod["metadata"]["deletionTimestamp"].is_string();
        let hash = |p: &Value| p["metadata"]["annotations"][HASH_ANNOTATION].clone();
        match want.get(&k) {
            Some(m) if hash(m) == hash(pod) => {
                want.remove(&k);
            }
            // Changed or removed: delete (gracefully, the worker stops it); an edited one is
            // created again once this one is gone.
            _ => {
                want.remove(&k);
                if !terminating {
                    tracing::info!(pod = %k.1, "static pod changed or removed: deleting its mirror pod");
                    if let Err(e) = client.delete(PODS, Some(&k.0), &k.1, None).await {
                        tracing::warn!(pod = %k.1, error = %e.message, "deleting a mirror pod failed");
                    }
                }
            }
        }
    }
    for ((ns, name), m) in want {
        match client.create(PODS, Some(&ns), &m).await {
            Ok(_) => tracing::info!(pod = %name, "created mirror pod for a static pod"),
            Err(e) if e.code == 409 => {}
            Err(e) => {
                tracing::warn!(pod = %name, error = %e.message, "creating a mirror pod failed")
            }
        }
    }
}

/// Keeps the mirror pods in step with `dir` until `shutdown`.
pub async fn run(client: Client, dir: PathBuf, node: String, shutdown: CancellationToken) {
    loop {
        reconcile(&client, &dir, &node).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_and_mirrors() {
        let tmp = std::env::temp_dir().join(format!("k1s-static-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(
            tmp.join("web.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: x}]\n",
        )
        .unwrap();
        std::fs::write(
            tmp.join("db.json"),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db","namespace":"kube-system"},"spec":{"containers":[]}}"#,
        )
        .unwrap();
        std::fs::write(tmp.join(".hidden.yaml"), "kind: Pod").unwrap();
        std::fs::write(tmp.join("notes.txt"), "x").unwrap();
        std::fs::write(tmp.join("bad.yaml"), "kind: [").unwrap();
        std::fs::write(tmp.join("svc.yaml"), "kind: Service\nmetadata: {name: s}\n").unwrap();
        let pods = read_dir(&tmp);
        let names: Vec<_> = pods.iter().map(|p| p["metadata"]["name"].clone()).collect();
        assert_eq!(names, [json!("db"), json!("web")]);

        let m = mirror_pod(&pods[1], "node1", "nu");
        assert_eq!(m["metadata"]["name"], "web-node1");
        assert_eq!(m["metadata"]["namespace"], "default");
        assert_eq!(m["spec"]["nodeName"], "node1");
        assert_eq!(m["metadata"]["ownerReferences"][0]["uid"], "nu");
        let a = &m["metadata"]["annotations"];
        assert_eq!(a[SOURCE_ANNOTATION], "file");
        assert_eq!(a[HASH_ANNOTATION], a[MIRROR_ANNOTATION]);
        assert!(is_ours(&m, "node1") && !is_ours(&m, "node2"));
        // Same manifest, same hash; an edit changes it.
        assert_eq!(mirror_pod(&pods[1], "node1", "nu"), m);
        let mut edited = pods[1].clone();
        edited["spec"]["containers"][0]["image"] = json!("y");
        assert_ne!(
            mirror_pod(&edited, "node1", "nu")["metadata"]["annotations"][HASH_ANNOTATION],
            a[HASH_ANNOTATION]
        );
        std::fs::write(
            tmp.join("huge.yaml"),
            vec![b' '; (MAX_MANIFEST + 1) as usize],
        )
        .unwrap();
        assert!(matches!(
            read_manifest(&tmp.join("huge.yaml")),
            Err(ManifestError::TooLarge(_))
        ));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
