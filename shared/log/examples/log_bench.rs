//! Durable append and sequential read throughput of the embedded log.
//!
//! `cargo run --profile fast -p shardline-log --example log_bench -- [--producers N]
//! [--seconds S] [--shards K] [--buffered]`
//!
//! Appends ~200-byte metric-event JSON records in 500-record put_records calls from 1, 4 and 16
//! concurrent producers (or just `--producers N`) for a bounded time each, then reads one
//! stream back sequentially (one shard after another, 10,000 records per get_records call),
//! then reads it again with one task per shard, all at once, then measures the device bound: the same bytes written in 1 MiB
//! chunks with `fdatasync` after each. Prints a markdown table. Data goes to a temporary
//! directory under `target/`, removed at the end.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordsEntry, ShardId, StartingPosition};
use shardline_log::{Durability, Log, LogOptions};

struct Args {
    producers: Vec<usize>,
    seconds: u64,
    shards: u32,
    durability: Durability,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        producers: vec![1, 4, 16],
        seconds: 5,
        shards: 4,
        durability: Durability::Fsync,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--producers" => {
                let v = value("--producers")?;
                a.producers = vec![
                    v.parse()
                        .map_err(|_| format!("--producers: `{v}` is not a number"))?,
                ];
            }
            "--seconds" => {
                let v = value("--seconds")?;
                a.seconds = v
                    .parse()
                    .map_err(|_| format!("--seconds: `{v}` is not a number"))?;
            }
            "--shards" => {
                let v = value("--shards")?;
                a.shards = v
                    .parse()
                    .map_err(|_| format!("--shards: `{v}` is not a number"))?;
            }
            "--buffered" => a.durability = Durability::Buffered,
            other => {
                return Err(format!(
                    "unknown flag `{other}` (use --producers, --seconds, --shards, --buffered)"
                ));
            }
        }
    }
    Ok(a)
}

/// Distinct ~200-byte metric events, shared by reference between calls.
fn payloads() -> Vec<(String, Bytes)> {
    let types = [
        "cpu_utilization",
        "memory_usage",
        "disk_usage",
        "network_traffic",
    ];
    (0..4096u32)
        .map(|i| {
            let instance = format!("i-{:017x}", u64::from(i % 64) * 0x9e37_79b9);
            let json = format!(
                r#"{{"metric_id":"m-{i:08}","metric_type":"{}","timestamp":{},"value":{:.2},"unit":"Percent","instance_id":"{instance}","region":"eu-west-1","collected_at":"2026-11-26T12:00:00Z"}}"#,
                types[i as usize % 4],
                1_764_158_400 + i,
                f64::from(i % 1000) / 10.0,
            );
            (instance, Bytes::from(json))
        })
        .collect()
}

struct RunResult {
    producers: usize,
    records: u64,
    bytes: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    syncs: u64,
}

