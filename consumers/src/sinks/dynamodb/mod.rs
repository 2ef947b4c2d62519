//! The DynamoDB sink: one item per metric sample in the `InfraMetrics` table.
//!
//! # Key schema
//! The seed's table keeps its shape: partition key `metric_id` (S), sort key `timestamp` (N),
//! attributes `metric_type`, `value` (N), `instance_id`, `region`, `collected_at`, plus `unit`,
//! `shard_id`, `sequence_number` and `arrival_ms` for lineage.
//!
//! The seed's key values collide: its `metric_id` was `<prefix>-<epoch s>` and `timestamp` was
//! in seconds, so two instances reporting the same metric in the same second wrote the same key
//! and the later silently replaced the earlier. Shardline keeps the schema but makes the key
//! unique per sample:
//! - `metric_id` = [`shardline_core::MetricEvent::series_id`], e.g. `cpu-i-123456` (one
//!   partition per metric and instance, so a series is one `Query`);
//! - `timestamp` = the event time in epoch **milliseconds**;
//! - the seed's original id is kept in `seed_metric_id`, and its epoch seconds in `epoch_seconds`.
//!
//! # Invariants
//! - Writes are puts by key, so replaying any range of the stream rewrites the same items and
//!   adds none: the sink needs no ledger.
//! - Records of all shards share one buffer ([`crate::sinks::buffer`]'s limits), written as one
//!   `batch_put` (on the embedded table one atomic write; from 1,024 items a sorted table of
//!   its own). A shard's durable mark moves to its last record of a batch only after that
//!   batch and every batch started before it were written.
//! - The table is created (or checked against this schema) before the first write.
//!
//! # Layout
//! - [`config`] — [`DynamoDbConfig`].
//! - [`sink`] — [`DynamoDbSink`], the item mapping and series queries.

pub mod config;
pub mod sink;

pub use config::DynamoDbConfig;
pub use sink::{DynamoDbSink, item_for, query_series, table_schema};
