//! End-to-end benchmark on the embedded backends: fill the stream with synthetic events, then
//! drain all four consumers together and report events/s (together and per consumer) and the
//! process's peak RSS.
//!
//! ```sh
//! cargo run --profile fast -p shardline --example pipeline_bench -- [EVENTS] [INSTANCES]
//! ```
//! Defaults: 1,000,000 events from 1,000 instances. Data goes to a temporary directory that is
//! removed afterwards. Every setting is the default (fsync durability, 8 MiB S3 buffers) except
//! the collectors (synthetic only), the notifier (outbox) and the flow (off).

use anyhow::{Context, Result};
use shardline::config::Config;
use shardline::pipeline::Pipeline;
use std::time::Instant;
use tokio::task::JoinSet;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    shardline::alloc::tune();
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let instances: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);
    let dir = std::env::temp_dir().join(format!("shardline-pipeline-bench-{}", std::process::id()));
    let toml = format!(
        r#"
[collectors]
run = ["synthetic"]
[collectors.synthetic]
instances = {instances}
[notifier]
type = "outbox"
[flow]
enabled = false
"#
    );
    std::fs::create_dir_all(&dir)?;
    let cfg_path = dir.join("bench.toml");
    std::fs::write(&cfg_path, toml)?;
    let config = Config::load(Some(&cfg_path), Some(&dir.join("data")))?;
    let pipeline = Pipeline::open(config).await?;

    // Fill: collections of every instance, sent by 4 concurrent producers.
    let fill_start = Instant::now();
    let mut appended = 0usize;
    while appended < events {
        let mut batches = Vec::new();
        {
            let mut collectors = pipeline.collectors.lock().await;
            for _ in 0..4 {
                let now = shardline_core::time::now_ms();
                batches.push(collectors.collect(None, now).await?);
            }
        }
        let mut sends = JoinSet::new();
        for batch in batches {
            let producer = pipeline.producer.clone();
            sends.spawn(async move { producer.send(batch).await });
        }
        while let Some(r) = sends.join_next().await {
            appended += r.context("producer task")??.appended.len();
        }
    }
    let fill_secs = fill_start.elapsed().as_secs_f64();
    println!(
        "fill: {appended} events in {fill_secs:.2} s = {:.0} events/s (durable, via the producer)",
        appended as f64 / fill_secs
    );
    println!("peak RSS after the fill: {:.0} MiB", peak_rss_mib());

    // Drain: the four consumers together.
    let drain_start = Instant::now();
    let drain_cpu = cpu_seconds();
    let mut tasks = JoinSet::new();
    for consumer in pipeline.consumers()? {
        tasks.spawn(consumer.drain());
    }
    let mut reports = Vec::new();
    while let Some(r) = tasks.join_next().await {
        reports.push(r.context("consumer task")??);
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let drain_cpu = cpu_seconds() - drain_cpu;
    reports.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    // `shared`: records taken from batches another consumer read (see `[consumers.shared_reads]`).
    println!("| consumer | events | shared | seconds | events/s |");
    println!("|---|---:|---:|---:|---:|");
    for r in &reports {
        let secs = r.elapsed_ms as f64 / 1000.0;
        println!(
            "| {} | {} | {} | {secs:.2} | {:.0} |",
            r.consumer,
            r.status.records_delivered,
            r.status.records_shared,
            r.status.records_delivered as f64 / secs
        );
    }
    println!(
        "| all four together | {appended} | | {drain_secs:.2} | {:.0} |",
        appended as f64 / drain_secs
    );
    println!(
        "drain CPU: {drain_cpu:.2} s = {:.2} cores, {:.1} CPU-µs per event (all consumers)",
        drain_cpu / drain_secs,
        drain_cpu * 1e6 / appended as f64
    );
    println!("peak RSS: {:.0} MiB", peak_rss_mib());
    pipeline.close().await?;
    // The embedded backends (the item table's compaction worker among them) go before their
    // directory does.
    drop(pipeline);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("cannot remove {}: {e}", dir.display());
    }
    Ok(())
}
