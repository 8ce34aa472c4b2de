//! Watchers: a replay of the event log followed by the live broadcast.
//!
//! Invariants:
//! - The watcher subscribes to the broadcast *before* opening the read snapshot it replays
//!   from, so every revision is either in the snapshot (`<= replay_end`) or arrives live.
//! - `cursor` is the highest revision already examined (delivered or filtered out); live
//!   events at or below it are skipped, so there are neither gaps nor duplicates.
//! - Replay reads the log in chunks of [`REPLAY_CHUNK`] from its own snapshot, so compaction
//!   meanwhile cannot punch holes into it and memory stays bounded.
//! - A watcher that falls more than `watch_buffer` events behind gets `Err(Expired)` once and
//!   then ends; it never buffers without bound.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::ReadOnlyTable;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::codec;
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
    ended: bool,
}

impl Watcher {
    pub(crate) fn new(
        prefix: &str,
        from: Revision,
        replay: Option<Replay>,
        live: broadcast::Receiver<Arc<Event>>,
        oldest: Arc<AtomicU64>,
    ) -> Self {
        Watcher {
            prefix: prefix.to_owned(),
            cursor: from,
            replay,
            pending: VecDeque::new(),
            live,
            oldest,
            ended: false,
        }
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
                Err(RecvError::Lagged(_)) => {
                    self.ended = true;
                    return Some(Err(StoreError::Expired {
                        requested: self.cursor,
                        oldest: self.oldest.load(Ordering::Acquire),
                    }));
                }
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
