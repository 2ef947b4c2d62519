//! What a power loss can leave of the unsynced suffix of the active segment (zeroed pages in
//! the middle of the last batch, zero pages past its end, frames cut short, garbage) is cut
//! back to the last whole record; damage in a batch that a later batch proves synced is
//! refused, naming the file and byte.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{ShardId, StartingPosition};
use shardline_core::time::ManualClock;
use shardline_log::{Durability, LogOptions, verify};

use crate::common::*;

/// Bytes of each record's data; every frame is then 228 bytes (28 of header and fields, the
/// one-byte key "k").
const DATA: usize = 200;
const FRAME: u64 = 228;
/// Records per put; each awaited put is one group-commit batch with its own fdatasync.
const BATCHES: [usize; 4] = [10, 10, 10, 40];

fn data(batch: usize, i: usize) -> Vec<u8> {
    let mut d = format!("b{batch}-r{i}-").into_bytes();
    d.resize(DATA, b'.');
    d
}

fn segment(root: &Path) -> PathBuf {
    root.join("s")
        .join("shardId-000000000000")
        .join(format!("{:020}.seg", 0))
}

/// A closed log holding [`BATCHES`]; returns the byte where each batch starts.
async fn pristine(durability: Durability) -> (tempfile::TempDir, Vec<u64>) {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(
        dir.path(),
        LogOptions {
            durability,
            ..options(&clock)
        },
    )
    .await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let mut starts = Vec::new();
    for (b, &n) in BATCHES.iter().enumerate() {
        starts.push(log.shard_stats("s").await.expect("stats")[0].bytes);
        put_ok(&log, "s", (0..n).map(|i| entry("k", data(b, i))).collect()).await;
    }
    let end = log.shard_stats("s").await.expect("stats")[0].bytes;
    assert_eq!(end, FRAME * 70, "frame size as the test assumes");
    log.close().await.expect("close");
    (dir, starts)
}

/// The records `n` whole records of the log hold, in order.
fn first_records(n: usize) -> Vec<Vec<u8>> {
    BATCHES
        .iter()
        .enumerate()
        .flat_map(|(b, &k)| (0..k).map(move |i| data(b, i)))
        .take(n)
        .collect()
}

/// Applies `damage` to the segment of a copy of `src`, opens it, and returns the records.
async fn recover(
    src: &Path,
    damage: impl FnOnce(&mut Vec<u8>),
) -> Result<(tempfile::TempDir, Vec<Vec<u8>>), shardline_log::LogError> {
    let work = tempdir();
    copy_tree(src, work.path());
    let seg = segment(work.path());
    let mut bytes = std::fs::read(&seg).expect("read");
    damage(&mut bytes);
    std::fs::write(&seg, &bytes).expect("write");
    let clock = ManualClock::new(T0 + 60_000);
    let log = shardline_log::Log::open(work.path(), options(&clock)).await?;
    let records = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    log.close().await.expect("close");
    Ok((work, records.into_iter().map(|r| r.data.to_vec()).collect()))
}

/// Index of the frame holding byte `at` of the segment.
fn frame_at(at: u64) -> usize {
    (at / FRAME) as usize
}

#[tokio::test]
async fn zeroed_pages_inside_the_last_batch_are_cut_even_with_whole_frames_after_them() {
    let (src, starts) = pristine(Durability::Fsync).await;
    // A page of the last (unsynced) batch never reached the disk; later pages did.
    let (work, got) = recover(src.path(), |b| b[8192..12288].fill(0))
        .await
        .expect("an unsynced suffix is cut, not refused");
    let kept = frame_at(8192);
    assert!(
        kept > 30 && 12288 + 2 * FRAME < 70 * FRAME,
        "the hole lies inside the last batch, with whole frames after it"
    );
    assert_eq!(got, first_records(kept));
    assert_eq!(
        std::fs::metadata(segment(work.path())).expect("meta").len(),
        kept as u64 * FRAME,
        "cut at the first damaged frame"
    );
    assert!(starts[3] < 8192);
    assert!(verify(work.path(), None).expect("verify").is_ok());
    // The log goes on from there, and survives another reopen.
    let clock = ManualClock::new(T0 + 120_000);
    let log = open(work.path(), options(&clock)).await;
    let seqs = put_ok(&log, "s", vec![entry("k", "after")]).await;
    assert_eq!(seqs[0].1.parts().expect("parts").offset, kept as u64);
    log.close().await.expect("close");
    drop(log);
    let log = open(work.path(), options(&clock)).await;
    let all = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    assert_eq!(all.len(), kept + 1);
    assert_eq!(&all[kept].data[..], b"after");
}

