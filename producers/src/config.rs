//! Configuration of the collectors and the producer (serde, TOML-friendly).
//!
//! Every struct rejects unknown keys and fills absent ones with the defaults documented on
//! each field. Durations are written as text (`"50ms"`, `"5s"`), sizes as text with a binary
//! or decimal unit (`"64MiB"`, `"5MB"`) or a bare number of bytes.

use serde::{Deserialize, Serialize};
use shardline_core::units;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;

/// A size in bytes, written like `"64MiB"` (see [`shardline_core::units`]).
pub use shardline_core::units::ByteSize;

/// Settings of the [`crate::SyntheticCollector`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// How many simulated instances report on every collection (default 4, at most 900,000).
    /// Their `i-NNNNNN` ids are drawn once from the random source and repeat across collections.
    pub instances: usize,
    /// Region written on every event (default `eu-west-1`).
    pub region: String,
    /// Share of the generated events replaced by malformed records, 0 to 1 (default 0): a
    /// load-test setting that makes the consumers dead-letter under load. A malformed record
    /// keeps its event's instance id as partition key and is, in turn, cut-off JSON, an unknown
    /// metric type, a timestamp that is not a positive epoch second, or a timestamp in the year
    /// 2100 (dead-lettered as `clock_skew`).
    pub malformed_fraction: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            instances: 4,
            region: "eu-west-1".to_string(),
            malformed_fraction: 0.0,
        }
    }
}

/// Settings of the [`crate::HostCollector`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Instance id written on events; default: the hostname from `/proc/sys/kernel/hostname`.
    pub instance_id: Option<String>,
    /// Region written on every event (default `eu-west-1`).
    pub region: String,
    /// Mount points whose space is summed into `disk_usage` (default `["/"]`).
    pub mounts: Vec<PathBuf>,
    /// Where procfs is mounted (default `/proc`).
    pub proc_root: PathBuf,
    /// On the first collection, how long to wait between the two counter reads that give CPU
    /// and network rates (default `"250ms"`).
    #[serde(with = "units::duration")]
    pub prime_interval: Duration,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            instance_id: None,
            region: "eu-west-1".to_string(),
            mounts: vec![PathBuf::from("/")],
            proc_root: PathBuf::from("/proc"),
            prime_interval: Duration::from_millis(250),
        }
    }
}

/// Whether records of one partition key may share a put_records call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderingMode {
    /// At most one record per partition key in each call, so a retried record can never be
    /// overtaken by a later record of the same key: per-instance order always holds.
    #[default]
    PerKey,
    /// Fill calls up to the limits regardless of keys: higher throughput with few keys, but a
    /// retried record lands after later records of its key that succeeded first.
    Unordered,
}

/// Settings of the [`crate::Producer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    /// Most records per put_records call (default and maximum 500).
    pub max_records_per_call: usize,
    /// Most bytes (data plus partition keys) per call (default and maximum `"5MiB"`).
    pub max_bytes_per_call: ByteSize,
    /// Bytes of records that may be in flight across concurrent sends before `send` waits
    /// (default `"64MiB"`, at least 1 MiB so any single record fits).
    pub max_in_flight_bytes: ByteSize,
    /// Attempts per record including the first (default 8).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles per retry (default `"50ms"`).
    #[serde(with = "units::duration")]
    pub base_backoff: Duration,
    /// Longest backoff between retries (default `"5s"`).
    #[serde(with = "units::duration")]
    pub max_backoff: Duration,
    /// Per-key ordering (default `per_key`).
    pub ordering: OrderingMode,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            max_records_per_call: shardline_core::stream::limits::MAX_RECORDS_PER_PUT,
            max_bytes_per_call: ByteSize(shardline_core::stream::limits::MAX_BYTES_PER_PUT as u64),
            max_in_flight_bytes: ByteSize::mib(64),
            max_attempts: 8,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            ordering: OrderingMode::PerKey,
        }
    }
}

