//! The S3 Parquet sink: Firehose-like buffering per shard, Parquet objects partitioned by
//! event day, and a per-shard manifest that makes replays exactly-once.
//!
//! # Output
//! - `<prefix>/year=YYYY/month=MM/day=DD/<shard>-<first seq>-<last seq>.parquet` (prefix
//!   `metrics` by default) in the configured bucket, one object per shard flush and event day
//!   (UTC). Schema: [`shardline_core::schema::metric_schema`] exactly; rows sorted by
//!   (`instance_id`, `timestamp`); strings dictionary-encoded; ZSTD or SNAPPY; page statistics.
//! - With `raw_json_archive = true`, beside each Parquet object the seed's JSON Lines archive
//!   `raw-metrics/YYYY/MM/DD/metrics-<shard>-<first seq>-<last seq>.json` (sequence order).
//! - `_manifests/<prefix>/<shard>.json`: the shard's manifest (see [`manifest`]).
//!
//! # Buffering
//! Records are buffered per shard and written when the buffered bytes reach `buffer_size` or
//! the buffer is older than `buffer_interval` (measured with the `now_ms` the runtime passes),
//! or on a forced flush. A due buffer's objects are built, encoded and written in the
//! background while the shard's next records are buffered (`flushes_in_flight` at once, one
//! per shard; a forced flush writes up to one shard per core at once). The durable mark
//! reported to the runtime is the last record of the last committed flush, so the consumer's
//! checkpoint never passes an unwritten record.
//!
//! # Exactly-once under replay
//! The manifest lists, per shard, the committed sequence ranges, merged. Invariant: every
//! valid record of the shard whose sequence number lies in a committed range is in exactly one
//! object, and every row lies in one. A record is written only if no committed range covers
//! it, so a replay with different batch boundaries (other buffer sizes, a start in the middle
//! of an earlier object) adds exactly the missing rows. Ranges are joined over the stretches
//! the runtime reports handed on ([`crate::Sink::handed`], see [`span`]), so the manifest's
//! size is bounded by the stretches never read, not by the number of flushes.
//!
//! # Commit protocol (crash safety)
//! 1. Record the flush as `pending` in the manifest (its range and planned object keys).
//! 2. Write the objects (each put is atomic).
//! 3. Move the entry from `pending` to the committed list (one atomic manifest put).
//!
//! When a shard is first seen, and before every flush, a leftover `pending` entry is
//! reconciled: if all its objects exist they are adopted (committed); otherwise the ones that
//! exist are deleted and the entry dropped (the consumer's checkpoint did not pass those
//! records, so they are delivered again). A crash at any point therefore leaves no row in two
//! objects and no row lost. Objects written outside this protocol are not examined.
//!
//! # One writer per shard (fencing)
//! The protocol assumes one writer per shard; `shardline consume` workers hand shards over
//! through leases, and a worker whose lease was taken over while it was paused must not write
//! on. Every manifest save is conditional on the version the writer read or wrote last (S3's
//! `If-Match`, `If-None-Match: *` for a new manifest): the paused worker's next save fails,
//! its shard takes nothing more, and the objects of a flush it could not commit are deleted
//! unless the new owner's manifest names them (see [`manifest`]).
//!
//! # Layout
//! - [`config`] — [`S3ParquetConfig`].
//! - [`writer`] — Arrow arrays built directly from events, Parquet encoding, object keys.
//! - [`manifest`] — [`ShardManifest`]: merged ranges, coverage checks, load/save/reconcile.
//! - `span` — the stretch of each shard handed on, which the manifest's ranges are joined over.
//! - `flush` — the steps of one flush: staging, encoding, putting.
//! - [`sink`] — [`S3ParquetSink`], the [`crate::Sink`] implementation.

pub mod config;
mod flush;
pub mod manifest;
pub mod sink;
mod span;
pub mod writer;

#[cfg(test)]
mod compaction_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fencing;

pub use config::{ParquetCompression, S3ParquetConfig};
pub use manifest::ShardManifest;
pub use sink::{S3ParquetSink, S3SinkStats};
pub use writer::{EncodeOptions, encode_parquet, metric_batch};
