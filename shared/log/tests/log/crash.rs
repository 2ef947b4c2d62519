//! SIGKILL a writer process at random moments: every acknowledged record survives, once, in
//! order, with its bytes.
//!
//! The child is this test binary itself, re-run with `SHARDLINE_CRASH_CHILD=<dir>` so that only
//! [`crash_child`] does anything. It appends from several tasks and prints `ACK <shard>
//! <offset> <data>` after each acknowledged record.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, ShardId, StartingPosition};
use shardline_log::{Log, LogOptions};

use crate::common::*;

const CHILD_ENV: &str = "SHARDLINE_CRASH_CHILD";
const SHARDS: u32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cycle = std::env::var("SHARDLINE_CRASH_CYCLE").unwrap_or_default();
    let log = Arc::new(
        Log::open(&dir, LogOptions::default())
            .await
            .expect("child open"),
    );
    if log.list_streams().await.expect("list").is_empty() {
        log.create_stream("c", SHARDS, Duration::from_secs(3600))
            .await
            .expect("create");
    }
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (log, cycle) = (log.clone(), cycle.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..100_000 {
                let batch: Vec<_> = (0..25)
                    .map(|i| {
                        entry(
                            &format!("key-{t}-{i}"),
                            format!("{cycle}.{t}.{n}.{i}.{}", "p".repeat(i * 7)),
                        )
                    })
                    .collect();
                let datas: Vec<String> = batch
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.data).into_owned())
                    .collect();
                let results = log.put_records("c", batch).await.expect("put");
                let mut out = String::new();
                for (r, d) in results.iter().zip(&datas) {
                    if let PutRecordResult::Ok {
                        shard_id,
                        sequence_number,
                    } = r
                    {
                        let off = sequence_number.parts().expect("parts").offset;
                        out.push_str(&format!("ACK {} {off} {d}\n", shard_id.index()));
                    }
                }
                print!("{out}");
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempdir();
    let exe = std::env::current_exe().expect("test binary");
    let mut acked: HashMap<(u32, u64), String> = HashMap::new();
    let started = Instant::now();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for cycle in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_ms = 30 + seed % 250;
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("SHARDLINE_CRASH_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.starts_with("ACK "))
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(run_ms));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let lines = reader.join().expect("reader");
        for l in &lines {
            let mut parts = l.splitn(4, ' ').skip(1);
            let (Some(s), Some(o), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let key = (s.parse().expect("shard"), o.parse().expect("offset"));
            assert!(
                acked.insert(key, d.to_string()).is_none(),
                "offset acknowledged twice: {l}"
            );
        }
        let log = Log::open(dir.path(), LogOptions::default())
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        if cycle == 0 && lines.is_empty() {
            log.close().await.expect("close");
            continue;
        }
        let mut seen = HashSet::new();
        for s in 0..SHARDS {
            let records = read_all(&log, "c", ShardId(s), StartingPosition::TrimHorizon).await;
            for (i, r) in records.iter().enumerate() {
                let off = r.sequence_number.parts().expect("parts").offset;
                assert_eq!(off, i as u64, "dense offsets in shard {s}");
                let data = String::from_utf8(r.data.to_vec()).expect("utf8");
                assert!(seen.insert(data.clone()), "record stored twice: {data}");
                if let Some(want) = acked.get(&(s, off)) {
                    assert_eq!(&data, want, "cycle {cycle}: shard {s} offset {off} changed");
                }
            }
            let n = records.len() as u64;
            let missing = acked.keys().filter(|(sh, o)| *sh == s && *o >= n).count();
            assert_eq!(
                missing, 0,
                "cycle {cycle}: {missing} acknowledged records of shard {s} lost"
            );
        }
        log.close().await.expect("close");
    }
    println!(
        "crash test: {} acknowledged records checked over 20 SIGKILL cycles",
        acked.len()
    );
    assert!(
        acked.len() > 1000,
        "children acknowledged only {} records",
        acked.len()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
