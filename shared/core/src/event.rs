//! Metric events: what collectors append to the stream and every sink projects.
//!
//! The JSON form is the seed's data-collector record (`metric_id`, `metric_type`,
//! `timestamp` in epoch seconds, `value`, `instance_id`, `region`, `collected_at`) plus two
//! optional fields Shardline's own collectors always write: `unit` and `timestamp_ms`
//! (the sample time in epoch milliseconds). `value` is accepted as a JSON number or, as the
//! seed stored it, a decimal string.
//!
//! # Validation rules ([`MetricEvent::validate`]; `from_json` also refuses records larger
//! than [`MAX_EVENT_BYTES`])
//! - `metric_type` is one of the four seed types;
//! - `value` is finite, not negative and at most [`MAX_VALUE`]; percentages are at most 100;
//! - `metric_id`, `instance_id`, `region` and `collected_at` are not empty and at most
//!   [`MAX_FIELD_CHARS`] characters; `instance_id` and `region` are printable ASCII;
//! - `timestamp` is positive and, when given, `timestamp_ms / 1000 == timestamp`;
//! - `unit`, when given, is the metric type's unit.
//!
//! Records read from a stream are decoded by [`decode`], which adds the event-time window
//! ([`EventTimeLimits`], see [`limits`]). Whatever the input, [`MetricEvent::event_time_ms`]
//! saturates instead of overflowing.
//!
//! # Layout
//! - this module: [`MetricType`], [`Unit`], [`MetricEvent`] and its JSON reading;
//! - [`error`]: [`EventError`] and its stable codes;
//! - [`limits`]: size, field and value limits, [`EventTimeLimits`] and [`decode`];
//! - `scan`: the single-pass reader of the plain objects collectors write.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

pub mod error;
pub mod limits;
mod scan;

pub use error::EventError;
pub use limits::{EventTimeLimits, MAX_EVENT_BYTES, MAX_FIELD_CHARS, MAX_VALUE, decode};

/// The four metric types of the seed pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// CPU utilisation, percent.
    CpuUtilization,
    /// Memory in use, percent.
    MemoryUsage,
    /// Disk space in use, percent.
    DiskUsage,
    /// Network throughput, megabits per second.
    NetworkTraffic,
}

impl MetricType {
    /// All four types, in the seed's order.
    pub const ALL: [MetricType; 4] = [
        MetricType::CpuUtilization,
        MetricType::MemoryUsage,
        MetricType::DiskUsage,
        MetricType::NetworkTraffic,
    ];

    /// The name used on the wire and in the seed (`cpu_utilization`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::CpuUtilization => "cpu_utilization",
            MetricType::MemoryUsage => "memory_usage",
            MetricType::DiskUsage => "disk_usage",
            MetricType::NetworkTraffic => "network_traffic",
        }
    }

    /// The seed's metric_id prefix (`cpu`, `mem`, `disk`, `net`).
    pub fn id_prefix(self) -> &'static str {
        match self {
            MetricType::CpuUtilization => "cpu",
            MetricType::MemoryUsage => "mem",
            MetricType::DiskUsage => "disk",
            MetricType::NetworkTraffic => "net",
        }
    }

    /// The CloudWatch unit of this type.
    pub fn unit(self) -> Unit {
        match self {
            MetricType::NetworkTraffic => Unit::MegabitsPerSecond,
            _ => Unit::Percent,
        }
    }

    /// The seed's synthetic value range (inclusive bounds).
    pub fn seed_range(self) -> (f64, f64) {
        match self {
            MetricType::CpuUtilization => (20.0, 90.0),
            MetricType::MemoryUsage => (40.0, 95.0),
            MetricType::DiskUsage => (30.0, 85.0),
            MetricType::NetworkTraffic => (100.0, 1000.0),
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricType {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MetricType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| EventError::UnknownMetricType(s.to_string()))
    }
}

/// CloudWatch units used by the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// `Percent`.
    Percent,
    /// `Megabits/Second`.
    #[serde(rename = "Megabits/Second")]
    MegabitsPerSecond,
}

impl Unit {
    /// The CloudWatch spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Percent => "Percent",
            Unit::MegabitsPerSecond => "Megabits/Second",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricEvent {
    /// The seed's id: `<cpu|mem|disk|net>-<epoch seconds>`.
    pub metric_id: String,
    /// Which metric.
    pub metric_type: MetricType,
    /// Sample time, epoch seconds (the seed's `timestamp`).
    pub timestamp: i64,
    /// Sample time, epoch milliseconds; derived from `timestamp` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
    /// The sample value.
    #[serde(deserialize_with = "number_or_decimal_string")]
    pub value: f64,
    /// Unit; derived from the metric type when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// The reporting instance (`i-NNNNNN` for synthetic ones). The stream's partition key.
    pub instance_id: String,
    /// AWS region name.
    pub region: String,
    /// When the collector took the sample, ISO 8601.
    pub collected_at: String,
}

fn number_or_decimal_string<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        N(f64),
        S(String),
    }
    match Num::deserialize(d)? {
        Num::N(v) => Ok(v),
        Num::S(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| serde::de::Error::custom(format!("value `{s}` is not a number"))),
    }
}

