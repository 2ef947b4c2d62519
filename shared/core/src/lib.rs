//! Shardline's domain model and ports.
//!
//! Everything here is backend-free: no AWS SDK, no file or network I/O. The embedded
//! stand-ins (`shardline-log`, `shardline-local`) and the AWS adapters implement the
//! traits in [`ports`]; producers and consumers are written against those traits only.
//!
//! # Layout
//! - [`event`]: [`MetricEvent`], its metric types, units, validation rules and limits, and
//!   [`event::decode`] with the event-time window ([`EventTimeLimits`]).
//! - [`schema`]: the Arrow schema of the Parquet output (the seed's Athena columns plus lineage).
//! - [`stream`]: stream vocabulary shared by every `Stream` backend: shard ids, hash-key ranges,
//!   sequence numbers (Kinesis version-2 layout), starting positions, records, put results, limits.
//! - [`item`]: [`item::Item`], the DynamoDB-style item the `ItemTable` port stores.
//! - [`lease`]: shard leases in the KCL schema and the `LeaseStore` port a lease coordinator uses.
//! - [`ports`]: the traits `Stream`, `CheckpointStore`, `ObjectStore`, `ItemTable`,
//!   `MetricPublisher`, `Notifier`, `DeadLetterStore` and their value types.
//! - [`error`]: the one error type every port returns, with a retry class.
//! - [`time`]: wall-clock helpers (epoch milliseconds) and an injectable [`time::Clock`].
//! - [`units`]: byte sizes (`"64MiB"`) and durations (`"5s"`) as written in configuration.

pub mod error;
pub mod event;
pub mod item;
pub mod lease;
pub mod ports;
pub mod schema;
pub mod stream;
pub mod time;
pub mod units;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{Error, Result, RetryClass};
pub use event::{EventError, EventTimeLimits, MetricEvent, MetricType, Unit};
pub use stream::{
    HashKeyRange, PutRecordResult, PutRecordsEntry, Record, SequenceNumber, SequenceParts, ShardId,
    ShardIterator, StartingPosition,
};
