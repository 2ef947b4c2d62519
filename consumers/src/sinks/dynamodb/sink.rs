//! [`DynamoDbSink`]: puts one item per event, keyed by series and event time in milliseconds.

use async_trait::async_trait;
use shardline_core::ports::{AttributeValue, Item, ItemQuery, ItemTable, KeyType, TableSchema};
use shardline_core::{Result, SequenceNumber, ShardId};
use std::sync::Arc;
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
    let e = &record.event;
    let s = |v: &str| AttributeValue::S(v.to_string());
    let n = |v: String| AttributeValue::N(v);
    Item::from([
        ("metric_id".to_string(), s(&e.series_id())),
        ("timestamp".to_string(), n(e.event_time_ms().to_string())),
        ("seed_metric_id".to_string(), s(&e.metric_id)),
        ("epoch_seconds".to_string(), n(e.timestamp.to_string())),
        ("metric_type".to_string(), s(e.metric_type.as_str())),
        ("value".to_string(), n(format!("{}", e.value))),
        ("unit".to_string(), s(e.unit().as_str())),
        ("instance_id".to_string(), s(&e.instance_id)),
        ("region".to_string(), s(&e.region)),
        ("collected_at".to_string(), s(&e.collected_at)),
        ("shard_id".to_string(), s(&record.shard.to_string())),
        (
            "sequence_number".to_string(),
            s(record.sequence_number.as_str()),
        ),
        ("arrival_ms".to_string(), n(record.arrival_ms.to_string())),
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

/// Writes every event as an item of the InfraMetrics table.
pub struct DynamoDbSink {
    table: Arc<dyn ItemTable>,
    config: DynamoDbConfig,
    table_ready: bool,
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
        })
    }

    /// The table name written to.
    pub fn table_name(&self) -> &str {
        &self.config.table
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
}

#[async_trait]
impl Sink for DynamoDbSink {
    fn name(&self) -> &str {
        "dynamodb"
    }

    async fn write(
        &mut self,
        shard: ShardId,
        records: Vec<SinkRecord>,
        _now_ms: i64,
    ) -> Result<Option<SequenceNumber>> {
        let Some(last) = records.last().map(|r| r.sequence_number.clone()) else {
            return Ok(None);
        };
        self.ensure_table().await?;
        let items: Vec<Item> = records.iter().map(item_for).collect();
        let count = items.len();
        self.table.batch_put(&self.config.table, items).await?;
        debug!(shard = %shard, items = count, table = %self.config.table, "items written");
        Ok(Some(last))
    }

    async fn flush(
        &mut self,
        _now_ms: i64,
        _force: bool,
    ) -> Result<Vec<(ShardId, SequenceNumber)>> {
        // Nothing is buffered: every write is durable when it returns.
        Ok(Vec::new())
    }
}
