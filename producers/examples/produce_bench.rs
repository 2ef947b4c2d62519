//! Measures producer throughput into the embedded log.
//!
//! Usage: `cargo run --release -p shardline-producers --example produce_bench -- [EVENTS] [--shards N] [--instances N] [--buffered] [--unordered]`
//!
//! Generates EVENTS (default 200,000) synthetic events, sends them in one `send` through a fresh
//! log in a temporary directory (fsync durability unless `--buffered`), and prints a markdown
//! row: events, calls, retries, seconds, events/s, MiB/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shardline_core::ports::Stream;
use shardline_log::{Durability, Log, LogOptions};
use shardline_producers::{
    OrderingMode, Producer, ProducerConfig, SyntheticCollector, SyntheticConfig,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut events, mut shards, mut instances) = (200_000usize, 4u32, 1_000usize);
    let (mut buffered, mut unordered) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--shards" => shards = args.next().ok_or("--shards needs a number")?.parse()?,
            "--instances" => {
                instances = args.next().ok_or("--instances needs a number")?.parse()?
            }
            "--buffered" => buffered = true,
            "--unordered" => unordered = true,
            n => events = n.replace('_', "").parse()?,
        }
    }
    let mut collector = SyntheticCollector::new(
        SyntheticConfig {
            instances,
            ..SyntheticConfig::default()
        },
        Some(1),
    )?;
    let mut input = Vec::with_capacity(events);
    let mut round = 0i64;
    while input.len() < events {
        input.extend(collector.collect(None, 1_771_500_000_000 + round * 1000));
        round += 1;
    }
    input.truncate(events);

    let dir = tempfile::tempdir()?;
    let options = LogOptions {
        durability: if buffered {
            Durability::Buffered
        } else {
            Durability::Fsync
        },
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(dir.path(), options).await?);
    log.create_stream("metrics", shards, Duration::from_secs(24 * 3600))
        .await?;
    let cfg = ProducerConfig {
        ordering: if unordered {
            OrderingMode::Unordered
        } else {
            OrderingMode::PerKey
        },
        ..ProducerConfig::default()
    };
    let producer = Producer::new(log.clone(), "metrics", cfg)?;
    let t = Instant::now();
    let report = producer.send(input).await?;
    let secs = t.elapsed().as_secs_f64();
    log.close().await?;
    println!(
        "| events | shards | instances | durability | ordering | calls | retries | failed | seconds | events/s | MiB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {shards} | {instances} | {} | {} | {} | {} | {} | {secs:.2} | {:.0} | {:.1} |",
        report.appended.len(),
        if buffered { "buffered" } else { "fsync" },
        if unordered { "unordered" } else { "per_key" },
        report.calls,
        report.retries,
        report.failed.len(),
        report.appended.len() as f64 / secs,
        report.bytes as f64 / secs / (1024.0 * 1024.0),
    );
    Ok(())
}
