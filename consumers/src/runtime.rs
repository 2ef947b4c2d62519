//! The consumer runtime: read every shard → validate → sink → checkpoint.
//!
//! A [`Consumer`] reads all shards of one stream, each from its own checkpoint
//! (AFTER_SEQUENCE_NUMBER) or, where none exists, from the configured starting position. It
//! lists shards again periodically to pick up new ones; a child shard (split or merge) is read
//! only once its parents are finished.
//!
//! # Guarantees
//! - **Bad input never stalls a shard.** A record that is not a valid
//!   [`MetricEvent`](shardline_core::MetricEvent) goes to the
//!   [`DeadLetterStore`](shardline_core::ports::DeadLetterStore) with the
//!   reason, shard, sequence number, partition key and data, and is counted in the status.
//! - **Checkpoints never pass the sink's durable mark.** The checkpoint of a shard is the
//!   highest sequence number up to which every record is durable in the sink (as the sink
//!   reports through [`Sink::write`](crate::Sink::write) and
//!   [`Sink::flush`](crate::Sink::flush)) or stored as a dead letter. Dead letters
//!   are stored before the batch goes to the sink.
//! - **At-least-once delivery.** The checkpoint is written after the sink acknowledged; a crash
//!   between the two re-delivers records, and sinks are idempotent.
//! - **Retries.** Retryable errors (throttling, unavailability) are retried with exponential
//!   backoff and full jitter up to `retry.max_attempts`; a permanent sink error stops the
//!   consumer with [`ConsumerError::Sink`] — nothing is skipped.
//! - **Shared reads keep consumers independent.** Consumers given the same
//!   [`SharedReads`] read each batch once and share it decoded; each still hands on every
//!   record after its own position exactly as if it had read it (dead letters under its own
//!   name, its own checkpoints). A consumer ahead waits for the others only while it keeps
//!   `window_records` records for them and they keep coming; one that stops coming for
//!   `stall` no longer holds it.
//! - **Rejected iterators.** When get_records refuses an iterator permanently (expired,
//!   invalid), the shard's position is resolved again after the last record handed on (which is
//!   at or past the checkpoint, so nothing is skipped or delivered twice); a second refusal
//!   stops the consumer.
//!
//! # Layout
//! - [`config`] — [`ConsumerConfig`] and [`RetryConfig`].
//! - `consumer`: [`Consumer`]: `new`, `run`, `drain`, flushing and checkpointing.
//! - `read`: listing shards, resolving iterators, reading and dispatching batches.
//! - `shard`: per-shard position and checkpoint bookkeeping.
//! - [`share`] — [`SharedReads`]: consumers of one stream reading each batch once.
//! - [`retry`] — backoff with full jitter.
//! - [`status`] — [`ConsumerStatus`] (live, shared) and [`ConsumerReport`].
//! - [`error`] — [`ConsumerError`].

pub mod config;
mod consumer;
pub mod error;
mod read;
pub mod retry;
mod shard;
pub mod share;
pub mod status;

#[cfg(test)]
mod tests;

pub use config::{ConsumerConfig, RetryConfig};
pub use consumer::Consumer;
pub use error::ConsumerError;
pub use share::{SharedReads, SharedReadsConfig};
pub use status::{ConsumerReport, ConsumerStatus, ShardProgress, StatusSnapshot};
