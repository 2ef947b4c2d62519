//! [`CloudWatchSink`]: aggregates each batch per minute and publishes it with a per-shard watermark.

use async_trait::async_trait;
use shardline_core::ports::{MetricPublisher, Watermark};
use shardline_core::{Result, SequenceNumber, ShardId};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::aggregate::MinuteAggregator;
use super::config::CloudWatchConfig;
use crate::sink::{Sink, SinkRecord, records_after};
use crate::sinks::buffer::{self, BufferPolicy};

/// Statistic sets of consecutive records, published in one call with the last one's watermark.
struct Group {
    agg: MinuteAggregator,
    last: SequenceNumber,
    /// Being (or having been) published: no record joins it any more.
    sealed: bool,
    /// Records aggregated into it.
    records: usize,
    /// When its first record was taken in (`now_ms`); [`buffer::OVERDUE`] once a call for it
    /// failed.
    opened_ms: i64,
}

/// A shard's first group being published in the background.
struct Publishing {
    last: SequenceNumber,
    task: JoinHandle<Result<()>>,
}

/// One shard's aggregated records waiting to be published.
#[derive(Default)]
struct ShardBuffer {
    /// In record order; every group but the last is full (the publisher's
    /// `max_datums_per_put`) or sealed.
    groups: Vec<Group>,
    /// The last record taken in or skipped (a retried batch is not counted twice).
    last_seen: Option<SequenceNumber>,
    /// The call publishing `groups[0]`, at most one per shard so its calls land in order.
    publishing: Option<Publishing>,
    /// The last published group's last record, not yet reported.
    published: Option<SequenceNumber>,
}

impl ShardBuffer {
    /// Records waiting in the groups (including one being published).
    fn records(&self) -> usize {
        self.groups.iter().map(|g| g.records).sum()
    }

    /// Whether the records not yet published are due, by count or by the age of the oldest.
    fn due(&self, policy: &BufferPolicy, now_ms: i64) -> bool {
        policy.due(
            self.records(),
            self.groups.first().map(|g| g.opened_ms),
            now_ms,
        )
    }

    /// The durable mark to report: the last published group's, or everything taken in once
    /// nothing is buffered or being published.
    fn take_durable(&mut self) -> Option<SequenceNumber> {
        let published = self.published.take();
        if self.groups.is_empty() && self.publishing.is_none() {
            self.last_seen.clone().max(published)
        } else {
            published
        }
    }
}

