//! Times the seed's two Athena queries over generated Parquet data.
//!
//! Usage: `cargo run --release -p shardline-query --example query_bench -- [ROWS] [--dir DIR] [--runs N]
//! [--set KEY=VALUE]... [--reuse] [--analyze]`
//!
//! Writes ROWS (default 10,000,000) metric rows for 1,000 instances over 7 days into
//! `DIR/year=2026/month=02/day=DD/part-K.parquet` (4 files a day; ZSTD, dictionary encoding, page
//! statistics; rows sorted by instance_id then timestamp), then runs each query once on a fresh
//! engine (cold) and N more times on the same engine (warm), and prints a markdown table.
//! Without `--dir` the data goes to a temporary directory that is removed afterwards.
//! `--set` runs `SET KEY = VALUE` on each engine first (e.g.
//! `--set datafusion.execution.parquet.pushdown_filters=true`), `--reuse` times the files already
//! under `--dir` instead of writing them, `--analyze` prints `EXPLAIN ANALYZE` of both queries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use shardline_core::MetricType;
use shardline_query::QueryEngine;

const Q1: &str = "SELECT 
  instance_id,
  AVG(value) as avg_cpu,
  MAX(value) as max_cpu,
  MIN(value) as min_cpu
FROM infra_monitoring.metrics
WHERE metric_type = 'cpu_utilization'
GROUP BY instance_id
ORDER BY avg_cpu DESC;";

const Q2: &str = "SELECT 
  from_unixtime(timestamp) as time,
  metric_type,
  AVG(value) as avg_value
FROM infra_monitoring.metrics
GROUP BY timestamp, metric_type
ORDER BY timestamp DESC
LIMIT 100;";

const INSTANCES: usize = 1_000;
const DAYS: usize = 7;
const FILES_PER_DAY: usize = 4;
/// 2026-02-16T00:00:00Z.
const START: i64 = 1_771_200_000;
const BATCH_ROWS: usize = 65_536;

/// One generated row: instance number, epoch second, index into `MetricType::ALL`, value.
type GenRow = (u32, i64, usize, f64);

struct Args {
    rows: usize,
    dir: Option<PathBuf>,
    runs: usize,
    /// `SET` statements run on each engine before timing (`--set key=value`).
    sets: Vec<String>,
    /// Reuse the files already under `--dir` instead of generating them.
    reuse: bool,
    /// Print `EXPLAIN ANALYZE` of each query after the timings.
    analyze: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rows: 10_000_000,
        dir: None,
        runs: 3,
        sets: Vec::new(),
        reuse: false,
        analyze: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => args.dir = Some(it.next().ok_or("--dir needs a path")?.into()),
            "--set" => {
                let kv = it.next().ok_or("--set needs key=value")?;
                let (k, v) = kv.split_once('=').ok_or("--set needs key=value")?;
                args.sets.push(format!("SET {k} = {v}"));
            }
            "--reuse" => args.reuse = true,
            "--analyze" => args.analyze = true,
            "--runs" => {
                let v = it.next().ok_or("--runs needs a number")?;
                args.runs = v.parse().map_err(|_| format!("--runs {v}: not a number"))?;
            }
            n => args.rows = n.replace('_', "").parse().map_err(|_| {
                format!(
                    "`{n}` is not a row count (usage: query_bench [ROWS] [--dir DIR] [--runs N] [--set K=V]... [--reuse] [--analyze])"
                )
            })?,
        }
    }
    Ok(args)
}

