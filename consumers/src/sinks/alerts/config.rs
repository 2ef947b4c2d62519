//! Configuration of the alerts sink: the topic and the alarm rules.
//!
//! ```toml
//! [sinks.alerts]
//! topic = "arn:aws:sns:eu-west-1:190517931751:InfraMonitoring-Alarms"
//! grace = "10s"
//!
//! [[sinks.alerts.rules]]
//! metric = "cpu_utilization"
//! threshold = 80
//! comparison_operator = "GreaterThanThreshold"
//! statistic = "Average"
//! period = "60s"
//! evaluation_periods = 3
//! datapoints_to_alarm = 2
//! treat_missing_data = "missing"
//! ```
//!
//! Without `rules`, the seed's thresholds apply: cpu_utilization > 80, memory_usage > 85,
//! disk_usage > 90, each on the Maximum of 60 s periods, 1 of 1 datapoints, which fires on any
//! single sample above the threshold as the seed's log processor did, with missing data
//! ignored (the seed samples every 3 hours). A rule written in the file defaults to CloudWatch's
//! `missing`.

use serde::{Deserialize, Serialize};
use shardline_core::{Error, MetricType, Result};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// The seed's SNS topic.
pub const SEED_TOPIC: &str = "arn:aws:sns:eu-west-1:190517931751:InfraMonitoring-Alarms";

/// `[sinks.alerts]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// The topic notifications are published to.
    pub topic: String,
    /// The consumer name; alarm states live in the state-store namespace `alarms.<consumer>`.
    pub consumer: String,
    /// The stream read, part of the per-shard watermark key.
    pub stream: String,
    /// How far a shard's event time must pass a period's end before the period is evaluated,
    /// so samples of other instances arriving slightly out of order still count (`"10s"`).
    #[serde(with = "shardline_core::units::duration")]
    pub grace: Duration,
    /// The alarm rules; the seed's three thresholds when absent.
    pub rules: Vec<AlarmRule>,
    /// Records applied before the changed alarm states are written to the state store
    /// (1 writes after every batch). Notifications are published as soon as they happen.
    pub buffer_records: usize,
    /// Longest applied records wait before the alarm states are written; `"0s"` writes after
    /// every batch.
    #[serde(with = "shardline_core::units::duration")]
    pub buffer_interval: Duration,
    /// An instance's alarm whose last sample is older than this, in its shard's event time, is
    /// forgotten (its state deleted, in whatever state it was: the instance is taken to be
    /// gone; if it reports again, a new alarm starts in INSUFFICIENT_DATA). `"0s"` keeps
    /// alarms for ever. Without it, every instance ever seen keeps its alarms in memory and
    /// in the state store.
    #[serde(with = "shardline_core::units::duration")]
    pub forget_after: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            topic: SEED_TOPIC.to_string(),
            consumer: "alerts".to_string(),
            stream: "metrics".to_string(),
            grace: Duration::from_secs(10),
            rules: AlarmRule::seed_rules(),
            buffer_records: 100_000,
            buffer_interval: Duration::from_secs(1),
            forget_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl AlertsConfig {
    /// The buffering limits of the alarm states.
    pub fn buffer(&self) -> crate::sinks::buffer::BufferPolicy {
        crate::sinks::buffer::BufferPolicy {
            records: self.buffer_records,
            interval: self.buffer_interval,
        }
    }

    /// The state-store namespace of this consumer's alarms and watermarks.
    pub fn state_namespace(&self) -> String {
        format!("alarms.{}", self.consumer)
    }

    /// Checks the topic and every rule.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the setting, its value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        crate::sinks::buffer::validate("alerts", self.buffer_records)?;
        if self.topic.trim().is_empty() {
            return Err(invalid(
                "sinks.alerts.topic is empty: give an SNS topic ARN or name",
            ));
        }
        if self.consumer.trim().is_empty() || self.stream.trim().is_empty() {
            return Err(invalid(
                "sinks.alerts.consumer and sinks.alerts.stream must not be empty",
            ));
        }
        let mut names = BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|e| invalid(&format!("sinks.alerts.rules[{i}]: {e}")))?;
            if !names.insert(rule.name()) {
                return Err(invalid(&format!(
                    "sinks.alerts.rules[{i}]: the alarm name `{}` is used twice: give one a `name`",
                    rule.name()
                )));
            }
        }
        Ok(())
    }
}

fn invalid(msg: &str) -> Error {
    Error::InvalidArgument(msg.to_string())
}

/// How a period's statistic is compared with the threshold (CloudWatch's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    /// value > threshold
    GreaterThanThreshold,
    /// value >= threshold
    GreaterThanOrEqualToThreshold,
    /// value < threshold
    LessThanThreshold,
    /// value <= threshold
    LessThanOrEqualToThreshold,
}

impl ComparisonOperator {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThanThreshold => value > threshold,
            Self::GreaterThanOrEqualToThreshold => value >= threshold,
            Self::LessThanThreshold => value < threshold,
            Self::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// The operator as a symbol (`>`, `>=`, `<`, `<=`).
    pub fn symbol(self) -> &'static str {
        match self {
            Self::GreaterThanThreshold => ">",
            Self::GreaterThanOrEqualToThreshold => ">=",
            Self::LessThanThreshold => "<",
            Self::LessThanOrEqualToThreshold => "<=",
        }
    }
}

