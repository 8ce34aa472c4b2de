//! One keyed work-queue worker for every controller that syncs objects by key: take a key, sync
//! it, requeue it as the outcome says, mark it done.
//!
//! Invariants:
//! - a key's consecutive failures are counted until a sync of it succeeds, and its retry delay
//!   grows with them ([`backoff`]);
//! - a conflict (the cache is behind a newer version whose event is on its way and will queue the
//!   key again) is retried after [`CONFLICT_RETRY`] without counting as a failure;
//! - the key is marked done only after its requeue is arranged, so a change that arrives meanwhile
//!   is never lost.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::{Key, WorkQueue};

/// Retry delay after a write conflicted.
pub const CONFLICT_RETRY: Duration = Duration::from_millis(20);

/// Retry delay after `n` consecutive failures: 5 ms doubling, at most 30 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(5u64.saturating_mul(1 << n.min(13))).min(Duration::from_secs(30))
}

/// A controller that syncs one object per key.
pub trait KeyedSync: Send + Sync {
    /// The sync's error.
    type Error: Display + Send;
    /// The controller's name in log lines (`"replica set"`, `"deployment"`).
    const NAME: &'static str;

    /// The queue its keys come from.
    fn queue(&self) -> &WorkQueue;
    /// Consecutive failures per key.
    fn failures(&self) -> &Mutex<HashMap<Key, u32>>;
    /// Brings `key` to its desired state; `Ok(Some(after))` asks to be synced again after `after`.
    fn sync_key(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Duration>, Self::Error>> + Send;
    /// Whether `e` is a write conflict.
    fn is_conflict(e: &Self::Error) -> bool;
    /// Syncs `key` again after `after` (a controller may merge pending requeues).
    fn requeue_after(&self, key: &Key, after: Duration) {
        self.queue().add_after(key.clone(), after);
    }
}

/// Works through `c`'s queue until `shutdown`.
pub async fn work<C: KeyedSync>(c: &C, shutdown: CancellationToken) {
    loop {
        let key = tokio::select! {
            _ = shutdown.cancelled() => return,
            k = c.queue().next() => k,
        };
        let result = c.sync_key(&key).await;
        let mut failures = c.failures().lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(requeue) => {
                failures.remove(&key);
                if let Some(after) = requeue {
                    c.requeue_after(&key, after);
                }
            }
            Err(e) if C::is_conflict(&e) => {
                tracing::debug!(key = %key, error = %e, "{} sync conflicted; retrying", C::NAME);
                c.queue().add_after(key.clone(), CONFLICT_RETRY);
            }
            Err(e) => {
                let n = failures.entry(key.clone()).or_insert(0);
                *n += 1;
                let delay = backoff(*n);
                tracing::warn!(key = %key, error = %e, retry_in = ?delay, "{} sync failed", C::NAME);
                c.queue().add_after(key.clone(), delay);
            }
        }
        drop(failures);
        c.queue().done(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5ms_to_30s() {
        assert_eq!(backoff(1), Duration::from_millis(10));
        assert_eq!(backoff(2), Duration::from_millis(20));
        assert_eq!(backoff(12), Duration::from_millis(20_480));
        assert_eq!(backoff(13), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(30));
    }
}
