//! The item table's runs: its items split by arrival into keyspaces, merged in tiers.
//!
//! Why: the pipeline's keys are (series, time) and every batch holds items of every series,
//! so every table fjall flushes or ingests spans the whole key range. Leveled compaction
//! merges level 0 into level 1 by rewriting the level-1 tables each new table overlaps, which
//! here is all of them: the table rewrote everything it held once per 16 batches, a cost
//! growing with the table (`pipeline_bench`, 5M events: the compaction thread took 14.6 of
//! 35 CPU-seconds, 0.6 of 5 at 1M). Runs bound it the way size-tiered compaction does:
//!
//! - New items go to the newest run, the open one. Once [`RunPolicy::run_bytes`] of encoded
//!   items were written to it, a new run opens; the old one is closed and never written again.
//!   A run of that size takes fewer batches than fjall's level-0 threshold, so fjall does not
//!   compact inside it.
//! - [`RunPolicy::merge_runs`] adjacent closed runs of one tier are merged (newest item of a
//!   key wins) into one run of the next tier, written as sorted tables in the background. An
//!   item is rewritten once per tier it climbs: log(items / run size) times, not once per 16
//!   batches.
//! - Reads merge the runs: a key's item is the one of the newest run holding it.
//!
//! Each run is a fjall keyspace (`items` for the first, `items-<n>` after). The list of runs,
//! oldest first, with their tiers is the manifest, one JSON value in the `meta` keyspace,
//! written with `SyncAll` before a new or merged run is used and before merged runs are
//! deleted. At open, keyspaces of runs the manifest does not name (a run being created or
//! merged when the process stopped) are deleted. A database written before runs existed has
//! no manifest: its `items` keyspace is the first run.
//!
//! A run is deleted by [`retire`]: its tables are dropped first, so their files and the
//! descriptors the database caches for them go at once (or when the last reader already
//! reading them lets go), not when the descriptor cache happens to evict them. Readers open
//! their iterators while holding the run list ([`RunStore::iters`]), so none starts reading a
//! run that is being emptied.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use fjall::{AbstractTree, Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};
use shardline_core::{Error, Result};

use super::merge::merged;
use super::retire::retire;

/// Name of the first run's keyspace (the only items keyspace before runs existed).
pub const FIRST_RUN: &str = "items";

/// Prefix of later runs' keyspace names: `items-<n>`.
const RUN_PREFIX: &str = "items-";

/// Key of the manifest in the `meta` keyspace.
const MANIFEST_KEY: &str = "runs";

/// Items merged between checks of the stop flag.
const STOP_CHECK_ITEMS: u64 = 16 * 1024;

/// How a run's keyspace is created.
pub type Options = Arc<dyn Fn() -> KeyspaceCreateOptions + Send + Sync>;

/// When a run closes and how runs are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPolicy {
    /// Encoded bytes (keys and values as written) after which the open run is closed and a
    /// new one opened.
    pub run_bytes: u64,
    /// Closed runs of one tier merged into one run of the next tier, at least 2.
    pub merge_runs: usize,
}

impl Default for RunPolicy {
    fn default() -> Self {
        RunPolicy {
            // About 450k pipeline items (~300 bytes encoded each): ~11 batches of 40k, under
            // the 16 level-0 tables at which fjall would compact inside the run.
            run_bytes: 128 * 1024 * 1024,
            merge_runs: 4,
        }
    }
}

