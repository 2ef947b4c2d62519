//! The adapters' own retry rounds: exponential backoff with full jitter.
//!
//! The SDK already retries each request (throttling, 5xx, network errors). These rounds are for
//! what a successful request leaves undone: PutRecords entries that failed, DynamoDB items
//! left unprocessed, a read still throttled after the SDK's attempts.
//!
//! Round `n` (0-based) waits a uniformly random time in `[0, min(max_delay, base_delay * 2^n)]`
//! ("full jitter"), so writers that failed together do not retry together.

use rand::RngExt;
use std::time::Duration;

use crate::config::RetryConfig;

/// The delay before retry round `round` (0-based).
pub fn delay(config: &RetryConfig, round: u32) -> Duration {
    let cap = config
        .base_delay
        .saturating_mul(1u32 << round.min(20))
        .min(config.max_delay);
    let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
    if cap_us == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(rand::rng().random_range(0..=cap_us))
}

/// Sleeps before retry round `round`.
pub async fn wait(config: &RetryConfig, round: u32) {
    let d = delay(config, round);
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_doubling_cap() {
        let c = RetryConfig {
            max_rounds: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        for round in 0..30 {
            let cap = Duration::from_millis((10u64 << round.min(20)).min(50));
            for _ in 0..50 {
                assert!(delay(&c, round) <= cap, "round {round}");
            }
        }
        // Jitter: not every delay is the same.
        let seen: std::collections::BTreeSet<Duration> = (0..50).map(|_| delay(&c, 3)).collect();
        assert!(seen.len() > 1);
    }
}
