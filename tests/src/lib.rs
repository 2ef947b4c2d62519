//! Support code for the integration tests in `tests/tests/`.
//!
//! Everything here reads what a user of the pipeline would look at: the Parquet files on disk,
//! the table, the per-minute statistics, the dead letters, the outbox and the log itself. The
//! pipeline under test is always the real one ([`shardline::pipeline::Pipeline`]) opened on a
//! temporary data directory from a `shardline.toml` written by [`TestEnv::new`].
//!
//! Invariants the helpers rely on:
//! - one [`TestEnv`] owns one data directory; it is removed when the env is dropped;
//! - a data directory is opened by at most one `Pipeline` at a time (the embedded stores lock
//!   their files), so helpers take the open pipeline rather than opening their own.

use anyhow::{Context, Result, bail};
use arrow::array::{Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shardline::config::Config;
use shardline::pipeline::Pipeline;
use shardline::wiring;
use shardline_consumers::runtime::ConsumerReport;
use shardline_core::ports::StatisticsQuery;
use shardline_core::{PutRecordResult, PutRecordsEntry, SequenceNumber, ShardId};
use shardline_local::{Envelope, OutboxNotifier};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The CloudWatch namespace the tests' pipelines publish to.
pub const NAMESPACE: &str = "InfraMonitoring";
/// The table the DynamoDB sink writes.
pub const TABLE: &str = "InfraMetrics";

/// Base configuration: the synthetic collector only (8 instances), 4 shards, the outbox
/// notifier, no flow schedule, short polling so that draining is quick.
pub const BASE_TOML: &str = include_str!("../fixtures/fast-pipeline.toml");

/// A temporary data directory with a `shardline.toml` and the configuration loaded from it.
pub struct TestEnv {
    /// Holds the directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The loaded configuration.
    pub config: Config,
}

impl TestEnv {
    /// Writes [`BASE_TOML`] followed by `extra` (more sections, or keys of new sections) to
    /// `<tmp>/shardline.toml` and loads it with the data directory `<tmp>/data`.
    ///
    /// # Errors
    /// When the directory cannot be created or the configuration is rejected.
    pub fn new(extra: &str) -> Result<TestEnv> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let file = dir.path().join("shardline.toml");
        std::fs::write(&file, format!("{BASE_TOML}\n{extra}\n"))
            .with_context(|| format!("cannot write {}", file.display()))?;
        let data = dir.path().join("data");
        let config = Config::load(Some(&file), Some(&data))?;
        Ok(TestEnv { dir, config })
    }

    /// Opens the pipeline on this env's data directory.
    ///
    /// # Errors
    /// As [`Pipeline::open`].
    pub async fn open(&self) -> Result<Pipeline> {
        Pipeline::open(self.config.clone()).await
    }
}

/// The longest [`drain_all`] may take.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs every enabled consumer of `p` until it is caught up; reports sorted by consumer name.
///
/// # Errors
/// When a consumer fails or panics, or the drain takes longer than [`DRAIN_TIMEOUT`].
pub async fn drain_all(p: &Pipeline) -> Result<Vec<ConsumerReport>> {
    tokio::time::timeout(DRAIN_TIMEOUT, drain_all_unbounded(p))
        .await
        .with_context(|| format!("the consumers did not catch up within {DRAIN_TIMEOUT:?}"))?
}

async fn drain_all_unbounded(p: &Pipeline) -> Result<Vec<ConsumerReport>> {
    let mut tasks = tokio::task::JoinSet::new();
    for consumer in p.consumers()? {
        tasks.spawn(consumer.drain());
    }
    let mut reports = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        reports.push(joined.context("a consumer task panicked")??);
    }
    reports.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    Ok(reports)
}

/// One Parquet row, the columns the tests compare.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub struct Row {
    /// `shard_id`.
    pub shard_id: String,
    /// `sequence_number`.
    pub sequence_number: String,
    /// `metric_type`.
    pub metric_type: String,
    /// `instance_id`.
    pub instance_id: String,
    /// `region`.
    pub region: String,
    /// `timestamp` (epoch seconds).
    pub timestamp: i64,
    /// `value`.
    pub value: f64,
}

/// Every `*.parquet` file under `root`, sorted.
///
/// # Errors
/// When a directory cannot be read.
pub fn parquet_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn strings(batch: &arrow::record_batch::RecordBatch, name: &str) -> Result<StringArray> {
    let col = batch
        .column_by_name(name)
        .with_context(|| format!("Parquet batch has no column `{name}`"))?;
    let cast = arrow::compute::cast(col, &DataType::Utf8)?;
    cast.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .with_context(|| format!("column `{name}` is not a string column"))
}

/// Reads every row of one Parquet file with the `parquet` crate.
///
/// # Errors
/// When the file cannot be opened or decoded, or lacks a column.
pub fn read_parquet_file(path: &Path) -> Result<Vec<Row>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not Parquet", path.display()))?
        .build()?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("cannot decode {}", path.display()))?;
        let (shard, seq, mt, inst, region) = (
            strings(&batch, "shard_id")?,
            strings(&batch, "sequence_number")?,
            strings(&batch, "metric_type")?,
            strings(&batch, "instance_id")?,
            strings(&batch, "region")?,
        );
        let ts = batch
            .column_by_name("timestamp")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .context("column `timestamp` is not int64")?;
        let value = batch
            .column_by_name("value")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .context("column `value` is not float64")?;
        for i in 0..batch.num_rows() {
            rows.push(Row {
                shard_id: shard.value(i).to_string(),
                sequence_number: seq.value(i).to_string(),
                metric_type: mt.value(i).to_string(),
                instance_id: inst.value(i).to_string(),
                region: region.value(i).to_string(),
                timestamp: ts.value(i),
                value: value.value(i),
            });
        }
    }
    Ok(rows)
}

