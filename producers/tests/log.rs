//! Sending through the real embedded log and reading every record back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::{MetricEvent, ShardId, StartingPosition};
use shardline_log::{Log, LogOptions};
use shardline_producers::{Producer, ProducerConfig, SyntheticCollector, SyntheticConfig};

fn events(instances: usize, rounds: i64) -> Vec<MetricEvent> {
    let mut c = SyntheticCollector::new(
        SyntheticConfig {
            instances,
            ..SyntheticConfig::default()
        },
        Some(11),
    )
    .expect("collector");
    (0..rounds)
        .flat_map(|r| c.collect(None, 1_771_500_000_000 + r * 1000))
        .collect()
}

/// Every record of every shard, as (shard, sequence number, event).
async fn read_all(log: &Log, shards: u32) -> Vec<(ShardId, String, MetricEvent)> {
    let mut out = Vec::new();
    for s in 0..shards {
        let shard = ShardId(s);
        let mut it = log
            .get_shard_iterator("metrics", shard, &StartingPosition::TrimHorizon)
            .await
            .expect("iterator");
        for _ in 0..1000 {
            let page = log.get_records(&it, 10_000).await.expect("get_records");
            let empty = page.records.is_empty();
            for r in page.records {
                let e = MetricEvent::from_json(&r.data).expect("event");
                assert_eq!(r.partition_key, e.instance_id);
                out.push((shard, r.sequence_number.to_string(), e));
            }
            match page.next_iterator {
                Some(next) if !empty => it = next,
                _ => break,
            }
        }
    }
    out
}

fn per_instance(events: impl Iterator<Item = MetricEvent>) -> BTreeMap<String, Vec<(i64, String)>> {
    let mut m: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for e in events {
        m.entry(e.instance_id.clone())
            .or_default()
            .push((e.event_time_ms(), e.metric_type.to_string()));
    }
    m
}

#[tokio::test]
async fn events_sent_are_read_back_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        Log::open(dir.path(), LogOptions::default())
            .await
            .expect("open"),
    );
    log.create_stream("metrics", 4, Duration::from_secs(24 * 3600))
        .await
        .expect("create");
    let producer =
        Producer::new(log.clone(), "metrics", ProducerConfig::default()).expect("producer");
    let input = events(25, 20);
    let report = producer.send(input.clone()).await.expect("send");
    assert_eq!(report.appended.len(), 2000);
    assert!(report.failed.is_empty());

    let back = read_all(&log, 4).await;
    assert_eq!(back.len(), 2000);
    assert_eq!(
        per_instance(back.iter().map(|b| b.2.clone())),
        per_instance(input.into_iter())
    );
    // The report's (shard, sequence) pairs are exactly what the log holds.
    let mut reported: Vec<(ShardId, String)> = report
        .appended
        .iter()
        .map(|a| (a.shard_id, a.sequence_number.to_string()))
        .collect();
    let mut stored: Vec<(ShardId, String)> = back.iter().map(|b| (b.0, b.1.clone())).collect();
    reported.sort();
    stored.sort();
    assert_eq!(reported, stored);
    log.close().await.expect("close");
}

#[tokio::test]
async fn throttling_by_the_log_is_retried_until_everything_lands_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        enforce_throughput_limits: true,
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(dir.path(), options).await.expect("open"));
    log.create_stream("metrics", 1, Duration::from_secs(24 * 3600))
        .await
        .expect("create");
    let cfg = ProducerConfig {
        max_attempts: 100,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(300),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(log.clone(), "metrics", cfg).expect("producer");
    // 2,000 records into one shard limited to 1,000 records/s.
    let input = events(50, 10);
    let report = producer.send(input.clone()).await.expect("send");
    assert_eq!(report.appended.len(), 2000, "{:?}", report.failed.first());
    assert!(
        report.retries > 0,
        "the shard's limit must have throttled some entries"
    );
    let back = read_all(&log, 1).await;
    assert_eq!(back.len(), 2000);
    assert_eq!(
        per_instance(back.into_iter().map(|b| b.2)),
        per_instance(input.into_iter())
    );
    log.close().await.expect("close");
}
