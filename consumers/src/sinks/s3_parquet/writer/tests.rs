//! Encoder tests: row order and contents of the batch, byte equality of the column-parallel
//! encoding with the single-threaded writer, and what a reader sees in the file.

use super::*;
use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shardline_core::stream::SequenceParts;
use shardline_core::{MetricEvent, MetricType, ShardId};
use std::collections::HashMap;

/// `n` rows in stream order: 4 types x `instances` instances per 10 s tick, instance ids whose
/// first-seen order is not their sorted order, and every 97th row late by 30 s.
fn stream(n: usize, instances: usize) -> Vec<SinkRecord> {
    (0..n)
        .map(|i| {
            let metric_type = MetricType::ALL[i % 4];
            let instance = (i / 4) % instances;
            let mut ts = 1_771_459_200 + ((i / (4 * instances)) * 10) as i64;
            if i % 97 == 0 {
                ts -= 30;
            }
            let t_ms = ts * 1000 + (i % 1000) as i64;
            SinkRecord {
                shard: ShardId(3),
                sequence_number: SequenceParts {
                    shard_index: 3,
                    offset: i as u64,
                    shard_created_secs: 1_771_000_000,
                    arrival_secs: ts as u64,
                }
                .encode(),
                arrival_ms: t_ms + 20,
                event: std::sync::Arc::new(MetricEvent {
                    metric_id: format!("{}-{ts}", metric_type.id_prefix()),
                    metric_type,
                    timestamp: ts,
                    timestamp_ms: Some(t_ms),
                    value: i as f64 / 4.0,
                    unit: None,
                    instance_id: format!("i-{:05}", (instance * 7919) % 100_000),
                    region: ["eu-west-1", "us-east-1"][instance % 2].to_string(),
                    collected_at: shardline_core::time::format_rfc3339_ms(t_ms),
                }),
            }
        })
        .collect()
}

#[test]
fn batch_is_sorted_and_every_row_keeps_its_fields() -> Result<(), Error> {
    let recs = stream(5_000, 37);
    let rows: Vec<&SinkRecord> = recs.iter().collect();
    let batch = metric_batch(&rows)?;
    assert_eq!(batch.schema(), metric_schema());
    assert_eq!(batch.num_rows(), 5_000);
    let col = |name: &str| {
        batch
            .column(metric_schema().index_of(name).unwrap_or(0))
            .clone()
    };
    let ids = col(columns::INSTANCE_ID);
    let ids = ids.as_string::<i32>();
    let ts = col(columns::TIMESTAMP);
    let ts = ts.as_primitive::<Int64Type>();
    let et = col(columns::EVENT_TIME);
    let et = et.as_primitive::<TimestampMillisecondType>();
    let seq = col(columns::SEQUENCE_NUMBER);
    let seq = seq.as_string::<i32>();
    let value = col(columns::VALUE);
    let value = value.as_primitive::<Float64Type>();
    let shard = col(columns::SHARD_ID);
    let shard = shard.as_string::<i32>();
    for i in 1..batch.num_rows() {
        let a = (ids.value(i - 1), ts.value(i - 1), et.value(i - 1));
        let b = (ids.value(i), ts.value(i), et.value(i));
        assert!(a <= b, "row {i} out of order: {a:?} then {b:?}");
    }
    // Each output row is exactly one input row (found by its unique sequence number).
    let by_seq: HashMap<&str, &SinkRecord> = recs
        .iter()
        .map(|r| (r.sequence_number.as_str(), r))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for i in 0..batch.num_rows() {
        let r = by_seq[seq.value(i)];
        assert!(seen.insert(seq.value(i)), "row {i} duplicated");
        assert_eq!(ids.value(i), r.event.instance_id);
        assert_eq!(ts.value(i), r.event.timestamp);
        assert_eq!(value.value(i), r.event.value);
        assert_eq!(shard.value(i), "shardId-000000000003");
    }
    assert_eq!(seen.len(), recs.len());
    Ok(())
}

#[test]
fn column_parallel_bytes_equal_the_single_threaded_writer() -> Result<(), Error> {
    let recs = stream(9_000, 50);
    let rows: Vec<&SinkRecord> = recs.iter().collect();
    let batch = metric_batch(&rows)?;
    // Small row groups, so the split into row groups is exercised too (4,000 + 4,000 + 1,000).
    let props = writer_properties(&EncodeOptions::default())?
        .into_builder()
        .set_max_row_group_row_count(Some(4_000))
        .build();
    let one = encode_batch_with_threads(&batch, props.clone(), 1)?;
    for threads in [2, 3, 12] {
        let many = encode_batch_with_threads(&batch, props.clone(), threads)?;
        assert_eq!(many.len(), one.len(), "{threads} threads: size differs");
        assert!(many == one, "{threads} threads: bytes differ");
    }
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(one.clone()).map_err(|e| internal("reader", e))?;
    let meta = reader.metadata().clone();
    let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(sizes, vec![4_000, 4_000, 1_000]);
    assert_eq!(reader.schema().as_ref(), metric_schema().as_ref());
    let mut read = Vec::new();
    for b in reader.build().map_err(|e| internal("reader", e))? {
        read.push(b.map_err(|e| internal("reading back", e))?);
    }
    let back = arrow::compute::concat_batches(&metric_schema(), &read)
        .map_err(|e| internal("concat", e))?;
    assert_eq!(back, batch, "what a reader sees is the batch written");
    Ok(())
}

#[test]
fn empty_input_is_a_file_with_no_rows() -> Result<(), Error> {
    let batch = metric_batch(&[])?;
    let body = encode_batch(&batch, writer_properties(&EncodeOptions::default())?)?;
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(body).map_err(|e| internal("reader", e))?;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
    assert_eq!(reader.schema().as_ref(), metric_schema().as_ref());
    Ok(())
}
