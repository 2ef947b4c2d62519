//! [`EventError`]: why a record is not a valid metric event.
//!
//! Each variant has a stable snake_case [`EventError::code`]; the dead-letter store keeps
//! [`EventError::reason`], the code followed by the message (`clock_skew: event time ...`), so
//! letters can be told apart by their first word.

use std::time::Duration;

use super::{MetricType, Unit};
use crate::time::format_rfc3339_ms;

/// Why a record is not a valid metric event. The text goes to the dead-letter store.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// The bytes are not JSON, or not an object of the expected shape.
    #[error("not a metric event: {0}")]
    Malformed(String),
    /// The record is larger than any metric event may be.
    #[error("record of {bytes} bytes is larger than the {max} bytes a metric event may take")]
    TooLarge {
        /// The record's size.
        bytes: usize,
        /// The limit ([`super::MAX_EVENT_BYTES`]).
        max: usize,
    },
    /// A required field is absent or empty.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A text field is longer than [`super::MAX_FIELD_CHARS`] characters.
    #[error("`{field}` is {chars} characters long; at most {max} are accepted")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A field that becomes a CloudWatch dimension value holds more than printable ASCII.
    #[error(
        "`{field}` must be printable ASCII (it is a CloudWatch dimension value, which allows \
         neither other characters nor control characters)"
    )]
    NotPrintableAscii {
        /// The field.
        field: &'static str,
    },
    /// `metric_type` is not one of the four seed types.
    #[error(
        "unknown metric_type `{0}` (expected cpu_utilization, memory_usage, disk_usage or network_traffic)"
    )]
    UnknownMetricType(String),
    /// `value` is NaN or infinite.
    #[error("value is not a finite number")]
    NonFinite,
    /// `value` is below zero.
    #[error("value {0} is negative")]
    Negative(f64),
    /// A percentage above 100.
    #[error("{metric_type} value {value} is above 100 percent")]
    PercentAbove100 {
        /// The metric type.
        metric_type: MetricType,
        /// The value given.
        value: f64,
    },
    /// `value` is beyond the range CloudWatch accepts (2^360).
    #[error("value {0} is beyond the largest value CloudWatch accepts (2^360)")]
    ValueOutOfRange(f64),
    /// `timestamp` is zero or negative, or disagrees with `timestamp_ms`.
    #[error("bad timestamp: {0}")]
    BadTimestamp(String),
    /// The event time is outside the accepted window around the record's arrival at the
    /// stream (see [`super::EventTimeLimits`]).
    #[error(
        "event time {} is {} {} the record's arrival at the stream ({}); at most {} is accepted \
         (consumers.event_time.{})",
        format_rfc3339_ms(*event_ms),
        crate::units::format_duration(gap(*event_ms, *arrival_ms)),
        if *ahead { "ahead of" } else { "before" },
        format_rfc3339_ms(*arrival_ms),
        crate::units::format_duration(*limit),
        if *ahead { "max_skew" } else { "max_age" }
    )]
    ClockSkew {
        /// The event time, epoch milliseconds.
        event_ms: i64,
        /// When the stream accepted the record, epoch milliseconds.
        arrival_ms: i64,
        /// Whether the event time is ahead of the arrival (else behind).
        ahead: bool,
        /// The limit broken (`max_skew` when ahead, `max_age` when behind).
        limit: Duration,
    },
    /// `unit` is not the unit of the metric type.
    #[error("unit {unit} does not match {metric_type} (expected {expected})")]
    WrongUnit {
        /// The metric type.
        metric_type: MetricType,
        /// The unit given.
        unit: Unit,
        /// The unit of the type.
        expected: Unit,
    },
}

/// The distance between two epoch-millisecond times, saturating.
fn gap(a: i64, b: i64) -> Duration {
    Duration::from_millis(a.abs_diff(b))
}

impl EventError {
    /// A stable snake_case name of the problem (`clock_skew`, `missing_field`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            EventError::Malformed(_) => "malformed",
            EventError::TooLarge { .. } => "too_large",
            EventError::MissingField(_) => "missing_field",
            EventError::FieldTooLong { .. } => "field_too_long",
            EventError::NotPrintableAscii { .. } => "not_printable_ascii",
            EventError::UnknownMetricType(_) => "unknown_metric_type",
            EventError::NonFinite => "non_finite",
            EventError::Negative(_) => "negative",
            EventError::PercentAbove100 { .. } => "percent_above_100",
            EventError::ValueOutOfRange(_) => "value_out_of_range",
            EventError::BadTimestamp(_) => "bad_timestamp",
            EventError::ClockSkew { .. } => "clock_skew",
            EventError::WrongUnit { .. } => "wrong_unit",
        }
    }

    /// What the dead-letter store keeps: `<code>: <message>`.
    pub fn reason(&self) -> String {
        format!("{}: {self}", self.code())
    }
}
