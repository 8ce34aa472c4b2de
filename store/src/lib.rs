//! `k1s-store`: the redb-backed key/value store behind the k1s API server.
//!
//! Invariants:
//! - One global [`Revision`] counts successful writes; it is every object's `resourceVersion`
//!   (the store stamps `metadata.resourceVersion`, callers never do).
//! - An acknowledged [`Store::write`] is durable (fsync'd) and already visible to reads and
//!   watches.
//! - Watches see every change after their start revision exactly once, in order, or end with
//!   [`StoreError::Expired`] — never a silent gap.
//!
//! Modules: [`store`](Store) (handle, reads), `writer` (group commit, compaction), `watch`,
//! `codec` (record layouts), `db` (tables), `snapshots` (paging snapshots).

mod codec;
mod db;
mod error;
mod snapshots;
mod store;
mod types;
mod watch;
mod writer;

pub use error::StoreError;
pub use store::{Store, StoreConfig};
pub use types::{
    Continue, Event, EventType, KeyValue, ListOptions, ListResult, Revision, WriteOp, WriteResult,
};
pub use watch::Watcher;

#[cfg(test)]
mod testutil;
