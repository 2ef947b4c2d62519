//! The consumer runtime: read every shard → validate → sink → checkpoint, supervised.
//!
//! A [`Consumer`] reads all shards of one stream, each from its own checkpoint
//! (AFTER_SEQUENCE_NUMBER) or, where none exists, from the configured starting position. It
//! lists shards again periodically to pick up new ones; a child shard (split or merge) is read
//! only once its parents are finished. A [`Supervisor`] keeps a consumer going: it restarts it
//! from its checkpoints after an error or a panic.
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
//! - **Retries.** A failing call is retried in place with exponential backoff and full jitter
//!   up to `retry.max_attempts` tries: calls to the stream and the stores for retryable errors,
//!   sink calls for any error (a sink's "permanent" error, a full disk say, may still pass
//!   later). Then the consumer stops with the error — nothing is skipped — and its supervisor
//!   decides: [`Supervisor::run`] starts it again from its checkpoints after a backoff, for as
//!   long as it fails; [`Supervisor::drain`] reports the error (a drain is bounded).
//! - **Panics.** A sink that panics is restarted from its checkpoints with the panic and the
//!   records it held logged; a record that keeps making it panic is isolated by halving and
//!   dead-lettered after `panic_attempts` panics alone (see [`quarantine`]).
//! - **Status.** [`ConsumerStatus`] says at any time whether the consumer runs, retries (since
//!   when, with the last error), restarts or is paused.
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
//! - `ownership`: which shards the consumer reads — all of them, or those its lease worker holds.
//! - [`lease`] — [`LeaseWorker`]: `shardline consume` workers sharing a stream's shards through
//!   KCL-style leases (fair share, renewal, release, failover, parents before children).
//! - `read`: resolving iterators, reading, and dispatching batches (dead letters, sink writes).
//! - `shard`: per-shard position and checkpoint bookkeeping.
//! - [`supervise`] — [`Supervisor`]: restarts after errors and panics, and pauses.
//! - [`pause`] — [`Pauser`] and [`PauseGuard`]: holding a supervised consumer stopped while a
//!   command moves its checkpoints or replays into its targets.
//! - `quarantine`: isolating and dead-lettering a record that makes the sink panic.
//! - [`share`] — [`SharedReads`]: consumers of one stream reading each batch once.
//! - [`retry`] — backoff with full jitter.
//! - [`status`] — [`ConsumerStatus`] (live, shared), [`ConsumerState`] and [`ConsumerReport`].
//! - [`error`] — [`ConsumerError`].

pub mod config;
mod consumer;
pub mod error;
pub mod lease;
mod ownership;
pub mod pause;
pub mod quarantine;
mod read;
pub mod retry;
mod shard;
pub mod share;
pub mod status;
pub mod supervise;

#[cfg(test)]
mod tests;

pub use config::{ConsumerConfig, RetryConfig};
pub use consumer::Consumer;
pub use error::ConsumerError;
pub use lease::{LeaseConfig, LeaseEvent, LeaseSet, LeaseWorker};
pub use pause::{PauseError, PauseGuard, Pauser};
pub use share::{SharedReads, SharedReadsConfig};
pub use status::{
    ConsumerReport, ConsumerState, ConsumerStatus, InFlight, ShardProgress, StatusSnapshot,
};
pub use supervise::{ConsumerFactory, Supervisor};
