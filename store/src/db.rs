//! redb tables and database opening.
//!
//! Invariants:
//! - `objects` maps a key to an object record (see [`crate::codec`]).
//! - `events` maps every revision in `(oldest, revision]` to its event record; there is exactly
//!   one event per revision because every successful write gets its own revision.
//! - `meta["revision"]` is the latest committed revision and `meta["oldest"]` the highest
//!   compacted revision; both change in the same transaction as the data they describe.
//! - All three tables exist after [`open`], so readers never see "table does not exist".

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};

use crate::{Revision, StoreConfig, StoreError};

/// Key → object record.
pub(crate) const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// Revision → event record.
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Counters.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `meta` key of the latest committed revision.
pub(crate) const META_REVISION: &str = "revision";
/// `meta` key of the highest compacted revision (a watch may start at or after it).
pub(crate) const META_OLDEST: &str = "oldest";

/// redb page-cache size: modest, so the server stays small (it fills up under load and is held;
/// pages it misses come from the OS page cache).
const CACHE_BYTES: usize = 8 * 1024 * 1024;

/// What [`open`] found.
pub(crate) struct Opened {
    pub db: Database,
    pub revision: Revision,
    pub oldest: Revision,
}

/// Opens (or creates) the database and makes sure every table exists.
pub(crate) fn open(cfg: &StoreConfig) -> Result<Opened, StoreError> {
    let mut builder = Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    let db = match &cfg.path {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            builder.create(path)?
        }
        None => builder.create_with_backend(redb::backends::InMemoryBackend::new())?,
    };
    let txn = db.begin_write()?;
    create_tables(&txn)?;
    txn.commit()?;
    let (revision, oldest) = read_meta(&db.begin_read()?)?;
    Ok(Opened {
        db,
        revision,
        oldest,
    })
}

fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(OBJECTS)?;
    txn.open_table(EVENTS)?;
    txn.open_table(META)?;
    Ok(())
}

/// Reads `(revision, oldest)` as of `txn`'s snapshot.
pub(crate) fn read_meta(txn: &ReadTransaction) -> Result<(Revision, Revision), StoreError> {
    let meta = txn.open_table(META)?;
    let get = |k| -> Result<Revision, StoreError> { Ok(meta.get(k)?.map_or(0, |g| g.value())) };
    Ok((get(META_REVISION)?, get(META_OLDEST)?))
}
