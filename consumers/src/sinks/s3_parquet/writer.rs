//! Parquet encoding: Arrow arrays built directly from events (no per-row JSON), sorted by
//! (`instance_id`, `timestamp`), written with [`shardline_core::schema::metric_schema`].
//!
//! Invariants of every object: the Arrow schema (stored in the file's metadata) equals
//! `metric_schema()`; `timestamp` is INT64 epoch seconds, `value` DOUBLE, `event_time` and
//! `arrival_time` INT64 TIMESTAMP(MILLIS, UTC); string columns are dictionary-encoded, numeric
//! and unique columns are not; page-level statistics are written; the row groups declare their
//! sort order (`instance_id`, `timestamp`).

use arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, StringArray, StringBuilder,
    TimestampMillisecondArray, UInt32Array,
};
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use shardline_core::schema::{columns, metric_schema};
use shardline_core::{Error, ShardId};
use std::collections::HashMap;
use std::sync::Arc;

use super::config::{ParquetCompression, S3ParquetConfig};
use crate::SinkRecord;

/// Encoding settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Codec.
    pub compression: ParquetCompression,
    /// ZSTD level (1 to 22).
    pub zstd_level: i32,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            compression: ParquetCompression::Zstd,
            zstd_level: 1,
        }
    }
}

impl From<&S3ParquetConfig> for EncodeOptions {
    fn from(c: &S3ParquetConfig) -> Self {
        Self {
            compression: c.compression,
            zstd_level: c.zstd_level,
        }
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("parquet encoding: {what}: {e}"))
}

/// Builds the record batch of `rows`, sorted by (`instance_id`, `timestamp`), rows with equal
/// keys in the order given (sequence order).
///
/// The columns are built in input order (sequential memory access) and then permuted with one
/// `take` over the compact Arrow buffers, which is much cheaper than building them in sorted
/// order through the rows.
///
/// # Errors
/// [`Error::Internal`] if Arrow rejects the arrays (a schema mismatch; a bug).
pub fn metric_batch(rows: &[&SinkRecord]) -> Result<RecordBatch, Error> {
    let n = rows.len();
    let strings = |f: &dyn Fn(&SinkRecord) -> &str| -> StringArray {
        let bytes = rows.iter().map(|r| f(r).len()).sum();
        let mut b = StringBuilder::with_capacity(n, bytes);
        for r in rows {
            b.append_value(f(r));
        }
        b.finish()
    };
    // Rows of one object share a shard: format each distinct shard id once.
    let mut shard_b = StringBuilder::with_capacity(n, n * 20);
    let mut last: Option<(ShardId, String)> = None;
    for r in rows {
        if last.as_ref().is_none_or(|(s, _)| *s != r.shard) {
            last = Some((r.shard, r.shard.to_string()));
        }
        if let Some((_, name)) = &last {
            shard_b.append_value(name);
        }
    }
    let instance_id = strings(&|r| &r.event.instance_id);
    let timestamp = Int64Array::from_iter_values(rows.iter().map(|r| r.event.timestamp));
    let event_time =
        TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.event.event_time_ms()));
    let order = sort_order(&instance_id, &timestamp, &event_time);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(strings(&|r| &r.event.metric_id)),
        Arc::new(strings(&|r| r.event.metric_type.as_str())),
        Arc::new(timestamp),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.event.value),
        )),
        Arc::new(instance_id),
        Arc::new(strings(&|r| &r.event.region)),
        Arc::new(strings(&|r| &r.event.collected_at)),
        Arc::new(event_time.with_timezone("UTC")),
        Arc::new(strings(&|r| r.event.unit().as_str())),
        Arc::new(shard_b.finish()),
        Arc::new(strings(&|r| r.sequence_number.as_str())),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.arrival_ms))
                .with_timezone("UTC"),
        ),
    ];
    let batch =
        RecordBatch::try_new(metric_schema(), columns).map_err(|e| internal("record batch", e))?;
    match order {
        None => Ok(batch),
        Some(indices) => {
            take_record_batch(&batch, &indices).map_err(|e| internal("sorting rows", e))
        }
    }
}

