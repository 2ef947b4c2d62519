//! Replays N records from the embedded log into Parquet, as `shardline replay --consumer
//! s3-parquet --from TRIM_HORIZON --into-prefix P` does, and prints records/s.
//!
//! ```text
//! cargo run --profile fast -p shardline-consumers --example replay_bench -- [RECORDS] [SHARDS]
//! ```
//!
//! The log is filled first (buffered appends, 500 records per call; not timed) with events of
//! 5,000 instances and four metric types, each record the JSON a collector writes. The timing
//! covers the replay alone: reading every shard from TRIM_HORIZON with a replay range (one
//! consumer and one sink per shard lineage, read at once, as the command does),
//! decoding and validating each record, the S3 sink's buffering, Parquet encoding and object
//! writes (directory object store, atomic puts with fsync) and the manifests. Two runs, each
//! into a fresh prefix.

use bytes::Bytes;
use shardline_consumers::Sink;
use shardline_consumers::replay::{RangeEnd, RangeStart, Replay, ReplayRange};
use shardline_consumers::runtime::ConsumerConfig;
use shardline_consumers::sinks::s3_parquet::{S3ParquetConfig, S3ParquetSink};
use shardline_core::ports::Stream;
use shardline_core::{MetricEvent, MetricType, PutRecordsEntry};
use shardline_local::{LocalBackends, LocalOptions};
use shardline_log::{Durability, Log, LogOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let records: usize = args.get(1).map_or(Ok(2_000_000), |a| a.parse())?;
    let shards: u32 = args.get(2).map_or(Ok(4), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let log = Arc::new(
        Log::open(
            dir.path().join("log"),
            LogOptions {
                durability: Durability::Buffered,
                ..LogOptions::default()
            },
        )
        .await?,
    );
    log.create_stream("metrics", shards, Duration::from_secs(24 * 3600))
        .await?;
    let start_s = 1_796_000_000i64;
    let mut batch = Vec::with_capacity(500);
    let filled = Instant::now();
    for i in 0..records {
        let metric_type = MetricType::ALL[(i / 5000) % 4];
        let instance = format!("i-{:06}", i % 5000);
        let ts = start_s + (i / 20_000) as i64;
        let (lo, hi) = metric_type.seed_range();
        let event = MetricEvent {
            metric_id: format!("{}-{ts}", metric_type.id_prefix()),
            metric_type,
            timestamp: ts,
            timestamp_ms: Some(ts * 1000),
            value: lo + (hi - lo) * (((i * 7919) % 10_000) as f64 / 10_000.0),
            unit: Some(metric_type.unit()),
            instance_id: instance.clone(),
            region: "eu-west-1".into(),
            collected_at: "2026-12-01T00:00:00Z".into(),
        };
        batch.push(PutRecordsEntry {
            partition_key: instance,
            explicit_hash_key: None,
            data: Bytes::from(event.to_json()),
        });
        if batch.len() == 500 {
            log.put_records("metrics", std::mem::take(&mut batch))
                .await?;
        }
    }
    if !batch.is_empty() {
        log.put_records("metrics", batch).await?;
    }
    eprintln!(
        "filled the log with {records} records in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let backends = LocalBackends::open(dir.path(), LocalOptions::default())?;
    for run in 1..=2 {
        let sink_config = S3ParquetConfig {
            prefix: format!("bench{run}"),
            ..S3ParquetConfig::default()
        };
        let objects = backends.objects.clone();
        let mut config = ConsumerConfig::new("s3-parquet", "metrics");
        config.batch_size = 10_000;
        let range = ReplayRange {
            start: RangeStart::TrimHorizon,
            end: RangeEnd::Time(shardline_core::time::now_ms()),
            shards: None,
        };
        let replay = Replay::per_lineage(
            config,
            log.clone(),
            backends.dead_letters.clone(),
            || {
                let sink = S3ParquetSink::new(sink_config.clone(), objects.clone())?;
                Ok(Box::new(sink) as Box<dyn Sink>)
            },
            range,
        )
        .await?;
        let started = Instant::now();
        let report = replay.run().await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "run {run}: {} records into Parquet in {secs:.2} s: {:.0} records/s",
            report.status.records_delivered,
            report.status.records_delivered as f64 / secs
        );
    }
    log.close().await?;
    Ok(())
}
