//! Sink functions behind the runner over the embedded log: the same effects in-process and as
//! the real `s3-parquet` bootstrap under the Runtime API; exactly-once when the mapping
//! replays; dead letters for invalid records; a failing backend reported as the first record
//! not durable.

#![allow(clippy::unwrap_used, missing_docs)]

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::json;
use shardline_core::ports::{DeadLetterStore, ObjectMeta, ObjectStore, Stream};
use shardline_core::stream::PutRecordsEntry;
use shardline_lambda::esm::{EsmRunner, MappingConfig, Until};
use shardline_lambda::invoke::{InProcess, Invoker};
use shardline_lambda::runtime_api::{ProcessConfig, ProcessFunction};
use shardline_lambda::{FunctionBackends, FunctionConfig, SinkFunction, SinkKind};
use shardline_local::{LocalBackends, LocalOptions};
use shardline_log::{Durability, Log, LogOptions};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const VALID: usize = 40;

async fn log_with_records(data: &Path) -> Arc<Log> {
    let log = Log::open(
        data.join("log"),
        LogOptions {
            durability: Durability::Buffered,
            ..LogOptions::default()
        },
    )
    .await
    .unwrap();
    log.create_stream("metrics", 1, Duration::from_secs(86_400))
        .await
        .unwrap();
    let now = shardline_core::time::now_ms() / 1000;
    let mut entries: Vec<PutRecordsEntry> = (0..VALID)
        .map(|i| {
            let e = json!({
                "metric_id": format!("cpu-{i}"), "metric_type": "cpu_utilization",
                "timestamp": now - i as i64, "value": format!("{}.5", 20 + i),
                "instance_id": format!("i-{:06}", 100_000 + i % 4), "region": "eu-west-1",
                "collected_at": "2026-01-01T00:00:00Z"
            });
            PutRecordsEntry {
                partition_key: format!("i-{:06}", 100_000 + i % 4),
                explicit_hash_key: None,
                data: Bytes::from(e.to_string()),
            }
        })
        .collect();
    entries.insert(
        7,
        PutRecordsEntry {
            partition_key: "bad".into(),
            explicit_hash_key: None,
            data: Bytes::from_static(b"{\"not\": \"a metric\"}"),
        },
    );
    log.put_records("metrics", entries).await.unwrap();
    Arc::new(log)
}

fn config() -> FunctionConfig {
    FunctionConfig::from_json(
        &json!({"consumer": "s3-parquet", "s3": {"bucket": "lake"}}).to_string(),
    )
    .unwrap()
    .for_lambda(SinkKind::S3Parquet)
}

fn mapping() -> MappingConfig {
    MappingConfig {
        batch_size: 10,
        retry_backoff: Duration::ZERO,
        poll_interval: Duration::from_millis(1),
        maximum_retry_attempts: 3,
        function_response_types: vec!["ReportBatchItemFailures".into()],
        ..MappingConfig::new("s3-parquet", "metrics")
    }
}

/// Parquet rows under the bucket (from each object's footer), and each object's rows in key
/// order (keys name sequence numbers, which differ between two logs; their order does not).
fn parquet_rows(data: &Path) -> (u64, Vec<u64>) {
    use parquet::file::reader::FileReader;
    let root = data.join("s3").join("lake").join("metrics");
    let mut rows = 0;
    let mut keys = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let f = std::fs::File::open(&p).unwrap();
                let r = parquet::file::reader::SerializedFileReader::new(f).unwrap();
                let n = r.metadata().file_metadata().num_rows() as u64;
                rows += n;
                keys.push((p.strip_prefix(&root).unwrap().display().to_string(), n));
            }
        }
    }
    keys.sort();
    (rows, keys.into_iter().map(|(_, n)| n).collect())
}

async fn dead_letters(data: &Path) -> u64 {
    let b = LocalBackends::open(data, LocalOptions::default()).unwrap();
    b.dead_letters.count(Some("s3-parquet")).await.unwrap()
}

