//! The CloudWatch sink: per-minute statistic sets in the `InfraMonitoring` namespace.
//!
//! Each batch's events are grouped by (metric, instance, region, minute of event time) into
//! CloudWatch statistic sets (SampleCount, Sum, Minimum, Maximum) with dimensions `Region` and
//! `InstanceID` and the metric's unit (`Percent`, `Megabits/Second`). The metric store merges
//! statistic sets of the same minute, so `get_metric_statistics` over 60 s or 300 s periods
//! answers for every sample, whichever batch carried it.
//!
//! # Invariants (idempotence)
//! - Per shard, a watermark `<consumer>/<stream>/<shard>` (e.g.
//!   `cloudwatch/metrics/shardId-000000000000`) records the last sequence number applied. It
//!   is written *with* the data in the same `put_metric_data` call, so data and watermark are
//!   stored together (atomically on the embedded store).
//! - Before writing, the sink reads the watermark (once per shard, then cached) and skips
//!   records at or below it; replays and re-deliveries never count a sample twice, whatever
//!   their batch boundaries.
//! - Records are aggregated per shard across batches ([`crate::sinks::buffer`]: by default up
//!   to 100,000 records or 1 s), cut in record order into groups of at most
//!   `MetricPublisher::max_datums_per_put` datums (`max_datums_per_call` for CloudWatch;
//!   20,000 for the embedded store, which stores a whole put in one transaction); each group
//!   is one put carrying the watermark of its own last record, so a crash between puts loses
//!   or repeats nothing. (With groups of one call's worth, a shard holding more series than
//!   that cuts a group every ~1,000 records, since records cycle through the series.) A
//!   group found at or below the stored watermark when it is due (its call landed, then
//!   failed) is not sent again.
//! - A due shard's groups are published in the background, one call per shard at a time
//!   (so its watermark only moves forward) while the consumer reads on. A shard's durable mark
//!   moves to a group's last record once that group's call returned, and to everything taken
//!   in once nothing is buffered or being published. After a failed call the stored watermark
//!   is read again and the group is due at once.
//!
//! # Layout
//! - [`config`] — [`CloudWatchConfig`].
//! - [`aggregate`] — grouping records into statistic sets.
//! - [`sink`] — [`CloudWatchSink`].

pub mod aggregate;
pub mod config;
pub mod sink;

pub use aggregate::MinuteAggregator;
pub use config::CloudWatchConfig;
pub use sink::CloudWatchSink;
