//! Parquet encoding: Arrow arrays built directly from events (no per-row JSON), sorted by
//! (`instance_id`, `timestamp`), written with [`shardline_core::schema::metric_schema`].
//!
//! Invariants of every object: the Arrow schema (stored in the file's metadata) equals
//! `metric_schema()`; `timestamp` is INT64 epoch seconds, `value` DOUBLE, `event_time` and
//! `arrival_time` INT64 TIMESTAMP(MILLIS, UTC); string columns are dictionary-encoded, numeric
//! and unique columns are not; page-level statistics are written; the row groups declare their
//! sort order (`instance_id`, `timestamp`).

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringBuilder, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use shardline_core::Error;
use shardline_core::schema::{columns, metric_schema};
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

/// Builds the record batch of `rows`, sorted by (`instance_id`, `timestamp`, sequence).
///
/// # Errors
/// [`Error::Internal`] if Arrow rejects the arrays (a schema mismatch; a bug).
pub fn metric_batch(rows: &[&SinkRecord]) -> Result<RecordBatch, Error> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (&rows[a].event, &rows[b].event);
        x.instance_id
            .cmp(&y.instance_id)
            .then(x.timestamp.cmp(&y.timestamp))
            .then(x.event_time_ms().cmp(&y.event_time_ms()))
            .then_with(|| rows[a].sequence_number.cmp(&rows[b].sequence_number))
    });
    let n = rows.len();
    let strings = |f: &dyn Fn(&SinkRecord) -> &str| -> ArrayRef {
        let bytes = order.iter().map(|&i| f(rows[i]).len()).sum();
        let mut b = StringBuilder::with_capacity(n, bytes);
        for &i in &order {
            b.append_value(f(rows[i]));
        }
        Arc::new(b.finish())
    };
    let shard_names: Vec<String> = order.iter().map(|&i| rows[i].shard.to_string()).collect();
    let mut shard_b = StringBuilder::with_capacity(n, n * 20);
    for s in &shard_names {
        shard_b.append_value(s);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.event.metric_id),
        strings(&|r| r.event.metric_type.as_str()),
        Arc::new(Int64Array::from_iter_values(
            order.iter().map(|&i| rows[i].event.timestamp),
        )),
        Arc::new(Float64Array::from_iter_values(
            order.iter().map(|&i| rows[i].event.value),
        )),
        strings(&|r| &r.event.instance_id),
        strings(&|r| &r.event.region),
        strings(&|r| &r.event.collected_at),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(
                order.iter().map(|&i| rows[i].event.event_time_ms()),
            )
            .with_timezone("UTC"),
        ),
        strings(&|r| r.event.unit().as_str()),
        Arc::new(shard_b.finish()),
        strings(&|r| r.sequence_number.as_str()),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(order.iter().map(|&i| rows[i].arrival_ms))
                .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(metric_schema(), columns).map_err(|e| internal("record batch", e))
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
    // Numbers and per-record unique strings gain nothing from a dictionary.
    for col in [
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
