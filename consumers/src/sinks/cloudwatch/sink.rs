//! [`CloudWatchSink`]: aggregates each batch per minute and publishes it with a per-shard watermark.

use async_trait::async_trait;
use shardline_core::ports::{MetricDatum, MetricPublisher, Watermark};
use shardline_core::{Result, SequenceNumber, ShardId};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::debug;

use super::aggregate::MinuteAggregator;
use super::config::CloudWatchConfig;
use crate::sink::{Sink, SinkRecord};

/// Statistic sets of consecutive records, published in one call with the last one's watermark.
struct Group {
    agg: MinuteAggregator,
    last: SequenceNumber,
}

/// One shard's aggregated records waiting to be published.
#[derive(Default)]
struct ShardBuffer {
    /// In record order; every group but the last is full (`max_datums_per_call`).
    groups: Vec<Group>,
    records: usize,
    opened_ms: Option<i64>,
    /// The last record taken in or skipped (a retried batch is not counted twice).
    last_seen: Option<SequenceNumber>,
}

impl ShardBuffer {
    /// The durable mark: everything taken in, once nothing is buffered.
    fn advance_reported(&self) -> Option<SequenceNumber> {
        if self.groups.is_empty() {
            self.last_seen.clone()
        } else {
            None
        }
    }
}

/// Publishes per-minute statistic sets; skips records at or below the shard's watermark.
pub struct CloudWatchSink {
    publisher: Arc<dyn MetricPublisher>,
    config: CloudWatchConfig,
    /// Last applied sequence number per shard, as stored with the data (`None`: nothing yet).
    watermarks: HashMap<ShardId, Option<SequenceNumber>>,
    buffers: HashMap<ShardId, ShardBuffer>,
}

impl CloudWatchSink {
    /// A sink publishing to `publisher` as configured.
    ///
    /// # Errors
    /// [`shardline_core::Error::InvalidArgument`] when the configuration is invalid.
    pub fn new(publisher: Arc<dyn MetricPublisher>, config: CloudWatchConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            publisher,
            config,
            watermarks: HashMap::new(),
            buffers: HashMap::new(),
        })
    }

    /// The watermark key of a shard: `<consumer>/<stream>/<shard>`.
    pub fn watermark_key(&self, shard: ShardId) -> String {
        format!("{}/{}/{}", self.config.consumer, self.config.stream, shard)
    }

    /// The shard's watermark, read from the store once and then cached.
    ///
    /// # Errors
    /// As [`MetricPublisher::watermark`].
    pub async fn watermark(&mut self, shard: ShardId) -> Result<Option<SequenceNumber>> {
        if let Some(w) = self.watermarks.get(&shard) {
            return Ok(w.clone());
        }
        let w = self.publisher.watermark(&self.watermark_key(shard)).await?;
        self.watermarks.insert(shard, w.clone());
        Ok(w)
    }

    /// Records aggregated and not yet published, over all shards.
    pub fn buffered(&self) -> usize {
        self.buffers.values().map(|b| b.records).sum()
    }

    async fn publish(
        &mut self,
        shard: ShardId,
        data: Vec<MetricDatum>,
        last: SequenceNumber,
    ) -> Result<()> {
        let watermark = Watermark {
            key: self.watermark_key(shard),
            sequence_number: last.clone(),
        };
        let datums = data.len();
        let result = self
            .publisher
            .put_metric_data(&self.config.namespace, data, Some(&watermark))
            .await;
        match result {
            Ok(()) => {
                debug!(shard = %shard, datums, watermark = %last, "statistic sets published");
                self.watermarks.insert(shard, Some(last));
                Ok(())
            }
            Err(e) => {
                // The call may or may not have landed: read the stored watermark next time.
                self.watermarks.remove(&shard);
                Err(e)
            }
        }
    }

    /// Publishes a shard's groups in order and returns its new durable mark. A group whose
    /// last record is at or below the stored watermark landed before (a call that failed
    /// after storing) and is dropped unpublished. On error the rest stays buffered.
    async fn flush_shard(&mut self, shard: ShardId) -> Result<Option<SequenceNumber>> {
        loop {
            let applied = self.watermark(shard).await?;
            let Some(buf) = self.buffers.get_mut(&shard) else {
                return Ok(None);
            };
            let Some(group) = buf.groups.first() else {
                buf.records = 0;
                buf.opened_ms = None;
                return Ok(buf.advance_reported());
            };
            let last = group.last.clone();
            if applied.as_ref() >= Some(&last) {
                buf.groups.remove(0);
                continue;
            }
            let data = group.agg.datums();
            self.publish(shard, data, last).await?;
            if let Some(buf) = self.buffers.get_mut(&shard) {
                buf.groups.remove(0);
            }
        }
    }
}

#[async_trait]
impl Sink for CloudWatchSink {
    fn name(&self) -> &str {
        "cloudwatch"
    }

    async fn write(
        &mut self,
        shard: ShardId,
        records: &[SinkRecord],
        now_ms: i64,
    ) -> Result<Option<SequenceNumber>> {
        if records.is_empty() {
            return Ok(None);
        }
        let applied = self.watermark(shard).await?;
        let max = self.config.max_datums_per_call;
        let policy = self.config.buffer();
        let buf = self.buffers.entry(shard).or_default();
        let mut skipped = 0usize;
        for r in records {
            if buf.last_seen.as_ref() >= Some(&r.sequence_number) {
                continue; // handed again after a retry: already taken
            }
            buf.last_seen = Some(r.sequence_number.clone());
            if applied.as_ref().is_some_and(|w| &r.sequence_number <= w) {
                skipped += 1;
                continue;
            }
            let fits = buf
                .groups
                .last()
                .is_some_and(|g| g.agg.len() < max || !g.agg.would_grow(&r.event));
            if !fits {
                buf.groups.push(Group {
                    agg: MinuteAggregator::new(),
                    last: r.sequence_number.clone(),
                });
            }
            if let Some(g) = buf.groups.last_mut() {
                g.agg.add(&r.event);
                g.last = r.sequence_number.clone();
            }
            buf.records += 1;
            buf.opened_ms.get_or_insert(now_ms);
        }
        if skipped > 0 {
            debug!(shard = %shard, skipped, "records at or below the watermark skipped");
        }
        if policy.due(buf.records, buf.opened_ms, now_ms) {
            return self.flush_shard(shard).await;
        }
        // Records at or below the watermark were already durable.
        Ok(buf.advance_reported())
    }

    async fn flush(&mut self, now_ms: i64, force: bool) -> Result<Vec<(ShardId, SequenceNumber)>> {
        let policy = self.config.buffer();
        let due: Vec<ShardId> = self
            .buffers
            .iter()
            .filter(|(_, b)| {
                !b.groups.is_empty() && (force || policy.due(b.records, b.opened_ms, now_ms))
            })
            .map(|(id, _)| *id)
            .collect();
        let mut advanced = Vec::new();
        for shard in due {
            if let Some(durable) = self.flush_shard(shard).await? {
                advanced.push((shard, durable));
            }
        }
        Ok(advanced)
    }
}
