//! The [`Store`] handle: reads on the caller's thread, writes through the writer thread.
//!
//! Invariants:
//! - `get`, `list` and `count` each read from one redb read transaction, i.e. one consistent
//!   snapshot; the snapshot's revision comes from the `meta` table of that same snapshot.
//! - `revision` (atomic) only ever increases, and is published after the commit it names.
//! - A paged list's snapshot is held in a bounded cache so later pages read the same
//!   snapshot; without it a page is served only if the store has not moved since.
//! - The last clone dropped (or `shutdown`) stops the writer after it commits queued writes.

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase};
use tokio::sync::{broadcast, oneshot};

use crate::codec;
use crate::db::{self, EVENTS, OBJECTS};
use crate::snapshots::{MAX_SNAPSHOTS, SNAPSHOT_TTL, Snapshots};
use crate::watch::{Replay, Watcher};
use crate::writer::{Command, Writer};
use crate::{
    Continue, Event, KeyValue, ListOptions, ListResult, Revision, StoreError, WriteOp, WriteResult,
};

/// Most keys scanned past a page to fill [`ListResult::remaining`].
const REMAINING_SCAN_CAP: u64 = 10_000;

/// How to open a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Database file; `None` keeps everything in memory (tests).
    pub path: Option<PathBuf>,
    /// How long the event log keeps events (watch history). Default 5 minutes.
    pub history: Duration,
    /// How often the event log is compacted. Default 60 seconds.
    pub compact_interval: Duration,
    /// Slots of the live broadcast ring (each holds an event's value and previous value). A
    /// watcher that falls further behind replays from the event log instead, so this bounds
    /// memory, not what watchers see. Default 2,048.
    pub watch_buffer: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            history: Duration::from_secs(5 * 60),
            compact_interval: Duration::from_secs(60),
            watch_buffer: 2_048,
        }
    }
}

/// State shared by handles, the writer thread and watchers.
pub(crate) struct Shared {
    pub(crate) db: Database,
    pub(crate) revision: AtomicU64,
    pub(crate) oldest: Arc<AtomicU64>,
    pub(crate) snapshots: Snapshots<Arc<ReadTransaction>>,
    /// Live events; `None` once the writer has stopped.
    pub(crate) events: Mutex<Option<broadcast::Sender<Arc<Event>>>>,
}

