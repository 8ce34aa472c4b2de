//! Pods by controlling owner, so a sync looks at its own pods and the orphans of its namespace
//! instead of every pod in the namespace.
//!
//! Invariants:
//! - every pod in the informer's cache is in exactly one set: its controller's (by owner uid) or
//!   its namespace's orphans; the event handler updates the index before it lowers expectations,
//!   so satisfied expectations imply an index that shows the pods they waited for;
//! - after a Resync the index is rebuilt from the cache.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k1s_apimachinery::meta;
use serde_json::Value;

use crate::runtime::{Key, key_of};

#[derive(Default)]
struct Inner {
    by_owner: HashMap<String, HashSet<Key>>,
    orphans: HashMap<String, HashSet<Key>>,
    /// Where each pod is filed: `Ok(owner uid)` or `Err(namespace)` for an orphan.
    filed: HashMap<Key, Result<String, String>>,
}

/// See the module documentation.
#[derive(Default)]
pub struct PodIndex {
    inner: Mutex<Inner>,
}

fn slot(pod: &Value) -> Result<String, String> {
    match meta::controller_ref(pod).and_then(|r| r.get("uid")?.as_str()) {
        Some(uid) => Ok(uid.to_string()),
        None => Err(meta::namespace(pod).unwrap_or_default().to_string()),
    }
}

impl Inner {
    fn unfile(&mut self, key: &str) {
        let set = match self.filed.remove(key) {
            Some(Ok(uid)) => self.by_owner.get_mut(&uid).map(|s| (s, Ok(uid))),
            Some(Err(ns)) => self.orphans.get_mut(&ns).map(|s| (s, Err(ns))),
            None => None,
        };
        if let Some((set, at)) = set {
            set.remove(key);
            if set.is_empty() {
                match at {
                    Ok(uid) => self.by_owner.remove(&uid),
                    Err(ns) => self.orphans.remove(&ns),
                };
            }
        }
    }

    fn file(&mut self, pod: &Value) {
        let key = key_of(pod);
        self.unfile(&key);
        let at = slot(pod);
        match &at {
            Ok(uid) => self.by_owner.entry(uid.clone()).or_default(),
            Err(ns) => self.orphans.entry(ns.clone()).or_default(),
        }
        .insert(key.clone());
        self.filed.insert(key, at);
    }
}

impl PodIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files a created or changed pod.
    pub fn upsert(&self, pod: &Value) {
        self.lock().file(pod);
    }

    /// Forgets a deleted pod.
    pub fn remove(&self, pod: &Value) {
        self.lock().unfile(&key_of(pod));
    }

    /// Replaces the index with one built from `pods`.
    pub fn rebuild(&self, pods: &[Arc<Value>]) {
        let mut fresh = Inner::default();
        for p in pods {
            fresh.file(p);
        }
        *self.lock() = fresh;
    }

    /// Keys of the pods controlled by the owner with `uid` and of the orphans in `namespace`.
    pub fn candidates(&self, uid: &str, namespace: &str) -> Vec<Key> {
        let inner = self.lock();
        let owned = inner.by_owner.get(uid).into_iter().flatten();
        let orphans = inner.orphans.get(namespace).into_iter().flatten();
        owned.chain(orphans).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, owner: Option<&str>) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "ns"}});
        if let Some(uid) = owner {
            p["metadata"]["ownerReferences"] = json!([{"uid": uid, "controller": true}]);
        }
        p
    }

    fn sorted(mut v: Vec<Key>) -> Vec<Key> {
        v.sort();
        v
    }

    #[test]
    fn files_pods_by_owner_and_follows_changes() {
        let ix = PodIndex::default();
        ix.upsert(&pod("a", Some("u1")));
        ix.upsert(&pod("b", Some("u2")));
        ix.upsert(&pod("c", None));
        assert_eq!(sorted(ix.candidates("u1", "ns")), ["ns/a", "ns/c"]);
        // Adoption moves a pod from the orphans to its owner; release moves it back.
        ix.upsert(&pod("c", Some("u1")));
        assert_eq!(sorted(ix.candidates("u1", "ns")), ["ns/a", "ns/c"]);
        assert_eq!(sorted(ix.candidates("u2", "ns")), ["ns/b"]);
        ix.upsert(&pod("a", None));
        ix.remove(&pod("c", Some("u1")));
        assert_eq!(sorted(ix.candidates("u2", "ns")), ["ns/a", "ns/b"]);
        assert_eq!(sorted(ix.candidates("u1", "other")), Vec::<Key>::new());
        ix.rebuild(&[Arc::new(pod("z", Some("u1")))]);
        assert_eq!(sorted(ix.candidates("u1", "ns")), ["ns/z"]);
    }
}
