//! An event source mapping's settings: AWS's parameters (snake_case, AWS's units and
//! defaults) and the runner's own pacing.
//!
//! ```toml
//! function = "s3-parquet"
//! stream = "metrics"
//! batch_size = 100                          # 1..=10000 (and at most 6 MB of event)
//! maximum_batching_window_in_seconds = 0    # 0..=300
//! starting_position = "TRIM_HORIZON"        # LATEST, AT_TIMESTAMP:2026-02-19T00:00:00Z
//! parallelization_factor = 1                # 1..=10
//! bisect_batch_on_function_error = false
//! maximum_retry_attempts = -1               # -1 (infinite) or 0..=10000
//! maximum_record_age_in_seconds = -1        # -1 (infinite) or 60..=604800
//! function_response_types = ["ReportBatchItemFailures"]
//! tumbling_window_in_seconds = 0            # 0..=900
//! on_failure = "arn:aws:sns:eu-west-1:123456789012:esm-failures"   # or an S3 bucket ARN or a directory
//! function_timeout = "60s"
//! retry_backoff = "500ms"                   # runner: first wait before retrying a failed batch
//! poll_interval = "200ms"                   # runner: wait when a shard returned nothing
//! ```

use serde::{Deserialize, Serialize};
use shardline_core::StartingPosition;
use shardline_core::units;
use std::time::Duration;

/// The value of `function_response_types` that turns partial batch responses on.
pub const REPORT_BATCH_ITEM_FAILURES: &str = "ReportBatchItemFailures";

/// A Kinesis event source mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingConfig {
    /// The function invoked.
    pub function: String,
    /// The stream read.
    pub stream: String,
    /// Most records per event (AWS: 1 to 10,000; default 100).
    pub batch_size: usize,
    /// How long to gather records before invoking (AWS: 0 to 300 s; default 0).
    pub maximum_batching_window_in_seconds: u32,
    /// Where to start in a shard with no checkpoint.
    pub starting_position: StartingPosition,
    /// Batches processed at once per shard, each for its own partition keys (AWS: 1 to 10).
    pub parallelization_factor: u32,
    /// Split a failed batch in two and retry the halves (does not count as a retry).
    pub bisect_batch_on_function_error: bool,
    /// Retries of a failed batch before it goes to the OnFailure destination (-1: until
    /// the records expire).
    pub maximum_retry_attempts: i64,
    /// Records older than this go to the OnFailure destination unprocessed (-1: never).
    pub maximum_record_age_in_seconds: i64,
    /// `["ReportBatchItemFailures"]` to read partial batch responses.
    pub function_response_types: Vec<String>,
    /// Tumbling window length (0: none; AWS: up to 900 s).
    pub tumbling_window_in_seconds: u32,
    /// Where records of a batch given up on are described: an SNS topic ARN, an S3 bucket
    /// ARN (`arn:aws:s3:::bucket`), or a local directory.
    pub on_failure: Option<String>,
    /// The function's timeout.
    #[serde(with = "units::duration")]
    pub function_timeout: Duration,
    /// First wait before retrying a failed batch; doubles to 30 s (the runner's pacing).
    #[serde(with = "units::duration")]
    pub retry_backoff: Duration,
    /// Wait before reading a shard again when it returned nothing.
    #[serde(with = "units::duration")]
    pub poll_interval: Duration,
    /// The region in ARNs and events.
    pub region: String,
    /// The account in ARNs.
    pub account: String,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            function: String::new(),
            stream: "metrics".into(),
            batch_size: 100,
            maximum_batching_window_in_seconds: 0,
            starting_position: StartingPosition::TrimHorizon,
            parallelization_factor: 1,
            bisect_batch_on_function_error: false,
            maximum_retry_attempts: -1,
            maximum_record_age_in_seconds: -1,
            function_response_types: Vec::new(),
            tumbling_window_in_seconds: 0,
            on_failure: None,
            function_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(500),
            poll_interval: Duration::from_millis(200),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        }
    }
}

impl MappingConfig {
    /// A mapping of `stream` to `function` with AWS's defaults.
    pub fn new(function: impl Into<String>, stream: impl Into<String>) -> Self {
        Self {
            function: function.into(),
            stream: stream.into(),
            ..Self::default()
        }
    }

    /// Whether partial batch responses are read.
    pub fn reports_item_failures(&self) -> bool {
        self.function_response_types
            .iter()
            .any(|t| t == REPORT_BATCH_ITEM_FAILURES)
    }

