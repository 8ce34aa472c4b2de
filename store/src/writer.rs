//! The group-commit writer: one dedicated OS thread owns every write transaction.
//!
//! Invariants:
//! - Only this thread writes, so revisions are assigned in commit order without locks.
//! - A batch (up to [`MAX_BATCH`] queued operations) is applied in arrival order inside one
//!   redb write transaction; each operation checks its own preconditions against the
//!   transaction's state (so it sees earlier operations of the same batch), and a failing
//!   operation changes nothing and fails alone.
//! - Each successful operation gets the next revision and one event-log record; the revision
//!   counter is written in the same transaction, which commits with `Durability::Immediate`
//!   once per batch.
//! - Only after the commit returns are the revision counter published, events broadcast and
//!   callers answered, in that order: an acknowledged write is durable and visible to `get`,
//!   `list` and `watch`.
//! - Compaction runs on this thread too (redb has one writer at a time anyway).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redb::{Durability, ReadableTable, Table};
use tokio::sync::oneshot;

use crate::codec::{self, HEADER};
use crate::db::{EVENTS, META, META_OLDEST, META_REVISION, OBJECTS};
use crate::store::Shared;
use crate::{Event, EventType, KeyValue, Revision, StoreError, WriteOp, WriteResult};

/// Most operations committed in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Most event records one compaction pass deletes, so writers are never held up for long;
/// when reached, the next pass runs right after the next batch.
const MAX_COMPACT: usize = 50_000;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A request to the writer thread.
pub(crate) enum Command {
    /// Apply one write.
    Write {
        op: WriteOp,
        reply: Reply<WriteResult>,
    },
    /// Compact the event log now; answers the new oldest revision.
    Compact { reply: Reply<Revision> },
    /// Finish queued work and stop.
    Shutdown,
}

/// Writer-thread state.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    rx: Receiver<Command>,
    revision: Revision,
    history: Duration,
    compact_interval: Duration,
    next_compaction: Instant,
}

