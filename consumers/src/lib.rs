//! The consumer runtime and the four sinks.
//!
//! A consumer reads every shard of a stream from its own checkpoints, validates each record
//! as a [`shardline_core::MetricEvent`] (invalid ones go to the dead-letter store), hands valid
//! ones to its [`Sink`], and checkpoints a shard only up to what the sink reports durable.
//! Delivery is at-least-once; every sink is idempotent, so effects are exactly-once.
//!
//! # Layout
//! - [`sink`]: the [`Sink`] trait and [`SinkRecord`].
//! - [`runtime`]: reading, batching, retries with backoff and jitter, dead-lettering,
//!   checkpointing after acknowledgement, graceful shutdown.
//! - [`sinks`]: `s3_parquet`, `dynamodb`, `cloudwatch`, `alerts`.
//! - [`replay`]: a consumer's sink re-run over a range of the stream, beside its live run.

pub mod replay;
pub mod runtime;
pub mod sink;
pub mod sinks;

pub use sink::{Sink, SinkRecord};
