//! Failures injected at segment roll, segment write, fsync, truncation, index write and
//! metadata write: each refuses only what it must, acknowledges nothing that is not on disk,
//! the log goes on without a restart, and it reopens (and verifies) with exactly the
//! acknowledged records.

use std::time::Duration;

use shardline_core::ports::Stream;

use super::*;
use crate::fault::{Action, Point, arm};

const EIO: i32 = 5;
const EMFILE: i32 = 24;
const ENOSPC: i32 = 28;

/// The single segment file is exactly as long as its committed bytes: a refused batch left
/// nothing behind.
async fn assert_committed_length(log: &crate::Log, dir: &std::path::Path) {
    let seg = segments(dir);
    assert_eq!(seg.len(), 1, "{seg:?}");
    let committed = log.shard_stats("s").await.expect("stats")[0].bytes;
    assert_eq!(
        seg[0].1, committed,
        "segment file length vs committed bytes"
    );
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[tokio::test]
async fn a_roll_failing_after_creating_the_file_leaves_a_log_that_reopens() {
    let dir = tempdir();
    let log = open(dir.path()).await;
    let mut acked = Vec::new();
    for i in 0..3 {
        acked.extend(put(&log, &format!("a{i}"), 5).await.acked);
    }
    let before = segments(dir.path());
    assert_eq!(before.len(), 1);
    assert!(before[0].1 >= 1024, "the next put rolls: {before:?}");
    {
        // The new segment file is created, then syncing the directory runs out of
        // descriptors (as opening the directory does under EMFILE).
        let _fault = arm(Point::DirSync, dir.path(), 3, Action::Fail(EMFILE));
        for i in 0..3 {
            let o = put(&log, &format!("b{i}"), 5).await;
            assert!(
                o.refused.is_empty(),
                "a failed roll refuses no append: {:?}",
                o.refused
            );
            acked.extend(o.acked);
        }
        let during = segments(dir.path());
        assert_eq!(
            during.len(),
            1,
            "no segment file left by the failed rolls: {during:?}"
        );
        assert!(
            during[0].1 > before[0].1,
            "appends went on in the same segment"
        );
    }
    let o = put(&log, "c", 5).await;
    assert!(o.refused.is_empty());
    acked.extend(o.acked);
    assert_eq!(
        segments(dir.path()).len(),
        2,
        "the roll succeeds once descriptors are back"
    );
    reopen_and_check(log, dir.path(), &acked).await;
}

#[tokio::test]
async fn a_failed_fsync_refuses_its_batch_and_the_next_one_succeeds() {
    let dir = tempdir();
    let log = open(dir.path()).await;
    let mut acked = put(&log, "a", 3).await.acked;
    let refused = {
        let _fault = arm(Point::SegmentSync, dir.path(), 1, Action::Fail(EIO));
        put(&log, "lost", 4).await
    };
    assert!(
        refused.acked.is_empty(),
        "nothing of a batch whose sync failed is acknowledged"
    );
    assert_committed_length(&log, dir.path()).await;
    assert_eq!(refused.refused.len(), 4);
    let msg = &refused.refused[0];
    assert!(
        msg.contains("not stored") && msg.contains("check the disk") && msg.contains(".seg"),
        "{msg}"
    );
    let o = put(&log, "b", 3).await;
    assert!(o.refused.is_empty());
    assert_eq!(
        o.acked[0].0, 3,
        "the refused records left no offsets behind"
    );
    acked.extend(o.acked);
    let stats = &log.shard_stats("s").await.expect("stats")[0];
    assert_eq!(stats.next_offset, 6);
    reopen_and_check(log, dir.path(), &acked).await;
}

#[tokio::test]
async fn disk_full_refuses_clearly_keeps_nothing_and_appending_resumes_without_restart() {
    let dir = tempdir();
    let log = open(dir.path()).await;
    let mut acked = put(&log, "a", 3).await.acked;
    let mut refused = Vec::new();
    {
        // The disk fills in the middle of a batch (30 bytes of it land), then stays full.
        let _short = arm(
            Point::SegmentWrite,
            dir.path(),
            1,
            Action::ShortWrite(30, ENOSPC),
        );
        let _full = arm(Point::SegmentWrite, dir.path(), 3, Action::Fail(ENOSPC));
        for i in 0..4 {
            let o = put(&log, &format!("full{i}"), 5).await;
            assert!(
                o.acked.is_empty(),
                "put {i} on a full disk was acknowledged"
            );
            refused.extend(o.refused);
        }
    }
    assert_eq!(refused.len(), 20);
    assert_committed_length(&log, dir.path()).await;
    let log_dir = dir.path().display().to_string();
    for msg in &refused {
        assert!(
            msg.contains("free disk space") && msg.contains(&log_dir) && msg.contains("resume"),
            "{msg}"
        );
    }
    // Space is back: the same log appends again, at the next offset.
    for i in 0..3 {
        let o = put(&log, &format!("b{i}"), 5).await;
        assert!(o.refused.is_empty(), "{:?}", o.refused);
        acked.extend(o.acked);
    }
    assert_eq!(acked.iter().map(|a| a.0).max(), Some(17));
    reopen_and_check(log, dir.path(), &acked).await;
}

#[tokio::test]
async fn a_cut_that_fails_blocks_writes_until_it_succeeds() {
    let dir = tempdir();
    let log = open(dir.path()).await;
    let mut acked = put(&log, "a", 3).await.acked;
    {
        let _short = arm(
            Point::SegmentWrite,
            dir.path(),
            1,
            Action::ShortWrite(45, ENOSPC),
        );
        let _cut = arm(Point::SegmentTruncate, dir.path(), 2, Action::Fail(EIO));
        // The write fails half-way and its bytes cannot be cut: refused.
        assert_eq!(put(&log, "x", 4).await.refused.len(), 4);
        // The cut fails again before the next batch: nothing is written over stale bytes.
        let o = put(&log, "y", 4).await;
        assert_eq!(o.refused.len(), 4);
        assert!(o.refused[0].contains("not stored"), "{}", o.refused[0]);
        let seg = segments(dir.path());
        let committed = log.shard_stats("s").await.expect("stats")[0].bytes;
        assert!(
            seg[0].1 > committed,
            "the stale bytes are still there while the cut fails"
        );
    }
    let o = put(&log, "b", 4).await;
    assert!(o.refused.is_empty(), "{:?}", o.refused);
    assert_eq!(o.acked[0].0, 3);
    assert_committed_length(&log, dir.path()).await;
    acked.extend(o.acked);
    reopen_and_check(log, dir.path(), &acked).await;
}

#[tokio::test]
async fn an_index_write_failing_at_a_roll_or_at_open_is_not_fatal() {
    let dir = tempdir();
    let log = open(dir.path()).await;
    let mut acked = Vec::new();
    {
        let _fault = arm(Point::IndexWrite, dir.path(), 1, Action::Fail(ENOSPC));
        for i in 0..6 {
            let o = put(&log, &format!("a{i}"), 5).await;
            assert!(o.refused.is_empty());
            acked.extend(o.acked);
        }
    }
    assert!(
        segments(dir.path()).len() >= 2,
        "the roll went ahead without its index"
    );
    assert!(
        temp_files(dir.path()).is_empty(),
        "a failed index write leaves no temp file"
    );
    let shard = dir.path().join("s").join("shardId-000000000000");
    let first_index = shard.join(format!("{:020}.idx", 0));
    assert!(!first_index.exists(), "the sealed index was not written");
    // A crash during another index write leaves its temporary file.
    std::fs::write(shard.join(format!("{:020}.idx.tmp", 0)), b"partial").expect("tmp");
    log.close().await.expect("close");
    drop(log);
    {
        // Disk full while open rewrites indexes: it still opens, indexes in memory.
        let _fault = arm(Point::IndexWrite, dir.path(), 100, Action::Fail(ENOSPC));
        let log = open(dir.path()).await;
        assert_eq!(read_all(&log).await.len(), acked.len());
        log.close().await.expect("close");
    }
    assert!(
        temp_files(dir.path()).is_empty(),
        "open removed the temporary file"
    );
    let log = open(dir.path()).await;
    assert!(first_index.exists(), "the missing index was rebuilt");
    reopen_and_check(log, dir.path(), &acked).await;
}

#[tokio::test]
async fn a_failed_metadata_write_leaves_no_stream_and_no_temp_file() {
    let dir = tempdir();
    let log = open(dir.path()).await;
    let acked = put(&log, "a", 3).await.acked;
    {
        let _fault = arm(Point::MetaWrite, dir.path(), 1, Action::Fail(ENOSPC));
        let err = log
            .create_stream("t", 2, Duration::from_secs(3600))
            .await
            .expect_err("metadata write fails");
        assert!(err.to_string().contains("stream.json.tmp"), "{err}");
    }
    assert!(temp_files(dir.path()).is_empty());
    assert!(log.list_streams().await.expect("list") == vec!["s".to_string()]);
    // A crash in the middle of a metadata write leaves the temporary file: open removes it.
    std::fs::write(dir.path().join("s").join("stream.json.tmp"), b"{\"na").expect("tmp");
    let log = reopen_and_check(log, dir.path(), &acked).await;
    assert!(temp_files(dir.path()).is_empty());
    log.create_stream("t", 2, Duration::from_secs(3600))
        .await
        .expect("create after the failure");
}
