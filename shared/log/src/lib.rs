//! The embedded, durable, sharded Kinesis-style log.
//!
//! [`Log`] keeps streams of shards in a directory and implements
//! [`shardline_core::ports::Stream`]. Appends are group-committed (one `fdatasync` covers every
//! request queued meanwhile) and acknowledged only once durable; readers see acknowledged
//! records only. [`verify`] checks every CRC of a log directory offline.
//!
//! # On disk
//! ```text
//! <dir>/LOCK                                        flock held while a process has it open
//! <dir>/ITERATOR_KEY                                secret authenticating shard iterators
//! <dir>/<stream>/stream.json                        metadata and shard lineage, replaced atomically
//! <dir>/<stream>/shardId-000000000000/
//!     00000000000000000000.seg                      frames of offsets 0.., rolled by size
//!     00000000000000000000.idx                      sparse index of that segment
//! ```
//! A frame is `body_len u32 · crc32c(body) u32 · offset u64 · arrival_ms i64 · key_len u16 ·
//! flags u8 · [explicit hash key u128] · partition key · data` (little-endian; see `frame`).
//! The flag *synced before* marks the first frame of a batch written when every earlier byte
//! of its segment was durable. An index entry is `offset u64 · arrival_ms i64 · position u64 ·
//! crc32c u32`, one every `index_interval_bytes` of segment (see `index`); the active
//! segment's index is kept in memory and written when the segment is sealed or closed.
//!
//! # Recovery
//! On open, sealed segments are checked frame by frame and any damage fails the open, naming
//! the file and byte offset. The newest segment of each shard is scanned; damage that no frame
//! written after a later sync follows is the unsynced suffix a crash or power loss leaves, and
//! is cut back to the last whole record (with a warning); damage followed by such a frame fails
//! the open. Empty segments left by failed rolls, temporary files of interrupted writes, and
//! missing or damaged indexes are removed or rebuilt (see `recovery`).
//!
//! # Failing disks
//! A write or sync that fails refuses its whole batch ([`LogError::AppendRefused`], naming the
//! file, the log directory and the remedy), is cut back, and the log keeps appending once the
//! disk takes writes again. A failed segment roll changes nothing and is retried. Open
//! descriptors: one per shard plus at most [`LogOptions::open_sealed_segments`] cached read
//! handles of sealed segments, each closed once unused for [`LogOptions::sealed_handle_idle`]
//! (see `handles`).
//!
//! # Resharding
//! Split, merge and uniform scaling close shards and create children; the lineage (parents,
//! each closed shard's end offset) is part of `stream.json`, whose atomic replacement is the
//! single commit point of a reshard, so a crash leaves either the old or the new lineage, and
//! every acknowledged record in exactly one shard (see `reshard`). A closed shard reads to its
//! end and then returns no next iterator; retention drops it once it closed longer ago than
//! the retention period.
//!
//! # Layout
//! - `log`: [`Log`]: opening, the stream registry, retention, close; directory layout.
//! - `config`: [`LogConfig`], the serde form of [`LogOptions`] (sizes like `"64MiB"`).
//! - `api`: the `Stream` port: describing shards and lineage, iterators, get_records.
//! - `put`: put_records: limits, routing by hash key, re-routing around closing shards.
//! - `reshard`: split, merge, uniform scaling; lineage commits; closed shards past retention.
//! - `tags`: stream tags.
//! - `consumers`: registered enhanced fan-out consumers.
//! - `writer`: the per-shard group-commit writer, segment rolls, refusing failed batches.
//! - `active`: the active segment: positional writes, sync, cutting back a failed write.
//! - `segment`: segment files, naming, reading committed frames.
//! - `handles`: the bounded cache of sealed segments' read handles.
//! - `frame`: the on-disk record frame format.
//! - `index`: the sparse index format and its binary searches.
//! - `scan`: a segment's valid prefix, and what follows damage.
//! - `recovery`: what open does to each shard; unsynced suffix versus mid-log damage.
//! - `seqrun`: sequence numbers of consecutive offsets by decimal addition.
//! - `retention`: deleting old sealed segments.
//! - `shard`: a shard's committed view and its read path.
//! - `meta`: stream metadata and name rules.
//! - `iterator`: shard iterator tokens (MAC-authenticated, five-minute lifetime).
//! - `throttle`: the opt-in per-shard write and read limits.
//! - `verify`: the offline checker.
//! - `fault`: fault injection on every I/O path, compiled only into the crate's unit tests
//!   (`tests`: the scenarios that use it).
//! - [`LogError`]: errors, mapped onto [`shardline_core::Error`].

mod active;
mod api;
mod config;
mod consumers;
mod error;
mod fault;
mod frame;
mod handles;
mod index;
mod iterator;
mod log;
mod meta;
mod options;
mod put;
mod recovery;
mod reshard;
mod retention;
mod scan;
mod segment;
mod seqrun;
mod shard;
mod tags;
#[cfg(test)]
mod tests;
mod throttle;
mod verify;
mod writer;

pub use config::LogConfig;
pub use consumers::{ConsumerMeta, MAX_CONSUMERS};
pub use error::LogError;
pub use log::{Log, ShardStats};
pub use options::{DEFAULT_OPEN_SEALED_SEGMENTS, Durability, LogOptions};
pub use retention::RetentionReport;
pub use tags::MAX_TAGS;
pub use verify::{Committed, VerifyProblem, VerifyReport, verify, verify_committed};
