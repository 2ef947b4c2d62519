//! Open file descriptors stay bounded however many sealed segments are retained, and no
//! descriptor keeps a segment deleted by retention alive.

use std::path::Path;
use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{ShardId, StartingPosition};
use shardline_core::time::ManualClock;
use shardline_log::LogOptions;

use crate::common::*;

/// This process's descriptors open on files under `dir`: (all, those of deleted files).
fn descriptors_under(dir: &Path) -> (usize, usize) {
    let dir = dir.canonicalize().expect("canonical");
    let (mut all, mut deleted) = (0, 0);
    for e in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Ok(target) = std::fs::read_link(e.expect("fd").path()) else {
            continue;
        };
        if target.starts_with(&dir) {
            all += 1;
            deleted += usize::from(target.to_string_lossy().ends_with(" (deleted)"));
        }
    }
    (all, deleted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptors_stay_bounded_however_many_segments_are_kept() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let cache = 3;
    let log = open(
        dir.path(),
        LogOptions {
            open_sealed_segments: cache,
            ..small_segments(&clock)
        },
    )
    .await;
    log.create_stream("s", 2, Duration::from_secs(3600))
        .await
        .expect("create");
    for i in 0..100 {
        let batch = (0..4)
            .map(|j| {
                entry(
                    &format!("host-{j}"),
                    format!("r{i:03}-{j}-{}", "d".repeat(70)),
                )
            })
            .collect();
        put_ok(&log, "s", batch).await;
    }
    let stats = log.shard_stats("s").await.expect("stats");
    let segments: usize = stats.iter().map(|s| s.segments).sum();
    assert!(segments >= 20, "{segments} segments");
    // The LOCK file and one active segment per shard.
    assert_eq!(descriptors_under(dir.path()), (3, 0), "after appends");
    let mut read = 0;
    for s in 0..2 {
        read += read_all(&log, "s", ShardId(s), StartingPosition::TrimHorizon)
            .await
            .len();
        let it = log
            .get_shard_iterator("s", ShardId(s), &StartingPosition::AtTimestamp(T0))
            .await
            .expect("iterator");
        log.get_records(&it, 1).await.expect("read at time");
    }
    assert_eq!(read, 400);
    let (open, _) = descriptors_under(dir.path());
    assert!(
        open <= 3 + cache,
        "{open} descriptors after reading {segments} segments (cache of {cache})"
    );
    // Retention deletes every sealed segment: no descriptor keeps one alive.
    clock.advance_ms(2 * 3_600_000);
    let report = log.enforce_retention().await.expect("retention");
    assert_eq!(report.segments_deleted, segments - 2);
    assert_eq!(descriptors_under(dir.path()), (3, 0), "after retention");
    log.close().await.expect("close");
    drop(log);
    assert_eq!(descriptors_under(dir.path()), (0, 0), "after close");
}

/// Readers that keep up with the writers (one batch behind, as consumers polling a busy
/// stream are) read each segment just sealed once; its cached handle is closed once unused
/// past `sealed_handle_idle`, so the descriptors a long run holds do not follow the number of
/// segments sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_at_the_tail_do_not_keep_a_descriptor_per_sealed_segment() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(
        dir.path(),
        LogOptions {
            sealed_handle_idle: Duration::from_secs(60),
            ..small_segments(&clock)
        },
    )
    .await;
    log.create_stream("s", 2, Duration::from_secs(24 * 3600))
        .await
        .expect("create");
    let mut its = Vec::new();
    for s in 0..2 {
        its.push(
            log.get_shard_iterator("s", ShardId(s), &StartingPosition::TrimHorizon)
                .await
                .expect("iterator"),
        );
    }
    // Records of the previous round not read yet, per shard.
    let mut behind = [0usize; 2];
    let (mut read, mut most) = (0, 0);
    for round in 0..200 {
        let batch = (0..4)
            .map(|j| {
                entry(
                    &format!("host-{j}"),
                    format!("r{round:03}-{j}-{}", "d".repeat(70)),
                )
            })
            .collect();
        let mut this_round = [0usize; 2];
        for (shard, _) in put_ok(&log, "s", batch).await {
            this_round[shard.0 as usize] += 1;
        }
        for (s, it) in its.iter_mut().enumerate() {
            let mut want = behind[s];
            for _ in 0..100 {
                if want == 0 {
                    break;
                }
                let out = log.get_records(it, want).await.expect("get_records");
                *it = out.next_iterator.expect("open shard");
                want -= out.records.len();
                read += out.records.len();
            }
            assert_eq!(want, 0, "shard {s} round {round}: records missing");
        }
        behind = this_round;
        most = most.max(descriptors_under(dir.path()).0);
        clock.advance_ms(5_000);
    }
    assert_eq!(
        read + behind.iter().sum::<usize>(),
        800,
        "every record read once"
    );
    let stats = log.shard_stats("s").await.expect("stats");
    let segments: usize = stats.iter().map(|s| s.segments).sum();
    assert!(segments >= 60, "{segments} segments");
    // The LOCK file, two active segments, and the sealed segments read in the last minute
    // (about one per shard every three rounds of 5 s): far below one per sealed segment.
    assert!(
        most <= 3 + 12,
        "{most} descriptors at most while {segments} segments were sealed and read"
    );
    clock.advance_ms(61_000);
    log.enforce_retention().await.expect("retention pass");
    assert_eq!(
        descriptors_under(dir.path()),
        (3, 0),
        "idle handles closed by the retention pass"
    );
    log.close().await.expect("close");
}
