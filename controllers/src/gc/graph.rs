//! The owner → dependents graph, built from the `ownerReferences` of every watched object.
//!
//! Invariants: `nodes` holds exactly the objects the informers currently cache (keyed by uid);
//! `dependents[u]` holds the uid of every node that has an ownerReference to `u`, whether or not `u`
//! itself is a node (an owner that is gone or never existed is only a key of `dependents`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k1s_apiserver::client::Gvr;
use serde_json::Value;

pub type Uid = String;

/// One watched object.
#[derive(Clone)]
pub struct Node {
    pub gvr: Gvr,
    pub obj: Arc<Value>,
}

impl Node {
    pub fn namespace(&self) -> Option<&str> {
        self.obj["metadata"]["namespace"]
            .as_str()
            .filter(|s| !s.is_empty())
    }

    pub fn name(&self) -> &str {
        self.obj["metadata"]["name"].as_str().unwrap_or_default()
    }
}

/// `metadata.uid` of an object.
pub fn uid_of(obj: &Value) -> Option<&str> {
    obj["metadata"]["uid"].as_str().filter(|s| !s.is_empty())
}

/// The ownerReferences of an object.
pub fn owner_refs(obj: &Value) -> &[Value] {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The owner uids an object references.
pub fn owner_uids(obj: &Value) -> impl Iterator<Item = &str> {
    owner_refs(obj).iter().filter_map(|r| r["uid"].as_str())
}

/// Whether the object carries finalizer `f`.
pub fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == f))
}

/// Whether the object has a deletionTimestamp.
pub fn deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"]
        .as_str()
        .is_some_and(|s| !s.is_empty())
}

/// Being deleted in the foreground: waiting for its blocking dependents.
pub fn deleting_dependents(obj: &Value) -> bool {
    deleting(obj) && has_finalizer(obj, super::FOREGROUND)
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<Uid, Node>,
    dependents: HashMap<Uid, HashSet<Uid>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The uids of the objects that reference `owner`.
    pub fn dependents(&self, owner: &str) -> Vec<Uid> {
        self.dependents
            .get(owner)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn unlink(&mut self, uid: &str, obj: &Value) {
        for owner in owner_uids(obj) {
            if let Some(set) = self.dependents.get_mut(owner) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
    }

    /// Adds or replaces a node; returns the previous state.
    pub fn upsert(&mut self, gvr: Gvr, obj: Arc<Value>) -> Option<Node> {
        let uid = uid_of(&obj)?.to_string();
        let old = self.nodes.remove(&uid);
        if let Some(o) = &old {
            self.unlink(&uid, &o.obj.clone());
        }
        for owner in owner_uids(&obj) {
            self.dependents
                .entry(owner.to_string())
                .or_default()
                .insert(uid.clone());
        }
        self.nodes.insert(uid, Node { gvr, obj });
        old
    }

    /// Removes a node; returns it.
    pub fn remove(&mut self, uid: &str) -> Option<Node> {
        let old = self.nodes.remove(uid)?;
        self.unlink(uid, &old.obj.clone());
        Some(old)
    }

    /// The uids of every node of one resource.
    pub fn uids_of(&self, gvr: Gvr) -> Vec<Uid> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.gvr == gvr)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Every node uid.
    pub fn all_uids(&self) -> Vec<Uid> {
        self.nodes.keys().cloned().collect()
    }

    /// Whether `start` reaches itself through blocking dependents that are all being deleted in the
    /// foreground (a dependency cycle that would otherwise wait forever). Bounded by a visited set.
    pub fn in_blocking_cycle(&self, start: &str) -> bool {
        let mut stack = vec![start.to_string()];
        let mut seen = HashSet::new();
        while let Some(u) = stack.pop() {
            for d in self.blocking_dependents(&u) {
                if d == start {
                    return true;
                }
                let Some(n) = self.nodes.get(&d) else {
                    continue;
                };
                if deleting_dependents(&n.obj) && seen.insert(d.clone()) {
                    stack.push(d);
                }
            }
        }
        false
    }

    /// Dependents that hold an ownerReference to `owner` with `blockOwnerDeletion: true`.
    pub fn blocking_dependents(&self, owner: &str) -> Vec<Uid> {
        let Some(deps) = self.dependents.get(owner) else {
            return Vec::new();
        };
        deps.iter()
            .filter(|d| {
                self.nodes.get(*d).is_some_and(|n| {
                    owner_refs(&n.obj)
                        .iter()
                        .any(|r| r["uid"] == owner && r["blockOwnerDeletion"] == true)
                })
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CM: Gvr = Gvr::new("", "v1", "configmaps");

    fn obj(uid: &str, owners: &[(&str, bool)], fg: bool) -> Arc<Value> {
        let refs: Vec<Value> = owners
            .iter()
            .map(|(u, b)| json!({"uid": u, "blockOwnerDeletion": b}))
            .collect();
        let mut o = json!({"metadata": {"uid": uid, "name": uid, "ownerReferences": refs}});
        if fg {
            o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            o["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
        }
        Arc::new(o)
    }

    #[test]
    fn links_follow_updates_and_removals() {
        let mut g = Graph::default();
        g.upsert(CM, obj("b", &[("a", true)], false));
        assert_eq!(g.dependents("a"), vec!["b".to_string()]);
        assert_eq!(g.blocking_dependents("a"), vec!["b".to_string()]);
        g.upsert(CM, obj("b", &[("c", false)], false));
        assert!(g.dependents("a").is_empty());
        assert!(g.blocking_dependents("c").is_empty());
        g.remove("b");
        assert!(g.dependents("c").is_empty());
    }

    #[test]
    fn detects_foreground_cycles() {
        let mut g = Graph::default();
        g.upsert(CM, obj("a", &[("b", true)], true));
        g.upsert(CM, obj("b", &[("a", true)], true));
        assert!(g.in_blocking_cycle("a"));
        g.upsert(CM, obj("b", &[("a", true)], false));
        assert!(!g.in_blocking_cycle("a"));
    }
}
