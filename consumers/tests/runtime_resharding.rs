//! A child shard is read only after its parents are finished: with splits, merges and uniform
//! scaling happening while records are written and consumed, every record reaches the sink
//! exactly once and each partition key's records reach it in the order they were written.

mod runtime_support;

use runtime_support::*;
use shardline_consumers::SinkRecord;
use shardline_consumers::runtime::{SharedReads, SharedReadsConfig};
use shardline_core::ShardId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Checks exactly-once and per-key order of what the sink received.
fn check(records: &[SinkRecord], written: usize) {
    let distinct: BTreeSet<_> = records
        .iter()
        .map(|r| (r.shard, r.sequence_number.clone()))
        .collect();
    assert_eq!(
        distinct.len(),
        records.len(),
        "a record was delivered twice"
    );
    assert_eq!(records.len(), written, "every record delivered");
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for r in records {
        // Event i of a key has timestamp base + i: written in increasing order per key.
        let prev = last.insert(&r.event.instance_id, r.event.timestamp);
        assert!(
            prev.is_none_or(|p| p < r.event.timestamp),
            "{}: {} after {prev:?} ({} {})",
            r.event.instance_id,
            r.event.timestamp,
            r.shard,
            r.sequence_number
        );
    }
}

/// Writes 400 records, then reshards as `round` says.
async fn round(env: &Env, round: u64) {
    env.put(valid(round * 400..(round + 1) * 400)).await;
    let log = &env.log;
    match round {
        0 => {
            log.split_shard(STREAM, ShardId(0), 1 << 126)
                .await
                .expect("split");
        }
        1 => {
            // shardId-000000000003 starts at 2^126, ends where shardId-000000000001 begins.
            log.merge_shards(STREAM, ShardId(3), ShardId(1))
                .await
                .expect("merge");
        }
        2 => {
            log.update_shard_count(STREAM, 4).await.expect("scale up");
        }
        4 => {
            log.update_shard_count(STREAM, 3).await.expect("scale down");
        }
        _ => {}
    }
}

/// Three generations of shards are written before the consumers start (so children hold
/// records before their parents are read: reading a child early would break key order), then
/// more records and a reshard arrive while they run.
async fn run(shared: bool) {
    let env = Env::new(2).await;
    for r in 0..3 {
        round(&env, r).await;
    }
    let mut consumers = Vec::new();
    let share = Arc::new(SharedReads::new(STREAM, 100, SharedReadsConfig::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut outs = Vec::new();
    for name in ["first", "second"] {
        let (sink, out) = CollectSink::new();
        let mut cfg = config(name);
        cfg.batch_size = 100;
        cfg.shard_refresh_interval = Duration::from_millis(20);
        cfg.share_reads = shared;
        let mut c = env.consumer(cfg, Box::new(sink));
        if shared {
            c = c.share_reads(&share).expect("share");
        }
        outs.push(out);
        consumers.push(tokio::spawn(c.run(stop_rx.clone())));
    }
    for r in 3..6 {
        round(&env, r).await;
        tokio::task::yield_now().await;
    }
    let total = 6 * 400;
    for out in &outs {
        for _ in 0..1000 {
            if delivered(out).len() >= total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let _ = stop_tx.send(true);
    for c in consumers {
        c.await.expect("join").expect("consumer ran");
    }
    for out in &outs {
        check(&delivered(out), total);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_are_read_after_their_parents_each_consumer_on_its_own() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_are_read_after_their_parents_with_shared_reads() {
    run(true).await;
}
