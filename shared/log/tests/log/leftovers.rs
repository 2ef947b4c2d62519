//! Empty segment files left by rolls that failed after creating them: removed on open (they
//! hold no record), or kept as the active segment when they start exactly where the log ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{ShardId, StartingPosition};
use shardline_core::time::ManualClock;
use shardline_log::verify;

use crate::common::*;

fn shard_dir(root: &Path) -> PathBuf {
    root.join("s").join("shardId-000000000000")
}

fn bases(root: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(shard_dir(root))
        .expect("dir")
        .filter_map(|e| {
            let name = e.expect("entry").file_name().into_string().ok()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    v.sort_unstable();
    v
}

fn touch_segment(root: &Path, base: u64) {
    std::fs::File::create(shard_dir(root).join(format!("{base:020}.seg"))).expect("create");
}

/// A closed log of 60 records over several small segments; returns its segment bases.
async fn several_segments(clock: &std::sync::Arc<ManualClock>) -> (tempfile::TempDir, Vec<u64>) {
    let dir = tempdir();
    let log = open(dir.path(), small_segments(clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    for i in 0..60 {
        put_ok(
            &log,
            "s",
            vec![entry("k", format!("r{i:02}-{}", "p".repeat(60)))],
        )
        .await;
    }
    log.close().await.expect("close");
    let b = bases(dir.path());
    assert!(b.len() >= 4, "{b:?}");
    (dir, b)
}

#[tokio::test]
async fn empty_segments_from_failed_rolls_are_removed_and_the_log_goes_on() {
    let clock = ManualClock::new(T0);
    let (dir, before) = several_segments(&clock).await;
    // A roll at the second segment's base - 1 failed after creating its file and the writer
    // went on in the first segment; so did one inside the last segment, which went on too.
    let last = *before.last().expect("last");
    touch_segment(dir.path(), before[1] - 1);
    touch_segment(dir.path(), last + 1);
    let log = open(dir.path(), small_segments(&clock)).await;
    assert_eq!(bases(dir.path()), before, "the empty leftovers are gone");
    let all = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    assert_eq!(all.len(), 60);
    let seqs = put_ok(&log, "s", vec![entry("k", "next")]).await;
    assert_eq!(seqs[0].1.parts().expect("parts").offset, 60);
    log.close().await.expect("close");
    assert!(verify(dir.path(), None).expect("verify").is_ok());
}

#[tokio::test]
async fn an_empty_segment_where_the_log_ends_becomes_the_active_one() {
    let clock = ManualClock::new(T0);
    let (dir, before) = several_segments(&clock).await;
    // The roll completed (file created, directory synced) and nothing was written yet.
    touch_segment(dir.path(), 60);
    let log = open(dir.path(), small_segments(&clock)).await;
    let stats = log.shard_stats("s").await.expect("stats")[0].clone();
    assert_eq!((stats.segments, stats.next_offset), (before.len() + 1, 60));
    put_ok(&log, "s", vec![entry("k", "into the empty segment")]).await;
    log.close().await.expect("close");
    let seg = shard_dir(dir.path()).join(format!("{:020}.seg", 60));
    assert!(std::fs::metadata(seg).expect("meta").len() > 0);
    assert!(verify(dir.path(), None).expect("verify").is_ok());
}
