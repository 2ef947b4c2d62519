//! Torn tails recover to the last whole record; mid-log damage is refused by open and reported
//! by verify; lost indexes are rebuilt.

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

fn first_segment(root: &Path) -> PathBuf {
    shard_dir(root).join(format!("{:020}.seg", 0))
}

fn payload(i: usize) -> String {
    format!("record number {i} {}", "z".repeat(i * 3))
}

/// A closed log with `n` single-record puts in one shard; returns the segment size after each.
async fn pristine(n: usize) -> (tempfile::TempDir, Vec<u64>) {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let mut ends = Vec::new();
    for i in 0..n {
        put_ok(&log, "s", vec![entry("k", payload(i))]).await;
        ends.push(log.shard_stats("s").await.expect("stats")[0].bytes);
    }
    log.close().await.expect("close");
    (dir, ends)
}

async fn data_of(root: &Path) -> Vec<Vec<u8>> {
    let clock = ManualClock::new(T0 + 60_000);
    let log = open(root, options(&clock)).await;
    let out = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    log.close().await.expect("close");
    out.into_iter().map(|r| r.data.to_vec()).collect()
}

#[tokio::test]
async fn last_frame_cut_at_every_byte_recovers_the_whole_records() {
    let (src, ends) = pristine(5).await;
    let whole: Vec<Vec<u8>> = (0..4).map(|i| payload(i).into_bytes()).collect();
    for cut in ends[3]..ends[4] {
        let work = tempdir();
        copy_tree(src.path(), work.path());
        let seg = first_segment(work.path());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open")
            .set_len(cut)
            .expect("cut");
        assert_eq!(data_of(work.path()).await, whole, "cut at byte {cut}");
        assert_eq!(
            std::fs::metadata(&seg).expect("meta").len(),
            ends[3],
            "torn tail truncated (cut {cut})"
        );
    }
    // Garbage after the last frame (a torn write that extended the file) is cut too, and the
    // log continues from the next offset.
    let work = tempdir();
    copy_tree(src.path(), work.path());
    let seg = first_segment(work.path());
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes.extend_from_slice(&[0u8; 300]);
    std::fs::write(&seg, &bytes).expect("write");
    let clock = ManualClock::new(T0 + 60_000);
    let log = open(work.path(), options(&clock)).await;
    let seqs = put_ok(&log, "s", vec![entry("k", "after recovery")]).await;
    assert_eq!(seqs[0].1.parts().expect("parts").offset, 5);
    let all = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    assert_eq!(all.len(), 6);
    assert_eq!(&all[5].data[..], b"after recovery");
}

#[tokio::test]
async fn a_flipped_byte_mid_log_fails_open_and_verify_reports_it() {
    let (src, ends) = pristine(5).await;
    let seg = first_segment(src.path());
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[ends[1] as usize + 30] ^= 0x08;
    std::fs::write(&seg, &bytes).expect("write");
    let err = shardline_log::Log::open(src.path(), shardline_log::LogOptions::default())
        .await
        .expect_err("open must refuse mid-log damage");
    let text = err.to_string();
    assert!(
        text.contains(&seg.display().to_string()) && text.contains(&format!("at byte {}", ends[1])),
        "{text}"
    );
    match shardline_core::Error::from(err) {
        shardline_core::Error::Corrupt { file, offset, .. } => {
            assert_eq!((file, offset), (seg.clone(), ends[1]));
        }
        other => panic!("not Corrupt: {other:?}"),
    }
    let report = verify(src.path(), None).expect("verify");
    assert_eq!((report.streams, report.shards, report.segments), (1, 1, 1));
    assert_eq!(report.records, 4, "every other record still checks out");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(
        (report.problems[0].path.clone(), report.problems[0].offset),
        (seg.clone(), ends[1])
    );
    assert!(
        report.problems[0].detail.contains("CRC"),
        "{}",
        report.problems[0]
    );
    assert!(verify(src.path(), Some("missing")).is_err());
    assert!(
        verify(src.path(), Some("s"))
            .expect("verify one")
            .problems
            .len()
            == 1
    );
}

#[tokio::test]
async fn damage_in_a_sealed_segment_fails_open() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), small_segments(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    for i in 0..60 {
        put_ok(&log, "s", vec![entry("k", payload(i % 10))]).await;
    }
    assert!(log.shard_stats("s").await.expect("stats")[0].segments >= 3);
    log.close().await.expect("close");
    drop(log);
    assert!(verify(dir.path(), None).expect("verify").is_ok());
    let seg = first_segment(dir.path());
    let mut bytes = std::fs::read(&seg).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&seg, &bytes).expect("write");
    let err = shardline_log::Log::open(dir.path(), small_segments(&clock))
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains(&seg.display().to_string()),
        "{err}"
    );
    let report = verify(dir.path(), None).expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].path, seg);
    assert!(report.problems[0].offset <= mid as u64);
}

#[tokio::test]
async fn deleted_indexes_are_rebuilt_and_seeks_still_work() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), small_segments(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let mut seqs = Vec::new();
    for i in 0..80 {
        seqs.extend(put_ok(&log, "s", vec![entry("k", payload(i % 7))]).await);
        clock.advance_ms(100);
    }
    log.close().await.expect("close");
    drop(log);
    let idx: Vec<_> = std::fs::read_dir(shard_dir(dir.path()))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    assert!(idx.len() >= 3);
    let sizes: Vec<_> = idx
        .iter()
        .map(|p| std::fs::metadata(p).expect("meta").len())
        .collect();
    for p in &idx {
        std::fs::remove_file(p).expect("rm");
    }
    let log = open(dir.path(), small_segments(&clock)).await;
    for (p, size) in idx.iter().zip(&sizes) {
        assert_eq!(
            std::fs::metadata(p).expect("index rebuilt").len(),
            *size,
            "{}",
            p.display()
        );
    }
    for (i, (_, seq)) in seqs.iter().enumerate() {
        let it = log
            .get_shard_iterator(
                "s",
                ShardId(0),
                &StartingPosition::AtSequenceNumber(seq.clone()),
            )
            .await
            .expect("it");
        let r = log.get_records(&it, 1).await.expect("read");
        assert_eq!(r.records[0].data, payload(i % 7).into_bytes());
        let it = log
            .get_shard_iterator(
                "s",
                ShardId(0),
                &StartingPosition::AtTimestamp(T0 + i as i64 * 100),
            )
            .await
            .expect("it");
        let r = log.get_records(&it, 1).await.expect("read");
        assert_eq!(&r.records[0].sequence_number, seq);
    }
    assert!(verify(dir.path(), None).expect("verify").is_ok());
}
