//! Embedded stand-ins for S3, DynamoDB, CloudWatch, SNS and the checkpoint store: every port
//! of `shardline-core` except `Stream` (which `shardline-log` implements), persistent and
//! crash-safe, so the whole pipeline runs on one machine without AWS.
//!
//! Open them all with [`LocalBackends::open`]; see [`backends`] for the data directory layout.
//!
//! # Layout
//! - [`backends`]: [`LocalBackends`], [`LocalOptions`], the data directory layout.
//! - [`checkpoint`]: [`RedbCheckpointStore`] — KCL-style checkpoints with conditional writes.
//! - [`leases`]: [`RedbLeaseStore`] — shard leases in the KCL schema, in the checkpoints' file.
//! - [`objects`]: [`DirObjectStore`] — objects as files, atomic puts (temp + fsync + rename);
//!   temporary files of interrupted puts removed at open.
//! - [`table`]: [`LsmItemTable`] — DynamoDB-style tables on an LSM tree; [`table::keys`] is
//!   the order-preserving key encoding.
//! - [`metrics`]: [`RedbMetricStore`] — minute statistic sets, merged, with watermarks
//!   committed atomically with the data.
//! - [`notify`]: stdout, outbox, webhook (http and https) and fanout notifiers with
//!   deduplication and retention.
//! - [`dead_letters`]: the dead-letter store, [`RedbDeadLetterStore`] (exact bytes, retention).
//! - [`state`]: the sink state store, [`RedbStateStore`].
//! - [`error`]: [`LocalError`], for opening and configuration.
//! - `db`: one redb file per store; reopened by itself after an I/O error.
//! - `checkpoint_faults` (unit tests only): the checkpoint store over a failing redb backend.
//!
//! Files written by write-then-rename: only objects (temporary files in `<data>/s3/.shardline-tmp`,
//! removed at open). The redb files, the item table's LSM tree and the notifier ledgers
//! (appended, torn final line cut at open) keep no temporary files of their own making.
//!
//! Every port call is one redb transaction, one LSM write batch or one file operation, on a
//! blocking thread.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod backends;
pub mod checkpoint;
#[cfg(test)]
mod checkpoint_faults;
mod db;
pub mod dead_letters;
pub mod error;
pub mod leases;
pub mod metrics;
pub mod notify;
pub mod objects;
pub mod state;
pub mod table;

pub use backends::{LocalBackends, LocalOptions};
pub use checkpoint::RedbCheckpointStore;
pub use db::Durability;
pub use dead_letters::RedbDeadLetterStore;
pub use error::LocalError;
pub use leases::RedbLeaseStore;
pub use metrics::RedbMetricStore;
pub use notify::{
    Envelope, FanoutNotifier, NotifierConfig, OutboxNotifier, StdoutNotifier, WebhookNotifier,
    WebhookOptions, build_notifier, build_notifier_with_retention,
};
pub use objects::DirObjectStore;
pub use state::RedbStateStore;
pub use table::LsmItemTable;
