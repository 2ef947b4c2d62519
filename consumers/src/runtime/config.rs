//! Consumer configuration.
//!
//! ```toml
//! name = "s3-archiver"
//! stream = "metrics"
//! starting_position = "TRIM_HORIZON"   # or LATEST, AT_TIMESTAMP:2026-02-19T00:00:00Z
//! batch_size = 1000
//! poll_interval = "200ms"
//! flush_interval = "1s"
//! shard_refresh_interval = "10s"
//! share_reads = true
//! panic_attempts = 3
//! [event_time]                         # optional: the window around each record's arrival
//! max_age = "10years"
//! max_skew = "5m"
//! [retry]
//! initial_backoff = "100ms"
//! max_backoff = "10s"
//! max_attempts = 10
//! ```
//!
//! `starting_position` applies only to shards without a checkpoint; a checkpointed shard
//! always resumes right after its checkpoint. `event_time`, when absent, is
//! [`EventTimeLimits::default`] (`shardline` fills it from `[consumers.event_time]`); a run
//! over old data (a backfill) gives its consumers a wider window.
//!
//! `retry.max_attempts` bounds the tries of one call in place. Under a
//! [`Supervisor`](super::Supervisor)'s `run` (`shardline up`) a consumer whose call ran out of
//! tries is restarted from its checkpoint after a backoff, for as long as it fails; under its
//! `drain` (`shardline up --once`) it stops with the error. `panic_attempts` is how often a
//! record that makes the sink panic is tried alone before it is dead-lettered.

use serde::{Deserialize, Serialize};
use shardline_core::stream::limits::MAX_GET_RECORDS;
use shardline_core::{EventTimeLimits, StartingPosition};
use std::time::Duration;

use super::error::ConsumerError;
use shardline_core::units;

/// How a consumer reads its stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    /// The consumer (application) name; its checkpoints and dead letters are kept under it.
    pub name: String,
    /// The stream to read.
    pub stream: String,
    /// Where to start in a shard that has no checkpoint.
    pub starting_position: StartingPosition,
    /// Records per get_records call (1 to 10,000).
    pub batch_size: usize,
    /// How long to wait before polling again when no shard returned records.
    #[serde(with = "units::duration")]
    pub poll_interval: Duration,
    /// How often the sink is asked to write out buffers whose interval has passed.
    #[serde(with = "units::duration")]
    pub flush_interval: Duration,
    /// How often the shard list is read again to pick up new shards.
    #[serde(with = "units::duration")]
    pub shard_refresh_interval: Duration,
    /// Backoff for retryable errors.
    pub retry: RetryConfig,
    /// Whether it reads together with the other consumers of the same stream and batch size
    /// in this process (see [`crate::runtime::SharedReads`]); `false` reads on its own.
    pub share_reads: bool,
    /// How many times a record that makes the sink panic is handed to it alone (after the
    /// batch holding it was halved down to that record) before it goes to the dead-letter
    /// store with the panic message (default 3, at least 1).
    pub panic_attempts: u32,
    /// How far an event's time may be from its record's arrival at the stream; records
    /// outside are dead letters (`clock_skew`). `None`: [`EventTimeLimits::default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<EventTimeLimits>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            name: "shardline-consumer".into(),
            stream: "metrics".into(),
            starting_position: StartingPosition::TrimHorizon,
            batch_size: 1000,
            poll_interval: Duration::from_millis(200),
            flush_interval: Duration::from_secs(1),
            shard_refresh_interval: Duration::from_secs(10),
            retry: RetryConfig::default(),
            share_reads: true,
            panic_attempts: 3,
            event_time: None,
        }
    }
}

impl ConsumerConfig {
    /// A default configuration for consumer `name` reading `stream`.
    pub fn new(name: impl Into<String>, stream: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            stream: stream.into(),
            ..Self::default()
        }
    }

    /// The event-time window its records are checked against.
    pub fn event_time_limits(&self) -> EventTimeLimits {
        self.event_time.unwrap_or_default()
    }

    /// Checks the values a consumer cannot run with.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] naming the setting and the accepted range.
    pub fn validate(&self) -> Result<(), ConsumerError> {
        let bad = |msg: String| Err(ConsumerError::Config(msg));
        if self.name.trim().is_empty() {
            return bad("consumer `name` is empty: give the consumer a name".into());
        }
        if self.stream.trim().is_empty() {
            return bad(format!("consumer {}: `stream` is empty", self.name));
        }
        if !(1..=MAX_GET_RECORDS).contains(&self.batch_size) {
            return bad(format!(
                "consumer {}: batch_size {} is outside 1..={MAX_GET_RECORDS}",
                self.name, self.batch_size
            ));
        }
        if matches!(
            self.starting_position,
            StartingPosition::AtSequenceNumber(_) | StartingPosition::AfterSequenceNumber(_)
        ) {
            return bad(format!(
                "consumer {}: starting_position {} names a sequence number, which belongs to one \
                 shard; use TRIM_HORIZON, LATEST or AT_TIMESTAMP:<time>",
                self.name, self.starting_position
            ));
        }
        if self.event_time_limits().max_age.is_zero() {
            return bad(format!(
                "consumer {}: event_time.max_age is 0s, which refuses every event (each is older \
                 than its arrival at the stream); give a duration such as \"10years\"",
                self.name
            ));
        }
        if self.panic_attempts == 0 {
            return bad(format!(
                "consumer {}: panic_attempts must be at least 1 (tries of a record that makes \
                 the sink panic before it is dead-lettered)",
                self.name
            ));
        }
        self.retry.validate(&self.name)
    }
}

/// Exponential backoff with full jitter for retryable errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// The first backoff ceiling.
    #[serde(with = "units::duration")]
    pub initial_backoff: Duration,
    /// The largest backoff ceiling.
    #[serde(with = "units::duration")]
    pub max_backoff: Duration,
    /// Attempts of one call in all (the first try included) before the consumer gives up on
    /// it: a supervised `run` then restarts it from its checkpoint, a `drain` stops.
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_attempts: 10,
        }
    }
}

impl RetryConfig {
    fn validate(&self, consumer: &str) -> Result<(), ConsumerError> {
        if self.max_attempts == 0 {
            return Err(ConsumerError::Config(format!(
                "consumer {consumer}: retry.max_attempts must be at least 1"
            )));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(ConsumerError::Config(format!(
                "consumer {consumer}: retry.initial_backoff ({}) exceeds retry.max_backoff ({})",
                units::format_duration(self.initial_backoff),
                units::format_duration(self.max_backoff)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults_and_durations() {
        let cfg: ConsumerConfig = serde_json::from_value(serde_json::json!({
            "name": "s3",
            "stream": "metrics",
            "starting_position": "LATEST",
            "poll_interval": "50ms",
            "retry": {"max_attempts": 3}
        }))
        .expect("valid config");
        assert_eq!(cfg.starting_position, StartingPosition::Latest);
        assert_eq!(cfg.poll_interval, Duration::from_millis(50));
        assert_eq!(cfg.batch_size, 1000);
        assert_eq!(cfg.retry.max_attempts, 3);
        assert_eq!(cfg.retry.max_backoff, Duration::from_secs(10));
        cfg.validate().expect("valid");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let err = serde_json::from_value::<ConsumerConfig>(serde_json::json!({"batchsize": 5}))
            .expect_err("unknown field");
        assert!(err.to_string().contains("batchsize"), "{err}");
        let mut cfg = ConsumerConfig::new("c", "metrics");
        cfg.batch_size = 20_000;
        let err = cfg.validate().expect_err("too big");
        assert!(err.to_string().contains("batch_size 20000"), "{err}");
    }
}
