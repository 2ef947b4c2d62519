//! Resharding: split, merge, uniform scaling, lineage across reopen, puts racing a split,
//! closed shards dropped by retention, directories of interrupted reshards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{
    HashKeyRange, Record, ShardDescription, ShardId, StartingPosition, hash_key,
};
use shardline_core::time::ManualClock;
use shardline_log::{Log, LogOptions};

use crate::common::*;

const S0: ShardId = ShardId(0);

/// Every record of a shard from TRIM_HORIZON, following iterators until a closed shard ends
/// (no next iterator) or an open one returns nothing.
async fn read_shard(log: &Log, stream: &str, shard: ShardId) -> (Vec<Record>, bool) {
    let mut it = log
        .get_shard_iterator(stream, shard, &StartingPosition::TrimHorizon)
        .await
        .expect("iterator");
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let r = log.get_records(&it, 1000).await.expect("get_records");
        let empty = r.records.is_empty();
        out.extend(r.records);
        match r.next_iterator {
            None => return (out, true),
            Some(next) if empty => {
                let _ = next;
                return (out, false);
            }
            Some(next) => it = next,
        }
    }
    panic!("shard did not end");
}

/// The open shards' ranges tile the hash-key space exactly; each child's parents exist (or
/// were dropped) and are closed; each closed shard's children cover its range.
fn check_lineage(shards: &[ShardDescription]) {
    let mut open: Vec<HashKeyRange> = shards
        .iter()
        .filter(|s| s.ending_sequence_number.is_none())
        .map(|s| s.hash_key_range)
        .collect();
    open.sort_by_key(|r| r.start);
    assert_eq!(open.first().map(|r| r.start), Some(0), "{shards:#?}");
    assert_eq!(open.last().map(|r| r.end), Some(u128::MAX), "{shards:#?}");
    for w in open.windows(2) {
        assert_eq!(w[0].end + 1, w[1].start, "open shards tile: {shards:#?}");
    }
    let by_id: BTreeMap<ShardId, &ShardDescription> =
        shards.iter().map(|s| (s.shard_id, s)).collect();
    for s in shards {
        for p in s.parent_shard_id.iter().chain(&s.adjacent_parent_shard_id) {
            if let Some(parent) = by_id.get(p) {
                assert!(
                    parent.ending_sequence_number.is_some(),
                    "{p} has children but is open"
                );
            }
        }
        if s.ending_sequence_number.is_some() {
            let mut kids: Vec<HashKeyRange> = shards
                .iter()
                .filter(|c| {
                    c.parent_shard_id == Some(s.shard_id)
                        || c.adjacent_parent_shard_id == Some(s.shard_id)
                })
                .map(|c| c.hash_key_range)
                .collect();
            kids.sort_by_key(|r| r.start);
            assert!(
                kids.first()
                    .is_some_and(|k| k.start <= s.hash_key_range.start)
                    && kids.last().is_some_and(|k| k.end >= s.hash_key_range.end),
                "children of {} cover its range: {shards:#?}",
                s.shard_id
            );
        }
    }
}

/// Data of every record of every shard, and the shard each is in.
async fn everything(log: &Log, stream: &str) -> BTreeMap<Vec<u8>, ShardId> {
    let mut out = BTreeMap::new();
    for s in log.list_shards(stream).await.expect("list") {
        let (records, _) = read_shard(log, stream, s.shard_id).await;
        for r in records {
            assert!(
                out.insert(r.data.to_vec(), s.shard_id).is_none(),
                "a record is in two shards"
            );
        }
    }
    out
}

