//! Deleting an item run's keyspace so that its files go, disk space and descriptors with them.
//!
//! fjall deletes a keyspace's folder once the last handle to it is dropped, but the
//! descriptors of its tables stay in the database's descriptor cache (shared by every
//! keyspace, bounded by [`super::TableOptions::open_files`]) until the cache evicts them: the
//! files are unlinked, their disk space is not given back, and the cache holds descriptors
//! nothing will read again. A table that leaves a tree through a compaction is marked
//! deleted, which closes its cached descriptor and unlinks it once no reader holds it;
//! dropping a tree's whole key range does that for every table of the run, so a run is
//! emptied that way before its keyspace is deleted.
//!
//! Invariants:
//! - A run is retired only once the manifest no longer names it and no reader can start
//!   reading it (see [`super::runs::RunStore::iters`]); a reader already reading it keeps its
//!   tables until it is done.
//! - Memtables of the run still being flushed are waited for (up to [`FLUSH_WAIT`]), so no
//!   table appears in it after it was emptied.

use std::time::{Duration, Instant};

use fjall::{AbstractTree, Database, Keyspace};

/// The longest [`retire`] waits for the run's sealed memtables to be flushed.
pub const FLUSH_WAIT: Duration = Duration::from_secs(10);

/// Drops every table of `keyspace`, then deletes the keyspace.
///
/// # Errors
/// A storage error; the keyspace is then left as it was or empty, and a run the manifest no
/// longer names is deleted again at the next open.
pub fn retire(db: &Database, keyspace: Keyspace) -> fjall::Result<()> {
    let started = Instant::now();
    while keyspace.sealed_memtable_count() > 0 && started.elapsed() < FLUSH_WAIT {
        std::thread::sleep(Duration::from_millis(2));
    }
    keyspace.tree.drop_range::<&[u8], _>(..)?;
    let left = keyspace.table_count();
    if left > 0 {
        tracing::warn!(
            keyspace = %keyspace.name(),
            tables = left,
            "tables of a retired item run were not dropped (a flush or compaction was under \
             way); their files go once the descriptor cache evicts them"
        );
    }
    db.delete_keyspace(keyspace)
}
