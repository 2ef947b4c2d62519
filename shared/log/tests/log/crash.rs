//! SIGKILL a writer process at random moments: every acknowledged record survives, once, in
//! order, with its bytes.
//!
//! The child is this test binary itself, re-run with `SHARDLINE_CRASH_CHILD=<dir>` so that only
//! [`crash_child`] does anything. It appends from several tasks and prints `ACK <shard>
//! <offset> <data>` after each acknowledged record. The parent kills it after a seeded number
//! of acknowledgements (no timing), and every wait on the child is bounded.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

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
    // The harness printed "test <name> ... " without a newline: start a line of our own.
    println!();
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
    let mut acked: HashMap<(u32, u64), String> = HashMap::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut killed_after = 0u64;
    for cycle in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Killed after a seeded number of acknowledgements, so at a different point of the
        // child's work each cycle (and the same points on every run and every machine).
        let kill_after = 100 + seed % 1_500;
        killed_after += kill_after;
        let cycle_env = cycle.to_string();
        let mut child = ChildTest::spawn(
            "crash::crash_child",
            &[
                (CHILD_ENV, dir.path().as_os_str()),
                ("SHARDLINE_CRASH_CYCLE", OsStr::new(&cycle_env)),
            ],
        );
        let mut lines = Vec::new();
        while (lines.len() as u64) < kill_after {
            match child.line(Duration::from_secs(60)) {
                Some(l) if l.starts_with("ACK ") => lines.push(l),
                Some(_) => {}
                None => panic!("cycle {cycle}: the child exited after {} acks", lines.len()),
            }
        }
        lines.extend(child.kill().into_iter().filter(|l| l.starts_with("ACK ")));
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
        acked.len() as u64 >= killed_after,
        "{} < {killed_after}",
        acked.len()
    );
}
