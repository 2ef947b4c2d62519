//! Opens the backends the configuration names. This is the one place that chooses them:
//! producers, consumers and the flow see only the ports.

use anyhow::{Context, Result};
use shardline_local::LocalBackends;
use shardline_log::{Log, LogOptions};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, Durability};

/// Opens the embedded log under `<data>/log` (recovery runs here).
pub async fn open_log(config: &Config) -> Result<Arc<Log>> {
    let options = LogOptions {
        durability: match config.stream.durability {
            Durability::Fsync => shardline_log::Durability::Fsync,
            Durability::Buffered => shardline_log::Durability::Buffered,
        },
        segment_bytes: config.stream.segment_size.bytes(),
        open_sealed_segments: config.stream.open_sealed_segments,
        enforce_throughput_limits: config.stream.enforce_limits,
        ..LogOptions::default()
    };
    let dir = config.log_dir();
    let log = Log::open(&dir, options)
        .await
        .with_context(|| format!("cannot open the log in {}", dir.display()))?;
    Ok(Arc::new(log))
}

/// Opens the embedded stand-ins (objects, table, metrics, checkpoints, dead letters, state).
pub fn open_backends(config: &Config) -> Result<LocalBackends> {
    LocalBackends::open(&config.data_dir, config.local.clone()).with_context(|| {
        format!(
            "cannot open the embedded backends in {}",
            config.data_dir.display()
        )
    })
}

/// The directory holding the Hive-partitioned Parquet output.
pub fn parquet_root(config: &Config) -> PathBuf {
    let sink = &config.consumers.s3.sink;
    let mut root = config.data_dir.join("s3").join(&sink.bucket);
    for part in sink.prefix.split('/').filter(|p| !p.is_empty()) {
        root.push(part);
    }
    root
}
