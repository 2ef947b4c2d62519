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

/// Publishes per-minute statistic sets; skips records at or below the shard's watermark.
pub struct CloudWatchSink {
    publisher: Arc<dyn MetricPublisher>,
    config: CloudWatchConfig,
    /// Last applied sequence number per shard, as stored with the data (`None`: nothing yet).
    watermarks: HashMap<ShardId, Option<SequenceNumber>>,
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
}

#[async_trait]
impl Sink for CloudWatchSink {
    fn name(&self) -> &str {
        "cloudwatch"
    }

    async fn write(
        &mut self,
        shard: ShardId,
        records: Vec<SinkRecord>,
        _now_ms: i64,
    ) -> Result<Option<SequenceNumber>> {
        let Some(batch_last) = records.last().map(|r| r.sequence_number.clone()) else {
            return Ok(None);
        };
        let applied = self.watermark(shard).await?;
        let fresh: Vec<&SinkRecord> = records
            .iter()
            .filter(|r| applied.as_ref().is_none_or(|w| &r.sequence_number > w))
            .collect();
        let skipped = records.len() - fresh.len();
        if skipped > 0 {
            debug!(shard = %shard, skipped, "records at or below the watermark skipped");
        }
        let mut agg = MinuteAggregator::new();
        let mut group_last: Option<SequenceNumber> = None;
        for record in fresh {
            if agg.len() >= self.config.max_datums_per_call
                && agg.would_grow(&record.event)
                && let Some(last) = group_last.take()
            {
                self.publish(shard, agg.take(), last).await?;
            }
            agg.add(&record.event);
            group_last = Some(record.sequence_number.clone());
        }
        if let Some(last) = group_last {
            self.publish(shard, agg.take(), last).await?;
        }
        // Records at or below the watermark were already durable.
        Ok(Some(batch_last))
    }

    async fn flush(
        &mut self,
        _now_ms: i64,
        _force: bool,
    ) -> Result<Vec<(ShardId, SequenceNumber)>> {
        // Each write publishes its batch before returning: nothing is buffered.
        Ok(Vec::new())
    }
}
