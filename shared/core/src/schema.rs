//! The Arrow schema of the Parquet output.
//!
//! The first seven columns are the seed's Athena table, with the seed's types, so its queries
//! (`from_unixtime(timestamp)`, `AVG(value)`) run unchanged. Then: `event_time` (INT64
//! TIMESTAMP(MILLIS) UTC-adjusted), `unit`, and lineage: `shard_id`, `sequence_number`,
//! `arrival_time` (TIMESTAMP(MILLIS) UTC).

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use std::sync::Arc;

/// Column names, in schema order.
pub mod columns {
    /// The seed's metric id.
    pub const METRIC_ID: &str = "metric_id";
    /// Metric type name.
    pub const METRIC_TYPE: &str = "metric_type";
    /// Epoch seconds (BIGINT).
    pub const TIMESTAMP: &str = "timestamp";
    /// Sample value (DOUBLE).
    pub const VALUE: &str = "value";
    /// Instance id.
    pub const INSTANCE_ID: &str = "instance_id";
    /// Region.
    pub const REGION: &str = "region";
    /// ISO 8601 collection time.
    pub const COLLECTED_AT: &str = "collected_at";
    /// Sample time, millisecond timestamp UTC.
    pub const EVENT_TIME: &str = "event_time";
    /// CloudWatch unit.
    pub const UNIT: &str = "unit";
    /// Shard the event was read from.
    pub const SHARD_ID: &str = "shard_id";
    /// Its sequence number (decimal string).
    pub const SEQUENCE_NUMBER: &str = "sequence_number";
    /// When the stream accepted it, millisecond timestamp UTC.
    pub const ARRIVAL_TIME: &str = "arrival_time";
}

/// The schema of every Parquet object the S3 sink writes.
pub fn metric_schema() -> Arc<Schema> {
    use columns::*;
    let ts_ms = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new(METRIC_ID, DataType::Utf8, false),
        Field::new(METRIC_TYPE, DataType::Utf8, false),
        Field::new(TIMESTAMP, DataType::Int64, false),
        Field::new(VALUE, DataType::Float64, false),
        Field::new(INSTANCE_ID, DataType::Utf8, false),
        Field::new(REGION, DataType::Utf8, false),
        Field::new(COLLECTED_AT, DataType::Utf8, false),
        Field::new(EVENT_TIME, ts_ms.clone(), false),
        Field::new(UNIT, DataType::Utf8, false),
        Field::new(SHARD_ID, DataType::Utf8, false),
        Field::new(SEQUENCE_NUMBER, DataType::Utf8, false),
        Field::new(ARRIVAL_TIME, ts_ms, false),
    ]))
}
