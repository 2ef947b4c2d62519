//! Error types of the collectors, the producer and their configuration.
//!
//! Every message names the input involved and what to do about it.

use std::path::PathBuf;

use crate::producer::SendReport;

/// A collector could not produce samples.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A `/proc` (or statvfs) source could not be read.
    #[error(
        "cannot read {path}: {source}; host metrics need Linux /proc (use the synthetic collector elsewhere)"
    )]
    Unavailable {
        /// The file or mount point.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configured mount point could not be measured.
    #[error(
        "cannot statvfs mount point {path}: {source}; check `mounts` in the host collector config"
    )]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `/proc` file did not have the expected shape.
    #[error("unexpected contents in {path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The seed's `metric_type` field named no known metric type.
    #[error(
        "metric_type `{0}` is not one of cpu_utilization, memory_usage, disk_usage, network_traffic or all"
    )]
    UnknownMetricType(String),
    /// The collector's configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A configuration value is out of range or malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A size (`64MiB`) or duration (`5s`) did not parse.
    #[error(transparent)]
    Unit(#[from] shardline_core::units::UnitError),
    /// A value is outside its allowed range.
    #[error("{field} = {value} is out of range: {rule}")]
    OutOfRange {
        /// The configuration key.
        field: &'static str,
        /// The value given.
        value: String,
        /// The allowed range.
        rule: &'static str,
    },
}

/// A send could not continue.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The stream rejected a whole put_records call with a permanent error (e.g. it does not
    /// exist). `partial` reports what was appended before.
    #[error(
        "put_records to stream `{stream}` failed: {source} (check the stream name and that it exists)"
    )]
    Stream {
        /// The stream name.
        stream: String,
        /// The stream's error.
        #[source]
        source: shardline_core::Error,
        /// What happened to the records before the failure.
        partial: Box<SendReport>,
    },
    /// The producer was closed while a send was waiting for capacity.
    #[error("producer for stream `{0}` is closed")]
    Closed(String),
    /// The producer's configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
