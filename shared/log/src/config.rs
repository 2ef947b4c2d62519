//! The log's configuration as it appears in a TOML file: every field optional, sizes as text.
//!
//! ```toml
//! durability = "fsync"            # or "buffered"
//! segment_size = "64MiB"
//! index_interval = "4KiB"
//! enforce_throughput_limits = false
//! ```
//! Sizes take `B`, `KiB`, `MiB`, `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shardline_core::time::Clock;

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
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            durability: Durability::Fsync,
            segment_size: "64MiB".into(),
            index_interval: "4KiB".into(),
            enforce_throughput_limits: false,
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
            segment_bytes: parse_size("segment_size", &self.segment_size)?,
            index_interval_bytes: parse_size("index_interval", &self.index_interval)?,
            enforce_throughput_limits: self.enforce_throughput_limits,
            clock,
        };
        options.validate()?;
        Ok(options)
    }
}

/// Parses a size such as `64MiB`, `512KB` or `4096`.
///
/// # Errors
/// [`LogError::InvalidArgument`] naming the field and the accepted forms.
pub fn parse_size(field: &str, text: &str) -> Result<u64, LogError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => u64::MAX,
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|_| mult != u64::MAX)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            LogError::InvalidArgument(format!(
                "{field} = \"{text}\" is not a size; write e.g. \"64MiB\", \"4KiB\", \"500MB\" or \"4096\""
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::time::SystemClock;

    #[test]
    fn parses_sizes_and_names_bad_ones() {
        assert_eq!(parse_size("x", "64MiB").ok(), Some(64 << 20));
        assert_eq!(parse_size("x", "4 KiB").ok(), Some(4096));
        assert_eq!(parse_size("x", "500MB").ok(), Some(500_000_000));
        assert_eq!(parse_size("x", "123").ok(), Some(123));
        let err = parse_size("segment_size", "lots")
            .expect_err("bad")
            .to_string();
        assert!(
            err.contains("segment_size") && err.contains("64MiB"),
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
        assert!(serde_json::from_str::<LogConfig>(r#"{"segment_bytes":"1"}"#).is_err());
        let tiny = LogConfig {
            segment_size: "10B".into(),
            ..LogConfig::default()
        };
        assert!(tiny.to_options(Arc::new(SystemClock)).is_err());
    }
}
