//! Accessors for `metadata` on objects held as `serde_json::Value`.
//!
//! Invariants:
//! - getters never panic and return `None`/empty for missing or mistyped fields;
//! - setters create `metadata` (and the map they write into) when absent, and turn a non-object
//!   `metadata` into an object, so a setter always succeeds on an object;
//! - setters on a non-object `Value` are no-ops;
//! - timestamps are UTC RFC 3339 with a `Z` suffix, seconds precision for `metav1.Time` and
//!   microseconds for `metav1.MicroTime`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj)?.get(key)?.as_str()
}

/// Mutable `metadata`, created when missing. `None` if `obj` is not an object.
pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let o = obj.as_object_mut()?;
    let m = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut()
}

fn set_meta(obj: &mut Value, key: &str, v: Option<Value>) {
    if let Some(m) = meta_mut(obj) {
        match v {
            Some(v) => {
                m.insert(key.to_string(), v);
            }
            None => {
                m.shift_remove(key);
            }
        }
    }
}

/// `metadata.name`.
pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name")
}
/// `metadata.generateName`.
pub fn generate_name(obj: &Value) -> Option<&str> {
    meta_str(obj, "generateName")
}
/// `metadata.namespace`.
pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace")
}
/// `metadata.uid`.
pub fn uid(obj: &Value) -> Option<&str> {
    meta_str(obj, "uid")
}
/// `metadata.resourceVersion`.
pub fn resource_version(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion")
}
/// `metadata.creationTimestamp`.
pub fn creation_timestamp(obj: &Value) -> Option<&str> {
    meta_str(obj, "creationTimestamp")
}
/// `metadata.deletionTimestamp`.
pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    meta_str(obj, "deletionTimestamp")
}
/// `metadata.generation` (0 when absent).
pub fn generation(obj: &Value) -> i64 {
    meta(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}
/// `metadata.deletionGracePeriodSeconds`.
pub fn deletion_grace_period_seconds(obj: &Value) -> Option<i64> {
    meta(obj)?.get("deletionGracePeriodSeconds")?.as_i64()
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.labels` as an owned sorted map (non-string values are skipped).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(meta(obj).and_then(|m| m.get("labels")))
}
/// `metadata.labels` as the raw JSON map, if present.
pub fn labels_map(obj: &Value) -> Option<&Map<String, Value>> {
    meta(obj)?.get("labels")?.as_object()
}
/// `metadata.annotations` as an owned sorted map.
pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(meta(obj).and_then(|m| m.get("annotations")))
}
/// One annotation.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj)?.get("annotations")?.get(key)?.as_str()
}
/// One label.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj)?.get("labels")?.get(key)?.as_str()
}
/// `metadata.finalizers` (string entries only).
pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
/// `metadata.ownerReferences` (object entries only).
pub fn owner_references(obj: &Value) -> Vec<&Map<String, Value>> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}
/// The owner reference with `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Map<String, Value>> {
    owner_references(obj)
        .into_iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// Sets `metadata.name`.
pub fn set_name(obj: &mut Value, v: &str) {
    set_meta(obj, "name", Some(Value::from(v)));
}
/// Sets `metadata.namespace`.
pub fn set_namespace(obj: &mut Value, v: &str) {
    set_meta(obj, "namespace", Some(Value::from(v)));
}
/// Sets `metadata.uid`.
pub fn set_uid(obj: &mut Value, v: &str) {
    set_meta(obj, "uid", Some(Value::from(v)));
}
/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, v: &str) {
    set_meta(obj, "resourceVersion", Some(Value::from(v)));
}
/// Sets `metadata.creationTimestamp`.
pub fn set_creation_timestamp(obj: &mut Value, v: &str) {
    set_meta(obj, "creationTimestamp", Some(Value::from(v)));
}
/// Sets or clears `metadata.deletionTimestamp`.
pub fn set_deletion_timestamp(obj: &mut Value, v: Option<&str>) {
    set_meta(obj, "deletionTimestamp", v.map(Value::from));
}
/// Sets or clears `metadata.deletionGracePeriodSeconds`.
pub fn set_deletion_grace_period_seconds(obj: &mut Value, v: Option<i64>) {
    set_meta(obj, "deletionGracePeriodSeconds", v.map(Value::from));
}
/// Sets `metadata.generation`.
pub fn set_generation(obj: &mut Value, v: i64) {
    set_meta(obj, "generation", Some(Value::from(v)));
}
fn map_value(m: &BTreeMap<String, String>) -> Option<Value> {
    (!m.is_empty()).then(|| {
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        )
    })
}
/// Replaces `metadata.labels` (removed when empty).
pub fn set_labels(obj: &mut Value, m: &BTreeMap<String, String>) {
    set_meta(obj, "labels", map_value(m));
}
/// Replaces `metadata.annotations` (removed when empty).
pub fn set_annotations(obj: &mut Value, m: &BTreeMap<String, String>) {
    set_meta(obj, "annotations", map_value(m));
}
fn set_in_map(obj: &mut Value, map: &str, key: &str, v: Option<&str>) {
    let Some(m) = meta_mut(obj) else { return };
    match v {
        Some(v) => {
            let e = m.entry(map).or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            if let Some(o) = e.as_object_mut() {
                o.insert(key.to_string(), Value::from(v));
            }
        }
        None => {
            if let Some(o) = m.get_mut(map).and_then(Value::as_object_mut) {
                o.shift_remove(key);
            }
        }
    }
}
/// Sets (Some) or removes (None) one label.
pub fn set_label(obj: &mut Value, key: &str, v: Option<&str>) {
    set_in_map(obj, "labels", key, v);
}
/// Sets (Some) or removes (None) one annotation.
pub fn set_annotation(obj: &mut Value, key: &str, v: Option<&str>) {
    set_in_map(obj, "annotations", key, v);
}
/// Replaces `metadata.finalizers` (removed when empty).
pub fn set_finalizers(obj: &mut Value, f: &[String]) {
    let v = (!f.is_empty()).then(|| Value::from(f.to_vec()));
    set_meta(obj, "finalizers", v);
}
/// Replaces `metadata.ownerReferences` (removed when empty).
pub fn set_owner_references(obj: &mut Value, refs: Vec<Value>) {
    let v = (!refs.is_empty()).then_some(Value::Array(refs));
    set_meta(obj, "ownerReferences", v);
}

/// Current time as `metav1.Time`: `2024-01-02T03:04:05Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(jiff::Timestamp::now())
}