/// Publishes per-minute statistic sets; skips records at or below the shard's watermark.
///
/// A due shard's statistic sets are published in the background (one call per shard at a
/// time, so a shard's watermark only moves forward) while the runtime reads on; a shard's
/// durable mark moves once the call that stored its watermark returned. With a zero
/// `buffer_interval` every batch is published before `write` returns.
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
        self.buffers.values().map(ShardBuffer::records).sum()
    }

    /// Takes the outcome of the shard's call in flight, if any: waiting for it when `wait`,
    /// else only when it has finished. A published group leaves the buffer; after a failed
    /// call the stored watermark is read again (the call may have landed) and the group stays,
    /// due at once.
    async fn settle(&mut self, shard: ShardId, wait: bool) -> Result<()> {
        let Some(buf) = self.buffers.get_mut(&shard) else {
            return Ok(());
        };
        let Some(p) = buf.publishing.take_if(|p| wait || p.task.is_finished()) else {
            return Ok(());
        };
        let outcome = match p.task.await {
            Ok(r) => r,
            Err(e) => Err(shardline_core::Error::Internal(format!(
                "metric publish task failed: {e}"
            ))),
        };
        match outcome {
            Ok(()) => {
                debug!(shard = %shard, watermark = %p.last, "statistic sets published");
                buf.groups.remove(0);
                buf.published = Some(p.last.clone());
                self.watermarks.insert(shard, Some(p.last));
                Ok(())
            }
            Err(e) => {
                if let Some(group) = buf.groups.first_mut() {
                    group.opened_ms = buffer::OVERDUE;
                }
                self.watermarks.remove(&shard);
                Err(e)
            }
        }
    }

    /// Publishes a shard's groups in order, each once the one before it landed; with `wait`
    /// until all are published, else it starts the next call and returns. With `due_at`, only
    /// while the records left are due at that time (without it, all: a forced flush). A group
    /// whose last record is at or below the stored watermark landed before (a call that failed
    /// after storing) and is dropped unpublished. On error the rest stays buffered.
    async fn flush_shard(&mut self, shard: ShardId, wait: bool, due_at: Option<i64>) -> Result<()> {
        let policy = self.config.buffer();
        loop {
            self.settle(shard, wait).await?;
            if self.buffers.get(&shard).is_none_or(|b| {
                b.publishing.is_some()
                    || b.groups.is_empty()
                    || due_at.is_some_and(|now| !b.due(&policy, now))
            }) {
                return Ok(());
            }
            let applied = self.watermark(shard).await?;
            let key = self.watermark_key(shard);
            let Some(buf) = self.buffers.get_mut(&shard) else {
                return Ok(());
            };
            let Some(group) = buf.groups.first_mut() else {
                return Ok(());
            };
            let last = group.last.clone();
            if applied.as_ref() >= Some(&last) {
                buf.groups.remove(0);
                buf.published = Some(last);
                continue;
            }
            group.sealed = true;
            let data = group.agg.datums();
            let (publisher, namespace) =
                (Arc::clone(&self.publisher), self.config.namespace.clone());
            let watermark = Watermark {
                key,
                sequence_number: last.clone(),
            };
            let task = tokio::spawn(async move {
                publisher
                    .put_metric_data(&namespace, data, Some(&watermark))
                    .await
            });
            buf.publishing = Some(Publishing { last, task });
            if !wait {
                return Ok(());
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
        let max = self
            .publisher
            .max_datums_per_put(self.config.max_datums_per_call)
            .max(1);
        let policy = self.config.buffer();
        let buf = self.buffers.entry(shard).or_default();
        let mut skipped = 0usize;
        // Records come in sequence order; those up to the last one taken were handed before (a
        // retry): the new ones are a suffix.
        let new = records_after(records, buf.last_seen.as_ref());
        if let Some(last) = new.last() {
            buf.last_seen = Some(last.sequence_number.clone());
        }
        for r in new {
            if applied.as_ref().is_some_and(|w| &r.sequence_number <= w) {
                skipped += 1;
                continue;
            }
            let fits = buf
                .groups
                .last()
                .is_some_and(|g| !g.sealed && (g.agg.len() < max || !g.agg.would_grow(&r.event)));
            if !fits {
                buf.groups.push(Group {
                    agg: MinuteAggregator::new(),
                    last: r.sequence_number.clone(),
                    sealed: false,
                    records: 0,
                    opened_ms: now_ms,
                });
            }
            if let Some(g) = buf.groups.last_mut() {
                g.agg.add(&r.event);
                g.last = r.sequence_number.clone();
                g.records += 1;
            }
        }
        if skipped > 0 {
            debug!(shard = %shard, skipped, "records at or below the watermark skipped");
        }
        let due = buf.due(&policy, now_ms);
        if due {
            self.flush_shard(shard, self.config.buffer_interval.is_zero(), Some(now_ms))
                .await?;
        } else {
            self.settle(shard, false).await?;
        }
        // Records at or below the watermark were already durable.
        Ok(self
            .buffers
            .get_mut(&shard)
            .and_then(ShardBuffer::take_durable))
    }

    async fn flush(&mut self, now_ms: i64, force: bool) -> Result<Vec<(ShardId, SequenceNumber)>> {
        let policy = self.config.buffer();
        let mut shards: Vec<(ShardId, bool)> = self
            .buffers
            .iter()
            .map(|(id, b)| {
                let due = !b.groups.is_empty() && (force || b.due(&policy, now_ms));
                (*id, due)
            })
            .collect();
        shards.sort_unstable();
        // Every shard first; marks are taken only when all succeeded, so a failing shard
        // does not lose another's mark (the runtime retries the whole flush).
        for &(shard, due) in &shards {
            if due {
                self.flush_shard(shard, force, (!force).then_some(now_ms))
                    .await?;
            } else {
                self.settle(shard, force).await?;
            }
        }
        let mut advanced = Vec::new();
        for (shard, due) in shards {
            let Some(buf) = self.buffers.get_mut(&shard) else {
                continue;
            };
            // An idle shard's mark was reported when it became idle.
            if !due && buf.published.is_none() {
                continue;
            }
            if let Some(durable) = buf.take_durable() {
                advanced.push((shard, durable));
            }
        }
        Ok(advanced)
    }
}
