//! Shared test fixtures: opening logs, building entries, reading shards back.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, PutRecordsEntry, Record, ShardId, StartingPosition};
use shardline_core::time::ManualClock;
use shardline_log::{Log, LogOptions};

/// 2023-11-14T22:13:20Z.
pub const T0: i64 = 1_700_000_000_000;

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

pub fn options(clock: &Arc<ManualClock>) -> LogOptions {
    LogOptions {
        clock: clock.clone(),
        ..LogOptions::default()
    }
}

pub fn small_segments(clock: &Arc<ManualClock>) -> LogOptions {
    LogOptions {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        ..options(clock)
    }
}

pub async fn open(dir: &Path, options: LogOptions) -> Log {
    Log::open(dir, options).await.expect("open log")
}

pub fn entry(key: &str, data: impl Into<Vec<u8>>) -> PutRecordsEntry {
    PutRecordsEntry {
        partition_key: key.to_string(),
        explicit_hash_key: None,
        data: Bytes::from(data.into()),
    }
}

pub async fn put_ok(
    log: &Log,
    stream: &str,
    entries: Vec<PutRecordsEntry>,
) -> Vec<(ShardId, shardline_core::SequenceNumber)> {
    log.put_records(stream, entries)
        .await
        .expect("put_records")
        .into_iter()
        .map(|r| match r {
            PutRecordResult::Ok {
                shard_id,
                sequence_number,
            } => (shard_id, sequence_number),
            PutRecordResult::Err {
                error_code,
                error_message,
            } => panic!("{error_code}: {error_message}"),
        })
        .collect()
}

/// Every record from `position` to the end of the shard.
pub async fn read_all(
    log: &Log,
    stream: &str,
    shard: ShardId,
    position: StartingPosition,
) -> Vec<Record> {
    let mut it = log
        .get_shard_iterator(stream, shard, &position)
        .await
        .expect("iterator");
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let r = log.get_records(&it, 10_000).await.expect("get_records");
        let empty = r.records.is_empty();
        out.extend(r.records);
        it = r.next_iterator.expect("open shard has a next iterator");
        if empty {
            return out;
        }
    }
    panic!("shard did not end");
}