impl RunPolicy {
    /// Checks the policy.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        if self.run_bytes == 0 || self.merge_runs < 2 {
            return Err(Error::InvalidArgument(format!(
                "item table runs: run_bytes ({}) must be above 0 and merge_runs ({}) at least 2",
                self.run_bytes, self.merge_runs
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct RunMeta {
    keyspace: String,
    tier: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    runs: Vec<RunMeta>,
}

/// One run: its keyspace and how many encoded bytes were written to it.
pub struct Run {
    meta: RunMeta,
    /// The run's keyspace.
    pub keyspace: Keyspace,
    written: AtomicU64,
}

impl Run {
    fn new(meta: RunMeta, keyspace: Keyspace, written: u64) -> Arc<Self> {
        Arc::new(Run {
            meta,
            keyspace,
            written: AtomicU64::new(written),
        })
    }
}

/// The runs, oldest first; the last is the open one.
pub struct Runs {
    list: Vec<Arc<Run>>,
}

impl Runs {
    /// The run new items go to.
    pub fn open(&self) -> &Arc<Run> {
        // Never empty: built with at least one run, and merges replace closed runs only.
        &self.list[self.list.len() - 1]
    }

    fn manifest(&self) -> Manifest {
        Manifest {
            runs: self.list.iter().map(|r| r.meta.clone()).collect(),
        }
    }

    /// The first `merge_runs` closed runs of the oldest tier that has that many adjacent.
    fn merge_plan(&self, merge_runs: usize) -> Option<(usize, Vec<Arc<Run>>)> {
        let closed = &self.list[..self.list.len() - 1];
        let mut start = 0;
        while start < closed.len() {
            let tier = closed[start].meta.tier;
            let end = start
                + closed[start..]
                    .iter()
                    .take_while(|r| r.meta.tier == tier)
                    .count();
            if end - start >= merge_runs {
                return Some((start, closed[start..start + merge_runs].to_vec()));
            }
            start = end;
        }
        None
    }
}

/// The runs' storage, shared by the table and its merge thread.
pub struct RunStore {
    db: Database,
    meta: Keyspace,
    options: Options,
    policy: RunPolicy,
    /// The runs. Writers hold it for reading while they write to the open run, so a run is
    /// closed (and may be merged) only once no write to it is under way.
    runs: RwLock<Runs>,
    /// Serializes the allocation of run names.
    next_id: Mutex<u64>,
    /// Held while merging: one merge at a time.
    merging: Mutex<()>,
    wake: Mutex<Signal>,
    woken: Condvar,
}

#[derive(Default)]
struct Signal {
    pending: bool,
    stop: bool,
}

fn run_id(name: &str) -> Option<u64> {
    if name == FIRST_RUN {
        return Some(0);
    }
    name.strip_prefix(RUN_PREFIX)?.parse().ok()
}

impl RunStore {
    /// Loads the manifest (or starts one), opens every run and deletes runs it does not name.
    ///
    /// # Errors
    /// A storage error, or [`Error::Corrupt`] when the manifest cannot be read.
    pub fn open(
        db: Database,
        options: Options,
        policy: RunPolicy,
        error: &dyn Fn(fjall::Error) -> Error,
        corrupt: &dyn Fn(String) -> Error,
    ) -> Result<Self> {
        policy.validate()?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(error)?;
        let manifest = match meta.get(MANIFEST_KEY).map_err(error)? {
            Some(raw) => serde_json::from_slice::<Manifest>(&raw)
                .map_err(|e| corrupt(format!("item table run manifest is not valid JSON: {e}")))?,
            None => Manifest {
                runs: vec![RunMeta {
                    keyspace: FIRST_RUN.to_string(),
                    tier: 0,
                }],
            },
        };
        if manifest.runs.is_empty() {
            return Err(corrupt("item table run manifest lists no run".into()));
        }
        let mut max_id = 0;
        for name in db.list_keyspace_names() {
            let name: &str = &name;
            let Some(id) = run_id(name) else { continue };
            max_id = max_id.max(id);
            if !manifest.runs.iter().any(|r| r.keyspace == name) {
                tracing::info!(keyspace = name, "deleting an item run left unfinished");
                let orphan = db.keyspace(name, &*options).map_err(error)?;
                retire(&db, orphan).map_err(error)?;
            }
        }
        let mut list = Vec::with_capacity(manifest.runs.len());
        for run in manifest.runs {
            let keyspace = db.keyspace(&run.keyspace, &*options).map_err(error)?;
            max_id = max_id.max(run_id(&run.keyspace).unwrap_or(0));
            let written = keyspace.disk_space();
            list.push(Run::new(run, keyspace, written));
        }
        Ok(RunStore {
            db,
            meta,
            options,
            policy,
            runs: RwLock::new(Runs { list }),
            next_id: Mutex::new(max_id + 1),
            merging: Mutex::new(()),
            wake: Mutex::new(Signal::default()),
            woken: Condvar::new(),
        })
    }

    /// The runs, for a write to the open run: while the guard is held no run is closed.
    ///
    /// # Errors
    /// [`Error::Internal`] when a panic poisoned the lock.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, Runs>> {
        self.runs.read().map_err(|_| poisoned())
    }

    /// An iterator over every run, oldest first, each opened by `open` while the run list is
    /// held: a merged run's inputs are emptied (see [`retire`]) once the manifest no longer
    /// names them, so an iterator opened later over a list read earlier would miss their
    /// items. An iterator reads the run as it was when opened, however long it is used.
    ///
    /// # Errors
    /// [`Error::Internal`] when a panic poisoned the lock.
    pub fn iters<I>(&self, open: impl Fn(&Keyspace) -> I) -> Result<Vec<I>> {
        Ok(self
            .read()?
            .list
            .iter()
            .map(|r| open(&r.keyspace))
            .collect())
    }

    /// Table files of every run now.
    pub fn table_files(&self) -> usize {
        self.read()
            .map(|r| r.list.iter().map(|r| r.keyspace.table_count()).sum())
            .unwrap_or_default()
    }

    /// Bytes of index and filter blocks every run holds in memory outside the block cache.
    pub fn pinned_bytes(&self) -> u64 {
        self.read()
            .map(|r| {
                r.list
                    .iter()
                    .map(|r| {
                        let tree = &r.keyspace.tree;
                        (tree.pinned_block_index_size() + tree.pinned_filter_size()) as u64
                    })
                    .sum()
            })
            .unwrap_or_default()
    }

    /// The tiers of the runs now, oldest first.
    pub fn tiers(&self) -> Vec<u32> {
        self.read()
            .map(|r| r.list.iter().map(|r| r.meta.tier).collect())
            .unwrap_or_default()
    }

    /// Counts `bytes` written to `run`; closes it and opens a new run once it is full.
    ///
    /// # Errors
    /// A storage error creating the new run or writing the manifest (the run stays open).
    pub fn written(&self, run: &Arc<Run>, bytes: u64) -> Result<()> {
        let total = run.written.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total < self.policy.run_bytes {
            return Ok(());
        }
        let mut runs = self.runs.write().map_err(|_| poisoned())?;
        if !Arc::ptr_eq(runs.open(), run) {
            return Ok(());
        }
        let keyspace = self.new_keyspace()?;
        let fresh = Run::new(
            RunMeta {
                keyspace: keyspace.name().to_string(),
                tier: 0,
            },
            keyspace.clone(),
            0,
        );
        runs.list.push(fresh);
        if let Err(e) = self.save(&runs.manifest()) {
            runs.list.pop();
            let _ = retire(&self.db, keyspace);
            return Err(e);
        }
        drop(runs);
        // Items the closed run took through the journal go to its tables now, not when the
        // journal fills: its memtable is not kept in memory for nothing.
        if let Err(e) = run.keyspace.rotate_memtable() {
            tracing::warn!(keyspace = %run.meta.keyspace, error = %e, "cannot seal a closed run's memtable");
        }
        self.signal(false);
        Ok(())
    }

    fn new_keyspace(&self) -> Result<Keyspace> {
        let mut next = self.next_id.lock().map_err(|_| poisoned())?;
        let name = format!("{RUN_PREFIX}{}", *next);
        *next += 1;
        self.db
            .keyspace(&name, &*self.options)
            .map_err(|e| storage(&name, e))
    }

    fn save(&self, manifest: &Manifest) -> Result<()> {
        let raw = serde_json::to_vec(manifest)
            .map_err(|e| Error::Internal(format!("cannot encode the run manifest: {e}")))?;
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        batch.insert(&self.meta, MANIFEST_KEY, raw);
        batch.commit().map_err(|e| storage("meta", e))
    }

    fn signal(&self, stop: bool) {
        if let Ok(mut s) = self.wake.lock() {
            s.pending = true;
            s.stop |= stop;
            self.woken.notify_all();
        }
    }

    fn stopping(&self) -> bool {
        self.wake.lock().map(|s| s.stop).unwrap_or(true)
    }

    /// Waits for a signal; false once stopped.
    fn wait(&self) -> bool {
        let Ok(mut s) = self.wake.lock() else {
            return false;
        };
        while !s.pending && !s.stop {
            s = match self.woken.wait(s) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
        s.pending = false;
        !s.stop
    }

    /// Merges runs while some tier has enough of them; returns how many merges were done.
    ///
    /// # Errors
    /// A storage error (the runs stay as they were; an unfinished output run is deleted).
    pub fn merge_due(&self) -> Result<usize> {
        let _one = self.merging.lock().map_err(|_| poisoned())?;
        let mut done = 0;
        loop {
            let plan = self.read()?.merge_plan(self.policy.merge_runs);
            let Some((at, inputs)) = plan else {
                return Ok(done);
            };
            if !self.merge(at, &inputs)? {
                return Ok(done);
            }
            done += 1;
        }
    }

    /// Merges `inputs` (closed runs at `at..`) into one run; false when stopped first.
    fn merge(&self, at: usize, inputs: &[Arc<Run>]) -> Result<bool> {
        let out = self.new_keyspace()?;
        let name = out.name().to_string();
        let written = match self.write_merged(inputs, &out) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let _ = retire(&self.db, out);
                return Ok(false);
            }
            Err(e) => {
                let _ = retire(&self.db, out);
                return Err(e);
            }
        };
        let tier = inputs[0].meta.tier + 1;
        let merged = Run::new(
            RunMeta {
                keyspace: name.clone(),
                tier,
            },
            out.clone(),
            written,
        );
        let mut runs = self.runs.write().map_err(|_| poisoned())?;
        let in_place = runs.list.len() > at + inputs.len()
            && runs.list[at..at + inputs.len()]
                .iter()
                .zip(inputs)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if !in_place {
            drop(runs);
            let _ = retire(&self.db, out);
            return Err(Error::Internal(
                "item table runs changed during a merge".into(),
            ));
        }
        let replaced: Vec<Arc<Run>> = runs.list.splice(at..at + inputs.len(), [merged]).collect();
        if let Err(e) = self.save(&runs.manifest()) {
            let merged = runs.list.splice(at..=at, replaced).collect::<Vec<_>>();
            drop(runs);
            drop(merged);
            let _ = retire(&self.db, out);
            return Err(e);
        }
        drop(runs);
        tracing::debug!(
            runs = inputs.len(),
            tier,
            keyspace = %name,
            "item table runs merged"
        );
        // No longer named by the manifest: a failure here leaves files that the next open
        // deletes, so every input is tried and the first error reported.
        let mut failed = None;
        for run in replaced {
            if let Err(e) = retire(&self.db, run.keyspace.clone()) {
                failed.get_or_insert(storage(&run.meta.keyspace, e));
            }
        }
        failed.map_or(Ok(true), Err)
    }

    /// Writes the merge of `inputs` into `out` as sorted tables; `None` when stopped first.
    fn write_merged(&self, inputs: &[Arc<Run>], out: &Keyspace) -> Result<Option<u64>> {
        let sources: Vec<Keyspace> = inputs.iter().map(|r| r.keyspace.clone()).collect();
        let mut ingestion = out.start_ingestion().map_err(|e| storage(out.name(), e))?;
        let mut bytes = 0u64;
        let mut items = 0u64;
        let mut stopped = false;
        let mut failed = None;
        merged(
            sources.iter().map(|k| k.iter()).collect(),
            &mut |key, value| {
                if items.is_multiple_of(STOP_CHECK_ITEMS) && self.stopping() {
                    stopped = true;
                    return false;
                }
                items += 1;
                bytes += (key.len() + value.len()) as u64;
                if let Err(e) = ingestion.write(key, value) {
                    failed = Some(storage(out.name(), e));
                    return false;
                }
                true
            },
        )
        .map_err(|e| storage(out.name(), e))?;
        if let Some(e) = failed {
            return Err(e);
        }
        if stopped {
            return Ok(None);
        }
        ingestion.finish().map_err(|e| storage(out.name(), e))?;
        Ok(Some(bytes))
    }
}

fn poisoned() -> Error {
    Error::Internal("item table run lock poisoned by a panic".into())
}

fn storage(keyspace: &str, e: fjall::Error) -> Error {
    match e {
        fjall::Error::Io(source) => Error::io(std::path::Path::new(keyspace), source),
        other => Error::Internal(format!("item table run {keyspace}: {other}")),
    }
}

/// The merge thread: merges runs whenever a run closes, until stopped.
pub struct Merger {
    store: Arc<RunStore>,
    thread: Option<JoinHandle<()>>,
}

impl Merger {
    /// Starts the thread (it first merges what is due from before).
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(store: Arc<RunStore>) -> Result<Self> {
        let worker = store.clone();
        let thread = std::thread::Builder::new()
            .name("item-runs".into())
            .spawn(move || {
                worker.signal(false);
                while worker.wait() {
                    if let Err(e) = worker.merge_due() {
                        tracing::warn!(error = %e, "merging item table runs failed; retried when the next run closes");
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the item run merge thread: {e}")))?;
        Ok(Merger {
            store,
            thread: Some(thread),
        })
    }

    /// Merges what is due now, on the calling thread (waiting for a merge under way first):
    /// once it returns, no tier has `merge_runs` closed runs.
    ///
    /// # Errors
    /// As [`RunStore::merge_due`].
    pub fn settle(&self) -> Result<usize> {
        self.store.merge_due()
    }
}

impl Drop for Merger {
    fn drop(&mut self) {
        self.store.signal(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
