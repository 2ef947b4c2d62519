//! When a buffering sink writes a shard's buffer out.
//!
//! The DynamoDB, CloudWatch and alerts sinks apply each batch in memory and make it durable
//! in one backend call per shard and interval (one transaction, one fsync), instead of one per
//! batch. A shard's buffer is due when it holds `records` records or its oldest record waited
//! `interval`; an interval of zero writes every batch through. Until a buffer is written the
//! sink reports nothing durable for its shard, so the runtime's checkpoint stays before it and
//! a crash replays the buffered records (every sink is idempotent).

use std::time::Duration;

/// An `opened_ms` that makes a buffer due at once: records put back after a failed write, so
/// the runtime's retry writes them again without waiting for new records or the interval.
pub const OVERDUE: i64 = i64::MIN;

/// The size and age limits of one shard's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferPolicy {
    /// Most records held before the buffer is written.
    pub records: usize,
    /// Longest the oldest buffered record waits; zero writes every batch through.
    pub interval: Duration,
}

impl BufferPolicy {
    /// Whether a buffer of `records` records opened at `opened_ms` is due at `now_ms`.
    pub fn due(&self, records: usize, opened_ms: Option<i64>, now_ms: i64) -> bool {
        let Some(opened) = opened_ms else {
            return false;
        };
        records >= self.records
            || self.interval.is_zero()
            || now_ms.saturating_sub(opened)
                >= i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Checks a sink's buffer settings.
///
/// # Errors
/// [`shardline_core::Error::InvalidArgument`] naming `sink` and the setting.
pub fn validate(sink: &str, records: usize) -> shardline_core::Result<()> {
    if records == 0 {
        return Err(shardline_core::Error::InvalidArgument(format!(
            "sinks.{sink}.buffer_records must be at least 1 (1 writes every batch through)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_by_size_age_or_write_through() {
        let p = BufferPolicy {
            records: 100,
            interval: Duration::from_secs(1),
        };
        assert!(!p.due(0, None, 5_000), "an empty buffer is never due");
        assert!(!p.due(99, Some(1_000), 1_999));
        assert!(p.due(100, Some(1_000), 1_000), "full");
        assert!(p.due(1, Some(1_000), 2_000), "old");
        let through = BufferPolicy {
            records: 100,
            interval: Duration::ZERO,
        };
        assert!(through.due(1, Some(1_000), 1_000));
        assert!(p.due(1, Some(OVERDUE), 0), "overdue at once");
    }
}
