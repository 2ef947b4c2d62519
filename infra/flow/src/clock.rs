//! Time for executions and schedules: a real clock and a virtual one.
//!
//! [`VirtualClock`] never blocks: a sleep moves virtual time forward at once and is logged,
//! so Wait states and retry backoff can be asserted from the timeline. Virtual time is one
//! shared line: sleeps in concurrent branches add up rather than overlap. [`RealClock`]
//! sleeps with tokio. Both report epoch milliseconds and format timestamps as AWS does
//! (ISO 8601, UTC, milliseconds: `2026-02-19T11:25:09.123Z`).

use async_trait::async_trait;
use futures::future::BoxFuture;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A clock an execution runs on.
#[async_trait]
pub trait FlowClock: Send + Sync {
    /// Now, in epoch milliseconds.
    fn now_ms(&self) -> i64;

    /// Waits `ms` milliseconds.
    async fn sleep_ms(&self, ms: u64);

    /// Runs `fut`; `None` if it took longer than `ms`.
    async fn run_with_timeout<'a>(
        &self,
        ms: u64,
        fut: BoxFuture<'a, Result<serde_json::Value, crate::TaskError>>,
    ) -> Option<Result<serde_json::Value, crate::TaskError>>;

    /// Now, formatted as AWS formats timestamps.
    fn now_iso(&self) -> String {
        format_ms(self.now_ms())
    }
}

/// Formats epoch milliseconds as `YYYY-MM-DDThh:mm:ss.mmmZ`.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Parses an ISO-8601 extended offset date-time as Step Functions requires it
/// (`2016-03-14T01:59:00Z`, `…T01:59:00.123+01:00`): the `T` separator, seconds and an offset
/// are all required (`2016-12-05 21:29:29Z` and `2016-12-05T21:29:29` are refused).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.get(10) != Some(&b'T') {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The system clock; sleeps really sleep.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

#[async_trait]
impl FlowClock for RealClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    async fn sleep_ms(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn run_with_timeout<'a>(
        &self,
        ms: u64,
        fut: BoxFuture<'a, Result<serde_json::Value, crate::TaskError>>,
    ) -> Option<Result<serde_json::Value, crate::TaskError>> {
        tokio::time::timeout(Duration::from_millis(ms), fut)
            .await
            .ok()
    }
}

/// A clock whose sleeps complete at once by advancing virtual time.
#[derive(Debug)]
pub struct VirtualClock {
    now: AtomicI64,
    sleeps: Mutex<Vec<(i64, u64)>>,
}

impl VirtualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        Self {
            now: AtomicI64::new(start_ms),
            sleeps: Mutex::new(Vec::new()),
        }
    }

    /// A clock reading an RFC 3339 timestamp.
    ///
    /// # Errors
    /// A message naming the text if it is not RFC 3339.
    pub fn at(rfc3339: &str) -> Result<Self, String> {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .map(|t| Self::new(t.timestamp_millis()))
            .map_err(|e| format!("{rfc3339:?} is not an RFC 3339 timestamp: {e}"))
    }

    /// Moves time forward without logging a sleep.
    pub fn advance_ms(&self, ms: u64) {
        self.now.fetch_add(ms as i64, Ordering::SeqCst);
    }

    /// Every sleep so far as `(virtual start ms, duration ms)`, in order.
    pub fn sleeps(&self) -> Vec<(i64, u64)> {
        self.sleeps.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl FlowClock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    async fn sleep_ms(&self, ms: u64) {
        let step = i64::try_from(ms).unwrap_or(i64::MAX);
        // Saturating: a Wait of any length moves virtual time to the end of time at most.
        let start = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(step))
            })
            .unwrap_or_else(|n| n);
        if let Ok(mut s) = self.sleeps.lock() {
            s.push((start, ms));
        }
        tokio::task::yield_now().await;
    }

    async fn run_with_timeout<'a>(
        &self,
        ms: u64,
        fut: BoxFuture<'a, Result<serde_json::Value, crate::TaskError>>,
    ) -> Option<Result<serde_json::Value, crate::TaskError>> {
        let start = self.now_ms();
        let out = fut.await;
        let limit = i64::try_from(ms).unwrap_or(i64::MAX);
        (self.now_ms().saturating_sub(start) <= limit).then_some(out)
    }
}

impl shardline_core::time::Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        FlowClock::now_ms(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_sleep_advances_and_logs() {
        let c = VirtualClock::new(1_000);
        c.sleep_ms(10_000).await;
        c.sleep_ms(20_000).await;
        assert_eq!(FlowClock::now_ms(&c), 31_000);
        assert_eq!(c.sleeps(), vec![(1_000, 10_000), (11_000, 20_000)]);
        assert_eq!(format_ms(1_771_500_309_123), "2026-02-19T11:25:09.123Z");
    }

    #[tokio::test]
    async fn real_clock_times_out_and_passes_results_through() {
        let c = RealClock;
        let hang = Box::pin(async {
            futures::future::pending::<()>().await;
            Ok(serde_json::Value::Null)
        });
        assert_eq!(c.run_with_timeout(20, hang).await, None);
        let quick = Box::pin(async { Ok(serde_json::json!(1)) });
        assert_eq!(
            c.run_with_timeout(1_000, quick).await,
            Some(Ok(serde_json::json!(1)))
        );
        let before = c.now_ms();
        c.sleep_ms(15).await;
        assert!(c.now_ms() - before >= 15);
    }

    #[tokio::test]
    async fn virtual_timeout_uses_virtual_elapsed_time() {
        let c = VirtualClock::new(0);
        let slow = Box::pin(async {
            c.sleep_ms(11_000).await;
            Ok(serde_json::Value::Null)
        });
        assert_eq!(c.run_with_timeout(10_000, slow).await, None);
    }
}
