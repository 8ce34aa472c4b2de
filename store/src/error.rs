//! Errors returned by the store.
//!
//! Invariants: every variant is cheap to clone (causes are behind `Arc`), because one failed
//! group commit has to answer every operation of its batch with the same error.

use std::sync::Arc;

use crate::Revision;

/// Everything that can go wrong in a store operation.
#[derive(thiserror::Error, Debug, Clone)]
#[non_exhaustive]
pub enum StoreError {
    /// The key does not exist.
    #[error("key not found")]
    NotFound,
    /// A create found the key already present.
    #[error("key already exists")]
    AlreadyExists,
    /// The expected revision of a precondition did not match the key's current `mod_revision`.
    #[error("revision conflict: the key is at revision {current}")]
    Conflict {
        /// The key's current `mod_revision`.
        current: Revision,
    },
    /// The requested revision is no longer available (compacted, or the watcher fell behind).
    #[error("revision {requested} is expired; the oldest available revision is {oldest}")]
    Expired {
        /// The revision the caller asked for (for a lagging watcher: the last one it saw).
        requested: Revision,
        /// The oldest revision a watch can start after.
        oldest: Revision,
    },
    /// The snapshot a paging continuation refers to is gone and the store has moved on.
    #[error("the continue token has expired")]
    ContinueExpired,
    /// The value is not a JSON object with a `metadata` object.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// The store has been shut down.
    #[error("the store is closed")]
    Closed,
    /// A stored record does not have the expected layout.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// An operating-system I/O error (creating directories, starting threads).
    #[error("I/O error: {0}")]
    Io(#[source] Arc<std::io::Error>),
    /// An error from the redb database.
    #[error("database error: {0}")]
    Database(#[source] Arc<redb::Error>),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(Arc::new(e))
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {
        $(impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(Arc::new(redb::Error::from(e)))
            }
        })*
    };
}

from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);
