//! Expectations: how many creates and which deletes of a controller are still in flight.
//!
//! A controller that just created five pods must not look at a cache that shows none of them yet and
//! create five more. Before writing, it records what it expects to see; the informer's event handler
//! lowers the record as the writes come back through the watch; a sync changes pods only when the
//! record is satisfied (or has expired, in case an event was lost).
//!
//! Invariants:
//! - `adds` never goes below zero; a delete is a pod key, so the same deletion seen twice (as an
//!   update with `deletionTimestamp` and as the final delete) counts once;
//! - an expectation older than [`TTL`] counts as satisfied, so a lost event delays a controller by
//!   at most that long instead of wedging it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an unfulfilled expectation blocks a controller (upstream uses five minutes).
pub const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Record {
    adds: i64,
    dels: HashSet<String>,
    set_at: Instant,
}

/// Per-controller-key expectations; cheap to clone.
#[derive(Clone, Default)]
pub struct Expectations {
    inner: Arc<Mutex<HashMap<String, Record>>>,
}

impl Expectations {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `key` may change pods now: nothing in flight, or the record expired.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(r) => (r.adds <= 0 && r.dels.is_empty()) || r.set_at.elapsed() > TTL,
        }
    }

    /// Records `n` creates about to be issued (replacing an old, satisfied record).
    pub fn expect_creations(&self, key: &str, n: i64) {
        self.lock().insert(
            key.to_string(),
            Record {
                adds: n,
                dels: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    /// Records deletes about to be issued, by pod key.
    pub fn expect_deletions(&self, key: &str, pods: impl IntoIterator<Item = String>) {
        self.lock().insert(
            key.to_string(),
            Record {
                adds: 0,
                dels: pods.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    /// A create was seen in the watch, or failed and will never be seen.
    pub fn creation_observed(&self, key: &str) {
        if let Some(r) = self.lock().get_mut(key) {
            r.adds = (r.adds - 1).max(0);
        }
    }

    /// A pod deletion was seen in the watch, or failed and will never be seen.
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Some(r) = self.lock().get_mut(key) {
            r.dels.remove(pod);
        }
    }

    /// Forgets `key` (its controller is gone).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Forgets everything (after the cache was rebuilt and individual events were lost).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_and_deletions_are_counted_down() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/a"));
        e.expect_creations("ns/a", 2);
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        e.creation_observed("ns/a"); // an extra event never goes negative
        assert!(e.satisfied("ns/a"));
        e.expect_deletions("ns/a", ["ns/p1".to_string(), "ns/p2".to_string()]);
        e.deletion_observed("ns/a", "ns/p1");
        e.deletion_observed("ns/a", "ns/p1");
        assert!(!e.satisfied("ns/a"));
        e.deletion_observed("ns/a", "ns/p2");
        assert!(e.satisfied("ns/a"));
        e.expect_creations("ns/b", 1);
        e.forget("ns/b");
        assert!(e.satisfied("ns/b"));
    }
}
