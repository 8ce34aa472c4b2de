//! Strategic merge patch (`application/strategic-merge-patch+json`).
//!
//! Semantics follow upstream's `strategicpatch.StrategicMergeMapPatch` with its server options
//! (parallel deletion lists are merged, unmatched `null`s are dropped):
//! - maps merge key by key; `null` deletes a key; `{"$patch": "replace"}` replaces the map,
//!   `{"$patch": "delete"}` empties it; `$retainKeys: [..]` drops the original's other keys;
//! - lists whose field has the `merge` strategy merge: lists of maps by merge key (items with
//!   `$patch: delete` remove matches, an item `{"$patch": "replace"}` replaces the whole list),
//!   primitive lists as a set union; `$deleteFromPrimitiveList/<f>` removes values and
//!   `$setElementOrder/<f>` fixes the final order; all other lists are replaced;
//! - ordering: merged lists keep upstream's order (patch items in patch order, server-only
//!   items where they were relative to them; new items without a `$setElementOrder` come first);
//! - values new to the original are still run through the merge so that no directive leaks
//!   into the stored object.

use serde_json::{Map, Value};

use super::PatchError;
use super::meta::{FieldPatchMeta, PatchMeta};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Applies `patch` to `original` using `meta` for merge strategies.
pub fn apply(original: &Value, patch: &Value, meta: &dyn PatchMeta) -> Result<Value, PatchError> {
    let orig = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::Decode("invalid JSON document".into())),
    };
    let Value::Object(p) = patch else {
        return Err(PatchError::Decode("invalid JSON document".into()));
    };
    let mut m = Merger {
        meta,
        path: Vec::new(),
    };
    Ok(Value::Object(m.merge_map(orig, p.clone())?))
}

struct Merger<'a> {
    meta: &'a dyn PatchMeta,
    path: Vec<String>,
}

fn short(v: &impl serde::Serialize) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
    }
}

fn type_tag(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Identity of a list item for ordering: its merge key value for maps, itself otherwise.
fn ident<'v>(v: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match (v, key) {
        (Value::Object(m), Some(k)) => m.get(k),
        (Value::Object(_), None) => None,
        (other, _) => Some(other),
    }
}

fn index_of(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = ident(item, key)?;
    list.iter().position(|x| ident(x, key) == Some(id))
}

/// Upstream's order normalisation: `patch_items` sorted by `patch_order`, `server_only` by
/// `server_order`, then interleaved so server-only items keep their place relative to
/// patch items that also exist on the server.
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    patch_items.sort_by_key(|v| index_of(patch_order, v, key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index_of(server_order, v, key).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let li = index_of(server_order, l, key);
                let ri = index_of(server_order, r, key);
                match (li, ri) {
                    (Some(li), Some(ri)) if li < ri => out.extend(left.next()),
                    _ => out.extend(right.next()),
                }
            }
        }
    }
    out
}

fn partition(merged: Vec<Value>, by: &[Value], key: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|v| index_of(by, v, key).is_some())
}

