//! Metric collectors (synthetic, host) and the batching stream producer.
//!
//! Collectors turn "now" into [`MetricEvent`]s; the [`Producer`] appends them to any
//! [`shardline_core::ports::Stream`] with the instance id as partition key.
//!
//! # Layout
//! - [`synthetic`]: [`SyntheticCollector`], the seed's data-collector: seeded random values in
//!   each metric type's seed range, for a fixed pool of simulated instances.
//! - [`host`]: [`HostCollector`], real CPU, memory, disk and network figures from Linux `/proc`
//!   and `statvfs`.
//! - [`sample`]: building one [`MetricEvent`] the way the seed does (ids, rounding, timestamps)
//!   and reading the seed's `metric_type` selection field.
//! - [`producer`]: [`Producer`]: batching into put_records calls, retries of failed entries
//!   with exponential backoff and jitter, and backpressure on in-flight bytes.
//! - [`loadgen`]: `shardline loadgen`'s engine: paced concurrent put_records against any
//!   stream, end-to-end lag readers, read-back, and the report.
//! - [`config`]: serde configuration of all three, with `"5s"` durations and `"64MiB"` sizes.
//! - [`error`]: [`CollectError`], [`ProducerError`] and [`ConfigError`].

pub mod config;
pub mod error;
pub mod host;
pub mod loadgen;
pub mod producer;
pub mod sample;
pub mod synthetic;

pub use config::{ByteSize, HostConfig, OrderingMode, ProducerConfig, SyntheticConfig};
pub use error::{CollectError, ConfigError, ProducerError};
pub use host::HostCollector;
pub use producer::{AppendedRecord, FailedRecord, Producer, SendReport};
pub use sample::{build_event, parse_metric_selection};
pub use shardline_core::{MetricEvent, MetricType};
pub use synthetic::{MalformedRecord, MixedCollection, SyntheticCollector};