#[tokio::test]
async fn in_process_and_the_real_bootstrap_have_the_same_effects_and_replays_add_nothing() {
    // In-process.
    let a = tempfile::tempdir().unwrap();
    let log = log_with_records(a.path()).await;
    let backends = LocalBackends::open(a.path(), LocalOptions::default()).unwrap();
    let notifier = backends
        .notifier(&shardline_local::NotifierConfig::Stderr {})
        .unwrap();
    let f = SinkFunction::new(
        SinkKind::S3Parquet,
        config(),
        FunctionBackends::local(&backends, notifier),
    )
    .unwrap();
    let invoker: Arc<dyn Invoker> = Arc::new(InProcess::new(Arc::new(f)));
    let state = a.path().join("esm");
    let runner = EsmRunner::new(mapping(), log.clone(), invoker.clone(), None, &state).unwrap();
    let counts = runner.run(Until::CaughtUp).await.unwrap();
    assert_eq!(counts.records_done, VALID as u64 + 1);
    let (rows, keys) = parquet_rows(a.path());
    assert_eq!(rows, VALID as u64);
    assert_eq!(
        backends
            .dead_letters
            .count(Some("s3-parquet"))
            .await
            .unwrap(),
        1
    );
    // A replay from the start (the mapping's checkpoints lost) adds no row.
    std::fs::remove_file(state.join("checkpoints.json")).unwrap();
    let runner = EsmRunner::new(mapping(), log.clone(), invoker, None, &state).unwrap();
    runner.run(Until::CaughtUp).await.unwrap();
    assert_eq!(
        parquet_rows(a.path()),
        (rows, keys.clone()),
        "exactly once across the replay"
    );
    assert_eq!(
        backends
            .dead_letters
            .count(Some("s3-parquet"))
            .await
            .unwrap(),
        1
    );
    drop(backends);

    // The real bootstrap, under the runner's Runtime API, on its own copy of the stream.
    let b = tempfile::tempdir().unwrap();
    let log_b = log_with_records(b.path()).await;
    let mut process = ProcessConfig::new("s3-parquet", env!("CARGO_BIN_EXE_s3-parquet"));
    process
        .env
        .insert("SHARDLINE_DATA".into(), b.path().display().to_string());
    process.env.insert(
        "SHARDLINE_FUNCTION_CONFIG".into(),
        serde_json::to_string(&config()).unwrap(),
    );
    process
        .env
        .insert("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into());
    let function = ProcessFunction::new(process);
    let invoker: Arc<dyn Invoker> = function.clone();
    let runner = EsmRunner::new(mapping(), log_b, invoker, None, &b.path().join("esm")).unwrap();
    let counts_b = runner.run(Until::CaughtUp).await.unwrap();
    function.shutdown().await;
    assert_eq!(counts_b.records_done, counts.records_done);
    assert_eq!(counts_b.invocations, counts.invocations, "the same batches");
    assert_eq!(
        function.cold_starts(),
        1,
        "one environment served every batch warm"
    );
    assert_eq!(
        parquet_rows(b.path()),
        (rows, keys),
        "the same objects and rows"
    );
    assert_eq!(dead_letters(b.path()).await, 1);
}

/// An object store whose puts fail while `failing` is set.
struct Flaky {
    inner: Arc<dyn ObjectStore>,
    failing: AtomicBool,
}

#[async_trait]
impl ObjectStore for Flaky {
    async fn ensure_bucket(&self, bucket: &str) -> shardline_core::Result<()> {
        self.inner.ensure_bucket(bucket).await
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        ct: &str,
    ) -> shardline_core::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(shardline_core::Error::Unavailable("injected".into()));
        }
        self.inner.put(bucket, key, body, ct).await
    }
    async fn get(&self, bucket: &str, key: &str) -> shardline_core::Result<Option<Bytes>> {
        self.inner.get(bucket, key).await
    }
    async fn list(&self, bucket: &str, prefix: &str) -> shardline_core::Result<Vec<ObjectMeta>> {
        self.inner.list(bucket, prefix).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> shardline_core::Result<()> {
        self.inner.delete(bucket, key).await
    }
}

#[tokio::test]
async fn a_failing_backend_fails_the_batch_with_a_retryable_name_and_the_retry_writes_it_once() {
    let a = tempfile::tempdir().unwrap();
    let log = log_with_records(a.path()).await;
    let backends = LocalBackends::open(a.path(), LocalOptions::default()).unwrap();
    let flaky = Arc::new(Flaky {
        inner: backends.objects.clone(),
        failing: AtomicBool::new(true),
    });
    let notifier = backends
        .notifier(&shardline_local::NotifierConfig::Stderr {})
        .unwrap();
    let mut ports = FunctionBackends::local(&backends, notifier);
    ports.objects = flaky.clone();
    let f = Arc::new(SinkFunction::new(SinkKind::S3Parquet, config(), ports).unwrap());
    // Straight to the function: the first batch's records, as the mapping would send them.
    let it = log
        .get_shard_iterator(
            "metrics",
            shardline_core::ShardId(0),
            &shardline_core::StartingPosition::TrimHorizon,
        )
        .await
        .unwrap();
    let records = log.get_records(&it, 5).await.unwrap().records;
    let source =
        shardline_lambda::kinesis::EventSource::new("metrics", "eu-west-1", "123456789012", "r");
    let encoded: Vec<_> = records
        .iter()
        .map(|r| {
            shardline_lambda::kinesis::EncodedRecord::new(&source, shardline_core::ShardId(0), r)
        })
        .collect();
    let event: serde_json::Value =
        serde_json::from_slice(&shardline_lambda::kinesis::build_event(&encoded, None)).unwrap();
    use shardline_lambda::Function;
    let err = f
        .invoke(event.clone())
        .await
        .expect_err("nothing durable: the whole batch fails");
    assert_eq!(err.error_type, shardline_lambda::error::RETRYABLE, "{err}");
    assert_eq!(parquet_rows(a.path()).0, 0);
    flaky.failing.store(false, Ordering::SeqCst);
    let ok = f.invoke(event.clone()).await.unwrap();
    assert_eq!(ok, json!({"batchItemFailures": []}));
    let ok = f.invoke(event).await.unwrap();
    assert_eq!(ok, json!({"batchItemFailures": []}));
    assert_eq!(
        parquet_rows(a.path()).0,
        5,
        "a redelivered batch leaves no duplicate row"
    );
}
