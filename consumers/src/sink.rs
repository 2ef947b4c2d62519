//! The contract between the consumer runtime and a sink.
//!
//! The runtime owns reading, retries and checkpoints; a sink only turns batches into effects.
//! A sink may buffer (the S3 sink does, like Firehose), so it reports per shard the highest
//! sequence number whose effects are durable, and the runtime checkpoints up to that and no
//! further. Replays and restarts hand a sink records it has already applied: it must apply
//! each record's effect at most once (idempotence), whatever the batch boundaries.

use async_trait::async_trait;
use shardline_core::{MetricEvent, Result, SequenceNumber, ShardId};
use std::sync::Arc;

/// A valid event with its position in the stream.
///
/// Cheap to clone (the event and the sequence number are shared), so sinks that buffer keep
/// clones and consumers in one process can share one decoded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    /// The shard it was read from.
    pub shard: ShardId,
    /// Its sequence number.
    pub sequence_number: SequenceNumber,
    /// When the stream accepted it, epoch milliseconds.
    pub arrival_ms: i64,
    /// The validated event.
    pub event: Arc<MetricEvent>,
}

/// The records of `records` (one shard's, in sequence order, as [`Sink::write`] gets them)
/// after `seen`: all of them when `seen` is `None`. A binary search, not a comparison per
/// record.
pub fn records_after<'a>(
    records: &'a [SinkRecord],
    seen: Option<&SequenceNumber>,
) -> &'a [SinkRecord] {
    let from = seen.map_or(0, |seen| {
        records.partition_point(|r| r.sequence_number <= *seen)
    });
    &records[from..]
}

/// Turns batches of events into effects (objects, items, metrics, notifications).
#[async_trait]
pub trait Sink: Send {
    /// A short name for logs and status lines (`s3`, `dynamodb`, `cloudwatch`, `alerts`).
    fn name(&self) -> &str;

    /// Accepts one shard's records, in sequence order. The batch is borrowed: the runtime
    /// keeps it to hand it again after a retryable error. Returns the highest sequence number of
    /// `shard` whose effects are now durable (possibly older than the batch's last record when
    /// the sink buffers), or `None` when nothing new became durable.
    ///
    /// # Errors
    /// A retryable error makes the runtime retry the same batch with backoff.
    async fn write(
        &mut self,
        shard: ShardId,
        records: &[SinkRecord],
        now_ms: i64,
    ) -> Result<Option<SequenceNumber>>;

    /// Writes out whatever is due (buffer intervals passed), or everything when `force`
    /// (shutdown, drain). Returns the shards whose durable sequence number advanced.
    ///
    /// # Errors
    /// As [`Sink::write`].
    async fn flush(&mut self, now_ms: i64, force: bool) -> Result<Vec<(ShardId, SequenceNumber)>>;

    /// Tells the sink that the records of `shard` from `first` through `last` have been handed
    /// on, in order: the valid ones were accepted by [`Sink::write`] (there may be none) and
    /// the others dead-lettered. `after` is the record handed on just before `first` (the
    /// checkpoint, when the consumer resumed there), or `None` when the consumer started the
    /// shard from its configured starting position; no record lies between `after` and
    /// `first`. The runtime reports every stretch it hands on.
    ///
    /// A sink that keeps coverage of sequence ranges (the S3 sink's manifest) joins its ranges
    /// across dead letters with it; the default ignores it.
    fn handed(
        &mut self,
        shard: ShardId,
        after: Option<&SequenceNumber>,
        first: &SequenceNumber,
        last: &SequenceNumber,
    ) {
        let _ = (shard, after, first, last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::MetricType;

    fn record(n: u64) -> SinkRecord {
        SinkRecord {
            shard: ShardId(0),
            sequence_number: SequenceNumber::try_from(n.to_string()).expect("decimal"),
            arrival_ms: 0,
            event: Arc::new(MetricEvent {
                metric_id: format!("cpu-{n}"),
                metric_type: MetricType::CpuUtilization,
                timestamp: 0,
                timestamp_ms: None,
                value: 50.0,
                unit: None,
                instance_id: "i-000001".into(),
                region: "eu-west-1".into(),
                collected_at: "2026-01-01T00:00:00Z".into(),
            }),
        }
    }

    #[test]
    fn records_after_a_position_are_the_suffix_past_it() {
        let records: Vec<SinkRecord> = [5, 9, 12, 100].into_iter().map(record).collect();
        let after = |seen: Option<u64>| {
            let seen = seen.map(|n| SequenceNumber::try_from(n.to_string()).expect("decimal"));
            records_after(&records, seen.as_ref())
                .iter()
                .map(|r| r.sequence_number.as_str().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(after(None), ["5", "9", "12", "100"]);
        assert_eq!(after(Some(1)), ["5", "9", "12", "100"]);
        assert_eq!(after(Some(9)), ["12", "100"]);
        assert_eq!(after(Some(10)), ["12", "100"], "numeric, not text, order");
        assert_eq!(after(Some(100)), Vec::<String>::new());
    }
}
