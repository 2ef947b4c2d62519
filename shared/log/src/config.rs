//! The log's configuration as it appears in a TOML file: every field optional, sizes as text.
//!
//! ```toml
//! durability = "fsync"            # or "buffered"
//! segment_size = "64MiB"
//! index_interval = "4KiB"
//! enforce_throughput_limits = false
//! open_sealed_segments = 64       # read handles of sealed segments kept open
//! sealed_handle_idle = "60s"      # ... each closed once unused this long ("0s": never)
//! ```
//! Sizes are read by [`shardline_core::units::parse_size`]: `B`, `KiB`, `MiB`, `GiB` (powers of
//! 1024), `KB`, `MB`, `GB` (powers of 1000), or a plain number of bytes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shardline_core::time::Clock;
use shardline_core::units::parse_size;

use crate::error::LogError;
use crate::options::{Durability, LogOptions};

/// Serde form of [`LogOptions`] (without the clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// When appends are acknowledged.
    pub durability: Durability,
    /// Segment size before rolling, e.g. `"64MiB"`.
    pub segment_size: String,
    /// Bytes between sparse index entries, e.g. `"4KiB"`.
    pub index_interval: String,
    /// Enforce Kinesis's per-shard write limits.
    pub enforce_throughput_limits: bool,
    /// Read handles of sealed segments kept open (see [`LogOptions::open_sealed_segments`]).
    pub open_sealed_segments: usize,
    /// How long a cached read handle may stay unused, e.g. `"60s"` (see
    /// [`LogOptions::sealed_handle_idle`]).
    pub sealed_handle_idle: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            durability: Durability::Fsync,
            segment_size: "64MiB".into(),
            index_interval: "4KiB".into(),
            enforce_throughput_limits: false,
            open_sealed_segments: crate::options::DEFAULT_OPEN_SEALED_SEGMENTS,
            sealed_handle_idle: shardline_core::units::format_duration(
                crate::options::DEFAULT_SEALED_HANDLE_IDLE,
            ),
        }
    }
}

impl LogConfig {
    /// The options this configuration describes, with `clock` for time.
    ///
    /// # Errors
    /// [`LogError::InvalidArgument`] naming a size that does not parse or is out of range.
    pub fn to_options(&self, clock: Arc<dyn Clock>) -> Result<LogOptions, LogError> {
        let options = LogOptions {
            durability: self.durability,
            segment_bytes: size("segment_size", &self.segment_size)?,
            index_interval_bytes: size("index_interval", &self.index_interval)?,
            enforce_throughput_limits: self.enforce_throughput_limits,
            open_sealed_segments: self.open_sealed_segments,
            sealed_handle_idle: shardline_core::units::parse_duration(&self.sealed_handle_idle)
                .map_err(|e| LogError::InvalidArgument(format!("sealed_handle_idle: {e}")))?,
            clock,
        };
        options.validate()?;
        Ok(options)
    }
}

/// Parses the size in `field` with [`shardline_core::units::parse_size`].
fn size(field: &str, text: &str) -> Result<u64, LogError> {
    parse_size(text).map_err(|e| LogError::InvalidArgument(format!("{field}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::time::SystemClock;

    #[test]
    fn parses_sizes_and_names_bad_ones() {
        assert_eq!(size("x", "64MiB").ok(), Some(64 << 20));
        assert_eq!(size("x", "4 KiB").ok(), Some(4096));
        assert_eq!(size("x", "500MB").ok(), Some(500_000_000));
        assert_eq!(size("x", "123").ok(), Some(123));
        let err = size("segment_size", "lots").expect_err("bad").to_string();
        assert!(
            err.contains("segment_size") && err.contains("`lots`") && err.contains("64MiB"),
            "{err}"
        );
        let bad = LogConfig {
            index_interval: "4 parsecs".into(),
            ..LogConfig::default()
        };
        let err = bad
            .to_options(Arc::new(SystemClock))
            .expect_err("bad interval")
            .to_string();
        assert!(
            err.contains("index_interval") && err.contains("`4 parsecs`"),
            "{err}"
        );
    }

    #[test]
    fn defaults_match_log_options_and_unknown_fields_are_refused() {
        let c: LogConfig = serde_json::from_str(r#"{"durability":"buffered"}"#).expect("parse");
        let o = c.to_options(Arc::new(SystemClock)).expect("options");
        assert_eq!(o.durability, Durability::Buffered);
        assert_eq!(o.segment_bytes, LogOptions::default().segment_bytes);
        assert_eq!(
            o.index_interval_bytes,
            LogOptions::default().index_interval_bytes
        );
        assert_eq!(o.open_sealed_segments, 64);
        assert_eq!(
            o.sealed_handle_idle,
            LogOptions::default().sealed_handle_idle
        );
        let c: LogConfig = serde_json::from_str(r#"{"open_sealed_segments":3}"#).expect("parse");
        assert_eq!(
            c.to_options(Arc::new(SystemClock))
                .expect("options")
                .open_sealed_segments,
            3
        );
        assert!(serde_json::from_str::<LogConfig>(r#"{"segment_bytes":"1"}"#).is_err());
        let tiny = LogConfig {
            segment_size: "10B".into(),
            ..LogConfig::default()
        };
        assert!(tiny.to_options(Arc::new(SystemClock)).is_err());
    }
}
