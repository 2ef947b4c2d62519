//! The S3 Parquet sink driven by the consumer runtime over the embedded log and object
//! directory: every valid record lands in exactly one Parquet row, dead letters stay out,
//! and replays with other batch and buffer sizes change nothing.

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shardline_consumers::runtime::{Consumer, ConsumerConfig, RetryConfig};
use shardline_consumers::sinks::s3_parquet::{S3ParquetConfig, S3ParquetSink};
use shardline_core::ports::{CheckpointStore, ObjectStore, Stream};
use shardline_core::{PutRecordResult, PutRecordsEntry, SequenceNumber, ShardId};
use shardline_local::{LocalBackends, LocalOptions};
use shardline_log::{Log, LogOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const STREAM: &str = "metrics";
const BUCKET: &str = "infra-monitoring-pipeline-data";

fn event(i: u64) -> Vec<u8> {
    // Two event days: 2026-02-19 and 2026-02-20 (records 4 minutes apart).
    let ts = 1_771_459_200 + 43_200 + i as i64 * 240;
    let types = [
        "cpu_utilization",
        "memory_usage",
        "disk_usage",
        "network_traffic",
    ];
    serde_json::json!({
        "metric_id": format!("m-{ts}"),
        "metric_type": types[(i % 4) as usize],
        "timestamp": ts,
        "value": format!("{}.5", i % 90),
        "instance_id": format!("i-{:06}", 200_000 + i % 17),
        "region": "eu-west-1",
        "collected_at": "2026-02-19T12:00:00.000000",
    })
    .to_string()
    .into_bytes()
}

async fn rows(store: &dyn ObjectStore) -> BTreeMap<(String, String), u32> {
    let mut out = BTreeMap::new();
    for meta in store.list(BUCKET, "metrics/").await.expect("list") {
        let body: Bytes = store
            .get(BUCKET, &meta.key)
            .await
            .expect("get")
            .expect("exists");
        let reader = ParquetRecordBatchReaderBuilder::try_new(body)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let col = |name: &str| {
                batch
                    .column_by_name(name)
                    .and_then(|c| {
                        c.as_any()
                            .downcast_ref::<arrow::array::StringArray>()
                            .cloned()
                    })
                    .expect("string column")
            };
            let (shard, seq) = (col("shard_id"), col("sequence_number"));
            for i in 0..batch.num_rows() {
                *out.entry((shard.value(i).to_string(), seq.value(i).to_string()))
                    .or_insert(0) += 1;
            }
        }
    }
    out
}

async fn drain(
    log: &Arc<Log>,
    local: &LocalBackends,
    batch_size: usize,
    buffer_size: u64,
) -> shardline_consumers::runtime::ConsumerReport {
    let cfg = ConsumerConfig {
        batch_size,
        poll_interval: Duration::from_millis(5),
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_attempts: 5,
        },
        ..ConsumerConfig::new("s3-archiver", STREAM)
    };
    let sink = S3ParquetSink::new(
        S3ParquetConfig {
            buffer_size,
            ..S3ParquetConfig::default()
        },
        local.objects.clone(),
    )
    .expect("sink");
    Consumer::new(
        cfg,
        log.clone(),
        local.checkpoints.clone(),
        local.dead_letters.clone(),
        Box::new(sink),
    )
    .expect("consumer")
    .drain()
    .await
    .expect("drain")
}

