//! A sink function's settings, read from the environment as Lambda passes them.
//!
//! `SHARDLINE_FUNCTION_CONFIG` holds JSON (the deploy template writes it with the deployed
//! resources' names; `shardline esm run` and `shardline lambda invoke` write it from
//! `shardline.toml`). Every key is optional; unknown keys are refused, naming the key.
//!
//! ```json
//! {"consumer": "s3-parquet", "stream": "metrics", "report_batch_item_failures": true,
//!  "s3": {"bucket": "infra-monitoring-pipeline-data", "prefix": "metrics"},
//!  "dynamodb": {"table": "InfraMetrics"}, "cloudwatch": {"namespace": "InfraMonitoring"},
//!  "alerts": {"topic": "arn:aws:sns:..."}, "notifier": {"type": "outbox"},
//!  "aws": {"resources": {"state_table": "shardline-state", "dead_letter_bucket": "..."}}}
//! ```
//!
//! The sinks' own buffering settings are overridden to write every batch through
//! ([`FunctionConfig::for_lambda`]): an invocation returns only once its records' effects are
//! durable, since the mapping checkpoints past them when it returns.

use serde::{Deserialize, Serialize};
use shardline_aws::AwsConfig;
use shardline_consumers::sinks::alerts::AlertsConfig;
use shardline_consumers::sinks::cloudwatch::CloudWatchConfig;
use shardline_consumers::sinks::dynamodb::DynamoDbConfig;
use shardline_consumers::sinks::s3_parquet::S3ParquetConfig;
use shardline_local::{LocalOptions, NotifierConfig};
use std::time::Duration;

use crate::error::FunctionError;

/// The environment variable holding a function's [`FunctionConfig`] as JSON.
pub const CONFIG_ENV: &str = "SHARDLINE_FUNCTION_CONFIG";

/// Which consumer a sink function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SinkKind {
    /// Parquet objects in S3 (`s3-parquet`).
    S3Parquet,
    /// Items in DynamoDB's InfraMetrics (`dynamodb`).
    DynamoDb,
    /// CloudWatch statistic sets (`cloudwatch`).
    CloudWatch,
    /// Threshold alarms notified on SNS (`alerts`).
    Alerts,
}

impl SinkKind {
    /// Every sink function.
    pub const ALL: [SinkKind; 4] = [
        SinkKind::S3Parquet,
        SinkKind::DynamoDb,
        SinkKind::CloudWatch,
        SinkKind::Alerts,
    ];

    /// The function's name (and its bootstrap binary's).
    pub fn function_name(self) -> &'static str {
        match self {
            SinkKind::S3Parquet => "s3-parquet",
            SinkKind::DynamoDb => "dynamodb",
            SinkKind::CloudWatch => "cloudwatch",
            SinkKind::Alerts => "alerts",
        }
    }

    /// The sink function called `name`.
    pub fn from_function_name(name: &str) -> Option<SinkKind> {
        SinkKind::ALL
            .into_iter()
            .find(|k| k.function_name() == name)
    }
}

/// A sink function's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FunctionConfig {
    /// The name dead letters and sink state are kept under: the long-running consumer's name,
    /// so that both share one exactly-once state.
    pub consumer: String,
    /// The stream's name (dead letters and watermarks name it).
    pub stream: String,
    /// Whether the mapping has `FunctionResponseTypes: [ReportBatchItemFailures]`. Without
    /// it a failure after some records became durable fails the whole batch (the mapping
    /// would not read a partial response).
    pub report_batch_item_failures: bool,
    /// The S3 Parquet sink.
    pub s3: S3ParquetConfig,
    /// The DynamoDB sink.
    pub dynamodb: DynamoDbConfig,
    /// The CloudWatch sink.
    pub cloudwatch: CloudWatchConfig,
    /// The alerts sink.
    pub alerts: AlertsConfig,
    /// Where the embedded backend's alerts go (SNS on AWS).
    pub notifier: NotifierConfig,
    /// The embedded backends' settings.
    pub local: LocalOptions,
    /// The AWS backends' settings (the `[aws]` block): the template names the state table
    /// and the dead-letter bucket; region and credentials come from Lambda's environment.
    pub aws: AwsConfig,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            consumer: String::new(),
            stream: "metrics".into(),
            report_batch_item_failures: true,
            s3: S3ParquetConfig::default(),
            dynamodb: DynamoDbConfig::default(),
            cloudwatch: CloudWatchConfig::default(),
            alerts: AlertsConfig::default(),
            notifier: NotifierConfig::Outbox { path: None },
            local: LocalOptions::default(),
            aws: AwsConfig::default(),
        }
    }
}

impl FunctionConfig {
    /// Reads [`CONFIG_ENV`] (defaults when unset).
    ///
    /// # Errors
    /// [`crate::error::PERMANENT`] naming the variable and the bad key.
    pub fn from_env() -> Result<Self, FunctionError> {
        match std::env::var(CONFIG_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::from_json(&text),
            _ => Ok(Self::default()),
        }
    }

    /// Parses the JSON form.
    ///
    /// # Errors
    /// [`crate::error::PERMANENT`] naming the variable and the bad key.
    pub fn from_json(text: &str) -> Result<Self, FunctionError> {
        serde_json::from_str(text).map_err(|e| {
            FunctionError::of_kind(
                crate::error::ErrorKind::Permanent,
                format!(
                    "{CONFIG_ENV} is not a valid function configuration: {e}; fix the variable"
                ),
            )
        })
    }

    /// The settings a function of `kind` runs with: the consumer name defaulted to the
    /// function's, the sinks' names filled in, and buffers that write every batch through.
    pub fn for_lambda(mut self, kind: SinkKind) -> Self {
        if self.consumer.trim().is_empty() {
            self.consumer = kind.function_name().to_string();
        }
        self.s3.buffer_interval = Duration::ZERO;
        self.dynamodb.buffer_interval = Duration::ZERO;
        self.cloudwatch.buffer_interval = Duration::ZERO;
        self.alerts.buffer_interval = Duration::ZERO;
        self.cloudwatch.consumer.clone_from(&self.consumer);
        self.cloudwatch.stream.clone_from(&self.stream);
        self.alerts.consumer.clone_from(&self.consumer);
        self.alerts.stream.clone_from(&self.stream);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_with_defaults_and_unknown_keys_named() {
        let cfg = FunctionConfig::from_json(r#"{"s3": {"bucket": "b"}, "stream": "m"}"#)
            .expect("valid")
            .for_lambda(SinkKind::S3Parquet);
        assert_eq!(cfg.s3.bucket, "b");
        assert_eq!(cfg.consumer, "s3-parquet");
        assert_eq!(cfg.s3.buffer_interval, Duration::ZERO);
        let err = FunctionConfig::from_json(r#"{"bukket": "b"}"#).expect_err("unknown key");
        assert!(err.message.contains("bukket"), "{err}");
        assert!(err.message.contains(CONFIG_ENV), "{err}");
        for k in SinkKind::ALL {
            assert_eq!(SinkKind::from_function_name(k.function_name()), Some(k));
        }
    }
}