struct Inner {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn shutdown(&self) {
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = self.commands.send(Command::Shutdown);
            if handle.join().is_err() {
                tracing::error!("store: writer thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The key/value store: one global revision, CAS writes with group commit, snapshot lists and
/// watches. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens or creates the store (blocking) and starts its writer thread.
    pub fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        let opened = db::open(&cfg)?;
        let (events, _) = broadcast::channel(cfg.watch_buffer.max(1));
        let shared = Arc::new(Shared {
            db: opened.db,
            revision: AtomicU64::new(opened.revision),
            oldest: Arc::new(AtomicU64::new(opened.oldest)),
            snapshots: Snapshots::new(MAX_SNAPSHOTS, SNAPSHOT_TTL),
            events: Mutex::new(Some(events)),
        });
        let (commands, rx) = mpsc::channel();
        let writer = Writer::new(
            shared.clone(),
            rx,
            opened.revision,
            cfg.history,
            cfg.compact_interval,
        );
        let handle = std::thread::Builder::new()
            .name("k1s-store-writer".into())
            .spawn(move || writer.run())?;
        Ok(Store {
            inner: Arc::new(Inner {
                shared,
                commands,
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The latest committed revision (0 for an empty store).
    pub fn revision(&self) -> Revision {
        self.shared().revision.load(Ordering::Acquire)
    }

    /// The oldest revision a watch can start after.
    pub fn oldest_revision(&self) -> Revision {
        self.shared().oldest.load(Ordering::Acquire)
    }

    /// Reads one key.
    pub fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let txn = self.shared().db.begin_read()?;
        let objects = txn.open_table(OBJECTS)?;
        match objects.get(key)? {
            Some(raw) => Ok(Some(codec::decode_object(key, raw.value())?)),
            None => Ok(None),
        }
    }

    /// Lists keys starting with `prefix` in lexicographic order from one consistent snapshot,
    /// optionally paged (`limit`, `continue_from`) or at an exact revision.
    pub fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let (txn, revision) = self.snapshot_for(&opts)?;
        let limit = opts.limit.filter(|&n| n > 0);
        let start = match &opts.continue_from {
            Some(c) if c.start_after.as_str() >= prefix => Bound::Excluded(c.start_after.as_str()),
            _ => Bound::Included(prefix),
        };
        let objects = txn.open_table(OBJECTS)?;
        let mut iter = objects.range::<&str>((start, Bound::Unbounded))?;
        let mut items = Vec::with_capacity(limit.unwrap_or(64).min(4096));
        let mut more = false;
        for entry in iter.by_ref() {
            let (key, raw) = entry?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            if limit.is_some_and(|n| items.len() == n) {
                more = true;
                break;
            }
            items.push(codec::decode_object(key, raw.value())?);
        }
        let (next, remaining) = match (more, items.last()) {
            (true, Some(last)) => {
                // The entry that proved `more` is one of the remaining items.
                let mut left = 1u64;
                for entry in iter {
                    let (key, _) = entry?;
                    if !key.value().starts_with(prefix) {
                        break;
                    }
                    left += 1;
                    if left > REMAINING_SCAN_CAP {
                        break;
                    }
                }
                self.shared()
                    .snapshots
                    .put(revision, txn.clone(), Instant::now());
                let next = Continue {
                    revision,
                    start_after: last.key.clone(),
                };
                (Some(next), (left <= REMAINING_SCAN_CAP).then_some(left))
            }
            _ => (None, None),
        };
        Ok(ListResult {
            items,
            revision,
            next,
            remaining,
        })
    }

    /// Picks the read snapshot a list must use, with its revision.
    fn snapshot_for(
        &self,
        opts: &ListOptions,
    ) -> Result<(Arc<ReadTransaction>, Revision), StoreError> {
        let wanted = match (&opts.continue_from, opts.revision) {
            (Some(c), _) => Some((c.revision, true)),
            (None, Some(r)) => Some((r, false)),
            (None, None) => None,
        };
        if let Some((rev, _)) = wanted
            && let Some(txn) = self.shared().snapshots.get(rev, Instant::now())
        {
            return Ok((txn, rev));
        }
        let txn = Arc::new(self.shared().db.begin_read()?);
        let (current, oldest) = db::read_meta(&txn)?;
        match wanted {
            Some((rev, _)) if rev == current => Ok((txn, current)),
            Some((_, true)) => Err(StoreError::ContinueExpired),
            Some((rev, false)) => Err(StoreError::Expired {
                requested: rev,
                oldest,
            }),
            None => Ok((txn, current)),
        }
    }

    /// The changes to keys under `prefix` after revision `from`, up to the current revision, read
    /// from the event log in one snapshot: `Ok(Some((events, current)))`. `Ok(None)` when the log no
    /// longer holds `from + 1` (compacted) or more than `max_records` log records (of any key) lie
    /// after `from`; the caller then relists. Lets a cache of a small prefix catch up in time
    /// proportional to what changed, not to what is stored.
    pub fn changes_since(
        &self,
        prefix: &str,
        from: Revision,
        max_records: usize,
    ) -> Result<Option<(Vec<Event>, Revision)>, StoreError> {
        let txn = self.shared().db.begin_read()?;
        let (current, oldest) = db::read_meta(&txn)?;
        if from < oldest || from > current {
            return Ok(None);
        }
        if current - from > max_records as u64 {
            return Ok(None);
        }
        let events = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for entry in events.range((from + 1)..=current)? {
            let (rev, raw) = entry?;
            let (rev, raw) = (rev.value(), raw.value());
            if codec::event_key(raw)?.starts_with(prefix) {
                out.push(codec::decode_event(rev, raw)?);
            }
        }
        Ok(Some((out, current)))
    }

    /// Counts keys starting with `prefix`.
    pub fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let txn = self.shared().db.begin_read()?;
        let objects = txn.open_table(OBJECTS)?;
        let mut n = 0;
        for entry in objects.range::<&str>(prefix..)? {
            let (key, _) = entry?;
            if !key.value().starts_with(prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Applies one write; resolves once it is durably committed (group commit with other
    /// concurrent writes).
    pub async fn write(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        if let WriteOp::Create { value, .. } | WriteOp::Update { value, .. } = &op {
            codec::validate(value)?;
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Write { op, reply })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Compacts the event log now (it also runs every `compact_interval`); returns the new
    /// oldest revision.
    pub async fn compact(&self) -> Result<Revision, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Compact { reply })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Watches keys starting with `prefix`: every event with revision `> from`, in order.
    /// Fails with `Expired` if `from < oldest_revision()`, i.e. the history after `from` is
    /// no longer complete. `from == 0` is only accepted while nothing has been compacted.
    pub fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher, StoreError> {
        let live = self
            .shared()
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .ok_or(StoreError::Closed)?
            .subscribe();
        let txn = self.shared().db.begin_read()?;
        let (current, oldest) = db::read_meta(&txn)?;
        if from < oldest {
            return Err(StoreError::Expired {
                requested: from,
                oldest,
            });
        }
        let replay = if from < current {
            Some(Replay {
                events: txn.open_table(EVENTS)?,
                end: current,
            })
        } else {
            None
        };
        Ok(Watcher::new(
            prefix,
            from,
            replay,
            live,
            self.shared().oldest.clone(),
            Arc::downgrade(&self.inner.shared),
        ))
    }

    /// Commits queued writes and stops the writer; later writes fail with `Closed` and
    /// watchers end. Blocks until the writer has stopped. Idempotent.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventType;
    use crate::testutil::{create, mem, obj, rv};

    async fn fill(s: &Store, prefix: &str, n: usize) {
        for i in 0..n {
            s.write(create(&format!("{prefix}{i:04}"))).await.unwrap();
        }
    }

    #[tokio::test]
    async fn changes_since_returns_only_the_prefix_after_a_revision() {
        let s = mem();
        fill(&s, "/registry/core/services/a/", 2).await;
        let from = s.revision();
        fill(&s, "/registry/core/pods/a/", 3).await;
        s.write(create("/registry/core/services/a/x"))
            .await
            .unwrap();
        s.write(WriteOp::Delete {
            key: "/registry/core/services/a/0000".into(),
            expected: None,
        })
        .await
        .unwrap();
        let (events, current) = s
            .changes_since("/registry/core/services/", from, 100)
            .unwrap()
            .unwrap();
        assert_eq!(current, s.revision());
        let seen: Vec<_> = events
            .iter()
            .map(|e| (e.kind, e.kv.key.as_str(), e.revision))
            .collect();
        assert_eq!(
            seen,
            vec![
                (EventType::Added, "/registry/core/services/a/x", from + 4),
                (
                    EventType::Deleted,
                    "/registry/core/services/a/0000",
                    from + 5
                ),
            ]
        );
        // Nothing new: empty, at the same revision.
        let (none, again) = s
            .changes_since("/registry/core/services/", current, 100)
            .unwrap()
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(again, current);
        // Too many records to read, or a revision from the future: relist.
        assert!(
            s.changes_since("/registry/core/services/", from, 4)
                .unwrap()
                .is_none()
        );
        assert!(
            s.changes_since("/registry/core/services/", current + 1, 100)
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn list_is_prefix_scoped_and_ordered() {
        let s = mem();
        fill(&s, "/registry/core/pods/b/", 3).await;
        fill(&s, "/registry/core/pods/a/", 3).await;
        fill(&s, "/registry/core/podsx/", 2).await;
        let r = s
            .list("/registry/core/pods/", ListOptions::default())
            .unwrap();
        let keys: Vec<_> = r.items.iter().map(|kv| kv.key.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 6);
        assert_eq!(r.revision, 8);
        assert!(r.next.is_none());
        for kv in &r.items {
            assert_eq!(rv(&kv.value), kv.mod_revision.to_string());
        }
        assert_eq!(s.count("/registry/core/pods/").unwrap(), 6);
        assert_eq!(s.count("/registry/core/pods").unwrap(), 8);
        assert_eq!(s.count("/nothing").unwrap(), 0);
        assert!(
            s.list("/zzz", ListOptions::default())
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn paging_keeps_the_snapshot_across_writes() {
        let s = mem();
        fill(&s, "/p/", 10).await;
        let page = |c: Option<Continue>| {
            s.list(
                "/p/",
                ListOptions {
                    limit: Some(4),
                    continue_from: c,
                    revision: None,
                },
            )
            .unwrap()
        };
        let p1 = page(None);
        assert_eq!(p1.items.len(), 4);
        assert_eq!(p1.remaining, Some(6));
        let c1 = p1.next.clone().unwrap();
        assert_eq!(c1.revision, 10);
        assert_eq!(c1.start_after, "/p/0003");

        // Writes after the first page must not show up in later pages.
        s.write(create("/p/0005a")).await.unwrap();
        s.write(WriteOp::Delete {
            key: "/p/0009".into(),
            expected: None,
        })
        .await
        .unwrap();

        let p2 = page(Some(c1));
        assert_eq!(p2.revision, 10);
        assert_eq!(p2.remaining, Some(2));
        let p3 = page(p2.next.clone());
        assert!(p3.next.is_none());
        assert_eq!(p3.remaining, None);
        let keys: Vec<_> = p1
            .items
            .iter()
            .chain(&p2.items)
            .chain(&p3.items)
            .map(|kv| kv.key.clone())
            .collect();
        let want: Vec<_> = (0..10).map(|i| format!("/p/{i:04}")).collect();
        assert_eq!(keys, want);
    }

    #[tokio::test]
    async fn continue_without_held_snapshot() {
        let s = mem();
        fill(&s, "/p/", 3).await;
        let cont = |revision| ListOptions {
            limit: Some(1),
            continue_from: Some(Continue {
                revision,
                start_after: "/p/0000".into(),
            }),
            revision: None,
        };
        // Not held, but the store has not moved: served from a fresh snapshot.
        let r = s.list("/p/", cont(3)).unwrap();
        assert_eq!(r.items[0].key, "/p/0001");
        // Not held and the store moved on.
        assert!(matches!(
            s.list("/p/", cont(2)),
            Err(StoreError::ContinueExpired)
        ));
    }

    #[tokio::test]
    async fn list_at_exact_revision() {
        let s = mem();
        fill(&s, "/p/", 3).await;
        let at = |revision| ListOptions {
            revision: Some(revision),
            ..Default::default()
        };
        assert_eq!(s.list("/p/", at(3)).unwrap().items.len(), 3);
        // A paged list holds its snapshot, so it can be read again exactly.
        let first = s
            .list(
                "/p/",
                ListOptions {
                    limit: Some(1),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(first.next.is_some());
        s.write(create("/p/new")).await.unwrap();
        let old = s.list("/p/", at(3)).unwrap();
        assert_eq!((old.revision, old.items.len()), (3, 3));
        match s.list("/p/", at(1)) {
            Err(StoreError::Expired { requested: 1, .. }) => {}
            other => panic!("expected Expired, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn get_missing_and_present() {
        let s = mem();
        assert!(s.get("/a").unwrap().is_none());
        assert_eq!(s.revision(), 0);
        let w = s.write(create("/a")).await.unwrap();
        let kv = s.get("/a").unwrap().unwrap();
        assert_eq!(kv, w.kv);
    }

    #[tokio::test]
    async fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = || StoreConfig {
            path: Some(dir.path().join("nested/dir/k1s.redb")),
            ..Default::default()
        };
        {
            let s = Store::open(cfg()).unwrap();
            fill(&s, "/p/", 5).await;
            s.write(WriteOp::Update {
                key: "/p/0001".into(),
                value: obj("changed"),
                expected: Some(2),
            })
            .await
            .unwrap();
            s.shutdown();
        }
        let s = Store::open(cfg()).unwrap();
        assert_eq!(s.revision(), 6);
        assert_eq!(s.get("/p/0001").unwrap().unwrap().mod_revision, 6);
        assert_eq!(s.count("/p/").unwrap(), 5);
        // The event log survived too.
        let mut w = s.watch("/p/", 4).unwrap();
        assert_eq!(w.next().await.unwrap().unwrap().revision, 5);
        assert_eq!(w.next().await.unwrap().unwrap().revision, 6);
        assert_eq!(s.write(create("/p/x")).await.unwrap().revision, 7);
        assert_eq!(w.next().await.unwrap().unwrap().revision, 7);
    }

    #[tokio::test]
    async fn shutdown_closes_writes_and_watches() {
        let s = mem();
        let mut w = s.watch("/", 0).unwrap();
        s.write(create("/a")).await.unwrap();
        let clone = s.clone();
        s.shutdown();
        s.shutdown(); // idempotent
        assert!(matches!(
            clone.write(create("/b")).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(clone.watch("/", 1), Err(StoreError::Closed)));
        assert_eq!(w.next().await.unwrap().unwrap().revision, 1);
        assert!(w.next().await.is_none());
        // Reads still work on the closed handle.
        assert!(clone.get("/a").unwrap().is_some());
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_send<T: Send>() {}
        assert_send_sync::<Store>();
        assert_send::<crate::Watcher>();
    }
}
