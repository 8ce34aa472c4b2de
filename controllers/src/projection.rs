//! What an informer keeps of each object: the fields some controller reads, nothing else.
//!
//! Caches hold every object of a resource for the life of the server, so their size is the
//! control plane's memory per object. A stored pod is several KiB of JSON (managedFields, the
//! defaulted spec, volumes, tolerations, container statuses), and a `serde_json::Value` tree of it
//! is several times larger; the controllers read a small part of it.
//!
//! Invariants:
//! - every cached object keeps `apiVersion`, `kind` and `metadata` except `managedFields` (which
//!   no controller reads; a PUT without them keeps the stored ones);
//! - a trimmed kind ([`PODS`], and the kinds only the garbage collector reads) is never written
//!   back whole from the cache: controllers change such objects with merge patches pinned to the
//!   cached `resourceVersion`;
//! - a field added to the pod projection must be added here and nowhere else; the list below
//!   names the readers so a controller that starts reading a new pod field adds it here.

use k1s_apiserver::client::Gvr;
use serde_json::{Map, Value};

/// Pods: trimmed to what the ReplicaSet (ranking, readiness, availability), endpoints (addresses,
/// named ports, hostname) and garbage collector (metadata) controllers read.
const PODS: (&str, &str) = ("", "pods");

/// Kinds only the garbage collector caches: it reads metadata (uid, owners, finalizers, deletion)
/// plus `apiVersion` and `kind`.
const METADATA_ONLY: &[(&str, &str)] = &[
    ("", "events"),
    ("", "secrets"),
    ("", "limitranges"),
    ("", "resourcequotas"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("coordination.k8s.io", "leases"),
];

/// The metadata the garbage collector reads (identity, owners, finalizers, deletion).
const GC_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "ownerReferences",
    "finalizers",
    "deletionTimestamp",
];

/// The pod metadata the ReplicaSet, endpoints and garbage collector read: the garbage
/// collector's plus labels (selectors) and creationTimestamp (ranking).
const POD_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "ownerReferences",
    "finalizers",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "creationTimestamp",
];

