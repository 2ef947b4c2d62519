//! Embedded stand-ins for S3, DynamoDB, CloudWatch, SNS and the checkpoint store: every port
//! of `shardline-core` except `Stream` (which `shardline-log` implements), persistent and
//! crash-safe, so the whole pipeline runs on one machine without AWS.
//!
//! Open them all with [`LocalBackends::open`]; see [`backends`] for the data directory layout.
//!
//! # Layout
//! - [`backends`]: [`LocalBackends`], [`LocalOptions`], the data directory layout.
//! - [`checkpoint`]: [`RedbCheckpointStore`] — KCL-style checkpoints with conditional writes.
//! - [`objects`]: [`DirObjectStore`] — objects as files, atomic puts (temp + fsync + rename).
//! - [`table`]: [`LsmItemTable`] — DynamoDB-style tables on an LSM tree; [`table::keys`] is
//!   the order-preserving key encoding.
//! - [`metrics`]: [`RedbMetricStore`] — minute statistic sets, merged, with watermarks
//!   committed atomically with the data.
//! - [`notify`]: stdout, outbox, webhook (http and https) and fanout notifiers with
//!   deduplication and retention.
//! - [`dead_letters`]: the dead-letter store, [`RedbDeadLetterStore`] (exact bytes, retention).
//! - [`state`]: the sink state store, [`RedbStateStore`].
//! - [`error`]: [`LocalError`], for opening and configuration.
//!
//! Every port call is one redb transaction, one LSM write batch or one file operation, on a
//! blocking thread.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod backends;
pub mod checkpoint;
mod db;
pub mod dead_letters;
pub mod error;
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
pub use metrics::RedbMetricStore;
pub use notify::{
    Envelope, FanoutNotifier, NotifierConfig, OutboxNotifier, StdoutNotifier, WebhookNotifier,
    WebhookOptions, build_notifier, build_notifier_with_retention,
};
pub use objects::DirObjectStore;
pub use state::RedbStateStore;
pub use table::LsmItemTable;
