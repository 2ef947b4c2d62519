//! [`LocalBackends`]: every embedded stand-in opened under one data directory.
//!
//! Layout of the data directory:
//!
//! ```text
//! <data>/s3/<bucket>/<key>            objects (DirObjectStore)
//! <data>/s3/.shardline-tmp/           objects being written (emptied at open)
//! <data>/local/checkpoints.redb       checkpoints and shard leases
//! <data>/local/table/                 item tables (an LSM-tree database; a table.redb of
//!                                     earlier versions is imported once, see table::import)
//! <data>/local/metrics.redb           metric minutes and watermarks
//! <data>/local/dead_letters.redb      dead letters
//! <data>/local/state.redb             sink state
//! <data>/local/notify/*.jsonl         notifier sent-ledgers
//! <data>/notifications/outbox.jsonl   default outbox
//! ```
//!
//! Each store has its own redb file: redb allows one write transaction per database at a
//! time, so separate files let the sinks commit in parallel instead of queueing behind each
//! other, and a damaged file affects one store only. redb locks each file exclusively; a
//! second process opening the same data directory gets [`LocalError::InUse`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardline_core::ports::Notifier;

use crate::checkpoint::RedbCheckpointStore;
use crate::db::{Db, Durability};
use crate::dead_letters::RedbDeadLetterStore;
use crate::error::LocalError;
use crate::leases::RedbLeaseStore;
use crate::metrics::RedbMetricStore;
use crate::notify::{NotifierConfig, build_notifier_with_retention};
use crate::objects::DirObjectStore;
use crate::state::RedbStateStore;
use crate::table::import::import_redb;
use crate::table::{LsmItemTable, TableOptions};

/// Settings of the embedded backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalOptions {
    /// When commits reach the disk (`"fsync"`, the default, or `"buffered"`).
    pub durability: Durability,
    /// Page cache per database file (checkpoints, metrics, dead letters, sink state), e.g.
    /// `"16MiB"` or a number of bytes.
    #[serde(with = "shardline_core::units::size")]
    pub cache_size: u64,
    /// Block cache of the item table (decompressed 16 KiB blocks). Its reads are series range
    /// scans, which a cache rarely serves twice, and merging its runs reads every block once,
    /// filling whatever cache there is (`table_bench`: the same query times with 4 and 16 MiB).
    #[serde(with = "shardline_core::units::size")]
    pub table_cache_size: u64,
    /// Item table files kept open at most (at least 16); a read of one that is not opens it
    /// again. The table has a few files per 64 MiB it holds, so without a bound its
    /// descriptors would grow with it.
    pub table_open_files: usize,
    /// How long dead letters are kept (each put removes the older ones), e.g. `"14d"`.
    #[serde(with = "shardline_core::units::duration")]
    pub dead_letter_retention: Duration,
    /// How long notifiers remember what they sent: the outbox keeps the notifications of
    /// this period and the sent-ledgers their deduplication ids (a notification repeated
    /// later is sent again), e.g. `"7d"`.
    #[serde(with = "shardline_core::units::duration")]
    pub notify_retention: Duration,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            durability: Durability::Fsync,
            cache_size: 16 * 1024 * 1024,
            table_cache_size: 4 * 1024 * 1024,
            table_open_files: TableOptions::default().open_files,
            dead_letter_retention: Duration::from_secs(14 * 86_400),
            notify_retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Every embedded stand-in, opened under one data directory.
#[derive(Debug, Clone)]
pub struct LocalBackends {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Checkpoints.
    pub checkpoints: Arc<RedbCheckpointStore>,
    /// Shard leases (in the checkpoints' file).
    pub leases: Arc<RedbLeaseStore>,
    /// Objects under `<data>/s3`.
    pub objects: Arc<DirObjectStore>,
    /// Item tables.
    pub table: Arc<LsmItemTable>,
    /// The metric store.
    pub metrics: Arc<RedbMetricStore>,
    /// Dead letters.
    pub dead_letters: Arc<RedbDeadLetterStore>,
    /// Sink state.
    pub state: Arc<RedbStateStore>,
    /// How long notifiers built by [`LocalBackends::notifier`] remember what they sent.
    pub notify_retention: Duration,
}

impl LocalBackends {
    /// Opens (creating as needed) every store under `data_dir`.
    ///
    /// # Errors
    /// [`LocalError::InUse`] when another process has the data directory open;
    /// [`LocalError::Io`] or [`LocalError::Database`] when a file cannot be created or opened.
    pub fn open(data_dir: &Path, opts: LocalOptions) -> Result<LocalBackends, LocalError> {
        std::fs::create_dir_all(data_dir).map_err(|e| LocalError::io(data_dir, e))?;
        let local = data_dir.join("local");
        let cache = usize::try_from(opts.cache_size).unwrap_or(usize::MAX);
        let open = |name: &str| Db::open(&local.join(name), opts.durability, cache);
        // The checkpoint store first: a data directory in use is reported on that file.
        let checkpoint_db = open("checkpoints.redb")?;
        let leases = Arc::new(RedbLeaseStore::new(checkpoint_db.clone()));
        let checkpoints = Arc::new(RedbCheckpointStore::new(checkpoint_db));
        let table = LsmItemTable::open_with_options(
            &local.join("table"),
            opts.durability,
            TableOptions {
                cache_bytes: opts.table_cache_size,
                open_files: opts.table_open_files,
                ..TableOptions::default()
            },
        )?;
        import_redb(&local.join("table.redb"), &table)?;
        Ok(LocalBackends {
            data_dir: data_dir.to_path_buf(),
            checkpoints,
            leases,
            objects: Arc::new(DirObjectStore::open(&data_dir.join("s3"))?),
            table: Arc::new(table),
            metrics: Arc::new(RedbMetricStore::new(open("metrics.redb")?)),
            dead_letters: Arc::new(RedbDeadLetterStore::new(
                open("dead_letters.redb")?,
                opts.dead_letter_retention,
            )),
            state: Arc::new(RedbStateStore::new(open("state.redb")?)),
            notify_retention: opts.notify_retention,
        })
    }

    /// Builds the notifier `config` describes, with its files under the data directory.
    ///
    /// # Errors
    /// See [`crate::notify::build_notifier`].
    pub fn notifier(&self, config: &NotifierConfig) -> Result<Arc<dyn Notifier>, LocalError> {
        build_notifier_with_retention(config, &self.data_dir, self.notify_retention)
    }
}
