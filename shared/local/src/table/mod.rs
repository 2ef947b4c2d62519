//! [`ItemTable`] on an LSM tree (`<data>/local/table/`, a fjall database).
//!
//! Why an LSM tree: the pipeline's table is written far more than it is read, and its keys
//! (series, time) arrive interleaved across thousands of series. A copy-on-write B-tree
//! rewrites one leaf page per series touched by every transaction; an LSM tree appends the
//! batch to its journal, inserts it into a memtable and sorts it onto disk in the
//! background, so a write costs the journal append and the memtable insert.
//!
//! Layout (keyspaces of the one database):
//! - `schemas`: table name → JSON [`TableSchema`], written by `ensure_table`.
//! - The item runs `items`, `items-<n>`, ... (see [`runs`]: items split by arrival, merged in
//!   tiers; a read merges them, the newest run's item of a key winning) and `meta`, which
//!   lists them. In each run: key = [`keys::encode_str`]`(table)` ++ the [`keys`] encoding of
//!   (partition key, sort key) → the item in [`codec`]'s compact binary form. Every table's
//!   items share the prefix of its name, so a table is one contiguous key range of each run.
//!   No point-read filters (items are read by range only) and 16 level-0 tables per
//!   compaction (see [`L0_TABLES_PER_COMPACTION`]); fjall stores these settings with a
//!   keyspace when it creates it, so a database created by an earlier version keeps the ones
//!   it had for its first run.
//!
//! Modules: [`encode`] (batches encoded and validated), [`write`] (the write path), [`port`]
//! (the [`ItemTable`] methods; reads merge the runs), [`runs`] (runs, their manifest and the
//! merge thread), [`merge`] (the merge of the runs' iterators), [`retire`] (deleting a run
//! merged away), [`codec`] and [`keys`] (item and key encodings), [`import`] (the one-time
//! import of a `table.redb` of earlier versions).
//!
//! Invariants:
//! - A table exists once `ensure_table` committed its schema; a later `ensure_table` with a
//!   different schema fails and changes nothing.
//! - Every stored item carries its key attributes with the schema's types; `batch_put`
//!   validates all items first and writes them in one atomic write batch (all or nothing),
//!   a put replacing the item with the same key, so repeating a batch is idempotent.
//! - With [`Durability::Fsync`] a `batch_put` that returned `Ok` is in the journal and
//!   fdatasync'ed: it survives a crash (the journal is replayed on open).
//! - A batch of [`INGEST_MIN_ITEMS`] or more skips the journal and the memtables: its items
//!   are sorted (of equal keys the later put is kept) and written as a new table, fsynced and
//!   registered atomically before `batch_put` returns, whatever the durability setting. It
//!   is newer than every earlier write, so it wins over them as a later put does. Why:
//!   the pipeline writes batches of tens of thousands of items, and writing each item to the
//!   journal, a memtable skiplist and then a flushed table cost ~30% more CPU per item
//!   (DynamoDB consumer alone: 7.6-7.7 vs 11.3-11.5 CPU-us per event, with 40,000-item batches).
//! - Query results are in sort-key order: numeric for `N`, byte order for `S`; a key is
//!   read once, with its latest put, whichever runs hold it.
//! - A run is closed only while no write to it is under way; a merged run replaces its
//!   inputs in the manifest (fsynced) before they are deleted.
//! - Items are limited to [`MAX_ITEM_BYTES`] as DynamoDB limits them. Unlike DynamoDB's
//!   25-item BatchWriteItem, a whole `batch_put` is one write batch: nothing is left
//!   unprocessed.
//! - The database directory is locked: a second process opening it gets
//!   [`LocalError::InUse`].
//! - Descriptors: at most [`TableOptions::open_files`] table files are open at once (fjall's
//!   descriptor cache; a read of an evicted one opens it again). A run merged away is
//!   emptied before its keyspace is deleted, so its files leave the disk and the cache at
//!   once (see [`retire`]).
//! - Memory: no index or filter block is kept in memory outside the block cache
//!   ([`LsmItemTable::pinned_bytes`] is 0), so memory does not grow with the items held (a
//!   run created by an earlier version keeps the pinning it was created with until it is
//!   merged away). Memtables (the active one and those sealed, waiting to be sorted onto
//!   disk) hold at most about [`TableMemory::write_buffer_bytes`] plus one batch. The background worker
//!   seals and flushes memtables between compactions, so while it compacts they would grow;
//!   a `batch_put` finding them over the bound waits for the flush (up to
//!   [`WRITE_BUFFER_WAIT`], then writes anyway and logs a warning).