#[tokio::test]
async fn split_closes_the_parent_and_children_take_its_keys() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    put_ok(
        &log,
        "s",
        (0..20)
            .map(|i| entry(&format!("k{i}"), format!("before-{i}")))
            .collect(),
    )
    .await;
    let mid = 1u128 << 127;
    let kids = log.split_shard("s", S0, mid).await.expect("split");
    assert_eq!(kids, vec![ShardId(1), ShardId(2)]);
    let after = put_ok(
        &log,
        "s",
        (0..20)
            .map(|i| entry(&format!("k{i}"), format!("after-{i}")))
            .collect(),
    )
    .await;
    for (i, (shard, _)) in after.iter().enumerate() {
        let want = if hash_key(&format!("k{i}")) < mid {
            ShardId(1)
        } else {
            ShardId(2)
        };
        assert_eq!(*shard, want, "k{i} goes to the child owning its hash key");
    }
    let shards = log.list_shards("s").await.expect("list");
    check_lineage(&shards);
    assert_eq!(shards.len(), 3);
    assert_eq!(shards[1].parent_shard_id, Some(S0));
    assert_eq!(shards[2].hash_key_range.start, mid);
    let (parent, ended) = read_shard(&log, "s", S0).await;
    assert!(
        ended,
        "reading a closed shard to its end returns no next iterator"
    );
    assert_eq!(parent.len(), 20);
    let ending = shards[0].ending_sequence_number.clone().expect("closed");
    assert!(
        parent.iter().all(|r| r.sequence_number <= ending),
        "ending number bounds every record"
    );
    assert_eq!(
        log.children("s", S0)
            .expect("children")
            .iter()
            .map(|c| c.shard_id)
            .collect::<Vec<_>>(),
        vec![ShardId(1), ShardId(2)]
    );
    let err = log.split_shard("s", S0, mid).await.expect_err("closed");
    assert!(err.to_string().contains("closed"), "{err}");
    let err = log
        .split_shard("s", ShardId(1), mid + 5)
        .await
        .expect_err("outside");
    assert!(err.to_string().contains("not inside"), "{err}");

    // Lineage and records survive a reopen.
    log.close().await.expect("close");
    drop(log);
    let log = open(dir.path(), options(&clock)).await;
    assert_eq!(log.list_shards("s").await.expect("list"), shards);
    let all = everything(&log, "s").await;
    assert_eq!(all.len(), 40);
    put_ok(&log, "s", vec![entry("k0", "reopened")]).await;
    let err = log
        .get_shard_iterator("s", S0, &StartingPosition::Latest)
        .await
        .map(|_| ());
    assert!(err.is_ok(), "a closed shard still hands out iterators");
}

#[tokio::test]
async fn merge_joins_adjacent_shards_only() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 3, Duration::from_secs(3600))
        .await
        .expect("create");
    let err = log
        .merge_shards("s", ShardId(0), ShardId(2))
        .await
        .expect_err("not adjacent");
    assert!(err.to_string().contains("not an adjacent pair"), "{err}");
    put_ok(
        &log,
        "s",
        (0..30)
            .map(|i| entry(&format!("k{i}"), format!("r{i}")))
            .collect(),
    )
    .await;
    // Either order of the pair works; the first named is the parent.
    let kids = log
        .merge_shards("s", ShardId(2), ShardId(1))
        .await
        .expect("merge");
    assert_eq!(kids, vec![ShardId(3)]);
    let shards = log.list_shards("s").await.expect("list");
    check_lineage(&shards);
    let child = &shards[3];
    assert_eq!(child.parent_shard_id, Some(ShardId(2)));
    assert_eq!(child.adjacent_parent_shard_id, Some(ShardId(1)));
    assert_eq!(child.hash_key_range.start, shards[1].hash_key_range.start);
    assert_eq!(child.hash_key_range.end, u128::MAX);
    put_ok(
        &log,
        "s",
        (0..30)
            .map(|i| entry(&format!("k{i}"), format!("s{i}")))
            .collect(),
    )
    .await;
    assert_eq!(everything(&log, "s").await.len(), 60);
    let err = log
        .merge_shards("s", ShardId(0), ShardId(1))
        .await
        .expect_err("closed");
    assert!(err.to_string().contains("closed"), "{err}");
}

#[tokio::test]
async fn uniform_scaling_reaches_even_ranges_and_keeps_every_record() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 4, Duration::from_secs(3600))
        .await
        .expect("create");
    let mut n = 0;
    for target in [6u32, 3, 5, 10, 7] {
        put_ok(
            &log,
            "s",
            (0..50)
                .map(|i| entry(&format!("k{i}"), format!("r{}", n + i)))
                .collect(),
        )
        .await;
        n += 50;
        log.update_shard_count("s", target).await.expect("update");
        let shards = log.list_shards("s").await.expect("list");
        check_lineage(&shards);
        let open: Vec<HashKeyRange> = shards
            .iter()
            .filter(|s| s.ending_sequence_number.is_none())
            .map(|s| s.hash_key_range)
            .collect();
        let mut sorted = open.clone();
        sorted.sort_by_key(|r| r.start);
        assert_eq!(
            sorted,
            HashKeyRange::split_even(target),
            "uniform at {target}"
        );
    }
    let err = log
        .update_shard_count("s", 15)
        .await
        .expect_err("more than double");
    assert!(err.to_string().contains("half"), "{err}");
    let err = log
        .update_shard_count("s", 3)
        .await
        .expect_err("less than half");
    assert!(err.to_string().contains("half"), "{err}");
    put_ok(
        &log,
        "s",
        (0..50)
            .map(|i| entry(&format!("k{i}"), format!("r{}", n + i)))
            .collect(),
    )
    .await;
    n += 50;
    let all = everything(&log, "s").await;
    assert_eq!(all.len(), n, "every record once");
    log.close().await.expect("close");
    drop(log);
    let log = open(dir.path(), options(&clock)).await;
    check_lineage(&log.list_shards("s").await.expect("list"));
    assert_eq!(everything(&log, "s").await.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn puts_racing_splits_and_merges_land_once_in_key_order() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = Arc::new(open(dir.path(), options(&clock)).await);
    log.create_stream("s", 2, Duration::from_secs(3600))
        .await
        .expect("create");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut acked = 0usize;
                for round in 0..60 {
                    let batch = (0..8)
                        .map(|k| entry(&format!("w{w}-k{k}"), format!("w{w}-k{k}-{round:04}")))
                        .collect();
                    acked += put_ok(&log, "s", batch).await.len();
                    tokio::task::yield_now().await;
                }
                acked
            })
        })
        .collect();
    for target in [4u32, 2, 3, 6, 3] {
        log.update_shard_count("s", target).await.expect("update");
        tokio::task::yield_now().await;
    }
    let mut acked = 0;
    for w in writers {
        acked += w.await.expect("writer");
    }
    check_lineage(&log.list_shards("s").await.expect("list"));
    let shards = log.list_shards("s").await.expect("list");
    let mut per_key: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
    // Read parents before children (ids grow along the lineage), so per-key order shows.
    for (depth, s) in shards.iter().enumerate() {
        let (records, _) = read_shard(&log, "s", s.shard_id).await;
        for r in records {
            let text = String::from_utf8(r.data.to_vec()).expect("utf8");
            per_key
                .entry(r.partition_key.clone())
                .or_default()
                .push((depth, text));
        }
    }
    let total: usize = per_key.values().map(Vec::len).sum();
    assert_eq!(total, acked, "every acknowledged record, once");
    for (key, records) in per_key {
        let texts: Vec<&String> = records.iter().map(|(_, t)| t).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted, "{key} in order along the lineage");
        let distinct: BTreeSet<&String> = texts.iter().copied().collect();
        assert_eq!(distinct.len(), 60, "{key}");
    }
}

