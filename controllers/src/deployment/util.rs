//! Deployment bookkeeping shared by the rollout strategies: annotations, revisions, the pod template
//! hash, and finding the ReplicaSet that runs the current template.

use std::collections::BTreeMap;

use k1s_apimachinery::meta;
use serde_json::{Map, Value};

/// Label (and RS name suffix) telling ReplicaSets of one Deployment apart.
pub const HASH_LABEL: &str = "pod-template-hash";
/// Revision of a ReplicaSet's template; the Deployment carries its current one.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a reused ReplicaSet had, comma separated.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when it last scaled this ReplicaSet.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` of the Deployment when it last scaled this ReplicaSet.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Deployment annotations never copied to its ReplicaSets.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// `spec.replicas` of a Deployment or ReplicaSet.
pub fn replicas(obj: &Value) -> i32 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1) as i32
}

/// A counter in `status` (absent means zero).
pub fn status_count(obj: &Value, field: &str) -> i32 {
    obj["status"][field].as_i64().unwrap_or(0) as i32
}

/// The revision annotation as a number (0 when absent or malformed).
pub fn revision(obj: &Value) -> i64 {
    meta::annotation(obj, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// An integer annotation.
pub fn int_annotation(obj: &Value, key: &str) -> Option<i32> {
    meta::annotation(obj, key)?.parse().ok()
}

/// The template with the pod-template-hash label removed, for comparing templates.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.shift_remove(HASH_LABEL);
        if labels.is_empty()
            && let Some(m) = t["metadata"].as_object_mut()
        {
            m.remove("labels");
        }
    }
    if let Some(m) = t["metadata"].as_object_mut() {
        // `creationTimestamp: null` in a template means nothing.
        if m.get("creationTimestamp").is_some_and(Value::is_null) {
            m.remove("creationTimestamp");
        }
        if m.is_empty()
            && let Some(o) = t.as_object_mut()
        {
            o.remove("metadata");
        }
    }
    t
}

/// Whether two pod templates are equal apart from the pod-template-hash label.
pub fn templates_equal(a: &Value, b: &Value) -> bool {
    without_hash(a) == without_hash(b)
}

/// A short, stable hash of a pod template (and the collision count), made only of characters that
/// cannot spell words, as upstream does, so it can end a name and be a label value.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut canonical = String::new();
    write_canonical(&without_hash(template), &mut canonical);
    if let Some(c) = collision_count {
        canonical.push_str(&format!("#{c}"));
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in canonical.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|d| SAFE[usize::from(d) % SAFE.len()] as char)
        .collect()
}

/// JSON with object keys sorted, so equal values always hash equally.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The ReplicaSet running the Deployment's current template: the oldest of those that match, as
/// upstream picks. `rss` must be the Deployment's own ReplicaSets.
pub fn find_new(d: &Value, rss: &[Value]) -> Option<usize> {
    let mut idx: Vec<usize> = (0..rss.len())
        .filter(|&i| templates_equal(&rss[i]["spec"]["template"], &d["spec"]["template"]))
        .collect();
    idx.sort_by(|&a, &b| older_first(&rss[a], &rss[b]));
    idx.first().copied()
}

/// Orders objects by creation time, then name.
pub fn older_first(a: &Value, b: &Value) -> std::cmp::Ordering {
    let t = |o: &Value| meta::creation_timestamp(o).and_then(meta::parse_rfc3339);
    t(a).cmp(&t(b))
        .then_with(|| meta::name(a).cmp(&meta::name(b)))
}

/// Copies the Deployment's annotations onto a ReplicaSet and gives it `new_revision` if it has an
/// older one (remembering the old one in the revision history). Returns whether anything changed.
/// A ReplicaSet about to be created (`exists == false`) also gets the replica annotations.
pub fn set_new_rs_annotations(
    d: &Value,
    rs: &mut Value,
    new_revision: i64,
    exists: bool,
    max_surge: i32,
) -> bool {
    let mut annotations = meta::annotations(rs);
    let before = annotations.clone();
    for (k, v) in meta::annotations(d) {
        if !NOT_COPIED.contains(&k.as_str()) {
            annotations.insert(k, v);
        }
    }
    let old = annotations.get(REVISION).cloned();
    let old_num = old
        .as_deref()
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0);
    if old_num < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = match annotations.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old,
            };
            annotations.insert(REVISION_HISTORY.into(), history);
        }
    }
    if !exists {
        let r = replicas(d);
        annotations.insert(DESIRED_REPLICAS.into(), r.to_string());
        annotations.insert(MAX_REPLICAS.into(), (r + max_surge).to_string());
    }
    if annotations == before {
        return false;
    }
    meta::set_annotations(rs, &annotations);
    true
}

/// Sets the replica annotations; returns whether they changed.
pub fn set_replicas_annotations(rs: &mut Value, desired: i32, max: i32) -> bool {
    let changed = int_annotation(rs, DESIRED_REPLICAS) != Some(desired)
        || int_annotation(rs, MAX_REPLICAS) != Some(max);
    if changed {
        meta::set_annotation(rs, DESIRED_REPLICAS, Some(&desired.to_string()));
        meta::set_annotation(rs, MAX_REPLICAS, Some(&max.to_string()));
    }
    changed
}

/// Adds `HASH_LABEL=hash` to a labels object (creating it).
pub fn add_hash_label(labels: Option<&Value>, hash: &str) -> Value {
    let mut m = labels
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    m.insert(HASH_LABEL.into(), Value::from(hash));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_is_stable_short_and_ignores_key_order_and_its_own_label() {
        let a = json!({"metadata": {"labels": {"app": "web", "tier": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let b = json!({"spec": {"containers": [{"image": "nginx", "name": "c"}]}, "metadata": {"labels": {"tier": "x", "app": "web", HASH_LABEL: "zzz"}}});
        let h = template_hash(&a, None);
        assert_eq!(h, template_hash(&b, None));
        assert!(h.len() <= 10 && !h.is_empty());
        assert!(
            h.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(h, template_hash(&a, Some(1)));
        let c = json!({"metadata": {"labels": {"app": "web", "tier": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
        assert_ne!(h, template_hash(&c, None));
        assert!(templates_equal(&a, &b));
        assert!(!templates_equal(&a, &c));
    }

    #[test]
    fn new_rs_annotations_bump_revision_and_keep_history() {
        let d = json!({"metadata": {"annotations": {"kubernetes.io/change-cause": "v2", REVISION: "2"}}, "spec": {"replicas": 3}});
        let mut rs = json!({"metadata": {"annotations": {REVISION: "1"}}});
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true, 1));
        assert_eq!(meta::annotation(&rs, REVISION), Some("3"));
        assert_eq!(meta::annotation(&rs, REVISION_HISTORY), Some("1"));
        assert_eq!(
            meta::annotation(&rs, "kubernetes.io/change-cause"),
            Some("v2")
        );
        assert!(!set_new_rs_annotations(&d, &mut rs, 3, true, 1));
        let mut fresh = json!({"metadata": {}});
        assert!(set_new_rs_annotations(&d, &mut fresh, 1, false, 1));
        assert_eq!(meta::annotation(&fresh, DESIRED_REPLICAS), Some("3"));
        assert_eq!(meta::annotation(&fresh, MAX_REPLICAS), Some("4"));
        assert_eq!(meta::annotation(&fresh, REVISION_HISTORY), None);
    }
}
