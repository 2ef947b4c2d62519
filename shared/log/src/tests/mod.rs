//! Scenario tests that need the crate's fault injection (`crate::fault`, compiled only in
//! unit tests): failures at segment roll, index write, fsync, truncation and metadata write;
//! group commit held deterministically inside an `fdatasync`.

mod faults;
mod group_commit;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, PutRecordsEntry, ShardId, StartingPosition};
use shardline_core::time::ManualClock;

use crate::{Log, LogOptions};

/// 2023-11-14T22:13:20Z.
pub const T0: i64 = 1_700_000_000_000;

/// Small segments (rolls every few puts), a manual clock.
pub fn options() -> LogOptions {
    LogOptions {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        clock: ManualClock::new(T0),
        ..LogOptions::default()
    }
}

/// Opens the log in `dir` with a one-shard stream `s` (created when missing).
pub async fn open(dir: &Path) -> Log {
    let log = Log::open(dir, options()).await.expect("open log");
    if log.describe("s").is_err() {
        log.create_stream("s", 1, Duration::from_secs(3600))
            .await
            .expect("create");
    }
    log
}

/// What one put of `n` records tagged `tag` did: the payloads acknowledged (with their
/// offsets) and the error messages of the refused ones.
#[derive(Debug, Default)]
pub struct Outcome {
    pub acked: Vec<(u64, String)>,
    pub refused: Vec<String>,
}

pub async fn put(log: &Log, tag: &str, n: usize) -> Outcome {
    let entries: Vec<PutRecordsEntry> = (0..n)
        .map(|i| PutRecordsEntry {
            partition_key: "k".into(),
            explicit_hash_key: None,
            data: Bytes::from(format!("{tag}-{i}-{}", "x".repeat(40))),
        })
        .collect();
    let datas: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
        .collect();
    let mut out = Outcome::default();
    for (r, d) in log
        .put_records("s", entries)
        .await
        .expect("put_records call")
        .into_iter()
        .zip(datas)
    {
        match r {
            PutRecordResult::Ok {
                sequence_number, ..
            } => out
                .acked
                .push((sequence_number.parts().expect("parts").offset, d)),
            PutRecordResult::Err { error_message, .. } => out.refused.push(error_message),
        }
    }
    out
}

/// Every record of shard 0, as (offset, payload).
pub async fn read_all(log: &Log) -> Vec<(u64, String)> {
    let mut it = log
        .get_shard_iterator("s", ShardId(0), &StartingPosition::TrimHorizon)
        .await
        .expect("iterator");
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let r = log.get_records(&it, 10_000).await.expect("get_records");
        if r.records.is_empty() {
            return out;
        }
        for rec in r.records {
            out.push((
                rec.sequence_number.parts().expect("parts").offset,
                String::from_utf8_lossy(&rec.data).into_owned(),
            ));
        }
        it = r.next_iterator.expect("next iterator");
    }
    panic!("shard did not end within 10,000 reads");
}

/// Closes `log`, reopens `dir` without faults, checks it verifies clean and holds exactly
/// `acked` (dense offsets from 0, each acknowledged record at its offset), and returns it.
pub async fn reopen_and_check(log: Log, dir: &Path, acked: &[(u64, String)]) -> Log {
    log.close().await.expect("close");
    drop(log);
    let report = crate::verify(dir, None).expect("verify");
    assert!(
        report.is_ok(),
        "verify after the faults: {:?}",
        report.problems
    );
    let log = open(dir).await;
    let present = read_all(&log).await;
    assert_eq!(
        present.len(),
        acked.len(),
        "records present after reopen vs acknowledged"
    );
    let mut want = acked.to_vec();
    want.sort();
    assert_eq!(
        present, want,
        "every acknowledged record, at its offset, nothing else"
    );
    log
}

/// The segment files (`.seg`) of shard 0 and their sizes.
pub fn segments(dir: &Path) -> Vec<(String, u64)> {
    let shard = dir.join("s").join("shardId-000000000000");
    let mut v: Vec<(String, u64)> = std::fs::read_dir(&shard)
        .expect("shard dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().expect("meta").len(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Every file under `dir` whose name ends with `.tmp`.
pub fn temp_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".tmp") {
                out.push(p);
            }
        }
    }
    out
}
