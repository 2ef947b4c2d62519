//! Exponential backoff with full jitter.
//!
//! Attempt `n` (0-based) waits a uniformly random time in `[0, min(max, initial * 2^n)]`
//! ("full jitter"), which spreads retries of many workers apart. Calls to the stream and the
//! stores are retried only for errors whose [`RetryClass`] is `Retryable`; sink calls for any
//! error (see [`crate::runtime`]). At most `max_attempts` tries are made in place; what happens
//! next is the [`Supervisor`](super::Supervisor)'s call.
//!
//! Every failed attempt shows in the consumer's [`ConsumerStatus`] as `Retrying` (with the
//! error) until a call to the same thing succeeds.

use rand::RngExt;
use shardline_core::time::Clock;
use shardline_core::{Error, RetryClass};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tracing::warn;

use super::config::RetryConfig;
use super::status::ConsumerStatus;

/// Where a retried call's failures and successes are reported.
#[derive(Clone, Copy)]
pub(crate) struct Track<'a> {
    /// The consumer's live status.
    pub status: &'a ConsumerStatus,
    /// The clock giving the time a failing streak started.
    pub clock: &'a dyn Clock,
    /// What is called: `sink`, `stream`, `checkpoint store` or `dead-letter store`.
    pub call: &'static str,
}

impl Track<'_> {
    /// Notes a failed attempt.
    pub fn failed(&self, error: &Error) {
        self.status
            .note_failure(self.call, error, self.clock.now_ms());
    }

    /// Notes a retry about to be made.
    pub fn retried(&self) {
        self.status.update(|s| s.retries += 1);
    }

    /// Notes a successful call.
    pub fn succeeded(&self) {
        self.status.note_success(self.call);
    }
}

/// The backoff ceiling before retry `attempt` (0-based).
pub fn backoff_ceiling(cfg: &RetryConfig, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    cfg.initial_backoff
        .checked_mul(factor)
        .unwrap_or(cfg.max_backoff)
        .min(cfg.max_backoff)
}

/// A full-jitter delay before retry `attempt`.
pub fn backoff_delay(cfg: &RetryConfig, attempt: u32) -> Duration {
    let ceiling = backoff_ceiling(cfg, attempt).as_millis() as u64;
    Duration::from_millis(rand::rng().random_range(0..=ceiling))
}

/// Waits `delay` before a retry and returns `true`; returns `false` instead, at once or as
/// soon as it comes, when `stop` says the consumer is shutting down (or its sender is gone):
/// nothing is retried past a shutdown, so Ctrl-C is not held up by a failing backend.
pub async fn pause(delay: Duration, stop: Option<&watch::Receiver<bool>>) -> bool {
    let Some(stop) = stop else {
        tokio::time::sleep(delay).await;
        return true;
    };
    let mut stop = stop.clone();
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        if *stop.borrow_and_update() {
            return false;
        }
        tokio::select! {
            () = &mut sleep => return true,
            changed = stop.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
        }
    }
}

/// After attempt `attempt` (0-based) failed with `error`: when the error is retryable (or
/// `any_error`), attempts are left and no shutdown came, waits the backoff and returns `true`;
/// otherwise returns `false` and the caller gives up with `error`. `what` names the call in logs.
pub async fn retry_after(
    cfg: &RetryConfig,
    stop: Option<&watch::Receiver<bool>>,
    attempt: u32,
    error: &Error,
    any_error: bool,
    what: &str,
) -> bool {
    let retryable = any_error || error.retry_class() == RetryClass::Retryable;
    if !retryable || attempt + 1 >= cfg.max_attempts {
        return false;
    }
    let delay = backoff_delay(cfg, attempt);
    warn!(op = what, attempt = attempt + 1, delay_ms = delay.as_millis() as u64, error = %error, "retrying");
    if pause(delay, stop).await {
        return true;
    }
    warn!(op = what, "shutting down: not retrying");
    false
}

/// Runs `op` until it succeeds, fails permanently, has been tried `max_attempts` times, or
/// fails after `stop` asked for a shutdown. Failures, retries and the success are reported to
/// `track`. `what` names the operation in logs.
///
/// # Errors
/// The last error.
pub(crate) async fn with_retry<T, F, Fut>(
    cfg: &RetryConfig,
    stop: Option<&watch::Receiver<bool>>,
    track: Track<'_>,
    what: &str,
    mut op: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(v) => {
                track.succeeded();
                return Ok(v);
            }
            Err(e) => {
                track.failed(&e);
                if !retry_after(cfg, stop, attempt, &e, false, what).await {
                    return Err(e);
                }
                track.retried();
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let cfg = RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_attempts: 5,
        };
        assert_eq!(backoff_ceiling(&cfg, 0), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(&cfg, 2), Duration::from_millis(400));
        assert_eq!(backoff_ceiling(&cfg, 4), Duration::from_secs(1));
        assert_eq!(backoff_ceiling(&cfg, 40), Duration::from_secs(1));
        for a in 0..10 {
            assert!(backoff_delay(&cfg, a) <= backoff_ceiling(&cfg, a));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_only_up_to_the_limit() {
        let cfg = RetryConfig {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_attempts: 3,
        };
        let status = ConsumerStatus::default();
        let clock = shardline_core::time::ManualClock::new(1_000);
        let track = Track {
            status: &status,
            clock: clock.as_ref(),
            call: "stream",
        };
        let mut calls = 0;
        let out: Result<(), Error> = with_retry(&cfg, None, track, "t", || {
            calls += 1;
            async { Err(Error::Throttled("busy".into())) }
        })
        .await;
        assert!(matches!(out, Err(Error::Throttled(_))));
        assert_eq!((calls, status.snapshot().retries), (3, 2));
        assert_eq!(
            status.state(),
            super::super::ConsumerState::Retrying {
                what: "stream".into(),
                since_ms: 1_000,
                failures: 3,
                error: "throughput exceeded: busy".into(),
            }
        );

        let mut calls = 0;
        clock.advance_ms(5);
        let out: Result<(), Error> = with_retry(&cfg, None, track, "t", || {
            calls += 1;
            async { Err(Error::InvalidArgument("no".into())) }
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls, 1);
        assert!(
            matches!(
                status.state(),
                super::super::ConsumerState::Retrying {
                    since_ms: 1_000,
                    failures: 4,
                    ..
                }
            ),
            "the streak goes on: {:?}",
            status.state()
        );

        let out = with_retry(&cfg, None, track, "t", || async { Ok(7) }).await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(status.state(), super::super::ConsumerState::Running);
    }
}
