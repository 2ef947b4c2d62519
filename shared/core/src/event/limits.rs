//! Bounds on what a metric event may hold, so that every valid event is accepted by every sink
//! (and by the AWS services behind them), and the event-time window checked where records are
//! decoded.
//!
//! # Static limits (checked by [`super::MetricEvent::validate`] and `from_json`)
//! - [`MAX_EVENT_BYTES`]: a record larger than 64 KiB is not read at all. A metric event in the
//!   seed's shape takes about 250 bytes; a record a thousand times that is a mistake, and each
//!   consumer would otherwise parse it once.
//! - [`MAX_FIELD_CHARS`]: `metric_id`, `instance_id`, `region` and `collected_at` are at most 256
//!   characters: `instance_id` is the stream's partition key (Kinesis: 1 to 256 characters), and
//!   every text field stays far below the limits of a CloudWatch dimension value (1024), a
//!   DynamoDB key (2048 bytes) and an S3 key (1024 bytes).
//! - `instance_id` and `region` are printable ASCII: both are CloudWatch dimension values, which
//!   CloudWatch accepts only as ASCII without control characters.
//! - [`MAX_VALUE`]: CloudWatch rejects values beyond 2^360.
//!
//! # The event-time window ([`EventTimeLimits`])
//! An event's time must lie in `[arrival - max_age, arrival + max_skew]`, where `arrival` is
//! when the stream accepted the record (its approximate arrival timestamp). Measuring against
//! the arrival rather than the consumer's clock makes the decision a property of the record:
//! a consumer that reads hours later (the seed's 3-hour cadence, a restart, a replay of the log)
//! decides exactly as one reading at once. Events outside the window are dead letters with the
//! code `clock_skew`; no sink ever sees them, so no watermark or `forget_after` moves on them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::{EventError, MetricEvent};
use crate::units;

/// The largest record read as a metric event, in bytes.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// The longest text field, in characters.
pub const MAX_FIELD_CHARS: usize = 256;

/// The largest value CloudWatch accepts: 2^360.
pub const MAX_VALUE: f64 = 2.348_542_582_773_833_2e108;

/// How far an event's time may be from its record's arrival at the stream.
///
/// ```toml
/// [consumers.event_time]
/// max_age = "10years"   # backfills of older data raise it for their run
/// max_skew = "5m"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventTimeLimits {
    /// The oldest accepted event time, before the arrival.
    #[serde(with = "units::duration")]
    pub max_age: Duration,
    /// The newest accepted event time, after the arrival.
    #[serde(with = "units::duration")]
    pub max_skew: Duration,
}

impl Default for EventTimeLimits {
    /// Ten years back (backfills of the seed's history, any test data), five minutes ahead (a
    /// host clock off by more than that is wrong; five minutes is also the most a bad clock can
    /// drag a shard's alarm evaluation ahead).
    fn default() -> Self {
        Self {
            // humantime's year: 365.25 days.
            max_age: Duration::from_secs(10 * 31_557_600),
            max_skew: Duration::from_secs(5 * 60),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl EventTimeLimits {
    /// Limits that accept every event time (for tools that read whatever the log holds).
    pub fn unbounded() -> Self {
        Self {
            max_age: Duration::MAX,
            max_skew: Duration::MAX,
        }
    }

    /// Checks `event`'s time against the window around `arrival_ms`.
    ///
    /// # Errors
    /// [`EventError::ClockSkew`] naming the event time, the arrival and the limit broken.
    pub fn check(&self, event: &MetricEvent, arrival_ms: i64) -> Result<(), EventError> {
        let event_ms = event.event_time_ms();
        let (ahead, limit) = if event_ms > arrival_ms.saturating_add(millis(self.max_skew)) {
            (true, self.max_skew)
        } else if event_ms < arrival_ms.saturating_sub(millis(self.max_age)) {
            (false, self.max_age)
        } else {
            return Ok(());
        };
        Err(EventError::ClockSkew {
            event_ms,
            arrival_ms,
            ahead,
            limit,
        })
    }
}

/// The one decode path of records read from a stream: parses and validates `bytes`
/// ([`MetricEvent::from_json`]), then checks the event time against `limits` around
/// `arrival_ms`, the record's arrival at the stream.
///
/// # Errors
/// [`EventError`] naming the first problem found.
pub fn decode(
    bytes: &[u8],
    arrival_ms: i64,
    limits: &EventTimeLimits,
) -> Result<MetricEvent, EventError> {
    let event = MetricEvent::from_json(bytes)?;
    limits.check(&event, arrival_ms)?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricType;

    const ARRIVAL: i64 = 1_796_000_000_000;

    fn at(timestamp: i64) -> MetricEvent {
        MetricEvent {
            metric_id: format!("cpu-{timestamp}"),
            metric_type: MetricType::CpuUtilization,
            timestamp,
            timestamp_ms: None,
            value: 50.0,
            unit: None,
            instance_id: "i-1".into(),
            region: "eu-west-1".into(),
            collected_at: "x".into(),
        }
    }

    #[test]
    fn the_window_is_inclusive_and_measured_from_the_arrival() {
        let limits = EventTimeLimits::default();
        let s = ARRIVAL / 1000;
        assert!(
            limits.check(&at(s + 300), ARRIVAL).is_ok(),
            "5 minutes ahead"
        );
        let err = limits.check(&at(s + 301), ARRIVAL).expect_err("ahead");
        assert_eq!(err.code(), "clock_skew");
        assert!(err.to_string().contains("ahead of"), "{err}");
        assert!(err.to_string().contains("max_skew"), "{err}");
        let ten_years = 10 * 31_557_600;
        assert!(limits.check(&at(s - ten_years), ARRIVAL).is_ok());
        let err = limits
            .check(&at(s - ten_years - 1), ARRIVAL)
            .expect_err("too old");
        assert!(err.to_string().contains("max_age"), "{err}");
        assert!(err.reason().starts_with("clock_skew: event time "), "{err}");
    }

    #[test]
    fn extreme_timestamps_are_skew_not_panics() {
        let limits = EventTimeLimits::default();
        for t in [9_223_372_036_854_775, i64::MAX, 4_102_444_800] {
            let err = limits.check(&at(t), ARRIVAL).expect_err("far ahead");
            assert_eq!(err.code(), "clock_skew", "{t}: {err}");
        }
        assert!(EventTimeLimits::unbounded().check(&at(i64::MAX), 0).is_ok());
        assert!(EventTimeLimits::unbounded().check(&at(1), i64::MAX).is_ok());
    }

    #[test]
    fn limits_read_from_toml_text_and_reject_unknown_keys() {
        let l: EventTimeLimits = serde_json::from_str(r#"{"max_age": "30days"}"#).expect("valid");
        assert_eq!(l.max_age, Duration::from_secs(30 * 86_400));
        assert_eq!(l.max_skew, Duration::from_secs(300));
        let err = serde_json::from_str::<EventTimeLimits>(r#"{"max_ahead": "1m"}"#)
            .expect_err("unknown key");
        assert!(err.to_string().contains("max_ahead"), "{err}");
    }
}
