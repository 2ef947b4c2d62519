//! The embedded, durable, sharded Kinesis-style log.
//!
//! [`Log`] keeps streams of shards in a directory and implements
//! [`shardline_core::ports::Stream`]. Appends are group-committed (one `fdatasync` covers every
//! request queued meanwhile) and acknowledged only once durable; readers see acknowledged
//! records only. [`verify`] checks every CRC of a log directory offline.
//!
//! # Layout
//! - [`log`](crate::Log): opening, the stream registry, retention, close; directory layout.
//! - `config`: [`LogConfig`], the serde form of [`LogOptions`] (sizes like `"64MiB"`).
//! - `api`: the `Stream` port: limits, routing by hash key, iterators, get_records.
//! - `writer`: the per-shard group-commit writer and the active segment.
//! - `segment`: segment files, naming, reading committed frames.
//! - `frame`: the on-disk record frame format.
//! - `index`: the sparse index format and its binary searches.
//! - `recovery`: what open does to each shard; torn tail versus mid-log damage.
//! - `seqno`: fast sequence-number encoding.
//! - `retention`: deleting old sealed segments.
//! - `shard`: a shard's committed view and its read path.
//! - `meta`: stream metadata and name rules.
//! - `iterator`: shard iterator tokens.
//! - `throttle`: the opt-in per-shard write limits.
//! - `verify`: the offline checker.
//! - [`LogError`]: errors, mapped onto [`shardline_core::Error`].

mod api;
mod config;
mod error;
mod frame;
mod index;
mod iterator;
mod log;
mod meta;
mod options;
mod recovery;
mod retention;
mod segment;
mod seqno;
mod shard;
mod throttle;
mod verify;
mod writer;

pub use config::{LogConfig, parse_size};
pub use error::LogError;
pub use log::{Log, ShardStats};
pub use options::{Durability, LogOptions};
pub use retention::RetentionReport;
pub use verify::{VerifyProblem, VerifyReport, verify};
