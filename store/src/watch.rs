//! Watchers: a replay of the event log followed by the live broadcast.
//!
//! Invariants:
//! - The watcher subscribes to the broadcast *before* opening the read snapshot it replays
//!   from, so every revision is either in the snapshot (`<= replay_end`) or arrives live.
//! - `cursor` is the highest revision already examined (delivered or filtered out); live
//!   events at or below it are skipped, so there are neither gaps nor duplicates.
//! - Replay reads the log in chunks of [`REPLAY_CHUNK`] from its own snapshot, so compaction
//!   meanwhile cannot punch holes into it and memory stays bounded.
//! - A watcher that falls more than `watch_buffer` events behind the live broadcast goes back
//!   to the event log: it resubscribes (at the tail) and then replays `(cursor, now]` from a
//!   fresh snapshot, so the broadcast ring is only a fast path and can stay small. Only when
//!   the log no longer holds `cursor + 1` (compacted) does it get `Err(Expired)` once and end;
//!   it never buffers without bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use redb::{ReadOnlyTable, ReadableDatabase};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::codec;

use crate::db::{self, EVENTS};
use crate::store::Shared;
use crate::{Event, Revision, StoreError};

/// Events read from the log per step of a replay.
const REPLAY_CHUNK: usize = 256;

/// The part of the event log a watcher still has to replay.
pub(crate) struct Replay {
    /// The event table as of the watcher's snapshot.
    pub(crate) events: ReadOnlyTable<u64, &'static [u8]>,
    /// The snapshot's revision; live events above it follow the replay.
    pub(crate) end: Revision,
}

/// A stream of events for keys under a prefix, in revision order.
pub struct Watcher {
    prefix: String,
    cursor: Revision,
    replay: Option<Replay>,
    pending: VecDeque<Event>,
    live: broadcast::Receiver<Arc<Event>>,
    oldest: Arc<AtomicU64>,
    /// The store, to replay from the log after lagging; gone once the store is dropped.
    shared: Weak<Shared>,
    ended: bool,
}

impl Watcher {
    pub(crate) fn new(
        prefix: &str,
        from: Revision,
        replay: Option<Replay>,
        live: broadcast::Receiver<Arc<Event>>,
        oldest: Arc<AtomicU64>,
        shared: Weak<Shared>,
    ) -> Self {
        Watcher {
            prefix: prefix.to_owned(),
            cursor: from,
            replay,
            pending: VecDeque::new(),
            live,
            oldest,
            shared,
            ended: false,
        }
    }

    /// After lagging behind the broadcast: resubscribes, then replays from the log what was
    /// missed. `Err(Expired)` when the log was compacted past the cursor.
    fn catch_up_from_log(&mut self) -> Result<(), StoreError> {
        let expired = |oldest| StoreError::Expired {
            requested: self.cursor,
            oldest,
        };
        let Some(shared) = self.shared.upgrade() else {
            return Err(StoreError::Closed);
        };
        // Subscribe before the snapshot, as a new watcher does (module invariants).
        self.live = self.live.resubscribe();
        let txn = shared.db.begin_read()?;
        let (current, oldest) = db::read_meta(&txn)?;
        if self.cursor < oldest {
            return Err(expired(oldest));
        }
        if self.cursor < current {
            self.replay = Some(Replay {
                events: txn.open_table(EVENTS)?,
                end: current,
            });
        }
        Ok(())
    }