impl MetricEvent {
    /// Parses and validates one event from its JSON bytes.
    ///
    /// # Errors
    /// [`EventError`] naming the first problem found.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge {
                bytes: bytes.len(),
                max: MAX_EVENT_BYTES,
            });
        }
        // Fast path: the plain objects collectors write are read in one pass (see `scan`).
        // Next, a well-formed event deserializes straight into the struct (a null optional
        // field reads as absent on both paths). Anything both decline takes the slow path
        // below, which names the exact problem. The record is checked as UTF-8 once, up
        // front, so neither parser validates each string it reads again.
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Self::from_json_checked(bytes);
        };
        if let Some(event) =
            scan::scan(text).or_else(|| serde_json::from_str::<MetricEvent>(text).ok())
        {
            event.validate()?;
            return Ok(event);
        }
        Self::from_json_checked(bytes)
    }

    /// Parses through a generic JSON value so that errors name the missing or bad field.
    fn from_json_checked(bytes: &[u8]) -> Result<Self, EventError> {
        let raw: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        let obj = raw
            .as_object()
            .ok_or_else(|| EventError::Malformed("expected a JSON object".into()))?;
        for field in [
            "metric_id",
            "metric_type",
            "timestamp",
            "value",
            "instance_id",
            "region",
            "collected_at",
        ] {
            if obj.get(field).is_none_or(|v| v.is_null()) {
                return Err(EventError::MissingField(field));
            }
        }
        if let Some(t) = obj.get("metric_type").and_then(|v| v.as_str()) {
            t.parse::<MetricType>()?;
        }
        let event: MetricEvent =
            serde_json::from_value(raw).map_err(|e| EventError::Malformed(e.to_string()))?;
        event.validate()?;
        Ok(event)
    }

    /// Serializes to the JSON form appended to the stream.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of plain fields cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks the rules in the module docs.
    ///
    /// # Errors
    /// [`EventError`] naming the first rule broken.
    pub fn validate(&self) -> Result<(), EventError> {
        for (name, v) in [
            ("metric_id", &self.metric_id),
            ("instance_id", &self.instance_id),
            ("region", &self.region),
            ("collected_at", &self.collected_at),
        ] {
            if v.trim().is_empty() {
                return Err(EventError::MissingField(name));
            }
            // Counting characters of a long field stops soon after the limit.
            let chars = v.chars().take(MAX_FIELD_CHARS + 1).count();
            if chars > MAX_FIELD_CHARS {
                return Err(EventError::FieldTooLong {
                    field: name,
                    chars: v.chars().count(),
                    max: MAX_FIELD_CHARS,
                });
            }
        }
        for (name, v) in [("instance_id", &self.instance_id), ("region", &self.region)] {
            if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(EventError::NotPrintableAscii { field: name });
            }
        }
        if !self.value.is_finite() {
            return Err(EventError::NonFinite);
        }
        if self.value < 0.0 {
            return Err(EventError::Negative(self.value));
        }
        if self.value > MAX_VALUE {
            return Err(EventError::ValueOutOfRange(self.value));
        }
        if self.metric_type.unit() == Unit::Percent && self.value > 100.0 {
            return Err(EventError::PercentAbove100 {
                metric_type: self.metric_type,
                value: self.value,
            });
        }
        if self.timestamp <= 0 {
            return Err(EventError::BadTimestamp(format!(
                "timestamp {} is not a positive epoch second",
                self.timestamp
            )));
        }
        if let Some(ms) = self.timestamp_ms
            && ms.div_euclid(1000) != self.timestamp
        {
            return Err(EventError::BadTimestamp(format!(
                "timestamp_ms {ms} is not within timestamp {} (epoch seconds)",
                self.timestamp
            )));
        }
        if let Some(unit) = self.unit
            && unit != self.metric_type.unit()
        {
            return Err(EventError::WrongUnit {
                metric_type: self.metric_type,
                unit,
                expected: self.metric_type.unit(),
            });
        }
        Ok(())
    }

    /// The sample time in epoch milliseconds (saturating: a `timestamp` beyond the range of
    /// epoch milliseconds reads as `i64::MAX` or `i64::MIN`, never wraps).
    pub fn event_time_ms(&self) -> i64 {
        self.timestamp_ms
            .unwrap_or(self.timestamp.saturating_mul(1000))
    }

    /// The unit, derived from the type when the event did not carry one.
    pub fn unit(&self) -> Unit {
        self.unit.unwrap_or(self.metric_type.unit())
    }

    /// The series an event belongs to: `<prefix>-<instance_id>`, e.g. `cpu-i-123456`.
    ///
    /// The seed keyed DynamoDB items by `metric_id` = `<prefix>-<epoch s>` and `timestamp` in
    /// seconds, which collides when two instances report the same metric in the same second.
    /// Shardline keys items by this series id and the sample time in milliseconds instead.
    pub fn series_id(&self) -> String {
        format!("{}-{}", self.metric_type.id_prefix(), self.instance_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "metric_id": "cpu-1771500309",
            "metric_type": "cpu_utilization",
            "timestamp": 1771500309,
            "value": "42.5",
            "instance_id": "i-573923",
            "region": "eu-west-1",
            "collected_at": "2026-02-19T11:25:09.123456"
        })
    }

    #[test]
    fn seed_record_with_string_value_parses() {
        let e = MetricEvent::from_json(sample().to_string().as_bytes()).expect("valid");
        assert_eq!(e.value, 42.5);
        assert_eq!(e.unit(), Unit::Percent);
        assert_eq!(e.event_time_ms(), 1_771_500_309_000);
        assert_eq!(e.series_id(), "cpu-i-573923");
    }

    #[test]
    fn bad_inputs_name_their_problem() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (
                serde_json::json!({"metric_type": "cpu_utilization"}),
                "missing field",
            ),
            (
                {
                    let mut v = sample();
                    v["metric_type"] = "gpu".into();
                    v
                },
                "unknown metric_type `gpu`",
            ),
            (
                {
                    let mut v = sample();
                    v["value"] = (-1.0).into();
                    v
                },
                "negative",
            ),
            (
                {
                    let mut v = sample();
                    v["value"] = "NaN".into();
                    v
                },
                "finite",
            ),
            (
                {
                    let mut v = sample();
                    v["value"] = 100.5.into();
                    v
                },
                "above 100",
            ),
            (
                {
                    let mut v = sample();
                    v["timestamp"] = 0.into();
                    v
                },
                "timestamp",
            ),
            (
                {
                    let mut v = sample();
                    v["region"] = "".into();
                    v
                },
                "missing field `region`",
            ),
        ];
        for (json, expected) in cases {
            let err = MetricEvent::from_json(json.to_string().as_bytes()).expect_err("invalid");
            assert!(
                err.to_string().contains(expected),
                "{err} should contain {expected}"
            );
        }
        let err = MetricEvent::from_json(b"{not json").expect_err("invalid");
        assert!(matches!(err, EventError::Malformed(_)));
    }

    #[test]
    fn limits_keep_every_valid_event_acceptable_downstream() {
        let with = |field: &str, value: serde_json::Value| {
            let mut v = sample();
            v[field] = value;
            MetricEvent::from_json(v.to_string().as_bytes())
        };
        let code = |r: Result<MetricEvent, EventError>| r.expect_err("invalid").code();
        let long = "i".repeat(MAX_FIELD_CHARS + 1);
        assert_eq!(
            code(with("instance_id", long.clone().into())),
            "field_too_long"
        );
        assert_eq!(code(with("collected_at", long.into())), "field_too_long");
        assert!(with("instance_id", "i".repeat(MAX_FIELD_CHARS).into()).is_ok());
        assert_eq!(
            code(with("instance_id", "i-1\r\nX-Injected: 1".into())),
            "not_printable_ascii"
        );
        assert_eq!(
            code(with("region", "eu-w\u{e9}st-1".into())),
            "not_printable_ascii"
        );
        // metric_id and collected_at go to Parquet and the table only: any text.
        assert!(with("metric_id", "cpu-\u{e9}".into()).is_ok());
        let mut net = sample();
        net["metric_type"] = "network_traffic".into();
        net["value"] = 1e109.into();
        let err = MetricEvent::from_json(net.to_string().as_bytes()).expect_err("too big");
        assert_eq!(err.code(), "value_out_of_range");
        net["value"] = 1e108.into();
        assert!(MetricEvent::from_json(net.to_string().as_bytes()).is_ok());

        let mut big = sample();
        big["note"] = "x".repeat(MAX_EVENT_BYTES).into();
        let err = MetricEvent::from_json(big.to_string().as_bytes()).expect_err("too large");
        assert_eq!(err.code(), "too_large");
        assert!(err.reason().starts_with("too_large: record of "), "{err}");
    }

    #[test]
    fn extreme_timestamps_never_overflow() {
        for t in [i64::MAX, i64::MAX / 1000 + 1, 9_223_372_036_854_775] {
            let mut v = sample();
            v["timestamp"] = t.into();
            let e = MetricEvent::from_json(v.to_string().as_bytes()).expect("statically valid");
            assert!(e.event_time_ms() >= 9_223_372_036_854_775_000, "{t}");
        }
        let mut v = sample();
        v["timestamp"] = i64::MIN.into();
        let err = MetricEvent::from_json(v.to_string().as_bytes()).expect_err("negative");
        assert_eq!(err.code(), "bad_timestamp");
    }

    #[test]
    fn network_may_exceed_100() {
        let mut v = sample();
        v["metric_type"] = "network_traffic".into();
        v["value"] = 950.0.into();
        let e = MetricEvent::from_json(v.to_string().as_bytes()).expect("valid");
        assert_eq!(e.unit(), Unit::MegabitsPerSecond);
        let back = MetricEvent::from_json(&e.to_json()).expect("round trip");
        assert_eq!(back, e);
    }
}