#[tokio::test]
async fn retention_drops_closed_shards_and_their_files() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    put_ok(&log, "s", vec![entry("a", "1")]).await;
    log.split_shard("s", S0, 1 << 100).await.expect("split");
    clock.advance_ms(3_600_000 - 1);
    assert_eq!(
        log.enforce_retention().await.expect("pass").shards_dropped,
        0
    );
    clock.advance_ms(2);
    let report = log.enforce_retention().await.expect("pass");
    assert_eq!(report.shards_dropped, 1);
    let ids: Vec<ShardId> = log
        .list_shards("s")
        .await
        .expect("list")
        .iter()
        .map(|s| s.shard_id)
        .collect();
    assert_eq!(ids, vec![ShardId(1), ShardId(2)]);
    assert!(!dir.path().join("s").join(S0.to_string()).exists());
    // Ids are never reused, also after the highest closed shard is dropped.
    log.merge_shards("s", ShardId(1), ShardId(2))
        .await
        .expect("merge");
    assert_eq!(
        log.list_shards("s")
            .await
            .expect("list")
            .last()
            .map(|s| s.shard_id),
        Some(ShardId(3))
    );
}

#[tokio::test]
async fn directories_of_interrupted_reshards_are_removed_on_open() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    put_ok(&log, "s", vec![entry("a", "kept")]).await;
    log.close().await.expect("close");
    drop(log);
    // A split that created its children's directories and crashed before its commit.
    let stray = dir.path().join("s").join("shardId-000000000001");
    std::fs::create_dir_all(&stray).expect("stray dir");
    std::fs::write(stray.join("00000000000000000000.seg"), b"").expect("empty segment");
    let log = open(dir.path(), options(&clock)).await;
    assert!(!stray.exists());
    assert_eq!(log.list_shards("s").await.expect("list").len(), 1);
    assert_eq!(
        read_all(&log, "s", S0, StartingPosition::TrimHorizon)
            .await
            .len(),
        1
    );
    let kids = log.split_shard("s", S0, 1 << 100).await.expect("split");
    assert_eq!(kids[0], ShardId(1), "the id is free again");
}

#[tokio::test]
async fn read_limits_allow_five_calls_a_second_per_shard() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let opts = LogOptions {
        enforce_throughput_limits: true,
        ..options(&clock)
    };
    let log = open(dir.path(), opts).await;
    log.create_stream("s", 2, Duration::from_secs(3600))
        .await
        .expect("create");
    let it = log
        .get_shard_iterator("s", S0, &StartingPosition::TrimHorizon)
        .await
        .expect("iter");
    for _ in 0..5 {
        log.get_records(&it, 10).await.expect("within the limit");
    }
    let err = log.get_records(&it, 10).await.expect_err("sixth call");
    assert_eq!(
        err.retry_class(),
        shardline_core::RetryClass::Retryable,
        "{err}"
    );
    let other = log
        .get_shard_iterator("s", ShardId(1), &StartingPosition::TrimHorizon)
        .await
        .expect("iter");
    log.get_records(&other, 10)
        .await
        .expect("another shard has its own budget");
    clock.advance_ms(1000);
    log.get_records(&it, 10).await.expect("the next second");
}
