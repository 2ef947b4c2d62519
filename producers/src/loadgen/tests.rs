use std::sync::Arc;
use std::time::Duration;

use super::*;
use shardline_core::time::ManualClock;
use shardline_log::{Log, LogOptions};

fn config(stream: &str) -> LoadConfig {
    LoadConfig {
        stream: stream.into(),
        rates: vec![0],
        step: Duration::ZERO,
        duration: Duration::from_millis(300),
        instances: 20,
        record_size: 200,
        batch: 100,
        callers: 4,
        consumers: 2,
        read_back: true,
        seed: 1,
    }
}

#[test]
fn batches_follow_the_stepped_schedule() {
    let cfg = LoadConfig {
        rates: vec![1000, 2000],
        step: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        ..config("s")
    };
    assert_eq!(due_time(&cfg, 0), Some(Duration::ZERO));
    assert_eq!(due_time(&cfg, 9), Some(Duration::from_millis(900)));
    assert_eq!(due_time(&cfg, 10), Some(Duration::from_secs(1)));
    assert_eq!(due_time(&cfg, 11), Some(Duration::from_millis(1050)));
    assert!(
        due_time(&cfg, 60).is_some_and(|d| d >= cfg.duration),
        "past the end"
    );
    let bad = LoadConfig {
        rates: vec![0, 10],
        ..cfg.clone()
    };
    assert!(bad.validate().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_is_consumed_and_read_back_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        Log::open(dir.path(), LogOptions::default())
            .await
            .expect("open"),
    );
    log.create("s", 4, Duration::from_secs(3600))
        .await
        .expect("create");
    let live = Arc::new(LiveStats::default());
    let report = run(log.clone(), config("s"), live.clone())
        .await
        .expect("run");
    assert!(report.acknowledged > 0);
    assert_eq!(report.sent, report.acknowledged, "{report:?}");
    assert_eq!((report.throttled, report.failed), (0, 0));
    let stored: u64 = log
        .shard_stats("s")
        .await
        .expect("stats")
        .iter()
        .map(|s| s.next_offset)
        .sum();
    assert_eq!(stored, report.acknowledged);
    assert_eq!(
        report.ack_latency.count * 100,
        report.sent,
        "one latency per call"
    );
    assert_eq!(report.consumers.len(), 2);
    for c in &report.consumers {
        assert_eq!(c.records, report.acknowledged, "{c:?}");
        assert!(c.caught_up);
        assert_eq!(c.lag.count, report.acknowledged);
    }
    let back = report.read_back.expect("read back");
    assert_eq!(back.records, report.acknowledged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_mode_throttles_what_is_over_a_thousand_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The clock stands still: everything falls in one second of the throttle.
    let options = LogOptions {
        enforce_throughput_limits: true,
        clock: ManualClock::new(1_700_000_000_000),
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(dir.path(), options).await.expect("open"));
    log.create("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let cfg = LoadConfig {
        consumers: 0,
        read_back: false,
        ..config("s")
    };
    let report = run(log, cfg, Arc::new(LiveStats::default()))
        .await
        .expect("run");
    assert!(report.sent > 1000, "{report:?}");
    assert_eq!(report.acknowledged, 1000);
    assert_eq!(report.throttled, report.sent - 1000);
    assert_eq!(report.failed, 0);
}
