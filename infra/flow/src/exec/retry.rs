//! Error-name matching and retry delays, as Step Functions defines them.
//!
//! - An error matches a name it equals.
//! - `States.ALL` matches every error except `States.Runtime` and
//!   `States.DataLimitExceeded`, which are terminal: no Retry or Catch sees them unless it
//!   names them exactly (and even then `States.Runtime` is never retried or caught).
//! - `States.TaskFailed` matches every error except `States.Timeout` (and the terminal ones).
//! - The delay before retry *n* (0-based) is `IntervalSeconds × BackoffRate^n`, capped by
//!   `MaxDelaySeconds`; with `JitterStrategy: FULL` it is drawn uniformly from `[0, delay]`.

use crate::asl::Retrier;
use rand::RngExt as _;

/// Errors no retrier or catcher can handle.
pub const UNCATCHABLE: [&str; 1] = ["States.Runtime"];

/// True if `pattern` (one `ErrorEquals` entry) matches `error`.
pub fn name_matches(pattern: &str, error: &str) -> bool {
    if UNCATCHABLE.contains(&error) {
        return false;
    }
    if pattern == error {
        return true;
    }
    if error == "States.DataLimitExceeded" {
        return false;
    }
    match pattern {
        "States.ALL" => true,
        "States.TaskFailed" => error != "States.Timeout",
        _ => false,
    }
}

/// True if any entry of `list` matches `error`.
pub fn any_matches(list: &[String], error: &str) -> bool {
    list.iter().any(|p| name_matches(p, error))
}

/// The backoff before the retry that follows `attempts_so_far` earlier retries, in ms.
pub fn delay_ms(r: &Retrier, attempts_so_far: u64) -> u64 {
    let exp = i32::try_from(attempts_so_far).unwrap_or(i32::MAX);
    let mut secs = r.interval_seconds as f64 * r.backoff_rate.powi(exp);
    if let Some(max) = r.max_delay_seconds {
        secs = secs.min(max as f64);
    }
    let ms = (secs * 1000.0).min(u64::MAX as f64 / 2.0) as u64;
    if r.full_jitter {
        rand::rng().random_range(0..=ms)
    } else {
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(interval: u64, rate: f64, max_delay: Option<u64>) -> Retrier {
        Retrier {
            error_equals: vec!["States.ALL".into()],
            interval_seconds: interval,
            max_attempts: 5,
            backoff_rate: rate,
            max_delay_seconds: max_delay,
            full_jitter: false,
        }
    }

    #[test]
    fn matching_follows_aws_rules() {
        let cases = [
            ("States.ALL", "PipelineUnhealthy", true),
            ("States.ALL", "States.Timeout", true),
            ("States.ALL", "States.Runtime", false),
            ("States.ALL", "States.DataLimitExceeded", false),
            ("States.DataLimitExceeded", "States.DataLimitExceeded", true),
            ("States.Runtime", "States.Runtime", false),
            ("States.TaskFailed", "Lambda.ServiceException", true),
            ("States.TaskFailed", "States.Timeout", false),
            ("States.TaskFailed", "States.TaskFailed", true),
            ("States.Timeout", "States.Timeout", true),
            ("PipelineUnhealthy", "PipelineUnhealthy", true),
            ("PipelineUnhealthy", "Other", false),
        ];
        for (p, e, want) in cases {
            assert_eq!(name_matches(p, e), want, "{p} vs {e}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = retrier(10, 2.0, None);
        assert_eq!(
            [delay_ms(&r, 0), delay_ms(&r, 1), delay_ms(&r, 2)],
            [10_000, 20_000, 40_000]
        );
        let capped = retrier(10, 2.0, Some(15));
        assert_eq!(delay_ms(&capped, 1), 15_000);
        let jitter = Retrier {
            full_jitter: true,
            ..retrier(10, 2.0, None)
        };
        for _ in 0..50 {
            assert!(delay_ms(&jitter, 1) <= 20_000);
        }
    }
}
