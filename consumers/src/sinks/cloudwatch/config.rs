//! Configuration of the CloudWatch sink.

use serde::{Deserialize, Serialize};
use shardline_core::{Error, Result, units};
use std::time::Duration;

use crate::sinks::buffer::{self, BufferPolicy};

/// CloudWatch's limit of datums per PutMetricData call.
pub const MAX_DATUMS_PER_CALL: usize = 1000;

/// `[sinks.cloudwatch]`: namespace and the watermark's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudWatchConfig {
    /// Metric namespace; the seed's `InfraMonitoring` by default.
    pub namespace: String,
    /// The consumer name, first part of the watermark key `<consumer>/<stream>/<shard>`.
    pub consumer: String,
    /// The stream read, second part of the watermark key.
    pub stream: String,
    /// Most datums per PutMetricData call (1..=1000). A backend storing a whole put in one
    /// transaction (the embedded store) takes larger puts, see
    /// `MetricPublisher::max_datums_per_put`.
    pub max_datums_per_call: usize,
    /// Records aggregated per shard before the statistic sets are published (1 publishes
    /// every batch).
    pub buffer_records: usize,
    /// Longest a record waits before its statistic set is published; `"0s"` publishes every
    /// batch.
    #[serde(with = "units::duration")]
    pub buffer_interval: Duration,
}

impl Default for CloudWatchConfig {
    fn default() -> Self {
        Self {
            namespace: "InfraMonitoring".to_string(),
            consumer: "cloudwatch".to_string(),
            stream: "metrics".to_string(),
            max_datums_per_call: MAX_DATUMS_PER_CALL,
            buffer_records: 100_000,
            buffer_interval: Duration::from_secs(1),
        }
    }
}

impl CloudWatchConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the setting and the allowed values.
    pub fn validate(&self) -> Result<()> {
        buffer::validate("cloudwatch", self.buffer_records)?;
        if !(1..=MAX_DATUMS_PER_CALL).contains(&self.max_datums_per_call) {
            return Err(Error::InvalidArgument(format!(
                "sinks.cloudwatch.max_datums_per_call = {} is out of range: use 1 to {MAX_DATUMS_PER_CALL}",
                self.max_datums_per_call
            )));
        }
        for (name, v) in [
            ("namespace", &self.namespace),
            ("consumer", &self.consumer),
            ("stream", &self.stream),
        ] {
            if v.trim().is_empty() || v.len() > 255 {
                return Err(Error::InvalidArgument(format!(
                    "sinks.cloudwatch.{name} `{v}` must be 1-255 characters"
                )));
            }
        }
        if self.namespace.starts_with("AWS/") {
            return Err(Error::InvalidArgument(format!(
                "sinks.cloudwatch.namespace `{}` is reserved for AWS services: choose another",
                self.namespace
            )));
        }
        Ok(())
    }

    /// The buffering limits.
    pub fn buffer(&self) -> BufferPolicy {
        BufferPolicy {
            records: self.buffer_records,
            interval: self.buffer_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_limits() {
        let c: CloudWatchConfig = toml::from_str("consumer = \"cw\"").expect("config");
        assert_eq!(c.namespace, "InfraMonitoring");
        assert_eq!(c.consumer, "cw");
        assert_eq!(c.max_datums_per_call, 1000);
        c.validate().expect("valid");
        let too_many = CloudWatchConfig {
            max_datums_per_call: 1001,
            ..CloudWatchConfig::default()
        };
        let err = too_many.validate().expect_err("over the limit");
        assert!(err.to_string().contains("max_datums_per_call"), "{err}");
        assert!(toml::from_str::<CloudWatchConfig>("namespce = \"x\"").is_err());
    }
}
