//! The DynamoDB sink over the embedded table: one item per sample, replays add nothing.

use shardline_consumers::sinks::dynamodb::{DynamoDbConfig, DynamoDbSink, query_series};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::ItemTable;
use shardline_core::{MetricEvent, MetricType, SequenceParts, ShardId};
use shardline_local::{LocalBackends, LocalOptions};
use std::collections::BTreeSet;
use std::sync::Arc;

const T0_MS: i64 = 1_771_500_000_000;

fn record(offset: u64, instance: &str, metric: MetricType, ms: i64, value: f64) -> SinkRecord {
    let secs = ms.div_euclid(1000);
    SinkRecord {
        shard: ShardId(0),
        sequence_number: SequenceParts {
            shard_index: 0,
            offset,
            shard_created_secs: 1_771_000_000,
            arrival_secs: secs as u64,
        }
        .encode(),
        arrival_ms: ms + 5,
        event: MetricEvent {
            metric_id: format!("{}-{secs}", metric.id_prefix()),
            metric_type: metric,
            timestamp: secs,
            timestamp_ms: Some(ms),
            value,
            unit: None,
            instance_id: instance.to_string(),
            region: "eu-west-1".to_string(),
            collected_at: "2026-02-19T11:25:09.123456".to_string(),
        },
    }
}

/// 3 instances × 4 metrics × 10 seconds, every instance sampling at the same instants, plus a
/// second cpu sample of i-000001 within the same second (different millisecond).
fn samples() -> Vec<SinkRecord> {
    let mut out = Vec::new();
    let mut offset = 0;
    for s in 0..10 {
        for instance in ["i-000001", "i-000002", "i-000003"] {
            for metric in MetricType::ALL {
                let value = 10.0 + f64::from(s as u32) + metric as u8 as f64;
                out.push(record(offset, instance, metric, T0_MS + s * 1000, value));
                offset += 1;
            }
        }
    }
    out.push(record(
        offset,
        "i-000001",
        MetricType::CpuUtilization,
        T0_MS + 3_500,
        77.25,
    ));
    out
}

#[tokio::test]
async fn every_sample_is_one_item_and_replays_add_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let table: Arc<dyn ItemTable> = local.table.clone();
    let mut sink = DynamoDbSink::new(table.clone(), DynamoDbConfig::default()).expect("sink");
    let records = samples();
    let n = records.len();
    assert_eq!(n, 121);

    // The seed's key (metric_id = <prefix>-<epoch s>, timestamp = epoch s) would collide.
    let seed_keys: BTreeSet<(String, i64)> = records
        .iter()
        .map(|r| (r.event.metric_id.clone(), r.event.timestamp))
        .collect();
    assert_eq!(
        seed_keys.len(),
        40,
        "the seed schema keeps only 40 of 121 samples"
    );

    for batch in records.chunks(17) {
        let durable = sink
            .write(ShardId(0), batch.to_vec(), 0)
            .await
            .expect("write");
        assert_eq!(durable.as_ref(), batch.last().map(|r| &r.sequence_number));
    }
    assert_eq!(table.count("InfraMetrics").await.expect("count"), n as u64);

    // The same records again, with other batch boundaries, and through a fresh sink.
    let mut again = DynamoDbSink::new(table.clone(), DynamoDbConfig::default()).expect("sink");
    for batch in records.chunks(50) {
        again
            .write(ShardId(0), batch.to_vec(), 0)
            .await
            .expect("replay");
    }
    sink.write(ShardId(0), records.clone(), 0)
        .await
        .expect("replay");
    assert_eq!(table.count("InfraMetrics").await.expect("count"), n as u64);
    assert_eq!(sink.flush(0, true).await.expect("flush"), vec![]);
}

#[tokio::test]
async fn a_series_reads_back_in_time_order_within_bounds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let table: Arc<dyn ItemTable> = local.table.clone();
    let config = DynamoDbConfig {
        table: "InfraMetricsTest".into(),
    };
    let mut sink = DynamoDbSink::new(table.clone(), config).expect("sink");
    // Written newest first: the query must still answer oldest first.
    let mut records = samples();
    records.reverse();
    sink.write(ShardId(0), records, 0).await.expect("write");

    let all = query_series(
        table.as_ref(),
        "InfraMetricsTest",
        "cpu-i-000001",
        None,
        None,
    )
    .await
    .expect("query");
    assert_eq!(
        all.len(),
        11,
        "10 seconds plus the extra sample in second 3"
    );
    let times: Vec<i64> = all
        .iter()
        .map(|i| i["timestamp"].as_i64().expect("numeric timestamp"))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted);

    let window = query_series(
        table.as_ref(),
        "InfraMetricsTest",
        "cpu-i-000001",
        Some(T0_MS + 3_000),
        Some(T0_MS + 4_000),
    )
    .await
    .expect("bounded query");
    let got: Vec<(i64, f64, String)> = window
        .iter()
        .map(|i| {
            (
                i["timestamp"].as_i64().expect("timestamp"),
                i["value"].as_f64().expect("value"),
                i["seed_metric_id"].as_s().expect("seed id").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (T0_MS + 3_000, 13.0, "cpu-1771500003".to_string()),
            (T0_MS + 3_500, 77.25, "cpu-1771500003".to_string()),
            (T0_MS + 4_000, 14.0, "cpu-1771500004".to_string()),
        ]
    );
    let item = &window[0];
    assert_eq!(item["instance_id"].as_s(), Some("i-000001"));
    assert_eq!(item["metric_type"].as_s(), Some("cpu_utilization"));
    assert_eq!(item["unit"].as_s(), Some("Percent"));
    assert_eq!(item["epoch_seconds"].as_i64(), Some(1_771_500_003));
    assert_eq!(item["shard_id"].as_s(), Some("shardId-000000000000"));
}

#[test]
fn a_bad_table_name_is_refused_with_the_rule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let err = DynamoDbSink::new(
        local.table.clone(),
        DynamoDbConfig {
            table: "infra metrics!".into(),
        },
    )
    .err()
    .expect("invalid name");
    assert!(err.to_string().contains("infra metrics!"), "{err}");
    assert!(err.to_string().contains("3-255 characters"), "{err}");
}