    /// Checks every value against AWS's ranges.
    ///
    /// # Errors
    /// One line naming the setting, the value and the accepted range.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.function;
        if name.trim().is_empty() {
            return Err("mapping: `function` is empty; name the function to invoke".into());
        }
        let check = |ok: bool, what: String| {
            if ok {
                Ok(())
            } else {
                Err(format!("mapping of {name}: {what}"))
            }
        };
        check(
            (1..=10_000).contains(&self.batch_size),
            format!("batch_size {} is outside 1..=10000", self.batch_size),
        )?;
        check(
            self.maximum_batching_window_in_seconds <= 300,
            format!(
                "maximum_batching_window_in_seconds {} is outside 0..=300",
                self.maximum_batching_window_in_seconds
            ),
        )?;
        check(
            (1..=10).contains(&self.parallelization_factor),
            format!(
                "parallelization_factor {} is outside 1..=10",
                self.parallelization_factor
            ),
        )?;
        check(
            (-1..=10_000).contains(&self.maximum_retry_attempts),
            format!(
                "maximum_retry_attempts {} is outside -1..=10000 (-1: infinite)",
                self.maximum_retry_attempts
            ),
        )?;
        check(
            self.maximum_record_age_in_seconds == -1
                || (60..=604_800).contains(&self.maximum_record_age_in_seconds),
            format!(
                "maximum_record_age_in_seconds {} is neither -1 (infinite) nor within 60..=604800",
                self.maximum_record_age_in_seconds
            ),
        )?;
        check(
            self.tumbling_window_in_seconds <= 900,
            format!(
                "tumbling_window_in_seconds {} is outside 0..=900",
                self.tumbling_window_in_seconds
            ),
        )?;
        check(
            self.tumbling_window_in_seconds == 0 || self.parallelization_factor == 1,
            "tumbling windows keep one state per shard: use parallelization_factor = 1 with them"
                .into(),
        )?;
        if let Some(t) = self
            .function_response_types
            .iter()
            .find(|t| *t != REPORT_BATCH_ITEM_FAILURES)
        {
            return Err(format!(
                "mapping of {name}: function_response_types has {t:?}; the only value is {REPORT_BATCH_ITEM_FAILURES:?}"
            ));
        }
        check(
            matches!(
                self.starting_position,
                StartingPosition::TrimHorizon
                    | StartingPosition::Latest
                    | StartingPosition::AtTimestamp(_)
            ),
            "starting_position must be TRIM_HORIZON, LATEST or AT_TIMESTAMP:<time>".into(),
        )?;
        check(
            !self.function_timeout.is_zero() && self.function_timeout <= Duration::from_secs(900),
            "function_timeout must be within 1ms..=900s (Lambda's limit)".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_defaults_and_ranges() {
        let c = MappingConfig::new("f", "metrics");
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.maximum_retry_attempts, -1);
        assert_eq!(c.maximum_record_age_in_seconds, -1);
        assert_eq!(c.parallelization_factor, 1);
        c.validate().expect("defaults are valid");
        for (bad, key) in [
            (
                MappingConfig {
                    batch_size: 10_001,
                    ..c.clone()
                },
                "batch_size 10001",
            ),
            (
                MappingConfig {
                    parallelization_factor: 11,
                    ..c.clone()
                },
                "parallelization_factor 11",
            ),
            (
                MappingConfig {
                    maximum_record_age_in_seconds: 59,
                    ..c.clone()
                },
                "maximum_record_age_in_seconds 59",
            ),
            (
                MappingConfig {
                    maximum_retry_attempts: -2,
                    ..c.clone()
                },
                "maximum_retry_attempts -2",
            ),
            (
                MappingConfig {
                    tumbling_window_in_seconds: 901,
                    ..c.clone()
                },
                "tumbling_window_in_seconds 901",
            ),
            (
                MappingConfig {
                    function_response_types: vec!["Other".into()],
                    ..c.clone()
                },
                "\"Other\"",
            ),
        ] {
            let err = bad.validate().expect_err(key);
            assert!(err.contains(key), "{err}");
        }
        let toml_text = "function = \"s3-parquet\"\nbatch_size = 500\nfunction_response_types = [\"ReportBatchItemFailures\"]\nfunction_timeout = \"30s\"\n";
        let parsed: MappingConfig = toml::from_str(toml_text).expect("toml");
        assert!(parsed.reports_item_failures());
        assert_eq!(parsed.function_timeout, Duration::from_secs(30));
        assert!(toml::from_str::<MappingConfig>("batchsize = 5").is_err());
    }
}
