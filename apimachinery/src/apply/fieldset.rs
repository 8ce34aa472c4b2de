//! Field sets: the `fieldsV1` trees inside `metadata.managedFields`.
//!
//! Invariants:
//! - a node's children are keyed by serialized path elements exactly as written in `fieldsV1`:
//!   `f:<field>`, `k:<json object of key fields>`, `v:<json value>`, `i:<index>`;
//! - `member` marks that the node's own path is in the set; it serializes as `".": {}` when the
//!   node also has children, and as an empty object `{}` when it has none;
//! - sets are normalised: a node that is neither a member nor has children is never stored.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of field paths (a trie keyed by path elements).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// Whether this node's own path is in the set.
    pub member: bool,
    /// Children by serialized path element.
    pub children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// Parses a `fieldsV1` object; anything malformed is skipped.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut s = FieldSet::default();
        if let Some(m) = v.as_object() {
            for (k, child) in m {
                if k == "." {
                    s.member = true;
                    continue;
                }
                let mut c = FieldSet::from_fields_v1(child);
                if c.children.is_empty() {
                    c.member = true;
                }
                s.children.insert(k.clone(), c);
            }
        }
        s
    }

    /// Serializes to a `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    /// True when no path is in the set.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// The child node at `pe`, created when missing.
    pub fn child_mut(&mut self, pe: &str) -> &mut FieldSet {
        self.children.entry(pe.to_string()).or_default()
    }

    /// Inserts a path.
    pub fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = true,
            Some((h, rest)) => self.child_mut(h).insert(rest),
        }
    }

    /// Whether a path is a member.
    pub fn has(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((h, rest)) => self.children.get(h).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether the path or anything below it is a member.
    pub fn has_prefix(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((h, rest)) => self.children.get(h).is_some_and(|c| c.has_prefix(rest)),
        }
    }

    /// All member paths, depth first.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Set union.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, c) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    /// Members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Members of `self` that are not members of `other` and lie under no member of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        if other.member {
            return FieldSet::default();
        }
        let mut out = FieldSet {
            member: self.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.recursive_difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Members in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }
}

/// `f:<name>`.
pub fn field_pe(name: &str) -> String {
    format!("f:{name}")
}

/// `k:{"<key>":<value>}`.
pub fn key_pe(key: &str, value: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), value.clone());
    format!("k:{}", Value::Object(m))
}

/// `v:<json>`.
pub fn value_pe(value: &Value) -> String {
    format!("v:{value}")
}

/// Renders a path as upstream's `fieldpath.Path.String()`: `.spec.containers[name="web"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = pe.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        } else {
            s.push_str(pe);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn round_trip() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                       "f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}, "f:replicas": {}}});
        let s = FieldSet::from_fields_v1(&v);
        assert_eq!(s.to_fields_v1(), v);
        assert!(s.has(&p(&["f:spec", "f:replicas"])));
        assert!(s.has(&p(&["f:metadata", "f:labels"])));
        assert!(!s.has(&p(&["f:spec"])));
        assert_eq!(s.paths().len(), 6);
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::default();
        a.insert(&p(&["f:spec", "f:replicas"]));
        a.insert(&p(&["f:spec", "f:paused"]));
        let mut b = FieldSet::default();
        b.insert(&p(&["f:spec", "f:replicas"]));
        assert_eq!(a.intersection(&b), b);
        assert_eq!(a.difference(&b).paths(), vec![p(&["f:spec", "f:paused"])]);
        assert_eq!(a.union(&b), a);
        let mut spec = FieldSet::default();
        spec.insert(&p(&["f:spec"]));
        assert!(a.recursive_difference(&spec).is_empty());
        assert!(!a.difference(&spec).is_empty());
        assert!(a.has_prefix(&p(&["f:spec"])));
    }

    #[test]
    fn path_strings() {
        assert_eq!(
            path_string(&p(&[
                "f:spec",
                "f:containers",
                "k:{\"name\":\"web\"}",
                "f:image"
            ])),
            ".spec.containers[name=\"web\"].image"
        );
        assert_eq!(
            path_string(&p(&["f:metadata", "f:finalizers", "v:\"x\""])),
            ".metadata.finalizers[=\"x\"]"
        );
    }

    #[test]
    fn garbage() {
        let s = FieldSet::from_fields_v1(&json!({"f:a": 1, ".": 2, "f:b": {"x": []}}));
        let _ = s.to_fields_v1();
        assert!(FieldSet::from_fields_v1(&json!("x")).is_empty());
    }
}
