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
//! - Memory: memtables (the active one and those sealed, waiting to be sorted onto disk) hold
//!   at most about [`TableMemory::write_buffer_bytes`] plus one batch. The background worker
//!   seals and flushes memtables between compactions, so while it compacts they would grow;
//!   a `batch_put` finding them over the bound waits for the flush (up to
//!   [`WRITE_BUFFER_WAIT`], then writes anyway and logs a warning).

pub mod codec;
pub mod import;
pub mod keys;
pub mod runs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fjall::compaction::Leveled;
use fjall::config::{BlockSizePolicy, FilterPolicy};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use runs::{Merger, RunPolicy, RunStore};
use shardline_core::ports::{
    AttrRef, AttributeValue, Item, ItemIter, ItemQuery, ItemSource, ItemTable, TableSchema,
};
use shardline_core::{Error, Result};

use crate::db::{Durability, blocking};
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

    /// Waits (blocking) while the memtables hold more than the bound, see the module docs.
    fn wait_for_write_buffer(&self) {
        let started = Instant::now();
        while self.db.write_buffer_size() > self.memory.write_buffer_bytes {
            if started.elapsed() >= WRITE_BUFFER_WAIT {
                tracing::warn!(
                    table = %self.path.display(),
                    memtable_bytes = self.db.write_buffer_size(),
                    "memtables still over their bound after {WRITE_BUFFER_WAIT:?}; writing anyway"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Writes an encoded batch: as a sorted table of its own when large (see
    /// [`INGEST_MIN_ITEMS`]), else through the journal.
    fn write(&self, mut batch: Encoded) -> Result<()> {
        let written = self.write_entries(&mut batch);
        self.recycle(batch);
        written
    }

    /// Writes `batch` to the open run, then counts it towards the run's size (which may
    /// close the run, see [`runs`]).
    fn write_entries(&self, batch: &mut Encoded) -> Result<()> {
        if batch.entries.is_empty() {
            return Ok(());
        }
        let run = {
            // Held while writing: the run cannot be closed (and merged) under the write.
            let runs = self.runs.read()?;
            let run = runs.open().clone();
            if batch.entries.len() >= INGEST_MIN_ITEMS {
                self.ingest(&run.keyspace, batch)?;
            } else {
                self.put_entries(&run.keyspace, batch)?;
            }
            run
        };
        if let Err(e) = self.runs.written(&run, batch.bytes.len() as u64) {
            // The batch is written; the run stays open and the next write tries again.
            tracing::warn!(table = %self.path.display(), error = %e, "cannot open a new item run");
        }
        Ok(())
    }

    /// Writes a small batch through the journal and the memtable.
    fn put_entries(&self, items: &Keyspace, batch: &Encoded) -> Result<()> {
        let durability = match self.durability {
            Durability::Fsync => Some(PersistMode::SyncData),
            Durability::Buffered => None,
        };
        self.wait_for_write_buffer();
        let mut writes = self.db.batch().durability(durability);
        // Within one batch the later of two puts with the same key wins, as in a sequence of
        // single puts.
        for entry in &batch.entries {
            writes.insert(items, batch.key(entry), batch.value(entry));
        }
        writes.commit().map_err(|e| self.error(e))
    }

    /// Writes a large batch straight into a new sorted table (see [`INGEST_MIN_ITEMS`]).
    fn ingest(&self, items: &Keyspace, batch: &mut Encoded) -> Result<()> {
        // Sorted by key, of equal keys the later put last (it wins below). Every key starts
        // with the table's name; the next 32 bytes (an InfraMetrics key is about that long),
        // compared as two numbers, order and tell apart most pairs without a byte-wise
        // comparison.
        let skip = batch.prefix_len;
        let mut order = std::mem::take(&mut batch.order);
        order.clear();
        order.extend(batch.entries.iter().enumerate().map(|(i, e)| {
            let key = &batch.key(e)[skip..];
            let mut head = [0u8; 32];
            let n = key.len().min(32);
            head[..n].copy_from_slice(&key[..n]);
            let (hi, lo) = head.split_at(16);
            let word = |b: &[u8]| u128::from_be_bytes(b.try_into().unwrap_or([0; 16]));
            ([word(hi), word(lo)], i)
        }));
        let key = |i: usize| &batch.key(&batch.entries[i])[skip..];
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| key(a.1).cmp(key(b.1)))
                .then(a.1.cmp(&b.1))
        });
        let written = self.ingest_sorted(items, batch, &order);
        batch.order = order;
        written
    }

    /// Writes `batch`'s entries in `order` (sorted by key, equal keys adjacent with the one
    /// to keep last) as a new table.
    fn ingest_sorted(
        &self,
        items: &Keyspace,
        batch: &Encoded,
        order: &[([u128; 2], usize)],
    ) -> Result<()> {
        let _one = self.ingesting.lock().map_err(|_| poisoned_lock())?;
        let mut ingestion = items.start_ingestion().map_err(|e| self.error(e))?;
        let mut sorted = order.iter().peekable();
        while let Some((head, i)) = sorted.next() {
            let entry = &batch.entries[*i];
            let key = batch.key(entry);
            if sorted.peek().is_some_and(|(next_head, next)| {
                next_head == head && batch.key(&batch.entries[*next]) == key
            }) {
                continue;
            }
            ingestion
                .write(key, batch.value(entry))
                .map_err(|e| self.error(e))?;
        }
        ingestion.finish().map_err(|e| self.error(e))
    }

    /// An empty batch to encode into: the buffers of an earlier batch when one is spare.
    fn batch_buffers(&self) -> Encoded {
        self.spare
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_default()
    }

    /// Keeps a written batch's buffers for a later batch (see [`SPARE_BATCHES`]).
    fn recycle(&self, batch: Encoded) {
        if batch.bytes.capacity() > SPARE_BATCH_BYTES {
            return;
        }
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < SPARE_BATCHES
        {
            spare.push(batch.cleared());
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
        if memory.write_buffer_bytes < memory.memtable_bytes || memory.memtable_bytes == 0 {
            return Err(LocalError::Port(Error::InvalidArgument(format!(
                "item table memory: write_buffer_bytes ({}) must be at least memtable_bytes \
                 ({}), which must not be 0",
                memory.write_buffer_bytes, memory.memtable_bytes
            ))));
        }
        std::fs::create_dir_all(path).map_err(|e| LocalError::io(path, e))?;
        let db = Database::builder(path)
            .cache_size(cache_bytes)
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
                // The index blocks of levels 0 and 1 (most of the table) stay in memory:
                // with 16 KiB data blocks instead of 4 they take a quarter of the space
                // (5M items: peak RSS 212-235 instead of 244 MiB in `pipeline_bench`), and
                // a series' items span a few blocks either way.
                .data_block_size_policy(BlockSizePolicy::all(DATA_BLOCK_BYTES))
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

/// A batch's items encoded: keys and values one after another in one buffer.
#[derive(Default)]
struct Encoded {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// Length of the table-name prefix every key starts with.
    prefix_len: usize,
    /// Scratch of [`Inner::ingest`]: (first 32 key bytes, entry index) in key order.
    order: Vec<([u128; 2], usize)>,
}

/// One item of an [`Encoded`] batch: its key is `bytes[start..key_end]`, its value
/// `bytes[key_end..end]`.
struct Entry {
    start: usize,
    key_end: usize,
    end: usize,
}

impl Encoded {
    /// Encodes `items` into `self`'s buffers (empty, maybe with capacity kept from an earlier
    /// batch). Validates every item (a bad item fails the whole batch before anything is
    /// written); each item is dropped once encoded.
    fn encode(self, schema: &TableSchema, items: ItemIter) -> Result<Self> {
        let prefix = table_prefix(&schema.name);
        let mut out = self;
        out.prefix_len = prefix.len();
        let expected = items.size_hint().0;
        out.entries.reserve(expected);
        for item in items {
            let start = out.bytes.len();
            out.bytes.extend_from_slice(&prefix);
            item_key(schema, &item, &mut out.bytes)?;
            let key_end = out.bytes.len();
            codec::encode_into(&item, &mut out.bytes);
            out.push_entry(schema, start, key_end, expected)?;
        }
        Ok(out)
    }

    /// [`Encoded::encode`] reading each item attribute by attribute: no [`Item`] is built
    /// unless the source gives attributes out of name order (then the item is built and
    /// sorted) or 128 attributes or more. The bytes are those `encode` writes for the same
    /// items.
    fn encode_source(self, schema: &TableSchema, items: &dyn ItemSource) -> Result<Self> {
        let prefix = table_prefix(&schema.name);
        let n = items.len();
        let mut out = self;
        out.prefix_len = prefix.len();
        out.entries.reserve(n);
        let (pk, pk_ty) = &schema.partition_key;
        let sk = schema.sort_key.as_ref();
        // Scratch reused for every item: the value, the two key parts, the previous name.
        let mut value = Vec::new();
        let mut pk_bytes = Vec::new();
        let mut sk_bytes = Vec::new();
        let mut previous = String::new();
        for i in 0..n {
            value.clear();
            pk_bytes.clear();
            sk_bytes.clear();
            let at = codec::start(&mut value);
            let mut count = 0usize;
            let mut in_order = true;
            // The previous name: its number when known (compared by rank), else `previous`.
            let mut previous_known: Option<usize> = None;
            let (mut has_pk, mut has_sk) = (false, false);
            let mut key_error = None;
            items.visit(i, &mut |name: &str, v: AttrRef<'_>| {
                let known = codec::put_attr(&mut value, name, v);
                if count > 0 {
                    let after = match (known, previous_known) {
                        (Some(k), Some(p)) => codec::KNOWN_RANKS[k] > codec::KNOWN_RANKS[p],
                        (_, Some(p)) => name > codec::KNOWN_NAMES[p - 1],
                        (_, None) => name > previous.as_str(),
                    };
                    in_order &= after;
                }
                previous_known = known;
                if known.is_none() {
                    previous.clear();
                    previous.push_str(name);
                }
                count += 1;
                let part = if name == pk.as_str() {
                    has_pk = true;
                    Some((&mut pk_bytes, *pk_ty))
                } else if let Some((_, sk_ty)) = sk.filter(|(sk, _)| name == sk.as_str()) {
                    has_sk = true;
                    Some((&mut sk_bytes, *sk_ty))
                } else {
                    None
                };
                if let Some((bytes, ty)) = part
                    && let Err(e) = keys::encode_key_ref(bytes, name, ty, v)
                {
                    key_error.get_or_insert(e);
                }
            });
            let start = out.bytes.len();
            out.bytes.extend_from_slice(&prefix);
            if !in_order || !codec::set_count(&mut value, at, count) {
                // Built and sorted as an `Item`, then encoded as `of` encodes it.
                let item = items.item(i);
                item_key(schema, &item, &mut out.bytes)?;
                let key_end = out.bytes.len();
                codec::encode_into(&item, &mut out.bytes);
                out.push_entry(schema, start, key_end, n)?;
                continue;
            }
            if let Some(e) = key_error {
                return Err(e);
            }
            if !has_pk {
                return Err(missing_key(schema, "partition", pk));
            }
            if let (Some((sk, _)), false) = (sk, has_sk) {
                return Err(missing_key(schema, "sort", sk));
            }
            out.bytes.extend_from_slice(&pk_bytes);
            out.bytes.extend_from_slice(&sk_bytes);
            let key_end = out.bytes.len();
            out.bytes.extend_from_slice(&value);
            out.push_entry(schema, start, key_end, n)?;
        }
        Ok(out)
    }

    #[cfg(test)]
    fn of(schema: &TableSchema, items: ItemIter) -> Result<Self> {
        Encoded::default().encode(schema, items)
    }

    #[cfg(test)]
    fn of_source(schema: &TableSchema, items: &dyn ItemSource) -> Result<Self> {
        Encoded::default().encode_source(schema, items)
    }

    /// Records the item written at `bytes[start..]`, its key ending at `key_end`.
    fn push_entry(
        &mut self,
        schema: &TableSchema,
        start: usize,
        key_end: usize,
        expected: usize,
    ) -> Result<()> {
        let len = self.bytes.len() - key_end;
        if len > MAX_ITEM_BYTES {
            return Err(Error::InvalidArgument(format!(
                "an item for table {:?} encodes to {len} bytes; DynamoDB items are \
                 limited to 400 KiB, so split or shorten it",
                schema.name
            )));
        }
        self.entries.push(Entry {
            start,
            key_end,
            end: self.bytes.len(),
        });
        if self.entries.len() == 1 {
            // Sized from the first item, so a large batch is not copied as it grows.
            self.bytes.reserve(
                expected
                    .saturating_sub(1)
                    .saturating_mul(self.bytes.len() + 16),
            );
        }
        Ok(())
    }

    /// The batch emptied, its buffers' capacity kept.
    fn cleared(mut self) -> Self {
        self.bytes.clear();
        self.entries.clear();
        self.order.clear();
        self.prefix_len = 0;
        self
    }

    fn key(&self, entry: &Entry) -> &[u8] {
        &self.bytes[entry.start..entry.key_end]
    }

    fn value(&self, entry: &Entry) -> &[u8] {
        &self.bytes[entry.key_end..entry.end]
    }
}

/// The key prefix shared by every item of `table`.
fn table_prefix(table: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(table.len() + 2);
    keys::encode_str(&mut out, table);
    out
}

/// Appends the encoded (partition, sort) key of an item to `key`.
fn item_key(schema: &TableSchema, item: &Item, key: &mut Vec<u8>) -> Result<(), Error> {
    let (pk, pk_ty) = &schema.partition_key;
    let value = item
        .get(pk)
        .ok_or_else(|| missing_key(schema, "partition", pk))?;
    keys::encode_key(key, pk, *pk_ty, value)?;
    if let Some((sk, sk_ty)) = &schema.sort_key {
        let value = item
            .get(sk)
            .ok_or_else(|| missing_key(schema, "sort", sk))?;
        keys::encode_key(key, sk, *sk_ty, value)?;
    }
    Ok(())
}

/// The error for an item without its `which` ("partition" or "sort") key attribute `name`.
fn missing_key(schema: &TableSchema, which: &str, name: &str) -> Error {
    Error::InvalidArgument(format!(
        "item for table {:?} lacks its {which} key attribute {name:?}",
        schema.name
    ))
}

#[async_trait]
impl ItemTable for LsmItemTable {
    async fn ensure_table(&self, schema: &TableSchema) -> Result<()> {
        if schema.name.is_empty() || schema.name.len() > 255 {
            return Err(Error::InvalidArgument(format!(
                "table name {:?} must be 1 to 255 characters",
                schema.name
            )));
        }
        let schema = schema.clone();
        let inner = self.inner.clone();
        blocking(move || {
            let _create = inner.create.lock().map_err(|_| poisoned_lock())?;
            let existing = inner
                .known
                .read()
                .map_err(|_| poisoned_lock())?
                .get(&schema.name)
                .cloned();
            match existing {
                Some(existing) if existing == schema => Ok(()),
                Some(existing) => Err(Error::InvalidArgument(format!(
                    "table {:?} already exists with key schema {:?}/{:?}, not {:?}/{:?}; \
                     use another table name or remove {}",
                    schema.name,
                    existing.partition_key,
                    existing.sort_key,
                    schema.partition_key,
                    schema.sort_key,
                    inner.path.display()
                ))),
                None => {
                    let raw = serde_json::to_vec(&schema).map_err(|e| {
                        Error::Internal(format!("cannot encode table schema as JSON: {e}"))
                    })?;
                    let mut batch = inner.db.batch().durability(Some(PersistMode::SyncAll));
                    batch.insert(&inner.schemas, schema.name.as_bytes(), raw);
                    batch.commit().map_err(|e| inner.error(e))?;
                    inner
                        .known
                        .write()
                        .map_err(|_| poisoned_lock())?
                        .insert(schema.name.clone(), schema);
                    Ok(())
                }
            }
        })
        .await
    }

    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.batch_put_iter(table, Box::new(items.into_iter()))
            .await
    }

    async fn batch_put_iter(&self, table: &str, items: ItemIter) -> Result<()> {
        let schema = self.inner.schema(table)?;
        let inner = self.inner.clone();
        blocking(move || {
            let batch = inner.batch_buffers().encode(&schema, items)?;
            inner.write(batch)
        })
        .await
    }

    async fn batch_put_source(&self, table: &str, items: Arc<dyn ItemSource>) -> Result<()> {
        let schema = self.inner.schema(table)?;
        let inner = self.inner.clone();
        blocking(move || {
            let batch = inner.batch_buffers().encode_source(&schema, &*items)?;
            drop(items);
            inner.write(batch)
        })
        .await
    }

    async fn query(&self, query: &ItemQuery) -> Result<Vec<Item>> {
        let schema = self.inner.schema(&query.table)?;
        let query = query.clone();
        let inner = self.inner.clone();
        blocking(move || {
            let (pk, pk_ty) = &schema.partition_key;
            let mut prefix = table_prefix(&schema.name);
            keys::encode_key(&mut prefix, pk, *pk_ty, &query.partition)?;
            let bound = |value: &Option<AttributeValue>| -> Result<Option<Vec<u8>>> {
                let (Some(v), Some((sk, sk_ty))) = (value, &schema.sort_key) else {
                    return Ok(None);
                };
                let mut key = prefix.clone();
                keys::encode_key(&mut key, sk, *sk_ty, v)?;
                Ok(Some(key))
            };
            let lower = bound(&query.sort_from)?.unwrap_or_else(|| prefix.clone());
            let upper = bound(&query.sort_to)?;
            let limit = query.limit.unwrap_or(usize::MAX);
            let mut out = Vec::new();
            let mut failed = None;
            let runs = inner.runs.keyspaces()?;
            runs::merged(
                runs.iter().map(|k| k.range(lower.as_slice()..)).collect(),
                &mut |k, v| {
                    if out.len() >= limit
                        || !k.starts_with(&prefix)
                        || upper.as_deref().is_some_and(|u| &*k > u)
                    {
                        return false;
                    }
                    match codec::decode(&v) {
                        Ok(item) => out.push(item),
                        Err(detail) => {
                            failed = Some(inner.corrupt(format!("stored item: {detail}")));
                            return false;
                        }
                    }
                    true
                },
            )
            .map_err(|e| inner.error(e))?;
            match failed {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
        .await
    }

    async fn count(&self, table: &str) -> Result<u64> {
        let schema = self.inner.schema(table)?;
        let inner = self.inner.clone();
        blocking(move || {
            let prefix = table_prefix(&schema.name);
            let runs = inner.runs.keyspaces()?;
            let mut n = 0u64;
            runs::merged(
                runs.iter().map(|k| k.prefix(&prefix)).collect(),
                &mut |_, _| {
                    n += 1;
                    true
                },
            )
            .map_err(|e| inner.error(e))?;
            Ok(n)
        })
        .await
    }
}

#[cfg(test)]
mod source_tests {
    //! Items read attribute by attribute encode to exactly the bytes of the same items built.
    use super::*;
    use shardline_core::ports::KeyType;

    struct Source(Vec<Vec<(&'static str, AttributeValue)>>);

    impl ItemSource for Source {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn visit(&self, i: usize, f: &mut dyn FnMut(&str, AttrRef<'_>)) {
            for (name, value) in &self.0[i] {
                if let Some(v) = value.attr_ref() {
                    f(name, v);
                }
            }
        }
    }

    fn schema() -> TableSchema {
        TableSchema {
            name: "InfraMetrics".into(),
            partition_key: ("metric_id".into(), KeyType::S),
            sort_key: Some(("timestamp".into(), KeyType::N)),
        }
    }

    fn attrs(i: usize) -> Vec<(&'static str, AttributeValue)> {
        vec![
            (
                "arrival_ms",
                AttributeValue::N(format!("{}", 1_771_500_000_000u64 + i as u64)),
            ),
            ("custom", AttributeValue::S(format!("not a known name {i}"))),
            (
                "metric_id",
                AttributeValue::S(format!("cpu-i-{:06}", i % 7)),
            ),
            (
                "timestamp",
                AttributeValue::N(format!("{}.5e3", 1_771_500 + i)),
            ),
            ("value", AttributeValue::N(format!("{}.25", i % 90))),
        ]
    }

    fn built(source: &Source) -> Vec<u8> {
        let items: Vec<Item> = (0..source.len()).map(|i| source.item(i)).collect();
        let encoded = Encoded::of(&schema(), Box::new(items.into_iter())).expect("encodes");
        encoded.bytes
    }

    #[test]
    fn a_batch_encoded_into_recycled_buffers_is_the_batch_alone() {
        let first = Source((0..300).map(attrs).collect());
        let second = Source((1000..1040).map(attrs).collect());
        let mut used = Encoded::of_source(&schema(), &first).expect("encodes");
        used.order.push(([0; 2], 7));
        let capacity = used.bytes.capacity();
        let reused = used
            .cleared()
            .encode_source(&schema(), &second)
            .expect("encodes");
        let fresh = Encoded::of_source(&schema(), &second).expect("encodes");
        assert_eq!(reused.entries.len(), 40);
        assert_eq!(reused.bytes, fresh.bytes);
        assert!(reused.order.is_empty());
        assert_eq!(reused.bytes.capacity(), capacity, "the buffer was reused");
    }

    #[test]
    fn visited_items_encode_like_built_ones() {
        let source = Source((0..50).map(attrs).collect());
        let visited = Encoded::of_source(&schema(), &source).expect("encodes");
        assert_eq!(visited.entries.len(), 50);
        assert_eq!(visited.bytes, built(&source));
    }

    #[test]
    fn attributes_out_of_order_or_repeated_are_sorted_as_an_item_would_be() {
        let source = Source(
            (0..20)
                .map(|i| {
                    let mut a = attrs(i);
                    a.reverse();
                    if i % 2 == 0 {
                        // A repeated name: the later value wins, as in `Item::insert`.
                        a.push(("value", AttributeValue::N("7".into())));
                    }
                    a
                })
                .collect(),
        );
        let visited = Encoded::of_source(&schema(), &source).expect("encodes");
        assert_eq!(visited.bytes, built(&source));
        let first = source.item(0);
        assert_eq!(first.get("value"), Some(&AttributeValue::N("7".into())));
    }

    #[test]
    fn a_missing_or_mistyped_key_fails_the_batch_with_the_attribute_named() {
        let mut items: Vec<_> = (0..3).map(attrs).collect();
        items[1].retain(|(n, _)| *n != "timestamp");
        let err = Encoded::of_source(&schema(), &Source(items))
            .err()
            .expect("fails");
        assert!(
            err.to_string().contains("sort key attribute \"timestamp\""),
            "{err}"
        );

        let mut items: Vec<_> = (0..3).map(attrs).collect();
        items[2][3].1 = AttributeValue::S("noon".into());
        let err = Encoded::of_source(&schema(), &Source(items))
            .err()
            .expect("fails");
        assert!(err.to_string().contains("\"timestamp\""), "{err}");
    }
}
