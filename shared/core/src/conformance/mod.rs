//! Conformance suites: one async function per port, run once per backend.
//!
//! Each suite exercises what the port's documentation promises — round trips, ordering,
//! idempotency, conditional writes, not-found behaviour, statistics merging — and nothing a
//! particular backend happens to do besides. A violation panics with a message naming the
//! port, the step and what was expected, so a failing backend test reads as a bug report.
//!
//! Suites create their own uniquely named buckets, tables, namespaces, consumers and keys
//! (see [`unique`]), so they can run repeatedly and side by side against one shared backend
//! (a long-lived moto server, a reused data directory).
//!
//! # Layout
//! - [`object_store`] checks [`crate::ports::ObjectStore`].
//! - [`checkpoint_store`] checks [`crate::ports::CheckpointStore`].
//! - [`item_table`] checks [`crate::ports::ItemTable`].
//! - [`metric_publisher`] checks [`crate::ports::MetricPublisher`].
//! - [`notifier`] checks [`crate::ports::Notifier`] (delivery and deduplication, observed through a
//!   caller-supplied reader of what was delivered).
//! - [`dead_letter_store`] checks [`crate::ports::DeadLetterStore`].
//! - [`state_store`] checks [`crate::ports::StateStore`].
//! - [`lease_store`] checks [`crate::lease::LeaseStore`].

mod checkpoints;
mod dead_letters;
mod leases;
mod metrics;
mod notifier;
mod objects;
mod objects_conditional;
mod state;
mod table;

use std::sync::atomic::{AtomicU64, Ordering};

pub use checkpoints::checkpoint_store;
pub use dead_letters::dead_letter_store;
pub use leases::lease_store;
pub use metrics::metric_publisher;
pub use notifier::notifier;
pub use objects::object_store;
pub use state::state_store;
pub use table::item_table;

/// A name unique to this process run and call: `<prefix>-<epoch ms>-<counter>`, lowercase
/// ASCII, valid as an S3 bucket, table, namespace or consumer name.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", crate::time::now_ms())
}

/// A Shardline (version-2) sequence number for offset `offset` of shard `shard`.
pub(crate) fn seq(shard: u32, offset: u64) -> crate::SequenceNumber {
    crate::SequenceParts {
        shard_index: shard,
        offset,
        shard_created_secs: 1_700_000_000,
        arrival_secs: 1_700_000_000 + offset,
    }
    .encode()
}
