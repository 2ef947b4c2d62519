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

/// Copies a log directory (without its LOCK file).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target).expect("copy");
        }
    }
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

/// This test binary re-run as a child running one test only, with its stdout read line by line
/// on a thread. Every wait on it is bounded: a child that stops printing or does not exit in
/// time is killed and the test fails, instead of hanging.
pub struct ChildTest {
    process: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
}

impl ChildTest {
    /// Starts the test `name` (exact path, e.g. `rlimits::file_size_child`) with `env` set.
    pub fn spawn(name: &str, env: &[(&str, &std::ffi::OsStr)]) -> ChildTest {
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut process = cmd.spawn().expect("spawn child");
        let stdout = process.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        ChildTest {
            process,
            lines,
            reader,
        }
    }

    /// The next line the child prints, waiting at most `limit`; `None` once its stdout closed.
    pub fn line(&mut self, limit: std::time::Duration) -> Option<String> {
        match self.lines.recv_timeout(limit) {
            Ok(l) => Some(l),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.process.kill();
                let _ = self.process.wait();
                panic!("the child printed nothing for {limit:?}; killed");
            }
        }
    }

    /// Kills the child (SIGKILL) and reaps it; returns the lines it printed before dying and
    /// that were not taken yet (its stdout closes with it, so the reader ends).
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = self.reader.join();
        self.lines.try_iter().collect()
    }

    /// Every line until the child exits (each awaited at most `limit`), and whether it
    /// exited successfully.
    pub fn finish(mut self, limit: std::time::Duration) -> (bool, Vec<String>) {
        let mut out = Vec::new();
        while let Some(l) = self.line(limit) {
            out.push(l);
        }
        for _ in 0..(limit.as_millis() / 10).max(1) {
            if let Some(status) = self.process.try_wait().expect("try_wait") {
                return (status.success(), out);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
        panic!("the child closed its output but did not exit within {limit:?}; killed");
    }
}
