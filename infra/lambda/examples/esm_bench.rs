//! Benchmark: the S3 Parquet sink fed three ways over the same embedded log, in one run.
//!
//! 1. the long-running consumer (`Consumer::drain`, its default buffering);
//! 2. the event source mapping runner, in-process (`SinkFunction`), per batch size;
//! 3. the same through the local Runtime API with the real `s3-parquet` bootstrap (`--binary`).
//!
//! Each mode writes into its own data directory and must end with every record in Parquet
//! exactly once (checked from the objects' footers). Prints a table of records/s.
//!
//! ```sh
//! cargo build --profile fast -p shardline-lambda --example esm_bench --bin s3-parquet
//! target/fast/examples/esm_bench --records 200000 --binary target/fast/s3-parquet
//! ```

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use serde_json::json;
use shardline_consumers::runtime::{Consumer, ConsumerConfig};
use shardline_consumers::sinks::s3_parquet::{S3ParquetConfig, S3ParquetSink};
use shardline_core::ports::Stream;
use shardline_core::stream::PutRecordsEntry;
use shardline_lambda::esm::{EsmRunner, MappingConfig, Until};
use shardline_lambda::invoke::{InProcess, Invoker};
use shardline_lambda::runtime_api::{ProcessConfig, ProcessFunction};
use shardline_lambda::{FunctionBackends, FunctionConfig, SinkFunction, SinkKind};
use shardline_local::{LocalBackends, LocalOptions};
use shardline_log::{Durability, Log, LogOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator of the `shardline` binary and the bootstraps, so each mode runs as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn parquet_rows(root: &Path) -> u64 {
    use parquet::file::reader::FileReader;
    let mut rows = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let r = parquet::file::reader::SerializedFileReader::new(
                    std::fs::File::open(&p).unwrap(),
                )
                .unwrap();
                rows += r.metadata().file_metadata().num_rows() as u64;
            }
        }
    }
    rows
}

fn lake(dir: &Path) -> PathBuf {
    dir.join("s3")
        .join("infra-monitoring-pipeline-data")
        .join("metrics")
}

fn mapping(batch: usize) -> MappingConfig {
    MappingConfig {
        batch_size: batch,
        retry_backoff: Duration::from_millis(10),
        poll_interval: Duration::from_millis(1),
        function_response_types: vec!["ReportBatchItemFailures".into()],
        ..MappingConfig::new("s3-parquet", "metrics")
    }
}

#[tokio::main]
async fn main() {
    let records: usize = arg("--records").map_or(200_000, |n| n.parse().unwrap());
    let batches: Vec<usize> = arg("--batch-sizes")
        .unwrap_or_else(|| "1000,10000".into())
        .split(',')
        .map(|b| b.parse().unwrap())
        .collect();
    let binary = arg("--binary").map(PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path().join("log"),
            LogOptions {
                durability: Durability::Buffered,
                ..LogOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    log.create_stream("metrics", 4, Duration::from_secs(86_400))
        .await
        .unwrap();
    let now = shardline_core::time::now_ms() / 1000;
    let types = [
        "cpu_utilization",
        "memory_usage",
        "disk_usage",
        "network_traffic",
    ];
    for chunk in (0..records).collect::<Vec<_>>().chunks(500) {
        let entries = chunk
            .iter()
            .map(|&i| {
                let instance = format!("i-{:06}", 100_000 + i % 64);
                let e = json!({
                    "metric_id": format!("{}-{}", &types[i % 4][..3], now - (i / 256) as i64),
                    "metric_type": types[i % 4], "timestamp": now - (i / 256) as i64,
                    "value": format!("{}.25", 20 + i % 70), "instance_id": instance,
                    "region": "eu-west-1", "collected_at": "2026-12-06T00:00:00Z"
                });
                PutRecordsEntry {
                    partition_key: instance,
                    explicit_hash_key: None,
                    data: Bytes::from(e.to_string()),
                }
            })
            .collect();
        log.put_records("metrics", entries).await.unwrap();
    }
    let mut table: Vec<(String, usize, f64, u64)> = Vec::new();

    // 1. The long-running consumer.
    let d = dir.path().join("consumer");
    let b = LocalBackends::open(&d, LocalOptions::default()).unwrap();
    let sink = S3ParquetSink::new(S3ParquetConfig::default(), b.objects.clone()).unwrap();
    let consumer = Consumer::new(
        ConsumerConfig {
            share_reads: false,
            ..ConsumerConfig::new("s3-parquet", "metrics")
        },
        log.clone(),
        b.checkpoints.clone(),
        b.dead_letters.clone(),
        Box::new(sink),
    )
    .unwrap();
    let t = Instant::now();
    consumer.drain().await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    let rows = parquet_rows(&lake(&d));
    assert_eq!(rows, records as u64, "consumer rows");
    table.push(("consumer (drain)".into(), 1000, secs, rows));
    drop(b);

    for &batch in &batches {
        // 2. In-process.
        let d = dir.path().join(format!("esm-{batch}"));
        let b = LocalBackends::open(&d, LocalOptions::default()).unwrap();
        let notifier = b
            .notifier(&shardline_local::NotifierConfig::Stderr {})
            .unwrap();
        let f = SinkFunction::new(
            SinkKind::S3Parquet,
            FunctionConfig::default(),
            FunctionBackends::local(&b, notifier),
        )
        .unwrap();
        let invoker: Arc<dyn Invoker> = Arc::new(InProcess::new(Arc::new(f)));
        let runner =
            EsmRunner::new(mapping(batch), log.clone(), invoker, None, &d.join("esm")).unwrap();
        let t = Instant::now();
        runner.run(Until::CaughtUp).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        let rows = parquet_rows(&lake(&d));
        assert_eq!(rows, records as u64, "in-process rows");
        table.push(("esm in-process".into(), batch, secs, rows));
        drop(b);

        // 3. The real bootstrap under the Runtime API.
        if let Some(binary) = &binary {
            let d = dir.path().join(format!("esm-bin-{batch}"));
            let mut p = ProcessConfig::new("s3-parquet", binary);
            p.env
                .insert("SHARDLINE_DATA".into(), d.display().to_string());
            p.env.insert("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into());
            let f = ProcessFunction::new(p);
            let invoker: Arc<dyn Invoker> = f.clone();
            let runner =
                EsmRunner::new(mapping(batch), log.clone(), invoker, None, &d.join("esm")).unwrap();
            let t = Instant::now();
            runner.run(Until::CaughtUp).await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            f.shutdown().await;
            let rows = parquet_rows(&lake(&d));
            assert_eq!(rows, records as u64, "bootstrap rows");
            table.push(("esm runtime api (bootstrap)".into(), batch, secs, rows));
        }
    }

    let base = table[0].3 as f64 / table[0].2;
    println!("| mode | batch | records | seconds | records/s | vs consumer |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (mode, batch, secs, rows) in &table {
        let rate = *rows as f64 / secs;
        println!(
            "| {mode} | {batch} | {rows} | {secs:.2} | {rate:.0} | {:.2}x |",
            rate / base
        );
    }
}