async fn run_producers(
    log: Arc<Log>,
    stream: &str,
    producers: usize,
    seconds: u64,
    data: Arc<Vec<(String, Bytes)>>,
) -> RunResult {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (log, data, stream) = (log.clone(), data.clone(), stream.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut records, mut bytes) = (0u64, 0u64);
            let mut k = p * 97;
            while Instant::now() < deadline {
                let entries: Vec<_> = (0..500)
                    .map(|_| {
                        k = (k + 1) % data.len();
                        let (key, d) = &data[k];
                        PutRecordsEntry {
                            partition_key: key.clone(),
                            explicit_hash_key: None,
                            data: d.clone(),
                        }
                    })
                    .collect();
                let size: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
                let t = Instant::now();
                let results = match log.put_records(&stream, entries).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("put_records failed: {e}");
                        break;
                    }
                };
                latencies.push(t.elapsed());
                let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
                records += ok;
                bytes += size * ok / 500;
            }
            (records, bytes, latencies)
        }));
    }
    let (mut records, mut bytes, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        if let Ok((r, b, l)) = t.await {
            records += r;
            bytes += b;
            lat.extend(l);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let syncs = log
        .shard_stats(stream)
        .await
        .map(|s| s.iter().map(|x| x.syncs).sum())
        .unwrap_or(0);
    RunResult {
        producers,
        records,
        bytes,
        secs,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        syncs,
    }
}

/// Reads one shard from the trim horizon to its end; returns the records read.
async fn read_shard(log: &Log, stream: &str, shard: u32) -> Result<u64, shardline_core::Error> {
    let mut n = 0u64;
    let mut it = log
        .get_shard_iterator(stream, ShardId(shard), &StartingPosition::TrimHorizon)
        .await?;
    loop {
        let r = log.get_records(&it, 10_000).await?;
        n += r.records.len() as u64;
        let done = r.records.is_empty();
        let Some(next) = r.next_iterator else { break };
        it = next;
        if done {
            break;
        }
    }
    Ok(n)
}

/// CPU seconds (user + system) used by this process so far, from `/proc/self/stat` (Linux,
/// 100 ticks per second); 0 when unreadable. On a busy machine records per CPU second is the
/// steadier figure.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

/// Reads every shard, one after another.
async fn read_back(
    log: &Log,
    stream: &str,
    shards: u32,
) -> Result<(u64, f64), shardline_core::Error> {
    let start = Instant::now();
    let mut n = 0u64;
    for s in 0..shards {
        n += read_shard(log, stream, s).await?;
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

/// Reads every shard at once, one task per shard.
async fn read_concurrently(
    log: Arc<Log>,
    stream: &str,
    shards: u32,
) -> Result<(u64, f64), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..shards)
        .map(|s| {
            let (log, stream) = (log.clone(), stream.to_string());
            tokio::spawn(async move { read_shard(&log, &stream, s).await })
        })
        .collect();
    let mut n = 0u64;
    for t in tasks {
        n += t.await??;
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

/// The same bytes in 1 MiB writes, `fdatasync` after each.
fn device_bound(dir: &std::path::Path, bytes: u64) -> std::io::Result<f64> {
    let path = dir.join("device-bound.bin");
    let mut f = std::fs::File::create(&path)?;
    let chunk = vec![0xabu8; 1024 * 1024];
    let start = Instant::now();
    let mut written = 0u64;
    while written < bytes {
        f.write_all(&chunk)?;
        f.sync_data()?;
        written += chunk.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(written as f64 / secs)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("log_bench: {e}");
            std::process::exit(2);
        }
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(format!("log-bench-{}", std::process::id()));
    if let Err(e) = run(&args, &root).await {
        eprintln!("log_bench: {e}");
    }
    if let Err(e) = std::fs::remove_dir_all(&root) {
        eprintln!("log_bench: could not remove {}: {e}", root.display());
    }
}

async fn run(args: &Args, root: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let options = LogOptions {
        durability: args.durability,
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(root.join("log"), options).await?);
    let data = Arc::new(payloads());
    let mut results = Vec::new();
    for &p in &args.producers {
        let stream = format!("bench-{p}");
        log.create_stream(&stream, args.shards, Duration::from_secs(24 * 3600))
            .await?;
        let r = run_producers(log.clone(), &stream, p, args.seconds, data.clone()).await;
        eprintln!("{p} producers: {:.0} records/s", r.records as f64 / r.secs);
        results.push(r);
    }
    let last = results.last().ok_or("no run")?;
    let read_stream = format!("bench-{}", last.producers);
    let cpu0 = cpu_secs();
    let (read_n, read_secs) = read_back(&log, &read_stream, args.shards).await?;
    let cpu1 = cpu_secs();
    let (conc_n, conc_secs) = read_concurrently(log.clone(), &read_stream, args.shards).await?;
    let cpu2 = cpu_secs();
    log.close().await?;
    let device = device_bound(root, last.bytes.min(2 << 30))?;
    println!(
        "| producers | records/s | MB/s | p50 ack ms | p99 ack ms | records per fdatasync | vs device bound |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        let mbs = r.bytes as f64 / r.secs / 1e6;
        let per_sync = if r.syncs > 0 {
            format!("{:.0}", r.records as f64 / r.syncs as f64)
        } else {
            "-".into()
        };
        println!(
            "| {} | {:.0} | {:.1} | {:.2} | {:.2} | {per_sync} | {:.2} |",
            r.producers,
            r.records as f64 / r.secs,
            mbs,
            r.p50_ms,
            r.p99_ms,
            mbs / (device / 1e6)
        );
    }
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| durability | {:?} |", args.durability);
    println!("| shards | {} |", args.shards);
    println!(
        "| sequential read, records/s ({read_n} records) | {:.0} |",
        read_n as f64 / read_secs
    );
    println!(
        "| concurrent read, {} tasks, records/s ({conc_n} records) | {:.0} |",
        args.shards,
        conc_n as f64 / conc_secs
    );
    println!(
        "| sequential read, records per CPU second | {:.0} |",
        read_n as f64 / (cpu1 - cpu0).max(0.01)
    );
    println!(
        "| concurrent read, records per CPU second | {:.0} |",
        conc_n as f64 / (cpu2 - cpu1).max(0.01)
    );
    println!(
        "| device bound, 1 MiB write + fdatasync, MB/s | {:.1} |",
        device / 1e6
    );
    Ok(())
}
