//! `shardline loadgen`: synthetic metric load against the embedded log or any Kinesis endpoint,
//! with a live progress bar (on a terminal) and a final report (a table; `--json FILE` too).
//!
//! The engine is [`shardline_producers::loadgen`]; this module chooses the target: the data
//! directory's log (`--embedded`, the default; the directory must not be owned by a running
//! `up`/`serve`) or an endpoint (`--endpoint URL`, through aws-sdk-kinesis: `shardline serve`,
//! kinesalite, Kinesis). The stream is created when missing.

mod kinesis;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use shardline_core::ports::Stream;
use shardline_producers::loadgen::{self, LiveStats, LoadConfig, LoadReport};

use crate::cli::LoadgenArgs;
use crate::config::Config;
use crate::wiring;

pub use kinesis::KinesisStream;

/// Runs `shardline loadgen`.
pub async fn run(config: &Config, args: LoadgenArgs) -> Result<i32> {
    let stream_name = args
        .stream
        .clone()
        .unwrap_or_else(|| config.stream.name.clone());
    let load = LoadConfig {
        stream: stream_name.clone(),
        rates: args.rate.clone(),
        step: args.step.unwrap_or(Duration::ZERO),
        duration: args.duration,
        instances: args.instances,
        record_size: args.record_size,
        batch: args.batch,
        callers: args.callers,
        consumers: args.consumers,
        read_back: args.read_back,
        seed: args.seed,
    };
    load.validate().map_err(anyhow::Error::msg)?;
    let shards = args.shards.unwrap_or(config.stream.shards);
    let (stream, log): (Arc<dyn Stream>, _) = match &args.endpoint {
        Some(url) => {
            let region = args
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into());
            (Arc::new(KinesisStream::new(url, &region)), None)
        }
        None => {
            let log = wiring::open_log(config).await?;
            (log.clone() as Arc<dyn Stream>, Some(log))
        }
    };
    let target = args
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("embedded log in {}", config.log_dir().display()));
    match stream.describe_stream(&stream_name).await {
        Ok(_) => {}
        Err(shardline_core::Error::NotFound { .. }) => {
            stream
                .create_stream(&stream_name, shards, config.stream.retention)
                .await
                .with_context(|| format!("cannot create stream {stream_name} on {target}"))?;
            eprintln!("created stream {stream_name} ({shards} shards) on {target}");
        }
        Err(e) => bail!("cannot reach stream {stream_name} on {target}: {e}"),
    }
    let live = Arc::new(LiveStats::default());
    let bar = progress(&args);
    let ticker = {
        let (bar, live) = (bar.clone(), live.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let secs = started.elapsed().as_secs_f64();
                bar.set_position((secs * 10.0) as u64);
                let acked = live.acknowledged.load(Ordering::Relaxed);
                bar.set_message(format!(
                    "sent {} acked {} throttled {} failed {} | {:.0} rec/s{}{}",
                    live.sent.load(Ordering::Relaxed),
                    acked,
                    live.throttled.load(Ordering::Relaxed),
                    live.failed.load(Ordering::Relaxed),
                    acked as f64 / secs.max(1e-3),
                    match live.consumed.load(Ordering::Relaxed) {
                        0 => String::new(),
                        n => format!(" | consumed {n}"),
                    },
                    match live.read_back.load(Ordering::Relaxed) {
                        0 => String::new(),
                        n => format!(" | read back {n}"),
                    },
                ));
            }
        })
    };
    let outcome = loadgen::run(stream, load, live).await;
    ticker.abort();
    bar.finish_and_clear();
    if let Some(log) = log {
        log.close().await.context("closing the log")?;
    }
    let report = outcome.map_err(anyhow::Error::msg)?;
    print_report(&report, &target);
    if let Some(path) = &args.json {
        let text = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    Ok(if report.acknowledged == 0 { 1 } else { 0 })
}

fn progress(args: &LoadgenArgs) -> ProgressBar {
    let bar = ProgressBar::new(args.duration.as_secs_f64().mul_add(10.0, 0.0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn print_report(r: &LoadReport, target: &str) {
    let l = &r.ack_latency;
    println!("loadgen against {target}, stream {}", r.stream);
    println!(
        "  target      {} rec/s, {} records/call, {} callers, {} B records",
        r.target_rates
            .iter()
            .map(|x| if *x == 0 {
                "max".to_string()
            } else {
                x.to_string()
            })
            .collect::<Vec<_>>()
            .join(","),
        r.batch,
        r.callers,
        r.record_size
    );
    println!(
        "  records     sent {} | acknowledged {} | throttled {} | failed {}",
        r.sent, r.acknowledged, r.throttled, r.failed
    );
    println!(
        "  rate        {:.0} acknowledged rec/s over {:.1} s",
        r.achieved_rate,
        r.duration_ms as f64 / 1000.0
    );
    println!(
        "  ack latency p50 {:.1} ms | p90 {:.1} | p99 {:.1} | max {:.1} ({} calls)",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.count
    );
    for e in &r.errors {
        println!("  error       {e}");
    }
    for c in &r.consumers {
        println!(
            "  {:<11} read {}{} | lag p50 {:.1} ms | p90 {:.1} | p99 {:.1} | max {:.1}",
            c.name,
            c.records,
            if c.caught_up { "" } else { " (not caught up)" },
            c.lag.p50_ms,
            c.lag.p90_ms,
            c.lag.p99_ms,
            c.lag.max_ms
        );
    }
    if let Some(b) = &r.read_back {
        println!(
            "  read back   {} records in {:.1} s: {:.0} rec/s | GetRecords p50 {:.1} ms | p99 {:.1} | max {:.1}",
            b.records,
            b.duration_ms as f64 / 1000.0,
            b.rate,
            b.call_latency.p50_ms,
            b.call_latency.p99_ms,
            b.call_latency.max_ms
        );
    }
}
