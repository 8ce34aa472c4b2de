//! Plain data types of the store's interface.
//!
//! Invariants: a [`KeyValue`]'s `value` is the object's JSON whose `metadata.resourceVersion`
//! is the decimal string of `mod_revision`.

use bytes::Bytes;

/// A global, monotonically increasing revision; every successful write gets the next one.
/// Revision 0 means "nothing written yet".
pub type Revision = u64;

/// One stored object.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/core/pods/default/web`.
    pub key: String,
    /// The object's JSON with `metadata.resourceVersion` stamped.
    pub value: Bytes,
    /// The revision of the write that produced this value.
    pub mod_revision: Revision,
}

/// A write operation; each successful one gets its own revision.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// Create `key`; fails with `AlreadyExists` if it exists.
    Create {
        /// The key to create.
        key: String,
        /// The object; must be a JSON object with a `metadata` object.
        value: serde_json::Value,
    },
    /// Replace `key`; fails with `NotFound` if absent, with `Conflict` if `expected` is given
    /// and differs from the key's current `mod_revision`.
    Update {
        /// The key to replace.
        key: String,
        /// The new object; must be a JSON object with a `metadata` object.
        value: serde_json::Value,
        /// The `mod_revision` the caller last saw, if it wants compare-and-swap.
        expected: Option<Revision>,
    },
    /// Remove `key`; `NotFound` and `Conflict` as for `Update`.
    Delete {
        /// The key to remove.
        key: String,
        /// The `mod_revision` the caller last saw, if it wants compare-and-swap.
        expected: Option<Revision>,
    },
}

impl WriteOp {
    /// The key this operation writes.
    pub fn key(&self) -> &str {
        match self {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        }
    }
}

/// The outcome of a successful write.
#[derive(Clone, Debug)]
pub struct WriteResult {
    /// The revision this write committed at.
    pub revision: Revision,
    /// The new state; for a delete, the last state stamped with the delete's revision.
    pub kv: KeyValue,
}

/// Options of [`Store::list`](crate::Store::list).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Maximum number of items in this page; `None` or `Some(0)` means all.
    pub limit: Option<usize>,
    /// Continue a previous paged list.
    pub continue_from: Option<Continue>,
    /// Serve exactly this snapshot revision (`resourceVersionMatch=Exact`); `None` = latest.
    pub revision: Option<Revision>,
}

/// Where a paged list continues: the snapshot revision and the last key returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Continue {
    /// The snapshot revision of the first page.
    pub revision: Revision,
    /// The last key returned; the next page starts after it.
    pub start_after: String,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ListResult {
    /// Items in lexicographic key order.
    pub items: Vec<KeyValue>,
    /// The snapshot revision the page was read at.
    pub revision: Revision,
    /// Set when more items follow.
    pub next: Option<Continue>,
    /// Items left after this page; only set together with `next`, and only when counting them
    /// was cheap (bounded scan).
    pub remaining: Option<u64>,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The key was created.
    Added,
    /// The key was updated.
    Modified,
    /// The key was deleted.
    Deleted,
}

/// One change, as delivered to watchers.
#[derive(Clone, Debug)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The new state; for `Deleted`, the last state stamped with the delete's revision.
    pub kv: KeyValue,
    /// The previous value (`Modified` and `Deleted`), for selector filtering.
    pub prev: Option<Bytes>,
    /// The revision of the change (equal to `kv.mod_revision`).
    pub revision: Revision,
}