pub mod codec;
mod encode;
pub mod import;
pub mod keys;
mod merge;
mod port;
mod retire;
pub mod runs;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use encode::Encoded;
use fjall::compaction::Leveled;
use fjall::config::{BlockSizePolicy, FilterPolicy, PinningPolicy};
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use runs::{Merger, RunPolicy, RunStore};
use shardline_core::ports::TableSchema;
use shardline_core::{Error, Result};

use crate::db::Durability;
use crate::error::LocalError;

/// Largest stored item (DynamoDB's 400 KiB item limit, measured on the stored encoding).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// How much memory the table's memtables may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMemory {
    /// Memtable size of each item run's keyspace: a full memtable is sealed and sorted onto disk
    /// in the background while writes go on into a fresh one.
    pub memtable_bytes: u64,
    /// Bound on the active and sealed memtables together; writes wait beyond it.
    pub write_buffer_bytes: u64,
}

impl Default for TableMemory {
    fn default() -> Self {
        TableMemory {
            memtable_bytes: 16 * 1024 * 1024,
            // Above the 55-85 MiB the memtables reached while the worker compacted in
            // `pipeline_bench` (a lower bound, 40-48 MiB, slowed writes more than it saved).
            write_buffer_bytes: 96 * 1024 * 1024,
        }
    }
}

/// How the item table is opened: its caches and memory bounds, and when runs close and merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Block cache (decompressed data and index blocks), bytes.
    pub cache_bytes: u64,
    /// Memtable bounds.
    pub memory: TableMemory,
    /// When a run closes and how runs merge (see [`runs`]).
    pub runs: RunPolicy,
    /// Table files kept open at most (fjall's descriptor cache, shared by every run); a read
    /// of a table whose descriptor was evicted opens the file again. At least
    /// [`MIN_OPEN_FILES`].
    pub open_files: usize,
}

/// The smallest [`TableOptions::open_files`]: a read of a tier-0 run opens all its tables at
/// once (every one spans the whole key range), a run holding up to about a dozen.
pub const MIN_OPEN_FILES: usize = 16;

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            cache_bytes: 4 * 1024 * 1024,
            memory: TableMemory::default(),
            runs: RunPolicy::default(),
            open_files: 128,
        }
    }
}

/// Flushed tables that collect in level 0 of a run before they are merged into level 1
/// (a run normally closes before it has this many, see [`runs::RunPolicy`]; fjall's
/// default is 4; measured in `pipeline_bench`, DynamoDB consumer alone: 16 with no filters
/// took 11.9-12.4 CPU-us per item against 13.2-14.5 with the defaults, and 118-132 vs
/// 156-159 MiB peak RSS). The price is on reads, which merge up to this many level-0 tables:
/// a 250-item series query on 1M items took 0.62-0.82 ms instead of 0.41-0.59 (the filters
/// made no difference to it).
pub const L0_TABLES_PER_COMPACTION: u8 = 16;

/// Data block size of the item runs (fjall's default is 4 KiB).
pub const DATA_BLOCK_BYTES: u32 = 16 * 1024;

/// Batches of at least this many items bypass the journal and the memtables: they are
/// sorted and written as a new table of their own, durable (fsynced) when `batch_put` returns.
/// Smaller ones go through the journal, so a trickle of small batches does not become a
/// trickle of tiny tables for compaction to merge.
pub const INGEST_MIN_ITEMS: usize = 1024;

/// Encoded batches whose buffers are kept for later batches. A batch of tens of thousands of
/// items encodes into megabytes; allocated afresh for every batch, that memory goes back to the
/// OS when freed and costs a page fault per 4 KiB when touched again.
const SPARE_BATCHES: usize = 2;

/// Buffers larger than this are not kept (a rare huge batch does not pin its memory).
const SPARE_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// The longest a `batch_put` waits for memtables to be flushed below the bound.
pub const WRITE_BUFFER_WAIT: Duration = Duration::from_secs(30);

/// DynamoDB-style tables in an LSM-tree database.
#[derive(Clone)]
pub struct LsmItemTable {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    schemas: Keyspace,
    /// The item runs (see [`runs`]).
    runs: Arc<RunStore>,
    /// Merges runs in the background; stopped (and joined) when the table is dropped.
    merger: Merger,
    path: PathBuf,
    durability: Durability,
    memory: TableMemory,
    /// Committed schemas, loaded at open; writers of `schemas` hold the lock while they
    /// check and write, so two `ensure_table` calls cannot both create a table.
    known: RwLock<HashMap<String, TableSchema>>,
    create: Mutex<()>,
    ingesting: Mutex<()>,
    /// Buffers of written batches, see [`SPARE_BATCHES`].
    spare: Mutex<Vec<Encoded>>,
}

