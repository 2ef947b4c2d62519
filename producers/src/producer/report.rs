//! What a send did with each record.

use serde::Serialize;
use shardline_core::{SequenceNumber, ShardId};

/// A record the stream accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendedRecord {
    /// Position of the event in the `send` input.
    pub index: usize,
    /// Its partition key (the instance id).
    pub partition_key: String,
    /// The shard it went to.
    pub shard_id: ShardId,
    /// Its sequence number there.
    pub sequence_number: SequenceNumber,
}

/// A record that was not appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedRecord {
    /// Position of the event in the `send` input.
    pub index: usize,
    /// Its partition key (the instance id).
    pub partition_key: String,
    /// The last error code (`ValidationException`, `ProvisionedThroughputExceededException`, …).
    pub error_code: String,
    /// Why it was not appended, with the attempts made.
    pub reason: String,
    /// How many times it was put.
    pub attempts: u32,
}

/// The outcome of one [`crate::Producer::send`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SendReport {
    /// Appended records, by input position.
    pub appended: Vec<AppendedRecord>,
    /// Records given up on, by input position.
    pub failed: Vec<FailedRecord>,
    /// Entries put again after a retryable failure.
    pub retries: u64,
    /// put_records calls made.
    pub calls: u64,
    /// Bytes (data plus partition keys) of the appended records.
    pub bytes: u64,
}

impl SendReport {
    /// Whether every record was appended.
    pub fn all_appended(&self) -> bool {
        self.failed.is_empty()
    }

    /// Adds the report of a later send whose input followed this one's `offset` records
    /// (indexes are shifted by `offset`).
    pub fn extend(&mut self, other: SendReport, offset: usize) {
        self.appended
            .extend(other.appended.into_iter().map(|mut a| {
                a.index += offset;
                a
            }));
        self.failed.extend(other.failed.into_iter().map(|mut f| {
            f.index += offset;
            f
        }));
        self.retries += other.retries;
        self.calls += other.calls;
        self.bytes += other.bytes;
    }

    pub(crate) fn sort(&mut self) {
        self.appended.sort_by_key(|a| a.index);
        self.failed.sort_by_key(|f| f.index);
    }
}