/// The permutation that sorts rows by (instance id, timestamp, event time, input position), or
/// `None` when they already are.
fn sort_order(
    instance_id: &StringArray,
    timestamp: &Int64Array,
    event_time: &TimestampMillisecondArray,
) -> Option<UInt32Array> {
    // Sort on integer keys: each instance id's rank among the distinct ids, then time.
    let mut rank: HashMap<&str, u32> = HashMap::new();
    for id in instance_id.iter().flatten() {
        let next = rank.len() as u32;
        rank.entry(id).or_insert(next);
    }
    let mut distinct: Vec<&str> = rank.keys().copied().collect();
    distinct.sort_unstable();
    for (i, id) in distinct.iter().enumerate() {
        rank.insert(id, i as u32);
    }
    let keys: Vec<(u32, i64, i64, u32)> = (0..instance_id.len())
        .map(|i| {
            let r = rank.get(instance_id.value(i)).copied().unwrap_or(0);
            (r, timestamp.value(i), event_time.value(i), i as u32)
        })
        .collect();
    if keys.windows(2).all(|w| w[0] <= w[1]) {
        return None;
    }
    let mut keys = keys;
    keys.sort_unstable();
    Some(UInt32Array::from_iter_values(keys.iter().map(|k| k.3)))
}

/// Writer properties for the options.
///
/// # Errors
/// [`Error::InvalidArgument`] for a ZSTD level outside 1..=22.
pub fn writer_properties(opts: &EncodeOptions) -> Result<WriterProperties, Error> {
    let compression = match opts.compression {
        ParquetCompression::Zstd => {
            Compression::ZSTD(ZstdLevel::try_new(opts.zstd_level).map_err(|e| {
                Error::InvalidArgument(format!("zstd_level {}: {e}", opts.zstd_level))
            })?)
        }
        ParquetCompression::Snappy => Compression::SNAPPY,
    };
    let schema = metric_schema();
    let idx = |name: &str| schema.index_of(name).map(|i| i as i32).unwrap_or(0);
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_enabled(true)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: idx(columns::INSTANCE_ID),
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: idx(columns::TIMESTAMP),
                descending: false,
                nulls_first: false,
            },
        ]));
    // Numbers and per-sample unique strings (collection times, sequence numbers) gain nothing
    // from a dictionary; ids, types, regions, units and shards repeat and are dictionary-encoded.
    for col in [
        columns::COLLECTED_AT,
        columns::TIMESTAMP,
        columns::VALUE,
        columns::EVENT_TIME,
        columns::SEQUENCE_NUMBER,
        columns::ARRIVAL_TIME,
    ] {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(col), false);
    }
    Ok(builder.build())
}

/// Encodes a record batch as one Parquet file.
///
/// # Errors
/// [`Error::Internal`] if the Parquet writer fails.
pub fn encode_batch(batch: &RecordBatch, props: WriterProperties) -> Result<Bytes, Error> {
    let mut writer = ArrowWriter::try_new(Vec::with_capacity(1 << 20), batch.schema(), Some(props))
        .map_err(|e| internal("writer", e))?;
    writer.write(batch).map_err(|e| internal("write", e))?;
    let buf = writer.into_inner().map_err(|e| internal("close", e))?;
    Ok(Bytes::from(buf))
}

/// Sorts and encodes `rows` as one Parquet file.
///
/// # Errors
/// As [`metric_batch`] and [`encode_batch`].
pub fn encode_parquet(rows: &[&SinkRecord], opts: &EncodeOptions) -> Result<Bytes, Error> {
    let batch = metric_batch(rows)?;
    encode_batch(&batch, writer_properties(opts)?)
}

/// The seed's JSON Lines archive of `rows`, in the order given.
pub fn encode_json_lines(rows: &[&SinkRecord]) -> Bytes {
    let mut out = Vec::with_capacity(rows.len() * 220);
    for r in rows {
        out.extend_from_slice(&r.event.to_json());
        out.push(b'\n');
    }
    Bytes::from(out)
}

/// The UTC calendar day (year, month, day) of epoch milliseconds.
pub fn utc_day(ms: i64) -> (i32, u32, u32) {
    use chrono::Datelike;
    let date = chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive();
    (date.year(), date.month(), date.day())
}

/// The Parquet object key of one shard flush on one event day.
pub fn parquet_key(
    prefix: &str,
    day: (i32, u32, u32),
    shard: &str,
    first: &str,
    last: &str,
) -> String {
    let (y, m, d) = day;
    format!("{prefix}/year={y:04}/month={m:02}/day={d:02}/{shard}-{first}-{last}.parquet")
}

/// The JSON Lines archive key of one shard flush on one event day.
pub fn raw_json_key(
    prefix: &str,
    day: (i32, u32, u32),
    shard: &str,
    first: &str,
    last: &str,
) -> String {
    let (y, m, d) = day;
    format!("{prefix}/{y:04}/{m:02}/{d:02}/metrics-{shard}-{first}-{last}.json")
}
