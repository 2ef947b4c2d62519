//! How a [`crate::Log`] is opened: durability, segment size, index density, limits, open
//! handles, clock.

use std::sync::Arc;
use std::time::Duration;

use shardline_core::time::{Clock, SystemClock};

/// When an append is acknowledged. In configuration: `"fsync"` or `"buffered"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Each group-commit batch is written and `fdatasync`ed before any of its records is
    /// acknowledged: an acknowledged record survives power loss.
    #[default]
    Fsync,
    /// Each batch is written to the OS before acknowledging, without `fdatasync`: records
    /// survive a process crash but not power loss. For benchmarks that say so.
    Buffered,
}

/// Default of [`LogOptions::open_sealed_segments`]: enough for a few readers per shard of a
/// few streams reading old data at once, far below usual descriptor limits.
pub const DEFAULT_OPEN_SEALED_SEGMENTS: usize = 64;

/// Default of [`LogOptions::sealed_handle_idle`].
pub const DEFAULT_SEALED_HANDLE_IDLE: Duration = Duration::from_secs(60);

/// Options for [`crate::Log::open`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// When appends are acknowledged.
    pub durability: Durability,
    /// A segment is sealed and a new one started once it holds at least this many bytes.
    pub segment_bytes: u64,
    /// A sparse index entry is written every this many segment bytes.
    pub index_interval_bytes: u64,
    /// Enforce Kinesis's per-shard write limits (1 MiB/s and 1,000 records/s).
    pub enforce_throughput_limits: bool,
    /// Read handles of sealed segments kept open (a least-recently-used cache shared by every
    /// shard). The log holds at most this many descriptors for sealed segments, plus one per
    /// shard (its active segment) and those of reads in progress. 0 opens a handle per read.
    pub open_sealed_segments: usize,
    /// A cached read handle of a sealed segment unused this long (on `clock`) is closed, at
    /// the cache's next use or the next retention pass, so readers that keep up hold about
    /// one sealed handle per shard in a long run. Zero: kept until the cache is full.
    pub sealed_handle_idle: Duration,
    /// The source of arrival times and of "now" for retention.
    pub clock: Arc<dyn Clock>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            durability: Durability::Fsync,
            segment_bytes: 64 * 1024 * 1024,
            index_interval_bytes: 4096,
            enforce_throughput_limits: false,
            open_sealed_segments: DEFAULT_OPEN_SEALED_SEGMENTS,
            sealed_handle_idle: DEFAULT_SEALED_HANDLE_IDLE,
            clock: Arc::new(SystemClock),
        }
    }
}

impl LogOptions {
    /// Checks the options, naming the one that is out of range.
    pub(crate) fn validate(&self) -> Result<(), crate::LogError> {
        if self.segment_bytes < 1024 {
            return Err(crate::LogError::InvalidArgument(format!(
                "segment_bytes must be at least 1024 bytes, got {}",
                self.segment_bytes
            )));
        }
        if self.index_interval_bytes == 0 {
            return Err(crate::LogError::InvalidArgument(
                "index_interval_bytes must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
