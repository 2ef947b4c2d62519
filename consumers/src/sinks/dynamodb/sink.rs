//! [`DynamoDbSink`]: puts one item per event, keyed by series and event time in milliseconds.

use async_trait::async_trait;
use shardline_core::ports::{
    AttrRef, AttributeValue, Item, ItemQuery, ItemSource, ItemTable, KeyType, TableSchema,
};
use shardline_core::{Result, SequenceNumber, ShardId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::config::DynamoDbConfig;
use crate::sink::{Sink, SinkRecord, records_after};
use crate::sinks::buffer;

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
    OneItem {
        record,
        shard_id: record.shard.to_string(),
    }
    .item(0)
}

/// One record's item, as a source of one.
struct OneItem<'a> {
    record: &'a SinkRecord,
    shard_id: String,
}

impl ItemSource for OneItem<'_> {
    fn len(&self) -> usize {
        1
    }

    fn visit(&self, _i: usize, f: &mut dyn FnMut(&str, AttrRef<'_>)) {
        visit_item(self.record, &self.shard_id, f);
    }
}

/// Calls `f` with the attributes of `record`'s item, in name order. Numbers are written out
/// on the stack, so visiting allocates nothing for the pipeline's events.
fn visit_item(record: &SinkRecord, shard_id: &str, f: &mut dyn FnMut(&str, AttrRef<'_>)) {
    let e = &record.event;
    let mut int = itoa::Buffer::new();
    f("arrival_ms", AttrRef::N(int.format(record.arrival_ms)));
    f("collected_at", AttrRef::S(&e.collected_at));
    f("epoch_seconds", AttrRef::N(int.format(e.timestamp)));
    f("instance_id", AttrRef::S(&e.instance_id));
    let series = Text::joined(e.metric_type.id_prefix(), &e.instance_id);
    f("metric_id", AttrRef::S(series.as_str()));
    f("metric_type", AttrRef::S(e.metric_type.as_str()));
    f("region", AttrRef::S(&e.region));
    f("seed_metric_id", AttrRef::S(&e.metric_id));
    f(
        "sequence_number",
        AttrRef::S(record.sequence_number.as_str()),
    );
    f("shard_id", AttrRef::S(shard_id));
    f("timestamp", AttrRef::N(int.format(e.event_time_ms())));
    f("unit", AttrRef::S(e.unit().as_str()));
    f("value", AttrRef::N(Text::number(e.value).as_str()));
}

/// Text formatted into a stack buffer, or onto the heap when longer than it.
enum Text {
    Stack { buf: [u8; 64], len: usize },
    Heap(String),
}

/// Fills a stack buffer; fails when the text does not fit.
struct StackWriter<'a> {
    buf: &'a mut [u8; 64],
    len: usize,
}

impl fmt::Write for StackWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Text {
    fn of(value: impl fmt::Display) -> Self {
        let mut buf = [0u8; 64];
        let mut w = StackWriter {
            buf: &mut buf,
            len: 0,
        };
        match fmt::write(&mut w, format_args!("{value}")) {
            Ok(()) => {
                let len = w.len;
                Text::Stack { buf, len }
            }
            Err(_) => Text::Heap(value.to_string()),
        }
    }

    /// `value` in decimal, as `Display` writes it: the shortest digits that read back as the
    /// value, no exponent; by `ryu`, at a fraction of the cost. `ryu` writes `80.0` where
    /// `Display` writes `80`, and an exponent outside 1e-5..1e16, where this falls back to
    /// `Display`. Where two shortest forms are equally close (rare: 81513128.712890625 is
    /// `…062` to `ryu`, `…063` to `Display`) the last digit may differ; both read back as the
    /// same number.
    fn number(value: f64) -> Self {
        if !value.is_finite() {
            return Text::of(value);
        }
        let mut buf = ryu::Buffer::new();
        let text = buf.format_finite(value);
        if text.contains('e') {
            return Text::of(value);
        }
        let text = text.strip_suffix(".0").unwrap_or(text);
        let mut out = [0u8; 64];
        out[..text.len()].copy_from_slice(text.as_bytes());
        Text::Stack {
            buf: out,
            len: text.len(),
        }
    }

    /// `<prefix>-<rest>`, as [`shardline_core::MetricEvent::series_id`] writes it.
    fn joined(prefix: &str, rest: &str) -> Self {
        let len = prefix.len() + 1 + rest.len();
        if len > 64 {
            return Text::Heap(format!("{prefix}-{rest}"));
        }
        let mut buf = [0u8; 64];
        buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
        buf[prefix.len()] = b'-';
        buf[prefix.len() + 1..len].copy_from_slice(rest.as_bytes());
        Text::Stack { buf, len }
    }

