//! The token half of upstream's ServiceAccount admission plugin, run on pod creation.
//!
//! Unless `automountServiceAccountToken` is false on the pod or on its ServiceAccount, the pod
//! gets a `kube-api-access-XXXXX` projected volume (a bound token that the kubelet refreshes, the
//! cluster CA from `kube-root-ca.crt`, the namespace) mounted read-only at [`MOUNT_PATH`] in every
//! container and init container that has nothing mounted there yet. Mirror pods of static pods are
//! left alone, as upstream. A pod that already has such a volume is not given a second one.

use serde_json::{Value, json};

use crate::state::AppState;

/// Where in-cluster clients look for the token, CA and namespace.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Prefix of the generated volume's name.
pub const VOLUME_PREFIX: &str = "kube-api-access-";
/// Token lifetime the volume asks for (upstream's 1 h + 7 s, which the kubelet recognises).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// Annotation that marks a mirror pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Adds the token volume and mounts to a pod being created in `namespace`.
pub fn admit_pod(state: &AppState, namespace: &str, pod: &mut Value) {
    if pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(MIRROR_ANNOTATION))
        .is_some()
    {
        return;
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let sa_name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let automount = match spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        Some(b) => b,
        None => super::request::load(state, "serviceaccounts", Some(namespace), &sa_name)
            .ok()
            .flatten()
            .and_then(|sa| {
                sa.get("automountServiceAccountToken")
                    .and_then(Value::as_bool)
            })
            .unwrap_or(true),
    };
    if !automount {
        return;
    }
    add_volume(spec, &crate::rest::random_suffix());
}

/// The volume and mounts, given the random suffix (split out for tests).
fn add_volume(spec: &mut serde_json::Map<String, Value>, suffix: &str) {
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    let Some(volumes) = volumes.as_array_mut() else {
        return;
    };
    let existing = volumes.iter().find_map(|v| {
        v.get("name")
            .and_then(Value::as_str)
            .filter(|n| n.starts_with(VOLUME_PREFIX))
            .map(str::to_string)
    });
    let name = match existing {
        Some(n) => n,
        None => {
            let name = format!("{VOLUME_PREFIX}{suffix}");
            volumes.push(volume(&name));
            name
        }
    };
    for key in ["initContainers", "containers"] {
        let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in list.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            if mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH))
            {
                continue;
            }
            mounts.push(json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH}));
        }
    }
}

fn volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_and_mounts() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "own", "mountPath": MOUNT_PATH}]}],
        }});
        let spec = pod["spec"].as_object_mut().unwrap();
        add_volume(spec, "abcde");
        assert_eq!(pod["spec"]["volumes"][0]["name"], "kube-api-access-abcde");
        let src = &pod["spec"]["volumes"][0]["projected"]["sources"];
        assert_eq!(src[0]["serviceAccountToken"]["expirationSeconds"], 3607);
        assert_eq!(src[1]["configMap"]["name"], "kube-root-ca.crt");
        let m = |c: &Value| c["volumeMounts"].as_array().unwrap().clone();
        assert_eq!(
            m(&pod["spec"]["initContainers"][0])[0]["mountPath"],
            MOUNT_PATH
        );
        assert_eq!(m(&pod["spec"]["containers"][0])[0]["readOnly"], true);
        // The container with its own mount there is left alone.
        assert_eq!(m(&pod["spec"]["containers"][1]).len(), 1);
        // Running twice adds nothing.
        let once = pod.clone();
        add_volume(pod["spec"].as_object_mut().unwrap(), "zzzzz");
        assert_eq!(once, pod);
    }
}
