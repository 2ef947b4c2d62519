//! The metric store under the CloudWatch sink's load: every simulated second, one statistic
//! set per series for the current minute (the sink publishes each shard's partial minutes
//! every second), in puts of up to `MAX_DATUMS_PER_PUT` datums with a watermark each, for
//! `MINUTES` simulated minutes. Prints, per simulated minute, the time per put, the process's
//! anonymous resident memory and the file's size, so a cost growing with the stored history
//! shows; then times a one-hour statistics query per series.
//!
//! `cargo run --profile fast -p shardline-local --example metrics_bench -- [SERIES] [MINUTES]
//! [PUTS_PER_MINUTE]` (defaults 20,000 series: 5,000 instances with four metrics; 30 minutes;
//! 60 puts per minute; a fresh directory under the system temp dir, removed afterwards).

use std::collections::BTreeMap;
use std::time::Instant;

use shardline_core::ports::{
    MetricDatum, MetricPublisher, StatisticSet, StatisticsQuery, Watermark,
};
use shardline_core::stream::SequenceParts;
use shardline_local::metrics::MAX_DATUMS_PER_PUT;
use shardline_local::{LocalBackends, LocalOptions};

const START_MS: i64 = 1_771_459_200_000;
const METRICS: [&str; 4] = [
    "cpu_utilization",
    "memory_usage",
    "disk_usage",
    "network_traffic",
];

fn datum(series: usize, minute: i64, value: f64) -> MetricDatum {
    MetricDatum {
        metric_name: METRICS[series % 4].to_string(),
        dimensions: BTreeMap::from([
            ("InstanceID".to_string(), format!("i-{:06}", series / 4)),
            ("Region".to_string(), "eu-west-1".to_string()),
        ]),
        timestamp_ms: START_MS + minute * 60_000,
        unit: "Percent".to_string(),
        values: StatisticSet {
            sample_count: 1.0,
            sum: value,
            minimum: value,
            maximum: value,
        },
    }
}

fn rss_anon_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let series: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let minutes: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30);
    let puts_per_minute: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(60);
    let dir = std::env::temp_dir().join(format!("shardline-metrics-bench-{}", std::process::id()));
    let backends = LocalBackends::open(&dir, LocalOptions::default())?;
    let store = backends.metrics.clone();
    let file = dir.join("local/metrics.redb");
    println!("{series} series, {puts_per_minute} rounds per minute, {minutes} minutes");
    println!("| minute | ms per put | RssAnon MiB | file MiB |");
    println!("|---:|---:|---:|---:|");
    let mut offset = 0u64;
    let started = Instant::now();
    for minute in 0..minutes {
        let t = Instant::now();
        let mut puts = 0u32;
        for round in 0..puts_per_minute {
            let data: Vec<MetricDatum> = (0..series)
                .map(|s| datum(s, minute, (s as u64 + round) as f64 % 97.0))
                .collect();
            for chunk in data.chunks(MAX_DATUMS_PER_PUT) {
                offset += 1;
                let watermark = Watermark {
                    key: "bench/metrics/shardId-000000000000".into(),
                    sequence_number: SequenceParts {
                        shard_index: 0,
                        offset,
                        shard_created_secs: 1,
                        arrival_secs: 1,
                    }
                    .encode(),
                };
                store
                    .put_metric_data("InfraMonitoring", chunk.to_vec(), Some(&watermark))
                    .await?;
                puts += 1;
            }
        }
        let per_put = t.elapsed().as_secs_f64() * 1000.0 / f64::from(puts.max(1));
        let size = std::fs::metadata(&file).map_or(0, |m| m.len()) / (1024 * 1024);
        println!("| {minute} | {per_put:.1} | {} | {size} |", rss_anon_mib());
    }
    println!("writes took {:.1} s", started.elapsed().as_secs_f64());
    let t = Instant::now();
    let queries = 200usize;
    let mut points = 0usize;
    for q in 0..queries {
        let d = datum(q * 7_919 % series, 0, 0.0);
        let out = store
            .get_metric_statistics(&StatisticsQuery {
                namespace: "InfraMonitoring".into(),
                metric_name: d.metric_name,
                dimensions: d.dimensions,
                start_ms: START_MS,
                end_ms: START_MS + 3_600_000,
                period_secs: 300,
            })
            .await?;
        points += out.len();
    }
    println!(
        "one-hour query, 5-minute periods: {:.3} ms per query ({} datapoints each)",
        t.elapsed().as_secs_f64() * 1000.0 / queries as f64,
        points / queries
    );
    drop(store);
    drop(backends);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