/// Every row of every Parquet file under `root`.
///
/// # Errors
/// As [`read_parquet_file`].
pub fn read_parquet_dir(root: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for f in parquet_files(root)? {
        rows.extend(read_parquet_file(&f)?);
    }
    Ok(rows)
}

/// The Parquet root of a pipeline (`<data>/s3/<bucket>/metrics`).
pub fn parquet_root(p: &Pipeline) -> PathBuf {
    wiring::parquet_root(&p.config)
}

/// The sorted `(shard_id, sequence_number)` pairs of `rows`, failing if one appears twice.
///
/// # Errors
/// Names the first duplicated pair.
pub fn unique_keys(rows: &[Row]) -> Result<BTreeSet<(String, String)>> {
    let mut set = BTreeSet::new();
    for r in rows {
        if !set.insert((r.shard_id.clone(), r.sequence_number.clone())) {
            bail!(
                "row ({}, {}) is in the Parquet output twice",
                r.shard_id,
                r.sequence_number
            );
        }
    }
    Ok(set)
}

/// `SELECT COUNT(*) FROM metrics` through the query engine.
///
/// # Errors
/// When the query fails or returns no count.
pub async fn query_count(root: &Path) -> Result<u64> {
    let engine = shardline_query::QueryEngine::new(root)?;
    let batches = engine.sql("SELECT COUNT(*) AS n FROM metrics").await?;
    let batch = batches.first().context("COUNT(*) returned no batch")?;
    let n = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .context("COUNT(*) is not int64")?;
    Ok(u64::try_from(n.value(0))?)
}

/// Items in the `InfraMetrics` table.
///
/// # Errors
/// When the table cannot be counted.
pub async fn table_count(p: &Pipeline) -> Result<u64> {
    Ok(p.backends.table.count(TABLE).await?)
}

/// The sum of `SampleCount` over every (metric, instance, region) seen in `rows`, over one
/// period covering every row's time (±2 days).
///
/// # Errors
/// When the statistics cannot be read.
pub async fn sample_count_sum(p: &Pipeline, rows: &[Row]) -> Result<f64> {
    let series: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.metric_type.clone(),
                r.instance_id.clone(),
                r.region.clone(),
            )
        })
        .collect();
    let min = rows.iter().map(|r| r.timestamp).min().unwrap_or(0) * 1000;
    let start_ms = (min - 2 * 86_400_000).div_euclid(60_000) * 60_000;
    let period_secs = 6 * 86_400;
    let mut total = 0.0;
    for (metric, instance, region) in series {
        let q = StatisticsQuery {
            namespace: NAMESPACE.into(),
            metric_name: metric,
            dimensions: BTreeMap::from([
                ("InstanceID".to_string(), instance),
                ("Region".to_string(), region),
            ]),
            start_ms,
            end_ms: start_ms + i64::from(period_secs) * 1000,
            period_secs,
        };
        for d in p.backends.metrics.get_metric_statistics(&q).await? {
            total += d.values.sample_count;
        }
    }
    Ok(total)
}

/// Records held by the log for the pipeline's stream (sum over shards).
///
/// # Errors
/// When the stream cannot be described.
pub async fn log_records(p: &Pipeline) -> Result<u64> {
    let stats = p.embedded_log()?.shard_stats(&p.config.stream.name).await?;
    Ok(stats.iter().map(|s| s.next_offset - s.trim_offset).sum())
}

/// The default outbox file of a data directory.
pub fn outbox_path(data_dir: &Path) -> PathBuf {
    data_dir.join("notifications").join("outbox.jsonl")
}

/// Every envelope in the data directory's outbox.
///
/// # Errors
/// When the outbox cannot be read.
pub fn outbox(data_dir: &Path) -> Result<Vec<Envelope>> {
    Ok(OutboxNotifier::read_all(&outbox_path(data_dir))?)
}

/// Fails if two outbox envelopes carry the same deduplication id; returns how many had one.
///
/// # Errors
/// Names the repeated id.
pub fn check_unique_dedup_ids(envelopes: &[Envelope]) -> Result<usize> {
    let mut seen = BTreeSet::new();
    for e in envelopes {
        if let Some(id) = &e.deduplication_id
            && !seen.insert(id.clone())
        {
            bail!("notification with deduplication id {id} is in the outbox twice");
        }
    }
    Ok(seen.len())
}

/// Appends each of `lines` as one record with partition key `key` (so all land in one shard,
/// in order); returns each record's shard and sequence number.
///
/// # Errors
/// When the append fails or any record is rejected.
pub async fn put_raw(
    p: &Pipeline,
    key: &str,
    lines: &[String],
) -> Result<Vec<(ShardId, SequenceNumber)>> {
    let entries = lines
        .iter()
        .map(|l| PutRecordsEntry {
            partition_key: key.into(),
            explicit_hash_key: None,
            data: l.as_bytes().to_vec().into(),
        })
        .collect();
    let results = p
        .stream()
        .put_records(&p.config.stream.name, entries)
        .await?;
    results
        .into_iter()
        .map(|r| match r {
            PutRecordResult::Ok {
                shard_id,
                sequence_number,
            } => Ok((shard_id, sequence_number)),
            PutRecordResult::Err {
                error_code,
                error_message,
            } => bail!("record rejected: {error_code}: {error_message}"),
        })
        .collect()
}
