//! A small, bounded cache of read snapshots for paged lists.
//!
//! Invariants: at most `cap` snapshots are held, none longer than `ttl` after it was first
//! stored, so pinned database pages are bounded in number and time. Any snapshot at a given
//! revision is as good as any other, so entries are keyed by revision alone.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::Revision;

/// Maximum number of held snapshots.
pub(crate) const MAX_SNAPSHOTS: usize = 32;
/// How long a snapshot is held.
pub(crate) const SNAPSHOT_TTL: Duration = Duration::from_secs(5 * 60);

/// Snapshots (`T` is a shared read transaction in production) keyed by revision.
pub(crate) struct Snapshots<T> {
    held: Mutex<HashMap<Revision, (T, Instant)>>,
    cap: usize,
    ttl: Duration,
}

impl<T: Clone> Snapshots<T> {
    pub(crate) fn new(cap: usize, ttl: Duration) -> Self {
        Snapshots {
            held: Mutex::new(HashMap::new()),
            cap,
            ttl,
        }
    }

    /// The snapshot at `rev`, if still held.
    pub(crate) fn get(&self, rev: Revision, now: Instant) -> Option<T> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        Self::expire(&mut held, self.ttl, now);
        held.get(&rev).map(|(t, _)| t.clone())
    }

    /// Holds `snap` as the snapshot at `rev` (keeps an existing one and its age), evicting
    /// the oldest entries beyond the cap.
    pub(crate) fn put(&self, rev: Revision, snap: T, now: Instant) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        Self::expire(&mut held, self.ttl, now);
        held.entry(rev).or_insert((snap, now));
        while held.len() > self.cap {
            let oldest = held.iter().min_by_key(|(_, (_, t))| *t).map(|(r, _)| *r);
            match oldest {
                Some(r) => held.remove(&r),
                None => break,
            };
        }
    }

    /// Drops expired snapshots.
    pub(crate) fn purge(&self, now: Instant) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        Self::expire(&mut held, self.ttl, now);
    }

    /// Drops every snapshot.
    pub(crate) fn clear(&self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn expire(held: &mut HashMap<Revision, (T, Instant)>, ttl: Duration, now: Instant) {
        held.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_count_evicting_oldest() {
        let s = Snapshots::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for r in 1..=5u64 {
            s.put(r, r * 10, t0 + Duration::from_secs(r));
        }
        assert_eq!(s.len(), 3);
        let now = t0 + Duration::from_secs(6);
        assert_eq!(s.get(1, now), None);
        assert_eq!(s.get(2, now), None);
        assert_eq!(s.get(5, now), Some(50));
    }

    #[test]
    fn expires_after_ttl_from_first_put() {
        let s = Snapshots::new(8, Duration::from_secs(10));
        let t0 = Instant::now();
        s.put(1, "a", t0);
        s.put(1, "b", t0 + Duration::from_secs(5)); // keeps the original entry and age
        assert_eq!(s.get(1, t0 + Duration::from_secs(9)), Some("a"));
        assert_eq!(s.get(1, t0 + Duration::from_secs(10)), None);
        s.put(2, "c", t0);
        s.purge(t0 + Duration::from_secs(11));
        assert_eq!(s.len(), 0);
    }
}
