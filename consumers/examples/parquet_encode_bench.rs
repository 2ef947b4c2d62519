//! Encodes N synthetic metric rows to Parquet the way the S3 sink does and prints rows/s.
//!
//! ```text
//! cargo run --profile fast -p shardline-consumers --example parquet_encode_bench -- \
//!     [ROWS] [zstd|snappy] [THREADS]
//! ```
//!
//! THREADS is how many threads encode the columns (default: as the sink, `encode_threads()`).
//!
//! Rows imitate the seed's collector output: 4 metric types, 1,000 instances, one sample per
//! instance and type every 10 seconds, 12 columns with lineage. The timing covers building
//! the Arrow arrays from events (with the sort by instance and time) and Parquet encoding,
//! best of three runs; generating the events is excluded.

use shardline_consumers::SinkRecord;
use shardline_consumers::sinks::s3_parquet::writer::{
    encode_batch_with_threads, encode_threads, metric_batch, writer_properties,
};
use shardline_consumers::sinks::s3_parquet::{EncodeOptions, ParquetCompression};
use shardline_core::stream::SequenceParts;
use shardline_core::{MetricEvent, MetricType, ShardId};
use std::time::Instant;

fn synthetic(n: usize) -> Vec<SinkRecord> {
    let start_s = 1_771_459_200i64;
    (0..n)
        .map(|i| {
            let metric_type = MetricType::ALL[i % 4];
            let instance = (i / 4) % 1000;
            let ts = start_s + ((i / 4000) * 10) as i64;
            let t_ms = ts * 1000 + (i % 1000) as i64;
            let (lo, hi) = metric_type.seed_range();
            let value = lo + (hi - lo) * (((i * 7919) % 10_000) as f64 / 10_000.0);
            SinkRecord {
                shard: ShardId(0),
                sequence_number: SequenceParts {
                    shard_index: 0,
                    offset: i as u64,
                    shard_created_secs: start_s as u64,
                    arrival_secs: ts as u64,
                }
                .encode(),
                arrival_ms: t_ms + 20,
                event: std::sync::Arc::new(MetricEvent {
                    metric_id: format!("{}-{ts}", metric_type.id_prefix()),
                    metric_type,
                    timestamp: ts,
                    timestamp_ms: Some(t_ms),
                    value: (value * 100.0).round() / 100.0,
                    unit: None,
                    instance_id: format!("i-{:06}", 100_000 + instance * 7),
                    region: ["eu-west-1", "us-east-1", "ap-south-1"][instance % 3].to_string(),
                    collected_at: shardline_core::time::format_rfc3339_ms(t_ms),
                }),
            }
        })
        .collect()
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` on Linux: on a
/// busy machine it shows what the encoding costs apart from waiting for a core.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rows: usize = match args.next() {
        Some(a) => a
            .replace('_', "")
            .parse()
            .map_err(|_| format!("`{a}` is not a row count; pass e.g. 1000000"))?,
        None => 1_000_000,
    };
    let compression = match args.next().as_deref() {
        None | Some("zstd") => ParquetCompression::Zstd,
        Some("snappy") => ParquetCompression::Snappy,
        Some(other) => return Err(format!("`{other}` is not a codec; use zstd or snappy").into()),
    };
    let threads: usize = match args.next() {
        Some(a) => a
            .parse()
            .ok()
            .filter(|&t| t >= 1)
            .ok_or_else(|| format!("`{a}` is not a thread count; pass e.g. 2"))?,
        None => encode_threads(),
    };
    let opts = EncodeOptions {
        compression,
        ..EncodeOptions::default()
    };
    let records = synthetic(rows);
    let refs: Vec<&SinkRecord> = records.iter().collect();

    // Best of three runs: the first also pays for first-touch page faults of the buffers.
    let props = writer_properties(&opts)?;
    let mut best: Option<(f64, f64, usize)> = None;
    let cpu_before = cpu_seconds();
    for _ in 0..3 {
        let started = Instant::now();
        let batch = metric_batch(&refs)?;
        let built = started.elapsed().as_secs_f64();
        let body = encode_batch_with_threads(&batch, props.clone(), threads)?;
        let total = started.elapsed().as_secs_f64();
        if best.is_none_or(|(t, _, _)| total < t) {
            best = Some((total, built, body.len()));
        }
    }
    let cpu_per_run = match (cpu_before, cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:.3}s", (b - a) / 3.0),
        _ => "n/a".to_string(),
    };
    let (secs, built, bytes) = best.unwrap_or_default();
    println!(
        "rows={rows} codec={compression:?} threads={threads} arrays+sort={built:.3}s \
         encode={:.3}s total={secs:.3}s bytes={bytes} ({:.1} B/row) rows/s={:.0} cpu/run={cpu_per_run}",
        secs - built,
        bytes as f64 / rows.max(1) as f64,
        rows as f64 / secs
    );
    Ok(())
}