/// The statistic of a period's samples that is compared (CloudWatch's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Statistic {
    /// Mean of the samples.
    Average,
    /// Largest sample.
    Maximum,
    /// Smallest sample.
    Minimum,
    /// Sum of the samples.
    Sum,
    /// Number of samples.
    SampleCount,
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How periods without samples count (CloudWatch's `TreatMissingData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    /// Not counted; an evaluation range with no data at all means INSUFFICIENT_DATA.
    #[default]
    Missing,
    /// Skipped: the state is kept, and the range reaches back over periods with data.
    Ignore,
    /// Counted as breaching.
    Breaching,
    /// Counted as not breaching.
    NotBreaching,
}

/// One alarm rule, evaluated separately for every instance reporting the metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRule {
    /// Alarm name; `<metric> <symbol> <threshold>` (e.g. `cpu_utilization > 80`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The metric watched.
    pub metric: MetricType,
    /// The threshold.
    pub threshold: f64,
    /// The comparison; `GreaterThanThreshold` by default.
    #[serde(default = "default_operator")]
    pub comparison_operator: ComparisonOperator,
    /// The statistic of each period; `Maximum` by default.
    #[serde(default = "default_statistic")]
    pub statistic: Statistic,
    /// Period length: `"10s"`, `"30s"` or a multiple of `"60s"` (default `"60s"`).
    #[serde(default = "default_period", with = "shardline_core::units::duration")]
    pub period: Duration,
    /// N: how many recent periods are evaluated (default 1).
    #[serde(default = "one")]
    pub evaluation_periods: u32,
    /// M: how many of the N must breach for ALARM (default 1).
    #[serde(default = "one")]
    pub datapoints_to_alarm: u32,
    /// How periods without samples count (default `missing`).
    #[serde(default)]
    pub treat_missing_data: TreatMissingData,
}

fn default_operator() -> ComparisonOperator {
    ComparisonOperator::GreaterThanThreshold
}
fn default_statistic() -> Statistic {
    Statistic::Maximum
}
fn default_period() -> Duration {
    Duration::from_secs(60)
}
fn one() -> u32 {
    1
}

impl AlarmRule {
    /// A rule with the defaults: `metric > threshold`, Maximum over 60 s, 1 of 1, missing.
    pub fn new(metric: MetricType, threshold: f64) -> Self {
        Self {
            name: None,
            metric,
            threshold,
            comparison_operator: default_operator(),
            statistic: default_statistic(),
            period: default_period(),
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            treat_missing_data: TreatMissingData::Missing,
        }
    }

    /// The seed's thresholds: cpu_utilization > 80, memory_usage > 85, disk_usage > 90.
    ///
    /// The seed collects every 3 hours, so the minutes between collections are normal gaps:
    /// these rules treat missing data as `ignore` (an alarm stays in ALARM until a sample is
    /// back under its threshold, instead of dropping to INSUFFICIENT_DATA and firing again on
    /// the next collection).
    pub fn seed_rules() -> Vec<AlarmRule> {
        [
            (MetricType::CpuUtilization, 80.0),
            (MetricType::MemoryUsage, 85.0),
            (MetricType::DiskUsage, 90.0),
        ]
        .into_iter()
        .map(|(metric, threshold)| AlarmRule {
            treat_missing_data: TreatMissingData::Ignore,
            ..AlarmRule::new(metric, threshold)
        })
        .collect()
    }

    /// The alarm name (given, or derived as `cpu_utilization > 80`).
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!(
                "{} {} {}",
                self.metric,
                self.comparison_operator.symbol(),
                self.threshold
            )
        })
    }

    /// The period in milliseconds.
    pub fn period_ms(&self) -> i64 {
        i64::try_from(self.period.as_millis()).unwrap_or(i64::MAX)
    }

    /// Checks the rule.
    ///
    /// # Errors
    /// A sentence naming the bad setting and the allowed values.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !self.threshold.is_finite() {
            return Err(format!(
                "threshold {} is not a finite number",
                self.threshold
            ));
        }
        let secs = self.period.as_secs();
        let whole = self.period.subsec_nanos() == 0;
        if !whole || !(secs == 10 || secs == 30 || (secs >= 60 && secs.is_multiple_of(60))) {
            return Err(format!(
                "period {} is not allowed: use \"10s\", \"30s\" or a multiple of \"60s\"",
                shardline_core::units::format_duration(self.period)
            ));
        }
        if self.evaluation_periods == 0 || self.evaluation_periods > 100 {
            return Err(format!(
                "evaluation_periods = {} is out of range: use 1 to 100",
                self.evaluation_periods
            ));
        }
        if self.datapoints_to_alarm == 0 || self.datapoints_to_alarm > self.evaluation_periods {
            return Err(format!(
                "datapoints_to_alarm = {} is out of range: use 1 to evaluation_periods ({})",
                self.datapoints_to_alarm, self.evaluation_periods
            ));
        }
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.len() > 255)
        {
            return Err("name must be 1-255 characters".to_string());
        }
        Ok(())
    }
}
