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
//! An index entry is `offset u64 · arrival_ms i64 · position u64 · crc32c u32`, one every
//! `index_interval_bytes` of segment (see `index`).
//!
//! # Recovery
//! On open, sealed segments are checked frame by frame and any damage fails the open, naming
//! the file and byte offset. The newest segment of each shard is scanned; damage after which
//! no valid frame follows is a torn tail and is cut (with a warning), damage followed by a
//! valid frame fails the open. Missing or damaged indexes are rebuilt (see `recovery`).
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
//! - `writer`: the per-shard group-commit writer and the active segment.
//! - `segment`: segment files, naming, reading committed frames.
//! - `frame`: the on-disk record frame format.
//! - `index`: the sparse index format and its binary searches.
//! - `recovery`: what open does to each shard; torn tail versus mid-log damage.
//! - `seqrun`: sequence numbers of consecutive offsets by decimal addition.
//! - `retention`: deleting old sealed segments.
//! - `shard`: a shard's committed view and its read path.
//! - `meta`: stream metadata and name rules.
//! - `iterator`: shard iterator tokens (MAC-authenticated, five-minute lifetime).
//! - `throttle`: the opt-in per-shard write and read limits.
//! - `verify`: the offline checker.
//! - [`LogError`]: errors, mapped onto [`shardline_core::Error`].

mod api;
mod config;
mod consumers;
mod error;
mod frame;
mod index;
mod iterator;
mod log;
mod meta;
mod options;
mod put;
mod recovery;
mod reshard;
mod retention;
mod segment;
mod seqrun;
mod shard;
mod tags;
mod throttle;
mod verify;
mod writer;

pub use config::LogConfig;
pub use consumers::{ConsumerMeta, MAX_CONSUMERS};
pub use error::LogError;
pub use log::{Log, ShardStats};
pub use options::{Durability, LogOptions};
pub use retention::RetentionReport;
pub use tags::MAX_TAGS;
pub use verify::{VerifyProblem, VerifyReport, verify};
