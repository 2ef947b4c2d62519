//! Runtime internals over the real embedded log: a refused iterator is resolved again after
//! the last processed record, so nothing is skipped or delivered twice.

use async_trait::async_trait;
use bytes::Bytes;
use shardline_core::ports::Stream;
use shardline_core::{PutRecordsEntry, Result, SequenceNumber, ShardId, ShardIterator};
use shardline_local::{LocalBackends, LocalOptions};
use shardline_log::{Log, LogOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Consumer, ConsumerConfig};
use crate::{Sink, SinkRecord};

struct Collect(Arc<Mutex<Vec<SequenceNumber>>>);

#[async_trait]
impl Sink for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    async fn write(
        &mut self,
        _shard: ShardId,
        records: &[SinkRecord],
        _now_ms: i64,
    ) -> Result<Option<SequenceNumber>> {
        let last = records.last().map(|r| r.sequence_number.clone());
        if let Ok(mut v) = self.0.lock() {
            v.extend(records.iter().map(|r| r.sequence_number.clone()));
        }
        Ok(last)
    }
    async fn flush(
        &mut self,
        _now_ms: i64,
        _force: bool,
    ) -> Result<Vec<(ShardId, SequenceNumber)>> {
        Ok(Vec::new())
    }
}

fn event(i: u64) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "metric_id": format!("disk-{}", 1_771_500_000 + i),
            "metric_type": "disk_usage",
            "timestamp": 1_771_500_000 + i,
            "value": 55.0,
            "instance_id": "i-123456",
            "region": "eu-west-1",
            "collected_at": "2026-02-19T11:20:00Z",
        })
        .to_string(),
    )
}

#[tokio::test]
async fn a_refused_iterator_is_resolved_again_after_the_last_processed_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        Log::open(dir.path().join("log"), LogOptions::default())
            .await
            .expect("log"),
    );
    log.create_stream("metrics", 1, Duration::from_secs(3600))
        .await
        .expect("stream");
    let entries = (0..10)
        .map(|i| PutRecordsEntry {
            partition_key: "i-123456".into(),
            explicit_hash_key: None,
            data: event(i),
        })
        .collect();
    log.put_records("metrics", entries).await.expect("put");
    let local =
        LocalBackends::open(&dir.path().join("data"), LocalOptions::default()).expect("local");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cfg = ConsumerConfig {
        batch_size: 4,
        ..ConsumerConfig::new("iter", "metrics")
    };
    let mut consumer = Consumer::new(
        cfg,
        log.clone(),
        local.checkpoints.clone(),
        local.dead_letters.clone(),
        Box::new(Collect(seen.clone())),
    )
    .expect("consumer");
    consumer.refresh_shards().await.expect("shards");
    consumer.pass().await.expect("first batch");
    assert_eq!(seen.lock().map(|v| v.len()).unwrap_or(0), 4);

    // The backend refuses the next iterator (expired, or from a re-created stream).
    if let Some(state) = consumer.shards.get_mut(&ShardId(0)) {
        state.iterator = Some(ShardIterator("no-longer-valid".into()));
    }
    consumer.pass().await.expect("re-resolved");
    consumer.pass().await.expect("rest");
    let pass = consumer.pass().await.expect("caught up");
    assert!(pass.all_caught_up && pass.records == 0);

    let got = seen.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(got.len(), 10, "nothing skipped, nothing twice: {got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        consumer.status().snapshot().errors,
        1,
        "the refusal is counted"
    );
    assert_eq!(consumer.checkpointed(ShardId(0)), got.last());
}