/// A successfully applied operation, waiting for the commit.
struct Applied {
    result: WriteResult,
    event: Event,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: Receiver<Command>,
        revision: Revision,
        history: Duration,
        compact_interval: Duration,
    ) -> Self {
        Writer {
            shared,
            rx,
            revision,
            history,
            compact_interval,
            next_compaction: Instant::now() + compact_interval,
        }
    }

    /// The thread's main loop; returns on `Shutdown` or when every sender is gone.
    pub(crate) fn run(mut self) {
        let mut deferred: Option<Command> = None;
        loop {
            let cmd = match deferred.take() {
                Some(cmd) => cmd,
                None => {
                    let wait = self
                        .next_compaction
                        .saturating_duration_since(Instant::now());
                    match self.rx.recv_timeout(wait) {
                        Ok(cmd) => cmd,
                        Err(RecvTimeoutError::Timeout) => {
                            self.compact_and_log();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            match cmd {
                Command::Write { op, reply } => {
                    let mut batch = vec![(op, reply)];
                    while batch.len() < MAX_BATCH {
                        match self.rx.try_recv() {
                            Ok(Command::Write { op, reply }) => batch.push((op, reply)),
                            Ok(other) => {
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_batch(batch);
                }
                Command::Compact { reply } => {
                    let _ = reply.send(self.compact());
                }
                Command::Shutdown => break,
            }
            if Instant::now() >= self.next_compaction {
                self.compact_and_log();
            }
        }
        // Ends every watcher's live stream.
        *self
            .shared
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.shared.snapshots.clear();
    }

    fn commit_batch(&mut self, batch: Vec<(WriteOp, Reply<WriteResult>)>) {
        let (ops, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.apply_and_commit(ops) {
            Ok(outcomes) => {
                self.shared.revision.store(self.revision, Ordering::Release);
                let mut events = Vec::with_capacity(outcomes.len());
                let results: Vec<_> = outcomes
                    .into_iter()
                    .map(|outcome| {
                        outcome.map(|applied| {
                            events.push(Arc::new(applied.event));
                            applied.result
                        })
                    })
                    .collect();
                if let Some(tx) = self
                    .shared
                    .events
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                {
                    for event in events {
                        // An error only means nobody is watching.
                        let _ = tx.send(event);
                    }
                }
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store: group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Applies `ops` in one transaction and commits it. The outer error fails the whole batch
    /// (nothing committed); inner errors are per-operation precondition failures.
    fn apply_and_commit(
        &mut self,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        let mut txn = self.shared.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let now_ms = unix_millis();
        let mut rev = self.revision;
        let mut outcomes = Vec::with_capacity(ops.len());
        {
            let mut objects = txn.open_table(OBJECTS)?;
            let mut events = txn.open_table(EVENTS)?;
            for op in ops {
                let outcome = apply(&mut objects, &mut events, op, rev + 1, now_ms)?;
                if outcome.is_ok() {
                    rev += 1;
                }
                outcomes.push(outcome);
            }
            if rev != self.revision {
                txn.open_table(META)?.insert(META_REVISION, rev)?;
            }
        }
        txn.commit()?;
        self.revision = rev;
        Ok(outcomes)
    }

    fn compact_and_log(&mut self) {
        if let Err(e) = self.compact() {
            tracing::warn!(error = %e, "store: event-log compaction failed");
        }
    }

    /// Deletes event-log records older than `history` and records the new oldest revision.
    fn compact(&mut self) -> Result<Revision, StoreError> {
        self.next_compaction = Instant::now() + self.compact_interval;
        self.shared.snapshots.purge(Instant::now());
        let history_ms = u64::try_from(self.history.as_millis()).unwrap_or(u64::MAX);
        let cutoff = unix_millis().saturating_sub(history_ms);
        let txn = self.shared.db.begin_write()?;
        let mut last = None;
        {
            let mut events = txn.open_table(EVENTS)?;
            for (n, entry) in events.iter()?.enumerate() {
                if n == MAX_COMPACT {
                    self.next_compaction = Instant::now();
                    break;
                }
                let (rev, raw) = entry?;
                if codec::event_time(raw.value())? > cutoff {
                    break;
                }
                last = Some(rev.value());
            }
            if let Some(last) = last {
                events.retain_in(..=last, |_, _| false)?;
                txn.open_table(META)?.insert(META_OLDEST, last)?;
            }
        }
        match last {
            Some(last) => {
                txn.commit()?;
                self.shared.oldest.store(last, Ordering::Release);
                tracing::debug!(oldest = last, "store: compacted event log");
                Ok(last)
            }
            None => {
                txn.abort()?;
                Ok(self.shared.oldest.load(Ordering::Acquire))
            }
        }
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

type Objects<'t> = Table<'t, &'static str, &'static [u8]>;
type Events<'t> = Table<'t, u64, &'static [u8]>;

/// Reads a key's current record as `(mod_revision, json copy)`.
fn current(objects: &Objects<'_>, key: &str) -> Result<Option<(Revision, Bytes)>, StoreError> {
    match objects.get(key)? {
        None => Ok(None),
        Some(guard) => {
            let (rev, json) = codec::split_object(guard.value())?;
            Ok(Some((rev, Bytes::copy_from_slice(json))))
        }
    }
}

fn check_expected(expected: Option<Revision>, current: Revision) -> Result<(), StoreError> {
    match expected {
        Some(e) if e != current => Err(StoreError::Conflict { current }),
        _ => Ok(()),
    }
}

/// Applies one operation at revision `rev`. The outer error is a storage failure (fails the
/// batch); the inner one a failed precondition or bad value (fails this operation only, and
/// nothing was written for it).
fn apply(
    objects: &mut Objects<'_>,
    events: &mut Events<'_>,
    op: WriteOp,
    rev: Revision,
    now_ms: u64,
) -> Result<Result<Applied, StoreError>, StoreError> {
    // Work out the change first; the table is touched only once nothing can fail but storage.
    // `record` is what to store under the key (`None` = remove it).
    let (kind, key, record, value, prev) = match op {
        WriteOp::Create { key, mut value } => {
            if objects.get(key.as_str())?.is_some() {
                return Ok(Err(StoreError::AlreadyExists));
            }
            let record = match codec::encode_object(rev, &mut value) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let value = record.slice(HEADER..);
            (EventType::Added, key, Some(record), value, None)
        }
        WriteOp::Update {
            key,
            mut value,
            expected,
        } => {
            let Some((cur, prev)) = current(objects, &key)? else {
                return Ok(Err(StoreError::NotFound));
            };
            if let Err(e) = check_expected(expected, cur) {
                return Ok(Err(e));
            }
            let record = match codec::encode_object(rev, &mut value) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let value = record.slice(HEADER..);
            (EventType::Modified, key, Some(record), value, Some(prev))
        }
        WriteOp::Delete { key, expected } => {
            let Some((cur, prev)) = current(objects, &key)? else {
                return Ok(Err(StoreError::NotFound));
            };
            if let Err(e) = check_expected(expected, cur) {
                return Ok(Err(e));
            }
            let last = match codec::restamp(rev, &prev) {
                Ok(j) => j,
                Err(e) => return Ok(Err(e)),
            };
            (EventType::Deleted, key, None, last, Some(prev))
        }
    };
    let raw_event = match codec::encode_event(kind, now_ms, &key, prev.as_deref(), &value) {
        Ok(raw) => raw,
        Err(e) => return Ok(Err(e)),
    };
    match &record {
        Some(record) => {
            objects.insert(key.as_str(), &record[..])?;
        }
        None => {
            objects.remove(key.as_str())?;
        }
    }
    events.insert(rev, &raw_event[..])?;
    let kv = KeyValue {
        key,
        value,
        mod_revision: rev,
    };
    Ok(Ok(Applied {
        event: Event {
            kind,
            kv: kv.clone(),
            prev,
            revision: rev,
        },
        result: WriteResult { revision: rev, kv },
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;

    use crate::testutil::{create, mem, obj, rv};
    use crate::{EventType, StoreError, WriteOp};

    #[tokio::test]
    async fn create_twice_is_already_exists() {
        let s = mem();
        let r = s.write(create("/a")).await.unwrap();
        assert_eq!(r.revision, 1);
        assert!(matches!(
            s.write(create("/a")).await,
            Err(StoreError::AlreadyExists)
        ));
        assert_eq!(s.revision(), 1, "a failed op does not consume a revision");
    }

    #[tokio::test]
    async fn update_cas_and_not_found() {
        let s = mem();
        let c = s.write(create("/a")).await.unwrap();
        let upd = |expected| WriteOp::Update {
            key: "/a".into(),
            value: obj("a2"),
            expected,
        };
        let u = s.write(upd(Some(c.revision))).await.unwrap();
        assert_eq!(u.revision, 2);
        assert_eq!(rv(&u.kv.value), "2");
        match s.write(upd(Some(c.revision))).await {
            Err(StoreError::Conflict { current }) => assert_eq!(current, 2),
            other => panic!("expected conflict, got {other:?}"),
        }
        s.write(upd(None)).await.unwrap(); // unconditional update
        let missing = WriteOp::Update {
            key: "/nope".into(),
            value: obj("x"),
            expected: None,
        };
        assert!(matches!(s.write(missing).await, Err(StoreError::NotFound)));
        assert_eq!(s.get("/a").unwrap().unwrap().mod_revision, 3);
    }

    #[tokio::test]
    async fn delete_returns_last_state_stamped_with_delete_revision() {
        let s = mem();
        s.write(create("/a")).await.unwrap();
        let del = |expected| WriteOp::Delete {
            key: "/a".into(),
            expected,
        };
        assert!(matches!(
            s.write(del(Some(7))).await,
            Err(StoreError::Conflict { current: 1 })
        ));
        let d = s.write(del(Some(1))).await.unwrap();
        assert_eq!(d.revision, 2);
        assert_eq!(d.kv.mod_revision, 2);
        assert_eq!(rv(&d.kv.value), "2");
        assert!(s.get("/a").unwrap().is_none());
        assert!(matches!(
            s.write(del(None)).await,
            Err(StoreError::NotFound)
        ));
        // The key can be created again.
        assert_eq!(s.write(create("/a")).await.unwrap().revision, 3);
    }

    #[tokio::test]
    async fn stamping_and_invalid_values() {
        let s = mem();
        let mut v = obj("a");
        v["metadata"]["resourceVersion"] = json!("999");
        let r = s
            .write(WriteOp::Create {
                key: "/a".into(),
                value: v,
            })
            .await
            .unwrap();
        let got = s.get("/a").unwrap().unwrap();
        assert_eq!(got.mod_revision, r.revision);
        assert_eq!(rv(&got.value), r.revision.to_string());
        assert_eq!(got.value, r.kv.value);
        for bad in [json!("x"), json!({"spec": {}}), json!({"metadata": []})] {
            let op = WriteOp::Create {
                key: "/b".into(),
                value: bad,
            };
            assert!(matches!(
                s.write(op).await,
                Err(StoreError::InvalidValue(_))
            ));
        }
        assert_eq!(s.revision(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_32_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::Store::open(crate::StoreConfig {
            path: Some(dir.path().join("db/k1s.redb")),
            ..Default::default()
        })
        .unwrap();
        let mut tasks = Vec::new();
        for w in 0..32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..40 {
                    revs.push(
                        s.write(create(&format!("/w{w}/{i}")))
                            .await
                            .unwrap()
                            .revision,
                    );
                }
                revs
            }));
        }
        let mut all = HashSet::new();
        for t in tasks {
            let revs = t.await.unwrap();
            assert!(revs.windows(2).all(|w| w[0] < w[1]), "per-writer order");
            all.extend(revs);
        }
        assert_eq!(all.len(), 32 * 40);
        assert_eq!(all.iter().max(), Some(&(32 * 40)));
        assert_eq!(s.revision(), 32 * 40);
        assert_eq!(s.count("/w").unwrap(), 32 * 40);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_creates_of_one_key_fail_alone() {
        let s = mem();
        let mut tasks = Vec::new();
        for i in 0..32 {
            let s = s.clone();
            let key = if i % 2 == 0 {
                "/same".to_owned()
            } else {
                format!("/own/{i}")
            };
            tasks.push(tokio::spawn(async move { s.write(create(&key)).await }));
        }
        let (mut ok_same, mut exists) = (0, 0);
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(r) if r.kv.key == "/same" => ok_same += 1,
                Ok(_) => assert_eq!(i % 2, 1),
                Err(StoreError::AlreadyExists) => exists += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((ok_same, exists), (1, 15));
        assert_eq!(s.revision(), 17);
    }

    #[tokio::test]
    async fn events_carry_previous_values() {
        let s = mem();
        let mut w = s.watch("/", 0).unwrap();
        s.write(create("/a")).await.unwrap();
        s.write(WriteOp::Update {
            key: "/a".into(),
            value: obj("b"),
            expected: None,
        })
        .await
        .unwrap();
        s.write(WriteOp::Delete {
            key: "/a".into(),
            expected: None,
        })
        .await
        .unwrap();
        let e1 = w.next().await.unwrap().unwrap();
        let e2 = w.next().await.unwrap().unwrap();
        let e3 = w.next().await.unwrap().unwrap();
        assert_eq!(
            (e1.kind, e2.kind, e3.kind),
            (EventType::Added, EventType::Modified, EventType::Deleted)
        );
        assert!(e1.prev.is_none());
        assert_eq!(e2.prev.as_ref(), Some(&e1.kv.value));
        assert_eq!(e3.prev.as_ref(), Some(&e2.kv.value));
        assert_eq!(rv(&e3.kv.value), "3");
    }
}
