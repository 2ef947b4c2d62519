//! Retention deletes whole sealed segments older than the period, on a controllable clock.

use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{ShardId, StartingPosition};
use shardline_core::time::ManualClock;

use crate::common::*;

#[tokio::test]
async fn old_sealed_segments_go_and_the_active_one_stays() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), small_segments(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(2 * 3600))
        .await
        .expect("create");
    assert_eq!(
        log.describe_stream("s")
            .await
            .expect("describe")
            .retention_hours,
        2
    );
    for i in 0..60 {
        put_ok(
            &log,
            "s",
            vec![entry("k", format!("old-{i:03}-{}", "o".repeat(50)))],
        )
        .await;
    }
    clock.advance_ms(3_600_000);
    for i in 0..60 {
        put_ok(
            &log,
            "s",
            vec![entry("k", format!("mid-{i:03}-{}", "m".repeat(50)))],
        )
        .await;
    }
    let before = log.shard_stats("s").await.expect("stats")[0].clone();
    assert!(before.segments > 4);
    // Nothing is older than 2 h yet.
    clock.advance_ms(3_600_000);
    assert_eq!(
        log.enforce_retention()
            .await
            .expect("pass")
            .segments_deleted,
        0
    );
    // Now the "old" records are 2 h + 1 ms old: only segments holding nothing newer go.
    clock.advance_ms(1);
    let report = log.enforce_retention().await.expect("pass");
    assert!(report.segments_deleted > 0);
    let after = log.shard_stats("s").await.expect("stats")[0].clone();
    assert_eq!(after.segments, before.segments - report.segments_deleted);
    assert_eq!(after.trim_offset, report.records_deleted);
    assert_eq!(after.bytes, before.bytes - report.bytes_deleted);
    let kept = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    assert_eq!(kept.len() as u64, 120 - after.trim_offset);
    assert!(
        kept.iter().filter(|r| r.data.starts_with(b"mid-")).count() == 60,
        "newer records are all kept"
    );
    assert!(
        after.trim_offset <= 60,
        "a segment holding any newer record is kept"
    );
    // Far in the future every sealed segment goes, the active one stays.
    clock.advance_ms(100 * 3_600_000);
    log.enforce_retention().await.expect("pass");
    let last = log.shard_stats("s").await.expect("stats")[0].clone();
    assert_eq!(last.segments, 1, "the active segment is never deleted");
    let seg_files = std::fs::read_dir(dir.path().join("s").join("shardId-000000000000"))
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "seg"))
        })
        .count();
    assert_eq!(seg_files, 1, "deleted segments are gone from disk");
    let tail = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    assert_eq!(tail.len() as u64, 120 - last.trim_offset);
    // The trim horizon survives a reopen.
    log.close().await.expect("close");
    drop(log);
    let log = open(dir.path(), small_segments(&clock)).await;
    assert_eq!(
        log.shard_stats("s").await.expect("stats")[0].trim_offset,
        last.trim_offset
    );
}

#[tokio::test]
async fn retention_can_be_changed_and_survives_reopen() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), small_segments(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(24 * 3600))
        .await
        .expect("create");
    for i in 0..40 {
        put_ok(
            &log,
            "s",
            vec![entry("k", format!("r{i:03}-{}", "q".repeat(60)))],
        )
        .await;
    }
    clock.advance_ms(3 * 3_600_000);
    put_ok(&log, "s", vec![entry("k", "latest")]).await;
    assert_eq!(
        log.enforce_retention()
            .await
            .expect("pass")
            .segments_deleted,
        0,
        "24 h keeps all"
    );
    let err = log
        .set_retention("s", Duration::from_secs(9000 * 3600))
        .await
        .expect_err("too long");
    assert!(err.to_string().contains("1 to 8760 hours"), "{err}");
    log.set_retention("s", Duration::from_secs(2 * 3600))
        .await
        .expect("shorten");
    assert_eq!(
        log.describe_stream("s")
            .await
            .expect("describe")
            .retention_hours,
        2
    );
    assert!(
        log.enforce_retention()
            .await
            .expect("pass")
            .segments_deleted
            > 0
    );
    log.close().await.expect("close");
    drop(log);
    let log = open(dir.path(), small_segments(&clock)).await;
    assert_eq!(
        log.describe_stream("s")
            .await
            .expect("describe")
            .retention_hours,
        2
    );
}