#[tokio::test]
async fn consumer_to_parquet_is_exactly_once_across_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        Log::open(dir.path().join("log"), LogOptions::default())
            .await
            .expect("log"),
    );
    log.create_stream(STREAM, 2, Duration::from_secs(86_400))
        .await
        .expect("stream");
    let local =
        LocalBackends::open(&dir.path().join("data"), LocalOptions::default()).expect("local");

    let mut expected = BTreeMap::new();
    for chunk_start in (0..1200u64).step_by(400) {
        let entries: Vec<PutRecordsEntry> = (chunk_start..chunk_start + 400)
            .map(|i| PutRecordsEntry {
                partition_key: format!("i-{:06}", 200_000 + i % 17),
                explicit_hash_key: None,
                data: if i % 100 == 42 {
                    Bytes::from_static(b"not json")
                } else {
                    Bytes::from(event(i))
                },
            })
            .collect();
        let results = log.put_records(STREAM, entries).await.expect("put");
        for (k, r) in results.into_iter().enumerate() {
            let i = chunk_start + k as u64;
            if let PutRecordResult::Ok {
                shard_id,
                sequence_number,
            } = r
                && i % 100 != 42
            {
                expected.insert((shard_id.to_string(), sequence_number.to_string()), 1u32);
            }
        }
    }
    assert_eq!(expected.len(), 1188);

    let report = drain(&log, &local, 1000, 8 << 20).await;
    assert_eq!(report.status.records_in, 1200);
    assert_eq!(report.status.dead_letters, 12);
    let objects: Arc<dyn ObjectStore> = local.objects.clone();
    assert_eq!(
        rows(objects.as_ref()).await,
        expected,
        "every valid record once"
    );
    let keys = objects.list(BUCKET, "metrics/").await.expect("list");
    assert!(
        keys.iter()
            .any(|m| m.key.contains("year=2026/month=02/day=19/"))
    );
    assert!(
        keys.iter()
            .any(|m| m.key.contains("year=2026/month=02/day=20/"))
    );

    // Checkpoints at each shard's last record.
    let cps = local
        .checkpoints
        .list(Some("s3-archiver"))
        .await
        .expect("list");
    assert_eq!(cps.len(), 2);

    // Replay from TRIM_HORIZON with small batches and small buffers: nothing doubles.
    let removed = local
        .checkpoints
        .reset("s3-archiver", STREAM)
        .await
        .expect("reset");
    assert_eq!(removed, 2);
    let replay = drain(&log, &local, 77, 4 << 10).await;
    assert_eq!(replay.status.records_in, 1200);
    assert_eq!(
        rows(objects.as_ref()).await,
        expected,
        "replay added no row"
    );

    // Replay from the middle of shard 0 (a sequence number inside an earlier object).
    let mid: Vec<SequenceNumber> = {
        let mut s: Vec<_> = expected
            .keys()
            .filter(|(sh, _)| *sh == ShardId(0).to_string())
            .map(|(_, q)| q.parse::<SequenceNumber>().expect("seq"))
            .collect();
        s.sort();
        s
    };
    let key = shardline_core::ports::CheckpointKey {
        consumer: "s3-archiver".into(),
        stream: STREAM.into(),
        shard: ShardId(0),
    };
    local
        .checkpoints
        .put(&key, &mid[mid.len() / 3], None, None)
        .await
        .expect("rewind");
    drain(&log, &local, 333, 16 << 10).await;
    assert_eq!(
        rows(objects.as_ref()).await,
        expected,
        "mid-object replay added no row"
    );
}

/// The runtime reports every stretch it hands on (`Sink::handed`), dead letters included, so
/// the manifest joins its ranges across them: a shard read to its end, in many flushes and
/// over restarts, keeps one range.
#[tokio::test]
async fn the_manifest_keeps_one_range_across_dead_letters_and_restarts() {
    use shardline_consumers::sinks::s3_parquet::ShardManifest;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        Log::open(dir.path().join("log"), LogOptions::default())
            .await
            .expect("log"),
    );
    log.create_stream(STREAM, 1, Duration::from_secs(86_400))
        .await
        .expect("stream");
    let local =
        LocalBackends::open(&dir.path().join("data"), LocalOptions::default()).expect("local");
    let objects: Arc<dyn ObjectStore> = local.objects.clone();
    // Whole batches of dead letters (batch_size 5): records 50..55 and 120..125 of each round.
    let mut valid = 0;
    for round in 0..3u64 {
        let entries: Vec<PutRecordsEntry> = (0..150u64)
            .map(|i| PutRecordsEntry {
                partition_key: "k".into(),
                explicit_hash_key: None,
                data: if (50..55).contains(&i) || (120..125).contains(&i) {
                    Bytes::from_static(b"{\"not\": \"an event\"}")
                } else {
                    valid += 1;
                    Bytes::from(event(round * 150 + i))
                },
            })
            .collect();
        log.put_records(STREAM, entries).await.expect("put");
        // A buffer of one byte: every batch is a flush of its own.
        drain(&log, &local, 5, 1).await;
        let m = ShardManifest::load(objects.as_ref(), BUCKET, "metrics", ShardId(0))
            .await
            .expect("manifest");
        assert_eq!(m.ranges().len(), 1, "round {round}: {:?}", m.ranges());
        assert_eq!(m.rows(), valid);
    }
    let rows = rows(objects.as_ref()).await;
    assert_eq!(rows.len() as u64, valid);
    assert!(rows.values().all(|&n| n == 1));
}
