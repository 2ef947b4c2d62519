//! Live progress of a running consumer, shared behind an `Arc` and readable at any time
//! (the CLI's status line), and the report a consumer returns when it stops.
//!
//! Invariant: for every shard, `checkpointed <= durable <= processed` in sequence order —
//! the runtime never records a checkpoint the sink has not made durable.

use serde::Serialize;
use shardline_core::{SequenceNumber, ShardId};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// One shard's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ShardProgress {
    /// Records read from the shard.
    pub records_in: u64,
    /// The last sequence number handed to the sink or the dead-letter store.
    pub processed: Option<SequenceNumber>,
    /// The last sequence number written as the checkpoint.
    pub checkpointed: Option<SequenceNumber>,
    /// How far the last read was behind the shard's newest record, milliseconds.
    pub millis_behind_latest: u64,
    /// Records between the last processed one and the shard's end, when the backend's
    /// sequence numbers make it derivable (a closed shard of the embedded log).
    pub records_behind: Option<u64>,
    /// The shard is closed and fully consumed.
    pub finished: bool,
}

/// A point-in-time copy of a consumer's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusSnapshot {
    /// Records read, all shards.
    pub records_in: u64,
    /// Of those, records taken from batches another consumer read (shared reads).
    pub records_shared: u64,
    /// Valid records handed to the sink.
    pub records_delivered: u64,
    /// Invalid records stored in the dead-letter store.
    pub dead_letters: u64,
    /// Retryable errors that were retried.
    pub retries: u64,
    /// Errors that stopped the consumer, or iterators that had to be re-resolved.
    pub errors: u64,
    /// Checkpoint writes.
    pub checkpoints: u64,
    /// When the last checkpoint was written, epoch milliseconds.
    pub last_checkpoint_ms: Option<i64>,
    /// Per-shard progress.
    pub shards: BTreeMap<ShardId, ShardProgress>,
}

impl StatusSnapshot {
    /// The largest lag over all shards, milliseconds.
    pub fn max_millis_behind(&self) -> u64 {
        self.shards
            .values()
            .map(|s| s.millis_behind_latest)
            .max()
            .unwrap_or(0)
    }
}

/// The shared, live status of one consumer.
#[derive(Debug, Default)]
pub struct ConsumerStatus {
    inner: Mutex<StatusSnapshot>,
}

impl ConsumerStatus {
    /// A copy of the current progress.
    pub fn snapshot(&self) -> StatusSnapshot {
        self.lock().clone()
    }

    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut StatusSnapshot) -> R) -> R {
        f(&mut self.lock())
    }

    pub(crate) fn shard<R>(&self, shard: ShardId, f: impl FnOnce(&mut ShardProgress) -> R) -> R {
        f(self.lock().shards.entry(shard).or_default())
    }

    fn lock(&self) -> MutexGuard<'_, StatusSnapshot> {
        // A panic while holding the lock leaves plain counters behind; they are still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a consumer did, returned when it stops.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerReport {
    /// The consumer's name.
    pub consumer: String,
    /// The sink's name.
    pub sink: String,
    /// Final progress.
    pub status: StatusSnapshot,
    /// Wall time from start to stop, milliseconds.
    pub elapsed_ms: u64,
}