impl Merger<'_> {
    fn field_meta(&self, field: &str) -> FieldPatchMeta {
        let mut p: Vec<&str> = self.path.iter().map(String::as_str).collect();
        p.push(field);
        self.meta.lookup(&p)
    }

    fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(d) = patch.shift_remove(DIRECTIVE) {
            return match d.as_str() {
                Some("replace") => self.merge_map(Map::new(), patch),
                Some("delete") => Ok(Map::new()),
                _ => Err(PatchError::Merge(format!(
                    "unknown patch type: {} in map: {}",
                    short(&d),
                    short(&patch)
                ))),
            };
        }
        self.retain_keys(&mut original, &mut patch)?;
        self.set_element_orders(&mut original, &mut patch)?;
        for (k, v) in patch {
            if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
                let Value::Array(del) = v else {
                    return Err(PatchError::BadFormat(
                        "invalid patch format of primitive list".into(),
                    ));
                };
                if let Some(Value::Array(cur)) = original.get_mut(field) {
                    cur.retain(|x| !del.contains(x));
                }
                continue;
            }
            if v.is_null() {
                original.shift_remove(&k);
                continue;
            }
            let cur = original.shift_remove(&k).unwrap_or(Value::Null);
            let res = match (cur, v) {
                (Value::Object(o), Value::Object(p)) => self.merge_child_map(&k, o, p),
                (Value::Null, Value::Object(p)) => self.merge_child_map(&k, Map::new(), p),
                (Value::Array(o), Value::Array(p)) => self.merge_list_field(&k, o, p),
                (Value::Null, Value::Array(p)) => self.merge_list_field(&k, Vec::new(), p),
                (_, v) => Ok(v),
            };
            original.insert(k, res?);
        }
        Ok(original)
    }

    fn merge_child_map(
        &mut self,
        field: &str,
        original: Map<String, Value>,
        patch: Map<String, Value>,
    ) -> Result<Value, PatchError> {
        self.path.push(field.to_string());
        let r = self.merge_map(original, patch);
        self.path.pop();
        r.map(Value::Object)
    }

    fn retain_keys(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
    ) -> Result<(), PatchError> {
        let Some(rk) = patch.shift_remove(RETAIN_KEYS) else {
            return Ok(());
        };
        let bad = || PatchError::BadFormat("invalid patch format of retainKeys".into());
        let Value::Array(list) = rk else {
            return Err(bad());
        };
        let keep = |k: &str| list.iter().any(|x| x.as_str() == Some(k));
        for (k, v) in patch.iter() {
            if v.is_null() || k.starts_with(DELETE_PRIMITIVE) || k.starts_with(SET_ORDER) {
                continue;
            }
            if !keep(k) {
                return Err(bad());
            }
        }
        original.retain(|k, _| keep(k));
        Ok(())
    }

    fn set_element_orders(
        &mut self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ORDER))
            .cloned()
            .collect();
        for key in keys {
            let order = patch.shift_remove(&key).unwrap_or(Value::Null);
            let Value::Array(order) = order else {
                return Err(PatchError::BadFormat(
                    "invalid patch format of setElementOrder list".into(),
                ));
            };
            let field = key[SET_ORDER.len()..].to_string();
            let as_list = |v: Option<Value>| -> Result<Option<Vec<Value>>, PatchError> {
                match v {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Array(a)) => Ok(Some(a)),
                    Some(other) => Err(PatchError::Merge(format!(
                        "expected a list for {field}, but received {}",
                        short(&other)
                    ))),
                }
            };
            let orig = as_list(original.get(&field).cloned())?;
            let pl = as_list(patch.shift_remove(&field))?;
            let fm = self.field_meta(&field);
            let merged = match (orig.clone(), pl) {
                (None, None) => continue,
                (Some(o), None) => o,
                (o, Some(p)) => match self.merge_list_field(&field, o.unwrap_or_default(), p)? {
                    Value::Array(a) => a,
                    other => {
                        original.insert(field, other);
                        continue;
                    }
                },
            };
            let key_name = fm.merge_key;
            let (patch_items, server_only) = partition(merged, &order, key_name);
            let server_order = orig.unwrap_or_default();
            let both = normalize_order(patch_items, server_only, &order, &server_order, key_name);
            original.insert(field, Value::Array(both));
        }
        Ok(())
    }

    fn merge_list_field(
        &mut self,
        field: &str,
        original: Vec<Value>,
        patch: Vec<Value>,
    ) -> Result<Value, PatchError> {
        let fm = self.field_meta(field);
        if !fm.strategy.merge {
            return Ok(Value::Array(patch));
        }
        self.path.push(field.to_string());
        let r = self.merge_slice(original, patch, fm.merge_key);
        self.path.pop();
        r.map(Value::Array)
    }

    fn merge_slice(
        &mut self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: Option<&'static str>,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let mut tag = None;
        for v in original.iter().chain(patch.iter()) {
            let t = type_tag(v);
            if t == 4 {
                return Err(PatchError::Unprocessable(
                    "lists of lists are not supported".into(),
                ));
            }
            match tag {
                None => tag = Some(t),
                Some(prev) if prev != t => {
                    return Err(PatchError::Merge(format!(
                        "list element types are not identical: {} {}",
                        short(&original),
                        short(&patch)
                    )));
                }
                _ => {}
            }
        }
        if tag != Some(5) {
            // Primitive set union.
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(patch.iter()) {
                if !merged.contains(v) {
                    merged.push(v.clone());
                }
            }
            let (p, s) = partition(merged, &patch, None);
            return Ok(normalize_order(p, s, &patch, &original, None));
        }
        let Some(key) = key else {
            return Err(PatchError::Merge(
                "cannot merge lists without merge key for type map".into(),
            ));
        };
        // Special elements.
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Value::Object(m) = &item else { continue };
            match m.get(DIRECTIVE) {
                None => plain.push(item),
                Some(d) => match d.as_str() {
                    Some("delete") => {
                        let Some(kv) = m.get(key) else {
                            return Err(no_merge_key(m, key));
                        };
                        original.retain(|o| o.get(key) != Some(kv));
                    }
                    Some("replace") => replace = true,
                    Some("merge") => {
                        return Err(PatchError::Merge(
                            "merging lists cannot yet be specified in the patch".into(),
                        ));
                    }
                    _ => {
                        return Err(PatchError::Merge(format!(
                            "unknown patch type: {} in map: {}",
                            short(d),
                            short(m)
                        )));
                    }
                },
            }
        }
        if replace {
            let mut out = Vec::with_capacity(plain.len());
            for item in plain {
                out.push(self.fresh_item(item)?);
            }
            return Ok(out);
        }
        let mut merged = original.clone();
        for item in &plain {
            let Value::Object(pm) = item else { continue };
            let Some(kv) = pm.get(key) else {
                return Err(no_merge_key(pm, key));
            };
            match merged.iter().position(|o| o.get(key) == Some(kv)) {
                Some(i) => {
                    let cur = std::mem::take(&mut merged[i]);
                    let Value::Object(cm) = cur else {
                        return Err(PatchError::Merge("list item is not a map".into()));
                    };
                    merged[i] = Value::Object(self.merge_map(cm, pm.clone())?);
                }
                None => merged.push(self.fresh_item(item.clone())?),
            }
        }
        let (p, s) = partition(merged, &plain, Some(key));
        Ok(normalize_order(p, s, &plain, &original, Some(key)))
    }

    fn fresh_item(&mut self, item: Value) -> Result<Value, PatchError> {
        match item {
            Value::Object(m) => self.merge_map(Map::new(), m).map(Value::Object),
            other => Ok(other),
        }
    }
}

fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::Merge(format!(
        "map: {} does not contain declared merge key: {key}",
        short(m)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::meta::{NoPatchMeta, builtin_patch_meta};
    use serde_json::json;

    fn pod(orig: Value, patch: Value) -> Result<Value, PatchError> {
        apply(&orig, &patch, &*builtin_patch_meta("", "Pod"))
    }

    fn deploy(orig: Value, patch: Value) -> Value {
        apply(&orig, &patch, &*builtin_patch_meta("apps", "Deployment")).unwrap()
    }

    #[test]
    fn maps_and_nulls() {
        let o = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}});
        let r = pod(o, json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"x": null, "y": {"z": null, "w": 1}}})).unwrap();
        assert_eq!(
            r,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"y": {"w": 1}}})
        );
    }

    #[test]
    fn containers_merge_by_name() {
        let o = json!({"spec": {"containers": [{"name": "a", "image": "x:1", "env": [{"name": "E", "value": "1"}]}, {"name": "b", "image": "y"}]}});
        let r = pod(o.clone(), json!({"spec": {"containers": [{"name": "a", "image": "x:2", "env": [{"name": "F", "value": "2"}]}]}})).unwrap();
        assert_eq!(r["spec"]["containers"][0]["image"], "x:2");
        assert_eq!(
            r["spec"]["containers"][0]["env"],
            json!([{"name": "F", "value": "2"}, {"name": "E", "value": "1"}])
        );
        assert_eq!(r["spec"]["containers"][1]["name"], "b");
        // New container without $setElementOrder goes first, as upstream.
        let r = pod(
            o.clone(),
            json!({"spec": {"containers": [{"name": "c", "image": "z"}]}}),
        )
        .unwrap();
        let names: Vec<&str> = r["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c", "a", "b"]);
        // With $setElementOrder (what kubectl apply sends).
        let r = pod(o.clone(), json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "containers": [{"name": "c", "image": "z"}]}})).unwrap();
        let names: Vec<&str> = r["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        // Delete directive.
        let r = pod(
            o.clone(),
            json!({"spec": {"containers": [{"$patch": "delete", "name": "a"}]}}),
        )
        .unwrap();
        assert_eq!(
            r["spec"]["containers"],
            json!([{"name": "b", "image": "y"}])
        );
        // Replace directive.
        let r = pod(
            o,
            json!({"spec": {"containers": [{"name": "n", "image": "i"}, {"$patch": "replace"}]}}),
        )
        .unwrap();
        assert_eq!(
            r["spec"]["containers"],
            json!([{"name": "n", "image": "i"}])
        );
    }

    #[test]
    fn atomic_lists_replace_and_primitive_merge() {
        let o = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"tolerations": [{"key": "k"}], "containers": [{"name": "c", "args": ["1", "2"]}]}});
        let r = pod(o.clone(), json!({"metadata": {"finalizers": ["c", "a"]}, "spec": {"tolerations": [{"key": "z"}], "containers": [{"name": "c", "args": ["3"]}]}})).unwrap();
        assert_eq!(r["metadata"]["finalizers"], json!(["c", "a", "b"]));
        assert_eq!(r["spec"]["tolerations"], json!([{"key": "z"}]));
        assert_eq!(r["spec"]["containers"][0]["args"], json!(["3"]));
        let r = pod(
            o.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(r["metadata"]["finalizers"], json!(["b"]));
        let r = pod(
            o,
            json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}),
        )
        .unwrap();
        assert_eq!(r["metadata"]["finalizers"], json!(["b", "a"]));
    }

    #[test]
    fn retain_keys_and_map_directives() {
        let o = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}}});
        let r = deploy(
            o.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
        let r = deploy(
            o.clone(),
            json!({"spec": {"template": {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}}}}),
        );
        assert_eq!(
            r["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "v", "configMap": {"name": "cm"}}])
        );
        let r = deploy(
            o.clone(),
            json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}),
        );
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
        let r = deploy(
            o.clone(),
            json!({"spec": {"strategy": {"$patch": "delete"}}}),
        );
        assert_eq!(r["spec"]["strategy"], json!({}));
        let e = apply(
            &o,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            &*builtin_patch_meta("apps", "Deployment"),
        )
        .unwrap_err();
        assert_eq!(e.to_status().code, 400);
    }

    #[test]
    fn directives_do_not_leak_into_new_fields() {
        let r = pod(json!({}), json!({"spec": {"containers": [{"name": "a", "env": [{"name": "x", "$patch": "delete"}]}]}})).unwrap();
        assert_eq!(
            r,
            json!({"spec": {"containers": [{"name": "a", "env": []}]}})
        );
    }

    #[test]
    fn errors() {
        let o = json!({"spec": {"containers": [{"name": "a"}]}});
        let e = pod(o.clone(), json!({"spec": {"containers": [{"image": "x"}]}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"map: {"image":"x"} does not contain declared merge key: name"#
        );
        assert_eq!(e.to_status().code, 500);
        let e = pod(o.clone(), json!({"spec": {"$patch": "frob"}})).unwrap_err();
        assert!(e.to_string().starts_with("unknown patch type"));
        let e = pod(
            o.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}),
        )
        .unwrap_err();
        assert_eq!(e.to_status().code, 400);
        let e = pod(
            json!({"metadata": {"finalizers": [["a"]]}}),
            json!({"metadata": {"finalizers": [["b"]]}}),
        )
        .unwrap_err();
        assert_eq!(e.to_status().code, 422);
        assert!(pod(json!([]), json!({})).is_err());
        assert!(pod(json!({}), json!(1)).is_err());
    }

    #[test]
    fn no_meta_replaces_lists() {
        let r = apply(
            &json!({"spec": {"l": [1, 2], "m": {"a": 1}}}),
            &json!({"spec": {"l": [3], "m": {"b": 2}}}),
            &NoPatchMeta,
        )
        .unwrap();
        assert_eq!(r, json!({"spec": {"l": [3], "m": {"a": 1, "b": 2}}}));
    }

    #[test]
    fn garbage_never_panics() {
        let docs = [
            json!({}),
            json!({"spec": {"containers": [1, "x", {"name": 1}]}}),
            json!({"metadata": {"finalizers": 3}}),
            json!({"spec": {"containers": {}}}),
        ];
        let patches = [
            json!({"spec": {"containers": [1, {"$patch": 1}, {"name": null}]}}),
            json!({"spec": {"$setElementOrder/containers": 5}}),
            json!({"spec": {"$setElementOrder/containers": [1], "containers": 1}}),
            json!({"spec": {"$retainKeys": [1, 2]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [1], "finalizers": [null, {}]}}),
            json!({"$patch": "delete"}),
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
        ];
        for d in &docs {
            for p in &patches {
                let _ = pod(d.clone(), p.clone());
            }
        }
    }
}