/// Trims `obj` to what the controllers read of a `gvr` object (see the module invariants).
pub fn project(gvr: Gvr, mut obj: Value) -> Value {
    let key = (gvr.group, gvr.plural);
    if key == PODS {
        return pod(obj);
    }
    if METADATA_ONLY.contains(&key) {
        let mut out = metadata_only(obj);
        out["metadata"] = pick(&mut out["metadata"], GC_METADATA);
        return out;
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    obj
}

/// `apiVersion`, `kind` and `metadata` without managedFields.
fn metadata_only(mut obj: Value) -> Value {
    let mut out = Map::new();
    for field in ["apiVersion", "kind", "metadata"] {
        if let Some(v) = obj.get_mut(field).map(Value::take) {
            out.insert(field.to_string(), v);
        }
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    Value::Object(out)
}

/// Copies the listed fields of `from` (those present) into a new object.
fn pick(from: &mut Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = from.get_mut(*f).map(Value::take)
            && !v.is_null()
        {
            out.insert((*f).to_string(), v);
        }
    }
    Value::Object(out)
}

/// Container fields kept: the endpoints controller's (`name`, `ports`), the scheduler's
/// (`resources`, and `restartPolicy` of init containers) and the node simulator's (`image`,
/// `readinessProbe`).
const POD_CONTAINER: &[&str] = &[
    "name",
    "ports",
    "image",
    "readinessProbe",
    "restartPolicy",
    "resources",
];

/// Spec fields kept besides containers: placement (`nodeName` and what the scheduler filters on),
/// DNS (`hostname`, `subdomain`).
const POD_SPEC: &[&str] = &[
    "nodeName",
    "hostname",
    "subdomain",
    "schedulerName",
    "schedulingGates",
    "nodeSelector",
    "tolerations",
    "overhead",
];

/// Condition fields kept: what the ReplicaSet controller reads of `Ready` and what the node
/// simulator's next report carries over for every condition.
const POD_CONDITION: &[&str] = &["type", "status", "lastTransitionTime", "reason", "message"];

/// Container status fields kept: `restartCount` (ReplicaSet ranking) and what the node
/// simulator carries over (ids, readiness, state).
const POD_CONTAINER_STATUS: &[&str] = &["name", "containerID", "ready", "state", "restartCount"];

/// The pod projection, one for every in-process reader (controllers, scheduler, node simulator):
/// [`POD_METADATA`]; [`POD_SPEC`], `affinity.nodeAffinity` and each (init) container's
/// [`POD_CONTAINER`]; `status.phase`, `podIP`, `podIPs`, `startTime`, the conditions'
/// [`POD_CONDITION`] and the (init) container statuses' [`POD_CONTAINER_STATUS`].
fn pod(mut obj: Value) -> Value {
    let mut spec = obj.get_mut("spec").map(Value::take).unwrap_or_default();
    let mut status = obj.get_mut("status").map(Value::take).unwrap_or_default();
    let mut out = metadata_only(obj);
    out["metadata"] = pick(&mut out["metadata"], POD_METADATA);
    let mut kept_spec = pick(&mut spec, POD_SPEC);
    if let Some(na) = spec
        .get_mut("affinity")
        .and_then(|a| a.get_mut("nodeAffinity"))
        .map(Value::take)
        .filter(|na| !na.is_null())
    {
        kept_spec["affinity"] = serde_json::json!({ "nodeAffinity": na });
    }
    for field in ["containers", "initContainers"] {
        if let Some(cs) = pick_each(&mut spec, field, POD_CONTAINER) {
            kept_spec[field] = cs;
        }
    }
    let mut kept_status = pick(&mut status, &["phase", "podIP", "podIPs", "startTime"]);
    for (field, keep) in [
        ("conditions", POD_CONDITION),
        ("containerStatuses", POD_CONTAINER_STATUS),
        ("initContainerStatuses", POD_CONTAINER_STATUS),
    ] {
        if let Some(v) = pick_each(&mut status, field, keep) {
            kept_status[field] = v;
        }
    }
    if let Some(o) = out.as_object_mut() {
        o.insert("spec".into(), kept_spec);
        o.insert("status".into(), kept_status);
    }
    out
}

/// [`pick`] applied to every element of the list field `field` of `from`, if it is a list.
fn pick_each(from: &mut Value, field: &str, fields: &[&str]) -> Option<Value> {
    let items = from.get_mut(field)?.as_array_mut()?;
    Some(Value::Array(
        items.iter_mut().map(|i| pick(i, fields)).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "b"},
                         "generateName": "p-", "annotations": {"x": "y"},
                         "ownerReferences": [{"uid": "o", "controller": true}],
                         "managedFields": [{"manager": "x"}], "resourceVersion": "5"},
            "spec": {"nodeName": "n1", "hostname": "h", "volumes": [{"name": "v"}],
                     "tolerations": [{"key": "k"}],
                     "containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 80}],
                                     "env": [{"name": "E", "value": "x"}]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
                       "conditions": [{"type": "Initialized", "status": "True"},
                                      {"type": "Ready", "status": "True", "lastProbeTime": null,
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                       "qosClass": "Burstable",
                       "containerStatuses": [{"name": "c", "ready": true, "restartCount": 2, "image": "i",
                                              "state": {"running": {}}}]}
        })
    }

    #[test]
    fn pods_keep_what_controllers_read() {
        let p = project(Gvr::new("", "v1", "pods"), full_pod());
        assert_eq!(
            p,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "b"},
                             "ownerReferences": [{"uid": "o", "controller": true}], "resourceVersion": "5"},
                "spec": {"nodeName": "n1", "hostname": "h", "tolerations": [{"key": "k"}],
                         "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}],
                                         "image": "i"}]},
                "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
                           "conditions": [{"type": "Initialized", "status": "True"},
                                          {"type": "Ready", "status": "True",
                                           "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                           "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}},
                                                  "restartCount": 2}]}
            })
        );
    }

    #[test]
    fn gc_only_kinds_keep_metadata_and_others_lose_managed_fields() {
        let ev = json!({"apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": "e", "managedFields": [], "creationTimestamp": "t"},
                        "message": "m", "involvedObject": {"name": "p"}});
        assert_eq!(
            project(Gvr::new("", "v1", "events"), ev),
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}})
        );
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "c", "managedFields": []}, "data": {"k": "v"}});
        assert_eq!(
            project(Gvr::new("", "v1", "configmaps"), cm),
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
        );
    }
}