/// Current time as `metav1.MicroTime`: `2024-01-02T03:04:05.123456Z`.
pub fn now_rfc3339_micro() -> String {
    format_rfc3339_micro(jiff::Timestamp::now())
}

/// Formats a timestamp with seconds precision, UTC, `Z`.
pub fn format_rfc3339(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Formats a timestamp with microsecond precision, UTC, `Z`.
pub fn format_rfc3339_micro(ts: jiff::Timestamp) -> String {
    let micros = ts.subsec_microsecond().max(0);
    format!("{}.{micros:06}Z", ts.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// Parses an RFC 3339 timestamp as written in `metav1.Time`.
pub fn parse_rfc3339(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// Follows a dotted path (`spec.replicas`, `spec.containers.0.name`): object keys, and
/// numeric segments index arrays.
pub fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    if path.is_empty() {
        return Some(cur);
    }
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Sets a value at a dotted path of object keys, creating intermediate objects
/// (non-object intermediates are replaced). No-op on an empty path.
pub fn set_path(obj: &mut Value, path: &str, v: Value) {
    if path.is_empty() {
        return;
    }
    let segs: Vec<&str> = path.split('.').collect();
    let mut cur = obj;
    for seg in &segs[..segs.len() - 1] {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(m) = cur.as_object_mut() else { return };
        cur = m
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Some(m) = cur.as_object_mut() {
        m.insert(segs[segs.len() - 1].to_string(), v);
    }
}

/// `apiVersion` of an object.
pub fn api_version(obj: &Value) -> Option<&str> {
    obj.get("apiVersion")?.as_str()
}

/// `kind` of an object.
pub fn kind(obj: &Value) -> Option<&str> {
    obj.get("kind")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn getters_and_setters() {
        let mut o =
            json!({"metadata": {"name": "a", "labels": {"x": "1", "n": 2}, "generation": 3}});
        assert_eq!(name(&o), Some("a"));
        assert_eq!(namespace(&o), None);
        assert_eq!(generation(&o), 3);
        assert_eq!(labels(&o).len(), 1);
        set_namespace(&mut o, "ns");
        set_label(&mut o, "y", Some("2"));
        set_label(&mut o, "x", None);
        set_annotation(&mut o, "a/b", Some("c"));
        set_finalizers(&mut o, &["f".into()]);
        assert_eq!(namespace(&o), Some("ns"));
        assert_eq!(label(&o, "y"), Some("2"));
        assert_eq!(label(&o, "x"), None);
        assert_eq!(annotation(&o, "a/b"), Some("c"));
        assert_eq!(finalizers(&o), vec!["f".to_string()]);
        set_deletion_timestamp(&mut o, Some("2024-01-01T00:00:00Z"));
        assert!(deletion_timestamp(&o).is_some());
        set_deletion_timestamp(&mut o, None);
        assert!(deletion_timestamp(&o).is_none());
    }

    #[test]
    fn garbage_is_harmless() {
        let mut o = json!({"metadata": 5});
        assert_eq!(name(&o), None);
        set_name(&mut o, "x");
        assert_eq!(name(&o), Some("x"));
        let mut s = json!("str");
        set_name(&mut s, "x");
        assert_eq!(s, json!("str"));
        assert!(
            owner_references(
                &json!({"metadata":{"ownerReferences":[1,{"uid":"u","controller":true}]}})
            )
            .len()
                == 1
        );
    }

    #[test]
    fn paths() {
        let mut o = json!({"spec": {"replicas": 2, "c": [{"name": "n"}]}});
        assert_eq!(get_path(&o, "spec.replicas"), Some(&json!(2)));
        assert_eq!(get_path(&o, "spec.c.0.name"), Some(&json!("n")));
        assert_eq!(get_path(&o, "spec.c.x"), None);
        set_path(&mut o, "status.readyReplicas", json!(1));
        assert_eq!(o["status"]["readyReplicas"], 1);
    }

    #[test]
    fn time_formats() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.ends_with('Z'));
        let m = now_rfc3339_micro();
        assert_eq!(m.len(), 27, "{m}");
        assert!(parse_rfc3339(&t).is_some());
        let ts: jiff::Timestamp = "2024-05-06T07:08:09.000012Z".parse().unwrap();
        assert_eq!(format_rfc3339_micro(ts), "2024-05-06T07:08:09.000012Z");
        assert_eq!(format_rfc3339(ts), "2024-05-06T07:08:09Z");
    }
}