    /// The next event. `Some(Err(Expired))` once if this watcher fell too far behind (the
    /// caller should relist), `Some(Err(_))` once on a read error, and `None` after either or
    /// when the store shuts down. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(Ok(ev));
            }
            if self.ended {
                return None;
            }
            if self.replay.is_some() {
                if let Err(e) = self.replay_chunk() {
                    self.ended = true;
                    return Some(Err(e));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(ev) => {
                    if ev.revision <= self.cursor {
                        continue;
                    }
                    self.cursor = ev.revision;
                    if ev.kv.key.starts_with(&self.prefix) {
                        return Some(Ok(Event::clone(&ev)));
                    }
                }
                Err(RecvError::Lagged(_)) => match self.catch_up_from_log() {
                    Ok(()) => continue,
                    Err(StoreError::Closed) => {
                        self.ended = true;
                        return None;
                    }
                    Err(StoreError::Expired { requested, oldest }) => {
                        self.ended = true;
                        return Some(Err(StoreError::Expired {
                            requested,
                            oldest: oldest.max(self.oldest.load(Ordering::Acquire)),
                        }));
                    }
                    Err(e) => {
                        self.ended = true;
                        return Some(Err(e));
                    }
                },
                Err(RecvError::Closed) => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    /// Moves up to [`REPLAY_CHUNK`] log records past `cursor` into `pending`; drops the
    /// snapshot once the replay reaches its end.
    fn replay_chunk(&mut self) -> Result<(), StoreError> {
        let Some(replay) = &self.replay else {
            return Ok(());
        };
        let end = replay.end;
        if self.cursor < end {
            let mut seen = 0;
            for entry in replay.events.range((self.cursor + 1)..=end)? {
                let (rev, raw) = entry?;
                let (rev, raw) = (rev.value(), raw.value());
                if codec::event_key(raw)?.starts_with(&self.prefix) {
                    self.pending.push_back(codec::decode_event(rev, raw)?);
                }
                self.cursor = rev;
                seen += 1;
                if seen == REPLAY_CHUNK {
                    break;
                }
            }
            if seen < REPLAY_CHUNK {
                self.cursor = end;
            }
        }
        if self.cursor >= end {
            self.replay = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::testutil::{create, mem, obj};
    use crate::{EventType, Store, StoreConfig, StoreError, WriteOp};

    fn with(buffer: usize, history: Duration) -> Store {
        Store::open(StoreConfig {
            watch_buffer: buffer,
            history,
            ..Default::default()
        })
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replay_then_live_without_gaps_or_duplicates() {
        let s = mem();
        for i in 0..700 {
            s.write(create(&format!("/a/{i}"))).await.unwrap();
        }
        let mut w = s.watch("/a/", 100).unwrap();
        // Writers race with the replay.
        let writer = {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 700..1000 {
                    s.write(create(&format!("/a/{i}"))).await.unwrap();
                }
            })
        };
        let mut want = 101;
        while want <= 1000 {
            let ev = w.next().await.unwrap().unwrap();
            assert_eq!(ev.revision, want);
            assert_eq!(ev.kind, EventType::Added);
            want += 1;
        }
        writer.await.unwrap();
        s.write(create("/a/last")).await.unwrap();
        assert_eq!(w.next().await.unwrap().unwrap().revision, 1001);
    }

    #[tokio::test]
    async fn prefix_filters_replay_and_live() {
        let s = mem();
        for i in 0..300 {
            let p = if i % 3 == 0 { "/x/" } else { "/y/" };
            s.write(create(&format!("{p}{i}"))).await.unwrap();
        }
        let mut w = s.watch("/x/", 0).unwrap();
        s.write(create("/y/live")).await.unwrap();
        s.write(create("/x/live")).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 101 {
            got.push(w.next().await.unwrap().unwrap());
        }
        assert!(got.iter().all(|e| e.kv.key.starts_with("/x/")));
        assert!(got.windows(2).all(|p| p[0].revision < p[1].revision));
        assert_eq!(got.last().unwrap().kv.key, "/x/live");
        assert_eq!(got.last().unwrap().revision, 302);
    }

    #[tokio::test]
    async fn watch_from_current_sees_only_new_events() {
        let s = mem();
        s.write(create("/a")).await.unwrap();
        let mut w = s.watch("/", s.revision()).unwrap();
        s.write(WriteOp::Update {
            key: "/a".into(),
            value: obj("b"),
            expected: Some(1),
        })
        .await
        .unwrap();
        let ev = w.next().await.unwrap().unwrap();
        assert_eq!((ev.kind, ev.revision), (EventType::Modified, 2));
    }

    #[tokio::test]
    async fn lagging_watcher_catches_up_from_the_log() {
        let s = with(4, Duration::from_secs(300));
        let mut w = s.watch("/", 0).unwrap();
        for i in 0..20 {
            s.write(create(&format!("/{i}"))).await.unwrap();
        }
        // Far more than the 4-slot broadcast: every event still arrives, once, in order.
        for want in 1..=20 {
            let ev = w.next().await.unwrap().unwrap();
            assert_eq!(
                (ev.revision, ev.kv.key.as_str()),
                (want, format!("/{}", want - 1).as_str())
            );
        }
        s.write(create("/live")).await.unwrap();
        assert_eq!(w.next().await.unwrap().unwrap().revision, 21);
    }

    #[tokio::test]
    async fn lagging_watcher_past_compaction_gets_expired_once() {
        let s = with(4, Duration::ZERO);
        let mut w = s.watch("/", 0).unwrap();
        for i in 0..20 {
            s.write(create(&format!("/{i}"))).await.unwrap();
        }
        assert_eq!(s.compact().await.unwrap(), 20);
        match w.next().await {
            Some(Err(StoreError::Expired {
                requested: 0,
                oldest: 20,
            })) => {}
            other => panic!("expected Expired, got {other:?}"),
        }
        assert!(w.next().await.is_none());
        // A new watcher is fine.
        let mut w2 = s.watch("/", 20).unwrap();
        s.write(create("/new")).await.unwrap();
        assert_eq!(w2.next().await.unwrap().unwrap().revision, 21);
    }

    #[tokio::test]
    async fn compaction_expires_old_revisions() {
        let s = with(100, Duration::ZERO);
        for i in 0..10 {
            s.write(create(&format!("/{i}"))).await.unwrap();
        }
        // A watcher replaying from before compaction keeps its snapshot.
        let mut early = s.watch("/", 2).unwrap();
        // History zero: everything committed up to now (same millisecond included) goes.
        assert_eq!(s.compact().await.unwrap(), 10);
        assert_eq!(s.oldest_revision(), 10);
        match s.watch("/", 5) {
            Err(StoreError::Expired {
                requested: 5,
                oldest: 10,
            }) => {}
            Err(e) => panic!("expected Expired, got {e:?}"),
            Ok(_) => panic!("expected Expired, got a watcher"),
        }
        assert!(matches!(s.watch("/", 0), Err(StoreError::Expired { .. })));
        let mut w = s.watch("/", 10).unwrap();
        s.write(create("/after")).await.unwrap();
        assert_eq!(w.next().await.unwrap().unwrap().revision, 11);
        for want in 3..=11 {
            assert_eq!(early.next().await.unwrap().unwrap().revision, want);
        }
    }
}
