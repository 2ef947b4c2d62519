//! [`DynamoDbSink`]: puts one item per event, keyed by series and event time in milliseconds.

use async_trait::async_trait;
use shardline_core::ports::{AttributeValue, Item, ItemQuery, ItemTable, KeyType, TableSchema};
use shardline_core::{Result, SequenceNumber, ShardId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::config::DynamoDbConfig;
use crate::sink::{Sink, SinkRecord};

/// The table's key schema: `metric_id` (S) and `timestamp` (N), as in the seed.
pub fn table_schema(table: &str) -> TableSchema {
    TableSchema {
        name: table.to_string(),
        partition_key: ("metric_id".to_string(), KeyType::S),
        sort_key: Some(("timestamp".to_string(), KeyType::N)),
    }
}

/// The item for one record (see the module docs for the key choice).
pub fn item_for(record: &SinkRecord) -> Item {
    item_with_shard_id(record, record.shard.to_string())
}

/// [`item_for`] with the record's shard id already written out (a batch's records share it).
fn item_with_shard_id(record: &SinkRecord, shard_id: String) -> Item {
    let e = &record.event;
    let s = |v: &str| AttributeValue::S(v.to_string());
    let n = |v: String| AttributeValue::N(v);
    // In name order, so every attribute is appended at the end.
    Item::from([
        ("arrival_ms", n(record.arrival_ms.to_string())),
        ("collected_at", s(&e.collected_at)),
        ("epoch_seconds", n(e.timestamp.to_string())),
        ("instance_id", s(&e.instance_id)),
        ("metric_id", AttributeValue::S(e.series_id())),
        ("metric_type", s(e.metric_type.as_str())),
        ("region", s(&e.region)),
        ("seed_metric_id", s(&e.metric_id)),
        ("sequence_number", s(record.sequence_number.as_str())),
        ("shard_id", AttributeValue::S(shard_id)),
        ("timestamp", n(e.event_time_ms().to_string())),
        ("unit", s(e.unit().as_str())),
        ("value", n(e.value.to_string())),
    ])
}

/// Items of one series (`cpu-i-123456`) with event time in `[from_ms, to_ms]`, oldest first.
///
/// # Errors
/// Whatever the table returns (e.g. [`shardline_core::Error::NotFound`] for a missing table).
pub async fn query_series(
    table: &dyn ItemTable,
    table_name: &str,
    series_id: &str,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<Vec<Item>> {
    table
        .query(&ItemQuery {
            table: table_name.to_string(),
            partition: AttributeValue::S(series_id.to_string()),
            sort_from: from_ms.map(|v| AttributeValue::N(v.to_string())),
            sort_to: to_ms.map(|v| AttributeValue::N(v.to_string())),
            limit: None,
        })
        .await
}

/// One shard's records waiting to be written.
#[derive(Default)]
struct ShardBuffer {
    records: Vec<SinkRecord>,
    /// When the oldest buffered record arrived (`now_ms` of its write).
    opened_ms: Option<i64>,
    /// The last record taken into the buffer (a retried batch is not taken twice).
    last_seen: Option<SequenceNumber>,
}

/// A shard's batch being written in the background while the next one is read.
struct InFlight {
    shard: ShardId,
    /// The shard's durable mark once the batch is written.
    last: SequenceNumber,
    /// The batch, put back into the shard's buffer if the write fails.
    records: Arc<Vec<SinkRecord>>,
    task: JoinHandle<Result<()>>,
}

/// Writes every event as an item of the InfraMetrics table.
///
/// A due buffer is written in the background (items built and put on another task) while the
/// runtime reads and hands on the next batch. Up to `writes_in_flight` batches of different
/// shards are written at once, at most one per shard, so a shard's batches land in order. A
/// batch's durable mark is reported once its write succeeded.
pub struct DynamoDbSink {
    table: Arc<dyn ItemTable>,
    config: DynamoDbConfig,
    table_ready: bool,
    buffers: HashMap<ShardId, ShardBuffer>,
    /// Batches being written, oldest first; at most one per shard.
    in_flight: Vec<InFlight>,
    /// Per shard, the durable mark of its latest finished write not yet reported.
    completed: BTreeMap<ShardId, SequenceNumber>,
}

impl DynamoDbSink {
    /// A sink writing to `table` as configured.
    ///
    /// # Errors
    /// [`shardline_core::Error::InvalidArgument`] when the configuration is invalid.
    pub fn new(table: Arc<dyn ItemTable>, config: DynamoDbConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            table,
            config,
            table_ready: false,
            buffers: HashMap::new(),
            in_flight: Vec::new(),
            completed: BTreeMap::new(),
        })
    }

    /// The table name written to.
    pub fn table_name(&self) -> &str {
        &self.config.table
    }

    /// Records taken in and not yet written (buffered or being written), over all shards.
    pub fn buffered(&self) -> usize {
        self.buffers
            .values()
            .map(|b| b.records.len())
            .sum::<usize>()
            + self
                .in_flight
                .iter()
                .map(|f| f.records.len())
                .sum::<usize>()
    }

    /// Creates the table if missing (an existing one must have the same key schema).
    ///
    /// # Errors
    /// As [`ItemTable::ensure_table`].
    pub async fn ensure_table(&mut self) -> Result<()> {
        if !self.table_ready {
            self.table
                .ensure_table(&table_schema(&self.config.table))
                .await?;
            self.table_ready = true;
        }
        Ok(())
    }

    /// Waits for the batch at `index` of `in_flight`. On success its shard's mark joins
    /// `completed`; on failure the batch goes back to the front of its shard's buffer and the
    /// error is returned.
    async fn finish(&mut self, index: usize) -> Result<()> {
        let f = self.in_flight.remove(index);
        let outcome = match f.task.await {
            Ok(r) => r,
            Err(e) => Err(shardline_core::Error::Internal(format!(
                "item write task failed: {e}"
            ))),
        };
        match outcome {
            Ok(()) => {
                debug!(shard = %f.shard, items = f.records.len(), table = %self.config.table, "items written");
                // One batch of a shard in flight at a time, in order: a later write has a
                // later mark.
                self.completed.insert(f.shard, f.last);
                Ok(())
            }
            Err(e) => {
                let buf = self.buffers.entry(f.shard).or_default();
                let mut records =
                    Arc::try_unwrap(f.records).unwrap_or_else(|shared| shared.as_ref().clone());
                records.append(&mut buf.records);
                buf.records = records;
                Err(e)
            }
        }
    }

    /// Waits for every batch in flight (`only_done`: only those already finished). Every
    /// failed batch goes back to its shard's buffer; the first error is returned.
    async fn finish_in_flight(&mut self, only_done: bool) -> Result<()> {
        let mut first_error = None;
        let mut i = 0;
        while i < self.in_flight.len() {
            if only_done && !self.in_flight[i].task.is_finished() {
                i += 1;
                continue;
            }
            if let Err(e) = self.finish(i).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Starts writing a shard's buffer in the background, once the shard's previous write
    /// finished and fewer than `writes_in_flight` writes are under way.
    async fn start_write(&mut self, shard: ShardId) -> Result<()> {
        if let Some(i) = self.in_flight.iter().position(|f| f.shard == shard) {
            self.finish(i).await?;
        }
        while self.in_flight.len() >= self.config.writes_in_flight {
            self.finish(0).await?;
        }
        self.ensure_table().await?;
        let Some(buf) = self.buffers.get_mut(&shard) else {
            return Ok(());
        };
        let (Some(last), false) = (buf.last_seen.clone(), buf.records.is_empty()) else {
            return Ok(());
        };
        let records = Arc::new(std::mem::take(&mut buf.records));
        buf.opened_ms = None;
        let (table, name, batch) = (
            Arc::clone(&self.table),
            self.config.table.clone(),
            Arc::clone(&records),
        );
        let task = tokio::spawn(async move {
            let shard_id = shard.to_string();
            let items: Vec<Item> = batch
                .iter()
                .map(|record| item_with_shard_id(record, shard_id.clone()))
                .collect();
            table.batch_put(&name, items).await
        });
        self.in_flight.push(InFlight {
            shard,
            last,
            records,
            task,
        });
        Ok(())
    }

    /// The shard's durable mark to report now, if any: the latest finished write, or
    /// everything taken in when nothing of the shard is buffered or in flight.
    fn durable(&mut self, shard: ShardId) -> Option<SequenceNumber> {
        let mark = self.completed.remove(&shard);
        let idle = self.in_flight.iter().all(|f| f.shard != shard);
        match self.buffers.get(&shard) {
            Some(b) if idle && b.records.is_empty() => b.last_seen.clone().max(mark),
            _ => mark,
        }
    }
}

#[async_trait]
impl Sink for DynamoDbSink {
    fn name(&self) -> &str {
        "dynamodb"
    }

    async fn write(
        &mut self,
        shard: ShardId,
        records: &[SinkRecord],
        now_ms: i64,
    ) -> Result<Option<SequenceNumber>> {
        let buf = self.buffers.entry(shard).or_default();
        // Records up to the last one taken before this batch are buffered or written already
        // (a batch handed again after a retry).
        let seen_before = buf.last_seen.clone();
        for r in records {
            if seen_before.as_ref() >= Some(&r.sequence_number) {
                continue;
            }
            if buf.last_seen.as_ref() < Some(&r.sequence_number) {
                buf.last_seen = Some(r.sequence_number.clone());
            }
            buf.opened_ms.get_or_insert(now_ms);
            buf.records.push(r.clone());
        }
        if self
            .config
            .buffer()
            .due(buf.records.len(), buf.opened_ms, now_ms)
        {
            self.start_write(shard).await?;
            if self.config.buffer_interval.is_zero() {
                // Write-through: durable before returning.
                self.finish_in_flight(false).await?;
            }
        } else {
            self.finish_in_flight(true).await?;
        }
        Ok(self.durable(shard))
    }

    async fn flush(&mut self, now_ms: i64, force: bool) -> Result<Vec<(ShardId, SequenceNumber)>> {
        let policy = self.config.buffer();
        let mut due: Vec<ShardId> = self
            .buffers
            .iter()
            .filter(|(_, b)| {
                !b.records.is_empty() && (force || policy.due(b.records.len(), b.opened_ms, now_ms))
            })
            .map(|(id, _)| *id)
            .collect();
        due.sort_unstable();
        for shard in due {
            self.start_write(shard).await?;
        }
        self.finish_in_flight(false).await?;
        Ok(std::mem::take(&mut self.completed).into_iter().collect())
    }
}