impl ProducerConfig {
    /// Checks every value against its range.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use shardline_core::stream::limits;
        let out = |field, value: String, rule| Err(ConfigError::OutOfRange { field, value, rule });
        if !(1..=limits::MAX_RECORDS_PER_PUT).contains(&self.max_records_per_call) {
            return out(
                "max_records_per_call",
                self.max_records_per_call.to_string(),
                "1 to 500",
            );
        }
        if self.max_bytes_per_call.0 < limits::MAX_RECORD_BYTES as u64
            || self.max_bytes_per_call.0 > limits::MAX_BYTES_PER_PUT as u64
        {
            return out(
                "max_bytes_per_call",
                self.max_bytes_per_call.to_string(),
                "1MiB to 5MiB",
            );
        }
        if self.max_in_flight_bytes.0 < limits::MAX_RECORD_BYTES as u64
            || self.max_in_flight_bytes.0 > u64::from(u32::MAX)
        {
            return out(
                "max_in_flight_bytes",
                self.max_in_flight_bytes.to_string(),
                "1MiB to 4GiB",
            );
        }
        if self.max_attempts == 0 {
            return out("max_attempts", "0".into(), "at least 1");
        }
        if self.base_backoff > self.max_backoff {
            return out(
                "base_backoff",
                units::format_duration(self.base_backoff),
                "at most max_backoff",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!("64MiB".parse::<ByteSize>().ok(), Some(ByteSize::mib(64)));
        assert_eq!("5MB".parse::<ByteSize>().ok(), Some(ByteSize(5_000_000)));
        assert_eq!("1.5KiB".parse::<ByteSize>().ok(), Some(ByteSize(1536)));
        assert_eq!("12".parse::<ByteSize>().ok(), Some(ByteSize(12)));
        assert_eq!(ByteSize::mib(5).to_string(), "5MiB");
        let err = "5 parsecs".parse::<ByteSize>().expect_err("bad");
        assert!(err.to_string().contains("`5 parsecs`"), "{err}");
        let err = toml::from_str::<ProducerConfig>("max_bytes_per_call = \"2 MiBs\"")
            .expect_err("bad size");
        assert!(err.to_string().contains("`2 MiBs` is not a size"), "{err}");
        let n: ProducerConfig = toml::from_str("max_bytes_per_call = 2097152").expect("bytes");
        assert_eq!(n.max_bytes_per_call, ByteSize::mib(2));
    }

    #[test]
    fn producer_config_reads_toml_with_defaults() {
        let cfg: ProducerConfig = toml::from_str(
            "max_in_flight_bytes = \"8MiB\"\nbase_backoff = \"10ms\"\nordering = \"unordered\"",
        )
        .expect("valid toml");
        assert_eq!(cfg.max_in_flight_bytes, ByteSize::mib(8));
        assert_eq!(cfg.base_backoff, Duration::from_millis(10));
        assert_eq!(cfg.ordering, OrderingMode::Unordered);
        assert_eq!(cfg.max_records_per_call, 500);
        assert!(cfg.validate().is_ok());

        let err = toml::from_str::<ProducerConfig>("max_inflight = 3").expect_err("unknown key");
        assert!(err.to_string().contains("max_inflight"), "{err}");
        let err = toml::from_str::<ProducerConfig>("max_backoff = \"soon\"").expect_err("bad");
        assert!(err.to_string().contains("`soon`"), "{err}");

        let bad = ProducerConfig {
            max_records_per_call: 501,
            ..ProducerConfig::default()
        };
        let err = bad.validate().expect_err("out of range");
        assert!(
            err.to_string().contains("max_records_per_call = 501"),
            "{err}"
        );
    }

    #[test]
    fn collector_configs_default_to_the_seed_region() {
        let s: SyntheticConfig = toml::from_str("instances = 10").expect("valid");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.instances, 10);
        let h: HostConfig = toml::from_str("prime_interval = \"100ms\"").expect("valid");
        assert_eq!(h.mounts, vec![PathBuf::from("/")]);
        assert_eq!(h.prime_interval, Duration::from_millis(100));
    }
}