impl std::fmt::Debug for LsmItemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmItemTable")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn open_error(path: &Path, e: fjall::Error) -> LocalError {
    match e {
        fjall::Error::Locked => LocalError::InUse {
            path: path.to_path_buf(),
        },
        fjall::Error::Io(source) => LocalError::io(path, source),
        other => LocalError::Database {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

impl Inner {
    /// A storage error as a port error naming the database directory.
    fn error(&self, e: fjall::Error) -> Error {
        match e {
            fjall::Error::Io(source) => Error::io(&self.path, source),
            fjall::Error::Poisoned => Error::Unavailable(format!(
                "item table {}: an earlier write failed to reach the disk, so the database \
                 refuses writes until it is reopened (restart shardline)",
                self.path.display()
            )),
            other => Error::Internal(format!("item table {}: {other}", self.path.display())),
        }
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            file: self.path.clone(),
            offset: 0,
            detail,
        }
    }

    fn schema(&self, table: &str) -> Result<TableSchema> {
        let known = self.known.read().map_err(|_| poisoned_lock())?;
        known.get(table).cloned().ok_or_else(|| {
            Error::not_found(format!(
                "table {table:?} (create it with ensure_table first)"
            ))
        })
    }
}

fn poisoned_lock() -> Error {
    Error::Internal("item table schema lock poisoned by a panic".into())
}

impl LsmItemTable {
    /// The tiers of the table's runs, oldest first; the last is the open run (see [`runs`]).
    pub fn run_tiers(&self) -> Vec<u32> {
        self.inner.runs.tiers()
    }

    /// Merges the runs due for a merge now, on the calling thread (after a merge under way
    /// in the background); returns how many merges it did.
    ///
    /// # Errors
    /// A storage error; the runs stay as they were.
    pub fn merge_runs(&self) -> Result<usize> {
        self.inner.merger.settle()
    }

    /// Capacity of the table's block cache, in bytes.
    pub fn cache_capacity(&self) -> u64 {
        self.inner.db.cache_capacity()
    }

    /// Table files of every run now (each open file is one descriptor while cached, see
    /// [`TableOptions::open_files`]).
    pub fn table_files(&self) -> usize {
        self.inner.runs.table_files()
    }

    /// Bytes of index and filter blocks held in memory outside the block cache (none: see
    /// the module docs).
    pub fn pinned_bytes(&self) -> u64 {
        self.inner.runs.pinned_bytes()
    }

    /// Bytes the memtables (active and sealed) hold now.
    pub fn write_buffer_bytes(&self) -> u64 {
        self.inner.db.write_buffer_size()
    }

    /// Opens (creating if missing) the database directory `path`.
    ///
    /// # Errors
    /// [`LocalError::InUse`] when another process has it open; [`LocalError::Io`] or
    /// [`LocalError::Database`] when it cannot be created or recovered; [`LocalError::Port`]
    /// when a stored schema is damaged.
    pub fn open(path: &Path, durability: Durability, cache_bytes: u64) -> Result<Self, LocalError> {
        Self::open_with(path, durability, cache_bytes, TableMemory::default())
    }

    /// [`LsmItemTable::open`] with memtable sizes of its own.
    ///
    /// # Errors
    /// As [`LsmItemTable::open`]; [`LocalError::Port`] with
    /// [`Error::InvalidArgument`] when `write_buffer_bytes` is below `memtable_bytes`.
    pub fn open_with(
        path: &Path,
        durability: Durability,
        cache_bytes: u64,
        memory: TableMemory,
    ) -> Result<Self, LocalError> {
        Self::open_with_runs(path, durability, cache_bytes, memory, RunPolicy::default())
    }

    /// [`LsmItemTable::open_with`] with a run policy of its own (see [`runs`]).
    ///
    /// # Errors
    /// As [`LsmItemTable::open_with`]; [`LocalError::Port`] with [`Error::InvalidArgument`]
    /// when the policy is invalid.
    pub fn open_with_runs(
        path: &Path,
        durability: Durability,
        cache_bytes: u64,
        memory: TableMemory,
        policy: RunPolicy,
    ) -> Result<Self, LocalError> {
        let options = TableOptions {
            cache_bytes,
            memory,
            runs: policy,
            ..TableOptions::default()
        };
        Self::open_with_options(path, durability, options)
    }

    /// Opens (creating if missing) the database directory `path` with `options`.
    ///
    /// # Errors
    /// As [`LsmItemTable::open`]; [`LocalError::Port`] with [`Error::InvalidArgument`] naming
    /// the setting when `write_buffer_bytes` is below `memtable_bytes`, the run policy is
    /// invalid or `open_files` is below [`MIN_OPEN_FILES`].
    pub fn open_with_options(
        path: &Path,
        durability: Durability,
        options: TableOptions,
    ) -> Result<Self, LocalError> {
        let TableOptions {
            cache_bytes,
            memory,
            runs: policy,
            open_files,
        } = options;
        if memory.write_buffer_bytes < memory.memtable_bytes || memory.memtable_bytes == 0 {
            return Err(LocalError::Port(Error::InvalidArgument(format!(
                "item table memory: write_buffer_bytes ({}) must be at least memtable_bytes \
                 ({}), which must not be 0",
                memory.write_buffer_bytes, memory.memtable_bytes
            ))));
        }
        if open_files < MIN_OPEN_FILES {
            return Err(LocalError::Port(Error::InvalidArgument(format!(
                "item table open_files ({open_files}) must be at least {MIN_OPEN_FILES}: a \
                 read opens every table of a run at once"
            ))));
        }
        std::fs::create_dir_all(path).map_err(|e| LocalError::io(path, e))?;
        let db = Database::builder(path)
            .cache_size(cache_bytes)
            .max_cached_files(Some(open_files))
            // One background thread flushes memtables and compacts. With more, an idle
            // worker hands a compaction request back and forth while another compacts,
            // spinning a core.
            .worker_threads(1)
            .open()
            .map_err(|e| open_error(path, e))?;
        let schemas = db
            .keyspace("schemas", KeyspaceCreateOptions::default)
            .map_err(|e| open_error(path, e))?;
        let memtable_bytes = memory.memtable_bytes;
        let options: runs::Options = Arc::new(move || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(memtable_bytes)
                // Items are only read by range (a series' key prefix): point-read
                // filters would be built and written on every flush and compaction
                // and never consulted.
                .filter_policy(FilterPolicy::disabled())
                // 16 KiB data blocks instead of 4: a quarter of the index blocks (5M items:
                // peak RSS 212-235 instead of 244 MiB in `pipeline_bench`), and a series'
                // items span a few blocks either way.
                .data_block_size_policy(BlockSizePolicy::all(DATA_BLOCK_BYTES))
                // No index block stays in memory (fjall pins those of levels 0 and 1 by
                // default, most of a run): they are read through the block cache, so the
                // table's memory does not grow with the items it holds (one index entry
                // per 16 KiB block: tens of MiB after an hour at 20,000 items/s).
                .index_block_pinning_policy(PinningPolicy::all(false))
                .filter_block_pinning_policy(PinningPolicy::all(false))
                // Every flushed table spans the whole key range (writes interleave all
                // series), so each L0 -> L1 compaction rewrites L1; a run (see [`runs`])
                // closes before it holds this many tables, so fjall leaves it as written.
                .compaction_strategy(Arc::new(
                    Leveled::default().with_l0_threshold(L0_TABLES_PER_COMPACTION),
                ))
        });
        let store = Arc::new(
            RunStore::open(
                db.clone(),
                options,
                policy,
                &|e| Error::from(open_error(path, e)),
                &|detail| Error::Corrupt {
                    file: path.to_path_buf(),
                    offset: 0,
                    detail,
                },
            )
            .map_err(LocalError::Port)?,
        );
        let merger = Merger::start(store.clone()).map_err(LocalError::Port)?;
        let mut known = HashMap::new();
        for entry in schemas.iter() {
            let (name, raw) = entry.into_inner().map_err(|e| open_error(path, e))?;
            let schema: TableSchema = serde_json::from_slice(&raw).map_err(|e| {
                LocalError::Port(Error::Corrupt {
                    file: path.to_path_buf(),
                    offset: 0,
                    detail: format!(
                        "stored schema of table {:?} is not valid JSON: {e}",
                        String::from_utf8_lossy(&name)
                    ),
                })
            })?;
            known.insert(schema.name.clone(), schema);
        }
        Ok(LsmItemTable {
            inner: Arc::new(Inner {
                db,
                schemas,
                runs: store,
                merger,
                path: path.to_path_buf(),
                durability,
                memory,
                known: RwLock::new(known),
                create: Mutex::new(()),
                ingesting: Mutex::new(()),
                spare: Mutex::new(Vec::new()),
            }),
        })
    }
}
