//! `up`'s status line: what each consumer is doing, instead of a lag that stops moving when
//! the consumer does.
//!
//! `[12:00:05] events in 31200 | s3-parquet lag 120ms | dynamodb retrying since 11:59:01
//! (7 failures): sink: unavailable: ... | alerts restarting: ... | dlq 3 | alarms 1`

use chrono::{DateTime, Utc};
use shardline_consumers::runtime::{ConsumerState, StatusSnapshot};

/// One consumer's part of the status line.
pub fn consumer_state(name: &str, snap: &StatusSnapshot) -> String {
    match &snap.state {
        ConsumerState::Starting => format!("{name} starting"),
        ConsumerState::Running => format!("{name} lag {}ms", snap.max_millis_behind()),
        ConsumerState::Retrying {
            what,
            since_ms,
            failures,
            error,
        } => format!(
            "{name} retrying since {} ({failures} {}): {what}: {error}",
            clock_time(*since_ms),
            if *failures == 1 {
                "failure"
            } else {
                "failures"
            },
        ),
        ConsumerState::Restarting { reason } => format!("{name} restarting: {reason}"),
        ConsumerState::Stopped => format!("{name} stopped"),
        ConsumerState::Failed { error } => format!("{name} failed: {error}"),
    }
}

/// `HH:MM:SS` (UTC) of epoch milliseconds.
fn clock_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_consumers::runtime::ShardProgress;
    use shardline_core::ShardId;

    fn snap(state: ConsumerState) -> StatusSnapshot {
        let mut s = StatusSnapshot {
            state,
            ..StatusSnapshot::default()
        };
        s.shards.insert(
            ShardId(0),
            ShardProgress {
                millis_behind_latest: 1500,
                ..ShardProgress::default()
            },
        );
        s
    }

    #[test]
    fn each_state_reads_as_what_the_consumer_does() {
        assert_eq!(
            consumer_state("s3", &snap(ConsumerState::Running)),
            "s3 lag 1500ms"
        );
        let retrying = ConsumerState::Retrying {
            what: "sink".into(),
            since_ms: 1_767_225_600_000 + 3_723_000,
            failures: 7,
            error: "unavailable: the table is down".into(),
        };
        assert_eq!(
            consumer_state("dynamodb", &snap(retrying)),
            "dynamodb retrying since 01:02:03 (7 failures): sink: unavailable: the table is down",
            "no stale lag while it fails"
        );
        let restarting = ConsumerState::Restarting {
            reason: "panicked during shardId-000000000001 record 49: boom".into(),
        };
        assert_eq!(
            consumer_state("alerts", &snap(restarting)),
            "alerts restarting: panicked during shardId-000000000001 record 49: boom"
        );
        assert_eq!(
            consumer_state("cw", &snap(ConsumerState::Failed { error: "x".into() })),
            "cw failed: x"
        );
    }
}
