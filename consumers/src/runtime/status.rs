//! Live progress of a running consumer, shared behind an `Arc` and readable at any time
//! (the CLI's status line), and the report a consumer returns when it stops.
//!
//! Invariants:
//! - for every shard, `checkpointed <= durable <= processed` in sequence order — the runtime
//!   never records a checkpoint the sink has not made durable;
//! - one status lives as long as its [`Supervisor`](super::Supervisor): the counters add up over
//!   every restart, and [`ConsumerState`] says what the consumer does now — a failing call
//!   makes it `Retrying` (since the first failure of the streak) until a call succeeds;
//! - `in_flight` names the records the sink holds at this moment (set before a sink call,
//!   cleared after it), so a panic inside the sink can be pinned to its records.

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

/// What a consumer is doing now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConsumerState {
    /// Created, not reading yet.
    #[default]
    Starting,
    /// Reading and delivering.
    Running,
    /// A call (sink, stream, checkpoint or dead-letter store) keeps failing and is being
    /// retried, in place or by a restart from the checkpoint.
    Retrying {
        /// What fails: `sink`, `stream`, `checkpoint store` or `dead-letter store`.
        what: String,
        /// When the first failure of this streak happened, epoch milliseconds.
        since_ms: i64,
        /// Failed attempts in this streak.
        failures: u64,
        /// The last error.
        error: String,
    },
    /// The consumer panicked and is being restarted from its checkpoint.
    Restarting {
        /// The panic message and where it happened.
        reason: String,
    },
    /// Stopped normally (shutdown or drained).
    Stopped,
    /// Gave up; the error says why.
    Failed {
        /// Why it gave up.
        error: String,
    },
}

/// Records handed to the sink and not yet returned from the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum InFlight {
    /// [`crate::Sink::write`] of one shard's records.
    Write {
        /// The shard.
        shard: ShardId,
        /// The first record's sequence number.
        first: SequenceNumber,
        /// The last record's sequence number.
        last: SequenceNumber,
        /// How many records.
        records: usize,
    },
    /// [`crate::Sink::flush`] of whatever the sink buffered.
    Flush,
}

impl std::fmt::Display for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InFlight::Write {
                shard,
                first,
                last,
                records: 1,
            } if first == last => write!(f, "{shard} record {first}"),
            InFlight::Write {
                shard,
                first,
                last,
                records,
            } => write!(f, "{shard} records {first}..={last} ({records})"),
            InFlight::Flush => f.write_str("a flush of the sink's buffers"),
        }
    }
}

/// A point-in-time copy of a consumer's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusSnapshot {
    /// What the consumer does now.
    pub state: ConsumerState,
    /// Times it was started again after an error or a panic.
    pub restarts: u64,
    /// Panics caught (each restarted the consumer).
    pub panics: u64,
    /// What the sink is being handed right now, if anything.
    pub in_flight: Option<InFlight>,
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

    /// The current state.
    pub fn state(&self) -> ConsumerState {
        self.lock().state.clone()
    }

    pub(crate) fn set_state(&self, state: ConsumerState) {
        self.lock().state = state;
    }

    /// Notes a failed call to `what` at `now_ms`: the consumer is retrying since the streak's
    /// first failure (a streak goes on across restarts until a call to `what` succeeds).
    pub(crate) fn note_failure(&self, what: &str, error: &dyn std::fmt::Display, now_ms: i64) {
        let mut s = self.lock();
        let (since_ms, failures) = match &s.state {
            ConsumerState::Retrying {
                since_ms, failures, ..
            } => (*since_ms, failures + 1),
            _ => (now_ms, 1),
        };
        s.state = ConsumerState::Retrying {
            what: what.to_string(),
            since_ms,
            failures,
            error: error.to_string(),
        };
    }

    /// Notes a call to `what` that succeeded: the consumer runs again unless it is retrying
    /// calls to something else.
    pub(crate) fn note_success(&self, what: &str) {
        let mut s = self.lock();
        let running = match &s.state {
            ConsumerState::Running => return,
            // A failure the supervisor noted (`consumer`, `consumer start`) ends with any
            // successful call of the restarted consumer.
            ConsumerState::Retrying { what: failing, .. } => {
                failing == what || failing.starts_with("consumer")
            }
            ConsumerState::Starting | ConsumerState::Restarting { .. } => true,
            ConsumerState::Stopped | ConsumerState::Failed { .. } => false,
        };
        if running {
            s.state = ConsumerState::Running;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_streak_ends_only_when_the_failing_call_succeeds() {
        let status = ConsumerStatus::default();
        status.note_success("stream");
        assert_eq!(status.state(), ConsumerState::Running);
        status.note_failure("sink", &"disk full", 1_000);
        status.note_failure("sink", &"still full", 2_000);
        status.note_success("stream");
        assert_eq!(
            status.state(),
            ConsumerState::Retrying {
                what: "sink".into(),
                since_ms: 1_000,
                failures: 2,
                error: "still full".into(),
            },
            "a restarted consumer reading again is not a sink that works again"
        );
        status.note_success("sink");
        assert_eq!(status.state(), ConsumerState::Running);

        status.note_failure("consumer", &"shard has no iterator", 3_000);
        status.note_success("stream");
        assert_eq!(
            status.state(),
            ConsumerState::Running,
            "any call of the restarted consumer ends a streak the supervisor noted"
        );
        status.set_state(ConsumerState::Stopped);
        status.note_success("sink");
        assert_eq!(status.state(), ConsumerState::Stopped);
    }
}