    fn as_str(&self) -> &str {
        match self {
            // Whole `&str`s were copied in, so the bytes are UTF-8.
            Text::Stack { buf, len } => std::str::from_utf8(&buf[..*len]).unwrap_or_default(),
            Text::Heap(s) => s,
        }
    }
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

/// A batch being written in the background while the next one fills.
struct InFlight {
    /// Per shard, its last record in the batch: the shard's durable mark once the batch and
    /// every batch before it are written.
    marks: BTreeMap<ShardId, SequenceNumber>,
    /// The batch, put back into the buffer if the write fails.
    records: Arc<Vec<SinkRecord>>,
    task: JoinHandle<Result<()>>,
}

/// Writes every event as an item of the InfraMetrics table.
///
/// Records of every shard share one buffer, written as one `batch_put` when it holds
/// `buffer_records` records or its oldest waited `buffer_interval` (the embedded table
/// writes a large batch as one sorted table, so fewer, larger batches cost less per item).
/// A due buffer is written in the background (items built and put on another task) while
/// the runtime reads and hands on the next records; up to `writes_in_flight` batches are
/// under way at once and they finish in the order they started. A shard's durable mark
/// moves to its last record of a batch once that batch and every earlier one are written.
pub struct DynamoDbSink {
    table: Arc<dyn ItemTable>,
    config: DynamoDbConfig,
    table_ready: bool,
    /// Records taken in and not yet handed to a write, in the order they came.
    buffer: Vec<SinkRecord>,
    /// When the oldest buffered record arrived (`now_ms` of its write).
    opened_ms: Option<i64>,
    /// Per shard, its last record in `buffer`.
    buffered_marks: BTreeMap<ShardId, SequenceNumber>,
    /// Per shard, the last record taken in (a batch handed again after a retry is not taken
    /// twice).
    last_seen: HashMap<ShardId, SequenceNumber>,
    /// Batches being written, oldest first.
    in_flight: VecDeque<InFlight>,
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
            buffer: Vec::new(),
            opened_ms: None,
            buffered_marks: BTreeMap::new(),
            last_seen: HashMap::new(),
            in_flight: VecDeque::new(),
            completed: BTreeMap::new(),
        })
    }

    /// The table name written to.
    pub fn table_name(&self) -> &str {
        &self.config.table
    }

    /// Records taken in and not yet written (buffered or being written), over all shards.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
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

    /// Waits for the oldest batch in flight. On success its marks join `completed`. On
    /// failure the later batches are waited for too (a shard's mark must not pass the failed
    /// batch), and all of them go back to the front of the buffer, in order; the error is
    /// returned.
    async fn finish_oldest(&mut self) -> Result<()> {
        let Some(f) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match join(f.task).await {
            Ok(()) => {
                debug!(items = f.records.len(), shards = f.marks.len(), table = %self.config.table, "items written");
                self.completed.extend(f.marks);
                Ok(())
            }
            Err(e) => {
                let mut back = vec![(f.records, f.marks)];
                while let Some(later) = self.in_flight.pop_front() {
                    // Written or not, it is written again with the failed one: puts by key.
                    let _ = join(later.task).await;
                    back.push((later.records, later.marks));
                }
                let mut records = Vec::new();
                for (batch, marks) in back {
                    records.extend(
                        Arc::try_unwrap(batch).unwrap_or_else(|shared| shared.as_ref().clone()),
                    );
                    for (shard, mark) in marks {
                        let entry = self.buffered_marks.entry(shard).or_insert(mark.clone());
                        if *entry < mark {
                            *entry = mark;
                        }
                    }
                }
                records.append(&mut self.buffer);
                self.buffer = records;
                // Overdue: the runtime's retry (a write or flush) writes it again at once,
                // also when no new record arrives.
                self.opened_ms = Some(buffer::OVERDUE);
                Err(e)
            }
        }
    }

    /// Waits for every batch in flight (`only_done`: only the finished ones at the front).
    async fn finish_in_flight(&mut self, only_done: bool) -> Result<()> {
        while let Some(f) = self.in_flight.front() {
            if only_done && !f.task.is_finished() {
                break;
            }
            self.finish_oldest().await?;
        }
        Ok(())
    }

    /// Starts writing the buffer in the background, once fewer than `writes_in_flight`
    /// writes are under way.
    async fn start_write(&mut self) -> Result<()> {
        while self.in_flight.len() >= self.config.writes_in_flight {
            self.finish_oldest().await?;
        }
        self.ensure_table().await?;
        if self.buffer.is_empty() {
            return Ok(());
        }
        let records = Arc::new(std::mem::take(&mut self.buffer));
        let marks = std::mem::take(&mut self.buffered_marks);
        self.opened_ms = None;
        let (table, name, batch) = (
            Arc::clone(&self.table),
            self.config.table.clone(),
            Arc::clone(&records),
        );
        debug!(records = records.len(), "writing items");
        let task = tokio::spawn(async move {
            table
                .batch_put_source(&name, Arc::new(BatchItems::new(batch)))
                .await
        });
        self.in_flight.push_back(InFlight {
            marks,
            records,
            task,
        });
        Ok(())
    }

    /// The shard's durable mark to report now, if any: the latest finished write, or
    /// everything taken in when nothing of the shard is buffered or in flight.
    fn durable(&mut self, shard: ShardId) -> Option<SequenceNumber> {
        let mark = self.completed.remove(&shard);
        let idle = !self.buffered_marks.contains_key(&shard)
            && self.in_flight.iter().all(|f| !f.marks.contains_key(&shard));
        if idle {
            self.last_seen.get(&shard).cloned().max(mark)
        } else {
            mark
        }
    }

    fn due(&self, now_ms: i64) -> bool {
        self.config
            .buffer()
            .due(self.buffer.len(), self.opened_ms, now_ms)
    }
}