/// Columns of `metric_schema()` for rows (instance, timestamp, type index, value).
fn to_batch(rows: &[GenRow]) -> Result<RecordBatch, Box<dyn std::error::Error>> {
    let ty = |i: usize| MetricType::ALL[i];
    let strings = |f: &dyn Fn(&GenRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let ms: Vec<i64> = rows.iter().map(|r| r.1 * 1000).collect();
    let cols: Vec<ArrayRef> = vec![
        strings(&|r| format!("{}-{}", ty(r.2).id_prefix(), r.1)),
        strings(&|r| ty(r.2).as_str().to_string()),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
        strings(&|r| format!("i-{}", r.0)),
        strings(&|_| "eu-west-1".to_string()),
        strings(&|r| shardline_core::time::format_rfc3339_ms(r.1 * 1000)),
        Arc::new(TimestampMillisecondArray::from(ms.clone()).with_timezone("UTC")),
        strings(&|r| ty(r.2).unit().as_str().to_string()),
        strings(&|_| "shardId-000000000000".to_string()),
        strings(&|r| r.1.to_string()),
        Arc::new(TimestampMillisecondArray::from(ms).with_timezone("UTC")),
    ];
    Ok(RecordBatch::try_new(
        shardline_core::schema::metric_schema(),
        cols,
    )?)
}

/// Writes the data set; returns bytes on disk.
fn generate(root: &Path, rows: usize) -> Result<u64, Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(42);
    let files = DAYS * FILES_PER_DAY;
    // Each (instance, timestamp) sample yields 4 rows, one per metric type.
    let samples_per_file = rows.div_ceil(files * 4 * INSTANCES).max(1);
    let slice = 86_400 / FILES_PER_DAY as i64;
    let step = (slice / samples_per_file as i64).max(1);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    let mut written = 0usize;
    let mut bytes = 0u64;
    for f in 0..files {
        if written >= rows {
            break;
        }
        let (day, part) = (f / FILES_PER_DAY, f % FILES_PER_DAY);
        let dir = root.join(format!("year=2026/month=02/day={:02}", 16 + day));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("part-{part}.parquet"));
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(&path)?,
            shardline_core::schema::metric_schema(),
            Some(props.clone()),
        )?;
        let t0 = START + day as i64 * 86_400 + part as i64 * slice;
        let mut buf = Vec::with_capacity(BATCH_ROWS);
        // Sorted by instance_id (ids share a width, so numeric order is text order), then time.
        'file: for inst in 0..INSTANCES as u32 {
            for s in 0..samples_per_file as i64 {
                for t in 0..4 {
                    if written >= rows {
                        break 'file;
                    }
                    let (lo, hi) = MetricType::ALL[t].seed_range();
                    let v = (rng.random_range(lo..=hi) * 100.0).round() / 100.0;
                    buf.push((100_000 + inst, t0 + s * step, t, v));
                    written += 1;
                    if buf.len() == BATCH_ROWS {
                        w.write(&to_batch(&buf)?)?;
                        buf.clear();
                    }
                }
            }
        }
        if !buf.is_empty() {
            w.write(&to_batch(&buf)?)?;
        }
        w.close()?;
        bytes += std::fs::metadata(&path)?.len();
    }
    Ok(bytes)
}

async fn time_query(
    engine: &QueryEngine,
    q: &str,
) -> Result<(Duration, usize), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let batches = engine.sql(q).await?;
    Ok((t.elapsed(), batches.iter().map(|b| b.num_rows()).sum()))
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let tmp = tempfile::tempdir()?;
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| tmp.path().join("metrics"));
    if args.reuse && args.dir.is_some() {
        println!("reusing the files under {}\n", root.display());
    } else {
        let t = Instant::now();
        let bytes = generate(&root, args.rows)?;
        println!(
            "generated {} rows, {} files, {:.1} MiB in {:.1} s under {}\n",
            args.rows,
            DAYS * FILES_PER_DAY,
            bytes as f64 / (1024.0 * 1024.0),
            t.elapsed().as_secs_f64(),
            root.display()
        );
    }
    println!("| query | result rows | cold (ms) | warm best (ms) | warm median (ms) | warm runs |");
    println!("|---|---|---|---|---|---|");
    for (name, q) in [
        ("Q1 avg/max/min cpu by instance", Q1),
        ("Q2 avg by timestamp, type (LIMIT 100)", Q2),
    ] {
        let cold_engine = QueryEngine::new(&root)?;
        for set in &args.sets {
            cold_engine.sql(set).await?;
        }
        let (cold, n) = time_query(&cold_engine, q).await?;
        let mut warm = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            warm.push(time_query(&cold_engine, q).await?.0);
        }
        warm.sort();
        let best = warm.first().copied().unwrap_or_default();
        let median = warm.get(warm.len() / 2).copied().unwrap_or_default();
        println!(
            "| {name} | {n} | {} | {} | {} | {} |",
            ms(cold),
            ms(best),
            ms(median),
            args.runs
        );
    }
    if args.analyze {
        let engine = QueryEngine::new(&root)?;
        for set in &args.sets {
            engine.sql(set).await?;
        }
        for q in [Q1, Q2] {
            let text = format!("EXPLAIN ANALYZE {}", q.trim_end_matches(';'));
            let out = engine.sql(&text).await?;
            println!(
                "\n{}",
                shardline_query::format_batches(&out, shardline_query::OutputFormat::Table)?
            );
        }
    }
    Ok(())
}
