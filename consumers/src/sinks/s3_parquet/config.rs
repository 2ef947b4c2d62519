//! Configuration of the S3 Parquet sink.
//!
//! ```toml
//! bucket = "infra-monitoring-pipeline-data"
//! prefix = "metrics"
//! buffer_size = "8MiB"
//! buffer_interval = "60s"
//! compression = "zstd"     # or "snappy"
//! zstd_level = 1
//! page_size = "1MiB"
//! raw_json_archive = false
//! flushes_in_flight = 1
//! ```

use serde::{Deserialize, Serialize};
use shardline_core::Error;
use std::time::Duration;

use shardline_core::units;

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParquetCompression {
    /// Zstandard (default): smaller objects.
    #[serde(alias = "ZSTD")]
    Zstd,
    /// Snappy: faster, larger.
    #[serde(alias = "SNAPPY")]
    Snappy,
}

/// Default [`S3ParquetConfig::page_size`]: Parquet writers' usual 1 MiB.
pub const DEFAULT_PAGE_SIZE: u64 = 1 << 20;

/// Bounds of [`S3ParquetConfig::page_size`].
const PAGE_SIZES: std::ops::RangeInclusive<u64> = (4 << 10)..=(64 << 20);

/// How the S3 Parquet sink buffers and where it writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3ParquetConfig {
    /// The bucket (the seed's `infra-monitoring-pipeline-data` by default).
    pub bucket: String,
    /// Key prefix of the Parquet objects (`metrics`).
    pub prefix: String,
    /// Flush a shard's buffer when its buffered bytes reach this size.
    #[serde(with = "units::size")]
    pub buffer_size: u64,
    /// Flush a shard's buffer when it is older than this.
    #[serde(with = "units::duration")]
    pub buffer_interval: Duration,
    /// Compression codec.
    pub compression: ParquetCompression,
    /// ZSTD level (1 to 22); ignored for Snappy.
    pub zstd_level: i32,
    /// Data page size limit of the Parquet columns (pyarrow's `data_page_size`; 4 KiB to
    /// 64 MiB). Smaller pages give finer page statistics and cost less CPU to encode here,
    /// for larger objects: 64 KiB measured ~10 % more bytes per 50k-row object than 1 MiB,
    /// and ~25 % fewer page faults end to end (BENCHMARKS.md).
    #[serde(with = "units::size")]
    pub page_size: u64,
    /// Also write the seed's JSON Lines archive under `raw_prefix`.
    pub raw_json_archive: bool,
    /// Key prefix of the JSON Lines archive (`raw-metrics`).
    pub raw_prefix: String,
    /// Shard flushes whose objects are written at once, in the background while the next
    /// records are buffered (each holds its rows' columns and encoded pages in memory).
    pub flushes_in_flight: usize,
}

impl Default for S3ParquetConfig {
    fn default() -> Self {
        Self {
            bucket: "infra-monitoring-pipeline-data".into(),
            prefix: "metrics".into(),
            buffer_size: 8 << 20,
            buffer_interval: Duration::from_secs(60),
            compression: ParquetCompression::Zstd,
            zstd_level: 1,
            page_size: DEFAULT_PAGE_SIZE,
            raw_json_archive: false,
            raw_prefix: "raw-metrics".into(),
            flushes_in_flight: 1,
        }
    }
}

impl S3ParquetConfig {
    /// Checks the values the sink cannot run with.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("s3 sink config: {m}")));
        if self.bucket.trim().is_empty() {
            return bad("`bucket` is empty".into());
        }
        for (name, p) in [("prefix", &self.prefix), ("raw_prefix", &self.raw_prefix)] {
            if p.is_empty() || p.starts_with('/') || p.ends_with('/') || p.contains("..") {
                return bad(format!(
                    "`{name}` = {p:?} must be a non-empty key prefix without leading or trailing `/`"
                ));
            }
        }
        if self.buffer_size == 0 {
            return bad("`buffer_size` must be above 0 (e.g. \"8MiB\")".into());
        }
        if !(1..=64).contains(&self.flushes_in_flight) {
            return bad(format!(
                "`flushes_in_flight` {} is outside 1..=64; use 1 to write one flush at a time",
                self.flushes_in_flight
            ));
        }
        if !PAGE_SIZES.contains(&self.page_size) {
            return bad(format!(
                "`page_size` {} bytes is outside 4KiB..=64MiB (e.g. \"1MiB\")",
                self.page_size
            ));
        }
        if !(1..=22).contains(&self.zstd_level) {
            return bad(format!(
                "`zstd_level` {} is outside 1..=22",
                self.zstd_level
            ));
        }
        Ok(())
    }
}