/// The items of a batch, read attribute by attribute by the table (or built one at a time).
struct BatchItems {
    records: Arc<Vec<SinkRecord>>,
    /// The shard ids of the batch, written out once.
    shard_ids: Vec<(ShardId, String)>,
}

impl BatchItems {
    fn new(records: Arc<Vec<SinkRecord>>) -> Self {
        let mut shard_ids: Vec<(ShardId, String)> = Vec::new();
        for r in records.iter() {
            if !shard_ids.iter().any(|(s, _)| *s == r.shard) {
                shard_ids.push((r.shard, r.shard.to_string()));
            }
        }
        Self { records, shard_ids }
    }
}

impl ItemSource for BatchItems {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn visit(&self, i: usize, f: &mut dyn FnMut(&str, AttrRef<'_>)) {
        let Some(record) = self.records.get(i) else {
            return;
        };
        let shard_id = self
            .shard_ids
            .iter()
            .find(|(s, _)| *s == record.shard)
            .map_or("", |(_, id)| id.as_str());
        visit_item(record, shard_id, f);
    }
}

/// The outcome of a background write.
async fn join(task: JoinHandle<Result<()>>) -> Result<()> {
    match task.await {
        Ok(r) => r,
        Err(e) => Err(shardline_core::Error::Internal(format!(
            "item write task failed: {e}"
        ))),
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
        // Records up to the last one taken before this batch are buffered or written already
        // (a batch handed again after a retry); records come in sequence order, so the new
        // ones are a suffix.
        let new = records_after(records, self.last_seen.get(&shard));
        if let Some(last) = new.last() {
            self.opened_ms.get_or_insert(now_ms);
            self.buffer.extend_from_slice(new);
            self.buffered_marks
                .insert(shard, last.sequence_number.clone());
            self.last_seen.insert(shard, last.sequence_number.clone());
        }
        if self.due(now_ms) {
            self.start_write().await?;
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
        if !self.buffer.is_empty() && (force || self.due(now_ms)) {
            self.start_write().await?;
        }
        // A forced flush waits for every write; otherwise the finished ones are reported and
        // the rest go on in the background.
        self.finish_in_flight(!force).await?;
        Ok(std::mem::take(&mut self.completed).into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::Text;
    use rand::{RngExt, SeedableRng};

    /// Item values read back as the exact number, with as few digits as `Display` writes, and
    /// are `Display`'s text but for ties between two shortest forms.
    #[test]
    fn numbers_read_back_exactly_in_as_few_digits_as_display() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            80.0,
            85.5,
            0.1,
            0.3,
            1e-5,
            1.5e-5,
            9.99e-6,
            1e15,
            1e16,
            1.5e16,
            1e21,
            123_456_789.125,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for _ in 0..20_000 {
            values.push(rng.random_range(20.0..95.0));
            values.push(rng.random_range(100.0..1000.0));
            values.push(rng.random_range(-1e9..1e9));
            values.push(f64::from_bits(rng.random::<u64>()));
            // Every magnitude below 2^30, down to subnormals.
            let exp = rng.random_range(0u64..1053);
            values.push(f64::from_bits((exp << 52) | (rng.random::<u64>() >> 12)));
        }
        let mut differ = 0;
        for v in values {
            let (text, display) = (Text::number(v), v.to_string());
            let text = text.as_str();
            if v.is_nan() {
                assert_eq!(text, "NaN");
                continue;
            }
            let back: f64 = text.parse().expect("a number");
            assert_eq!(back.to_bits(), v.to_bits(), "{text} for {v:e}");
            assert_eq!(text.len(), display.len(), "{text} vs {display}");
            assert!(!text.contains('e'), "{text}");
            if text != display {
                differ += 1;
            }
        }
        assert!(differ < 10, "{differ} values written unlike Display");
    }
}
