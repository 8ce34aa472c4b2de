//! Per-kind behaviour on top of the generic REST path: defaults, status handling, generation, validation.
//!
//! Mirrors upstream's `PrepareForCreate` / `PrepareForUpdate` / `Validate` strategy methods:
//! - on create, status is reset for kinds with a status subresource and `generation` starts at 1;
//! - on an update of the main resource, status changes are ignored; on a status update, everything but
//!   status (and metadata the status writer may touch) is ignored;
//! - `generation` bumps only when something other than metadata and status changed.

pub mod custom;
pub mod defaults;
pub mod validate;

use serde_json::{Value, json};

use crate::resources::{Resource, StrategyKind};

/// Whether writes to the main resource ignore `status` (the resource has a status subresource).
pub fn has_status(res: &Resource) -> bool {
    res.subresources.iter().any(|s| s == "status")
}

/// Whether `metadata.generation` is tracked for this kind.
pub fn has_generation(res: &Resource) -> bool {
    use StrategyKind as S;
    matches!(
        res.strategy,
        S::Deployment
            | S::ReplicaSet
            | S::StatefulSet
            | S::DaemonSet
            | S::PodDisruptionBudget
            | S::Crd
            | S::Custom
    )
}

/// Prepares a new object: defaults, initial status, generation.
pub fn prepare_create(res: &Resource, obj: &mut Value) {
    if has_status(res)
        && res.strategy != StrategyKind::Node
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    defaults::apply(res.strategy, obj);
    if has_generation(res) {
        obj["metadata"]["generation"] = json!(1);
    }
    match res.strategy {
        StrategyKind::Pod => {
            let qos = defaults::qos_class(&obj["spec"]);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        StrategyKind::Namespace => {
            obj["status"] = json!({"phase": "Active"});
            let spec = obj
                .get("spec")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if !spec.contains_key("finalizers") {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        StrategyKind::Service => obj["status"] = json!({"loadBalancer": {}}),
        StrategyKind::Deployment
        | StrategyKind::ReplicaSet
        | StrategyKind::StatefulSet
        | StrategyKind::DaemonSet => {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        StrategyKind::Crd => {
            obj["status"] = json!({"storedVersions": []});
            crate::crd::set_status(obj, &k1s_apimachinery::meta::now_rfc3339());
        }
        _ => {}
    }
}

/// Fields of an object that are neither metadata nor status: a change here bumps `generation`.
fn spec_part(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    copy
}

/// Sets `obj[key]` to `value`, or removes the key when there is none.
fn set_or_remove(obj: &mut Value, key: &str, value: Option<Value>) {
    match value {
        Some(v) => obj[key] = v,
        None => {
            if let Some(m) = obj.as_object_mut() {
                m.remove(key);
            }
        }
    }
}

/// Prepares an update of the main resource (`subresource` None) or a subresource (`status`,
/// `ephemeralcontainers`).
pub fn prepare_update(res: &Resource, new: &mut Value, old: &Value, subresource: Option<&str>) {
    match subresource {
        Some("ephemeralcontainers") => {
            // Only `spec.ephemeralContainers` changes through this subresource.
            let ephemeral = new.pointer("/spec/ephemeralContainers").cloned();
            let rv = new.pointer("/metadata/resourceVersion").cloned();
            *new = old.clone();
            set_or_remove(&mut new["spec"], "ephemeralContainers", ephemeral);
            if let Some(rv) = rv {
                new["metadata"]["resourceVersion"] = rv;
            }
            defaults::apply(res.strategy, new);
        }
        Some("status") => {
            // A status write changes only status (and metadata the controller may set).
            let status = new.get("status").cloned();
            let meta = new.get("metadata").cloned();
            *new = old.clone();
            set_or_remove(new, "status", status);
            if let Some(meta) = meta {
                for key in [
                    "labels",
                    "annotations",
                    "ownerReferences",
                    "finalizers",
                    "resourceVersion",
                ] {
                    set_or_remove(&mut new["metadata"], key, meta.get(key).cloned());
                }
            }
        }
        _ => {
            if has_status(res) && res.strategy != StrategyKind::Namespace {
                set_or_remove(new, "status", old.get("status").cloned());
            }
            if res.strategy == StrategyKind::Pod && new["spec"].is_object() {
                // Ephemeral containers are added only through their subresource.
                let kept = old.pointer("/spec/ephemeralContainers").cloned();
                set_or_remove(&mut new["spec"], "ephemeralContainers", kept);
            }
            if res.strategy == StrategyKind::Namespace {
                // Namespace status and spec.finalizers change only through their subresources.
                new["status"] = old["status"].clone();
                new["spec"] = old["spec"].clone();
            }
            defaults::apply(res.strategy, new);
            if res.strategy == StrategyKind::Crd {
                crate::crd::set_status(new, &k1s_apimachinery::meta::now_rfc3339());
            }
        }
    }
    // Immutable metadata.
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old["metadata"].get(key) {
            Some(v) => new["metadata"][key] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(key);
                }
            }
        }
    }
    if has_generation(res) && subresource != Some("status") && spec_part(old) != spec_part(new) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        new["metadata"]["generation"] = json!(generation);
    }
    // A pod being deleted cannot get new finalizers that would keep it forever; nothing else to do.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{ResourceTable, builtin};

    fn deploy() -> std::sync::Arc<Resource> {
        ResourceTable::new(builtin())
            .get("apps", "v1", "deployments")
            .unwrap()
    }

    fn obj(replicas: i64, status: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "u1", "generation": 3, "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": status}
        })
    }

    #[test]
    fn main_update_ignores_status_and_bumps_generation_on_spec_change() {
        let res = deploy();
        let mut old = obj(1, 1);
        defaults::apply(res.strategy, &mut old);
        let mut new = obj(2, 7);
        prepare_update(&res, &mut new, &old, None);
        assert_eq!(new["status"]["replicas"], 1);
        assert_eq!(new["metadata"]["generation"], 4);
        let mut same = obj(1, 9);
        prepare_update(&res, &mut same, &old, None);
        assert_eq!(same["metadata"]["generation"], 3);
    }

    #[test]
    fn status_update_ignores_spec() {
        let res = deploy();
        let old = obj(1, 1);
        let mut new = obj(5, 2);
        prepare_update(&res, &mut new, &old, Some("status"));
        assert_eq!(new["spec"]["replicas"], 1);
        assert_eq!(new["status"]["replicas"], 2);
        assert_eq!(new["metadata"]["generation"], 3);
    }

    #[test]
    fn create_resets_status_and_sets_generation() {
        let res = deploy();
        let mut o = obj(1, 5);
        prepare_create(&res, &mut o);
        assert!(o.get("status").is_none());
        assert_eq!(o["metadata"]["generation"], 1);
    }
}
