//! Streams, put_records and reading back through the `Stream` port.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shardline_core::ports::Stream;
use shardline_core::stream::{
    HashKeyRange, PutRecordResult, PutRecordsEntry, ShardId, StartingPosition, hash_key,
};
use shardline_log::{Log, LogOptions};

fn entry(key: &str, data: &str) -> PutRecordsEntry {
    PutRecordsEntry {
        partition_key: key.into(),
        explicit_hash_key: None,
        data: Bytes::from(data.to_string()),
    }
}

#[tokio::test]
async fn create_put_read_describe_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        Log::open(dir.path(), LogOptions::default())
            .await
            .expect("open"),
    );
    log.create_stream("metrics", 4, Duration::from_secs(24 * 3600))
        .await
        .expect("create");
    assert!(
        log.create_stream("metrics", 4, Duration::from_secs(3600))
            .await
            .is_err()
    );
    let entries: Vec<_> = (0..100)
        .map(|i| entry(&format!("host-{}", i % 10), &format!("v{i}")))
        .collect();
    let results = log.put_records("metrics", entries).await.expect("put");
    assert_eq!(results.len(), 100);
    let ranges = HashKeyRange::split_even(4);
    for (i, r) in results.iter().enumerate() {
        let PutRecordResult::Ok { shard_id, .. } = r else {
            panic!("record {i} failed: {r:?}")
        };
        assert!(ranges[shard_id.index() as usize].contains(hash_key(&format!("host-{}", i % 10))));
    }
    let mut total = 0;
    for shard in 0..4 {
        let it = log
            .get_shard_iterator("metrics", ShardId(shard), &StartingPosition::TrimHorizon)
            .await
            .expect("iter");
        let out = log.get_records(&it, 1000).await.expect("read");
        total += out.records.len();
        assert_eq!(out.millis_behind_latest, 0);
    }
    assert_eq!(total, 100);
    assert_eq!(
        log.list_streams().await.expect("list"),
        vec!["metrics".to_string()]
    );
    assert_eq!(
        log.describe_stream("metrics")
            .await
            .expect("describe")
            .shards
            .len(),
        4
    );
    log.close().await.expect("close");
    drop(log);
    let log = Log::open(dir.path(), LogOptions::default())
        .await
        .expect("reopen");
    let stats = log.shard_stats("metrics").await.expect("stats");
    assert_eq!(stats.iter().map(|s| s.next_offset).sum::<u64>(), 100);
    log.delete_stream("metrics").await.expect("delete");
    assert!(log.list_streams().await.expect("list").is_empty());
    assert!(!dir.path().join("metrics").exists());
}

/// `close` gives the directory back at once: a clone still held by some task (here, `held`)
/// does not keep the next open out, and the closed log refuses to append.
#[tokio::test]
async fn a_closed_log_can_be_opened_again_while_a_clone_is_still_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        Log::open(dir.path(), LogOptions::default())
            .await
            .expect("open"),
    );
    log.create_stream("metrics", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    log.put_records("metrics", vec![entry("k", "one")])
        .await
        .expect("put");
    assert!(
        Log::open(dir.path(), LogOptions::default()).await.is_err(),
        "open while the first is open"
    );
    let held = Arc::clone(&log);
    log.close().await.expect("close");
    let again = Log::open(dir.path(), LogOptions::default())
        .await
        .expect("open again after close, a clone still held");
    assert!(
        held.put_records("metrics", vec![entry("k", "late")])
            .await
            .is_err(),
        "the closed log refuses appends"
    );
    again
        .put_records("metrics", vec![entry("k", "two")])
        .await
        .expect("put after reopening");
    let shards = again.shard_stats("metrics").await.expect("stats");
    assert_eq!(shards.iter().map(|s| s.next_offset).sum::<u64>(), 2);
    again.close().await.expect("close again");
}