#[tokio::test]
async fn zero_pages_past_the_end_frames_cut_short_and_garbage_are_cut() {
    let (src, starts) = pristine(Durability::Fsync).await;
    // The file grew (metadata reached the disk) but its last pages read as zeros.
    let (_w, got) = recover(src.path(), |b| {
        b[12288..].fill(0);
        b.extend_from_slice(&[0u8; 8192]);
    })
    .await
    .expect("zero tail");
    assert_eq!(got, first_records(frame_at(12288)));
    // Garbage in the middle of the last batch and its last frame cut short.
    let (_w, got) = recover(src.path(), |b| {
        let mut x = 0x9e37_79b9_u32;
        for byte in &mut b[9000..9100] {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *byte = x as u8;
        }
        b.truncate(b.len() - 100);
    })
    .await
    .expect("garbage");
    assert_eq!(got, first_records(frame_at(9000)));
    // The last batch's first frame (the one flagged as written after a sync) is damaged.
    let (_w, got) = recover(src.path(), |b| {
        let s = starts[3] as usize;
        b[s + 10..s + 60].fill(0xff);
    })
    .await
    .expect("first frame of the last batch");
    assert_eq!(got, first_records(30));
}

#[tokio::test]
async fn damage_in_a_batch_that_a_later_batch_proves_synced_is_refused() {
    let (src, starts) = pristine(Durability::Fsync).await;
    let err = recover(src.path(), |b| b[2400..2500].fill(0))
        .await
        .map(|_| ())
        .expect_err("mid-log damage must be refused");
    let at = frame_at(2400) as u64 * FRAME;
    assert_eq!(at, starts[1], "the damaged frame opens batch 2");
    let text = err.to_string();
    assert!(
        text.contains("shardId-000000000000") && text.contains(&format!("at byte {at}")),
        "{text}"
    );
    assert!(text.contains("damage in the middle of the log"), "{text}");
    // Damage in the middle of batch 3, with batch 4 after it: refused as well.
    let err = recover(src.path(), |b| b[5000] ^= 0x20)
        .await
        .map(|_| ())
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains(&format!("at byte {}", frame_at(5000) as u64 * FRAME))
    );
}

#[tokio::test]
async fn in_buffered_mode_damage_anywhere_in_the_active_segment_is_cut() {
    // Buffered mode syncs no batch, so nothing after the segment's first frame is proven
    // durable: open keeps the whole records before the damage.
    let (src, _) = pristine(Durability::Buffered).await;
    let (_w, got) = recover(src.path(), |b| b[2400..2500].fill(0))
        .await
        .expect("cut");
    assert_eq!(got, first_records(frame_at(2400)));
}

/// A frame as segments written before the "synced before" flag carry it (flags 0).
fn legacy_frame(out: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let mut body = Vec::new();
    body.extend_from_slice(&offset.to_le_bytes());
    body.extend_from_slice(&T0.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.push(0);
    body.push(b'k');
    body.extend_from_slice(data);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

#[tokio::test]
async fn segments_written_before_the_flag_keep_the_stricter_rule() {
    let (src, _) = pristine(Durability::Fsync).await;
    let legacy = |b: &mut Vec<u8>| {
        b.clear();
        for i in 0..20 {
            legacy_frame(b, i, &data(0, i as usize));
        }
    };
    // Damage in the final frame only: cut.
    let (_w, got) = recover(src.path(), |b| {
        legacy(b);
        let n = b.len();
        b[n - 5] ^= 1;
    })
    .await
    .expect("last frame");
    assert_eq!(got, (0..19).map(|i| data(0, i)).collect::<Vec<_>>());
    // Damage followed by any valid frame: refused, as before.
    let err = recover(src.path(), |b| {
        legacy(b);
        b[FRAME as usize * 15 + 40] ^= 1;
    })
    .await
    .map(|_| ())
    .expect_err("refused");
    assert!(
        err.to_string().contains(&format!("at byte {}", FRAME * 15)),
        "{err}"
    );
}
