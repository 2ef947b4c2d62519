//! A replay with one consumer per shard lineage (what `shardline replay` does for the Parquet
//! consumer) writes the same rows as one consumer reading the shards in turn: every valid
//! record once, dead letters out, across a split, and a second replay adds nothing.

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shardline_consumers::Sink;
use shardline_consumers::replay::{RangeEnd, RangeStart, Replay, ReplayRange};
use shardline_consumers::runtime::ConsumerConfig;
use shardline_consumers::sinks::s3_parquet::{S3ParquetConfig, S3ParquetSink};
use shardline_core::ports::{ObjectStore, Stream};
use shardline_core::{PutRecordResult, PutRecordsEntry, ShardId};
use shardline_local::{LocalBackends, LocalOptions};
use shardline_log::{Log, LogOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const STREAM: &str = "metrics";
const BUCKET: &str = "infra-monitoring-pipeline-data";

fn event(i: u64) -> Bytes {
    let ts = 1_771_459_200 + i as i64 * 7;
    Bytes::from(format!(
        r#"{{"metric_id":"m-{ts}","metric_type":"cpu_utilization","timestamp":{ts},"value":{}.5,"instance_id":"i-{:06}","region":"eu-west-1","collected_at":"2026-02-19T12:00:00Z"}}"#,
        i % 90,
        i % 23
    ))
}

/// Appends records `from..to` (at most 500; every 50th not JSON); returns (shard, sequence) of the valid.
async fn put(log: &Log, from: u64, to: u64) -> Vec<(String, String)> {
    let entries: Vec<PutRecordsEntry> = (from..to)
        .map(|i| PutRecordsEntry {
            partition_key: format!("i-{:06}", i % 23),
            explicit_hash_key: None,
            data: if i % 50 == 7 {
                Bytes::from_static(b"not json")
            } else {
                event(i)
            },
        })
        .collect();
    let results = log.put_records(STREAM, entries).await.expect("put");
    results
        .into_iter()
        .zip(from..to)
        .filter(|(_, i)| i % 50 != 7)
        .map(|(r, _)| match r {
            PutRecordResult::Ok {
                shard_id,
                sequence_number,
            } => (shard_id.to_string(), sequence_number.to_string()),
            PutRecordResult::Err { error_message, .. } => panic!("put failed: {error_message}"),
        })
        .collect()
}

/// (shard, sequence number) → rows holding it, over every Parquet object under `prefix`.
async fn rows(store: &dyn ObjectStore, prefix: &str) -> BTreeMap<(String, String), u32> {
    let mut out = BTreeMap::new();
    for meta in store
        .list(BUCKET, &format!("{prefix}/"))
        .await
        .expect("list")
    {
        let body = store
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

fn range() -> ReplayRange {
    ReplayRange {
        start: RangeStart::TrimHorizon,
        end: RangeEnd::Time(shardline_core::time::now_ms() + 60_000),
        shards: None,
    }
}

fn config() -> ConsumerConfig {
    ConsumerConfig {
        batch_size: 37,
        poll_interval: Duration::from_millis(5),
        ..ConsumerConfig::new("s3-parquet", STREAM)
    }
}

fn sink_config(prefix: &str) -> S3ParquetConfig {
    S3ParquetConfig {
        prefix: prefix.into(),
        buffer_size: 8 << 10,
        // A closed parent's last records wait for their buffer to be due before its children
        // are read.
        buffer_interval: Duration::from_millis(50),
        ..S3ParquetConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_lineage_replay_writes_what_one_consumer_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        Log::open(dir.path().join("log"), LogOptions::default())
            .await
            .expect("log"),
    );
    log.create_stream(STREAM, 3, Duration::from_secs(86_400))
        .await
        .expect("stream");
    let local =
        LocalBackends::open(&dir.path().join("data"), LocalOptions::default()).expect("local");
    let mut expected = put(&log, 0, 300).await;
    expected.extend(put(&log, 300, 600).await);
    // Shard 0 splits into 3 and 4: one lineage of three shards, and shards 1 and 2 alone.
    let children = log
        .split_shard(STREAM, ShardId(0), u128::MAX / 6)
        .await
        .expect("split");
    assert_eq!(children, vec![ShardId(3), ShardId(4)]);
    expected.extend(put(&log, 600, 900).await);
    expected.extend(put(&log, 900, 1200).await);
    expected.sort();
    let child_rows = expected
        .iter()
        .filter(|(s, _)| *s == ShardId(3).to_string() || *s == ShardId(4).to_string())
        .count();
    assert!(child_rows > 0, "records went to the split's children");

    // One consumer over every shard.
    let objects = local.objects.clone();
    let one = Replay::new(
        config(),
        log.clone(),
        local.dead_letters.clone(),
        Box::new(S3ParquetSink::new(sink_config("one"), objects.clone()).expect("sink")),
        range(),
    )
    .expect("replay");
    assert_eq!(one.consumers(), 1);
    let report = one.run().await.expect("run");
    assert_eq!(report.status.records_in, 1200);

    // One consumer per lineage, twice into the same prefix.
    for round in 1..=2 {
        let sinks = objects.clone();
        let per = Replay::per_lineage(
            config(),
            log.clone(),
            local.dead_letters.clone(),
            move || {
                let sink = S3ParquetSink::new(sink_config("per"), sinks.clone())?;
                Ok(Box::new(sink) as Box<dyn Sink>)
            },
            range(),
        )
        .await
        .expect("replay");
        assert_eq!(per.consumers(), 3, "lineages {{0,3,4}}, {{1}}, {{2}}");
        let status = per.status();
        let report = per.run().await.expect("run");
        assert_eq!(report.status.records_in, 1200, "round {round}");
        assert_eq!(status.snapshot().records_in, 1200, "round {round}");
        assert_eq!(
            report.status.records_delivered,
            expected.len() as u64,
            "round {round}"
        );
        assert_eq!(report.status.dead_letters, 24, "round {round}");
    }

    let (one, per) = (
        rows(objects.as_ref(), "one").await,
        rows(objects.as_ref(), "per").await,
    );
    let once: Vec<(String, String)> = expected.to_vec();
    assert_eq!(per.keys().cloned().collect::<Vec<_>>(), once);
    assert!(
        per.values().all(|&n| n == 1),
        "no row twice after two replays"
    );
    assert_eq!(per, one);
}
