//! Measures the embedded stores on this machine and prints one line per operation.
//!
//! `cargo run -p shardline-local --release --example throughput [-- <data dir>]`
//! (default: a fresh directory under the system temp dir, removed afterwards).

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use shardline_core::ports::{
    AttributeValue, CheckpointKey, CheckpointStore, Item, ItemQuery, ItemTable, KeyType,
    MetricDatum, MetricPublisher, ObjectStore, StateStore, StatisticSet, TableSchema,
};
use shardline_core::{SequenceNumber, ShardId};
use shardline_local::{LocalBackends, LocalOptions};

fn report(what: &str, ops: u64, unit: &str, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what:<44} {ops:>7} {unit:<8} {secs:>7.3} s  {:>10.0} {unit}/s",
        ops as f64 / secs
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let temp = std::env::temp_dir().join(format!("shardline-throughput-{}", std::process::id()));
    let dir = arg.map_or(temp.clone(), std::path::PathBuf::from);
    let b = LocalBackends::open(&dir, LocalOptions::default())?;

    let started = Instant::now();
    let key = CheckpointKey {
        consumer: "bench".into(),
        stream: "s".into(),
        shard: ShardId(0),
    };
    for i in 1..=200u64 {
        let seq: SequenceNumber = i.to_string().parse()?;
        b.checkpoints
            .put(&key, &seq, Some("w"), Some(i - 1))
            .await?;
    }
    report("checkpoint put (conditional, fsync)", 200, "puts", started);

    b.objects.ensure_bucket("bench").await?;
    let body = Bytes::from(vec![7u8; 1024 * 1024]);
    let started = Instant::now();
    for i in 0..50 {
        b.objects
            .put("bench", &format!("d/{i}"), body.clone(), "x")
            .await?;
    }
    report(
        "object put 1 MiB (temp+fsync+rename)",
        50,
        "objects",
        started,
    );

    let schema = TableSchema {
        name: "bench".into(),
        partition_key: ("metric_id".into(), KeyType::S),
        sort_key: Some(("timestamp".into(), KeyType::N)),
    };
    b.table.ensure_table(&schema).await?;
    let started = Instant::now();
    for batch in 0..20 {
        let items: Vec<Item> = (0..1000)
            .map(|i| {
                Item::from([
                    (
                        "metric_id".to_string(),
                        AttributeValue::S(format!("cpu#i-{}", i % 10)),
                    ),
                    (
                        "timestamp".to_string(),
                        AttributeValue::N((batch * 1000 + i).to_string()),
                    ),
                    ("value".to_string(), AttributeValue::N("42.5".into())),
                ])
            })
            .collect();
        b.table.batch_put("bench", items).await?;
    }
    report(
        "item batch_put (20 × 1,000 items)",
        20_000,
        "items",
        started,
    );

    // Batches as the DynamoDB sink writes them (large ones become tables of their own), items
    // of the pipeline's size, then series queries over what they built up.
    let series_schema = TableSchema {
        name: "series".into(),
        ..schema.clone()
    };
    b.table.ensure_table(&series_schema).await?;
    const SERIES: i64 = 4_000;
    const PER_BATCH: i64 = 25_000;
    let started = Instant::now();
    for batch in 0..20i64 {
        let items: Vec<Item> = (0..PER_BATCH)
            .map(|i| {
                let n = batch * PER_BATCH + i;
                let (series, round) = (n % SERIES, n / SERIES);
                Item::from([
                    (
                        "metric_id".to_string(),
                        AttributeValue::S(format!("cpu-i-{series:06}")),
                    ),
                    (
                        "timestamp".to_string(),
                        AttributeValue::N((1_771_459_200_000 + round * 10_000).to_string()),
                    ),
                    (
                        "instance_id".to_string(),
                        AttributeValue::S(format!("i-{series:06}")),
                    ),
                    ("region".to_string(), AttributeValue::S("eu-west-1".into())),
                    (
                        "collected_at".to_string(),
                        AttributeValue::S(format!(
                            "2026-02-19T00:{:02}:{:02}.000000",
                            round / 6 % 60,
                            round * 10 % 60
                        )),
                    ),
                    (
                        "sequence_number".to_string(),
                        AttributeValue::S(format!("{:056}", n * 7_919)),
                    ),
                    ("value".to_string(), AttributeValue::N("42.5".into())),
                ])
            })
            .collect();
        b.table.batch_put("series", items).await?;
    }
    report(
        "item batch_put (20 × 25,000 items)",
        20 * PER_BATCH as u64,
        "items",
        started,
    );
    let started = Instant::now();
    let mut read = 0;
    for q in 0..400i64 {
        let items = b
            .table
            .query(&ItemQuery {
                table: "series".into(),
                partition: AttributeValue::S(format!("cpu-i-{:06}", q * 7_919 % SERIES)),
                sort_from: None,
                sort_to: None,
                limit: None,
            })
            .await?;
        read += items.len();
    }
    report(
        &format!("item query (400 series, {read} items)"),
        400,
        "queries",
        started,
    );

    let started = Instant::now();
    for batch in 0..20i64 {
        let data: Vec<MetricDatum> = (0..1000i64)
            .map(|i| MetricDatum {
                metric_name: "cpu_utilization".into(),
                dimensions: BTreeMap::from([("InstanceID".into(), format!("i-{}", i % 50))]),
                timestamp_ms: (batch * 1000 + i) * 1000,
                unit: "Percent".into(),
                values: StatisticSet {
                    sample_count: 1.0,
                    sum: 1.0,
                    minimum: 1.0,
                    maximum: 1.0,
                },
            })
            .collect();
        b.metrics.put_metric_data("Bench", data, None).await?;
    }
    report(
        "put_metric_data (20 × 1,000 datums)",
        20_000,
        "datums",
        started,
    );

    let started = Instant::now();
    for i in 0..200 {
        b.state
            .put_many("bench", vec![(format!("k{i}"), Bytes::from_static(b"v"))])
            .await?;
    }
    report("state put_many (1 key, fsync)", 200, "puts", started);

    drop(b);
    if dir == temp {
        std::fs::remove_dir_all(&temp)?;
    }
    Ok(())
}
