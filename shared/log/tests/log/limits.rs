//! Per-record limits fail one entry; whole-call limits fail the call; throughput limits throttle.

use std::time::Duration;

use bytes::Bytes;
use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, PutRecordsEntry};
use shardline_core::time::ManualClock;
use shardline_log::LogOptions;

use crate::common::*;

fn code(r: &PutRecordResult) -> &str {
    match r {
        PutRecordResult::Ok { .. } => "OK",
        PutRecordResult::Err { error_code, .. } => error_code,
    }
}

#[tokio::test]
async fn per_record_violations_fail_only_that_record() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 2, Duration::from_secs(3600))
        .await
        .expect("create");
    let entries = vec![
        entry("good", "a"),
        entry(&"k".repeat(257), "b"),
        entry("", "c"),
        PutRecordsEntry {
            partition_key: "big".into(),
            explicit_hash_key: None,
            data: Bytes::from(vec![0u8; 1024 * 1024]),
        },
        entry("good2", "d"),
    ];
    let r = log.put_records("s", entries).await.expect("call succeeds");
    assert_eq!(
        r.iter().map(code).collect::<Vec<_>>(),
        [
            "OK",
            "ValidationException",
            "ValidationException",
            "ValidationException",
            "OK"
        ]
    );
    let PutRecordResult::Err { error_message, .. } = &r[3] else {
        panic!("big record accepted")
    };
    assert!(error_message.contains("1 MiB"), "{error_message}");
    let stats = log.shard_stats("s").await.expect("stats");
    assert_eq!(
        stats.iter().map(|s| s.next_offset).sum::<u64>(),
        2,
        "only the valid records were appended"
    );
}

#[tokio::test]
async fn whole_call_limits_fail_the_call_and_append_nothing() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let err = log
        .put_records("s", (0..501).map(|_| entry("k", "x")).collect())
        .await
        .expect_err("501");
    assert!(err.to_string().contains("at most 500"), "{err}");
    let six_mib: Vec<_> = (0..6)
        .map(|_| entry("k", vec![1u8; 1024 * 1024 - 10]))
        .collect();
    let err = log.put_records("s", six_mib).await.expect_err("6 MiB");
    assert!(err.to_string().contains("5 MiB"), "{err}");
    assert_eq!(log.shard_stats("s").await.expect("stats")[0].next_offset, 0);
    let err = log
        .put_records("nope", vec![entry("k", "x")])
        .await
        .expect_err("no stream");
    assert!(matches!(err, shardline_core::Error::NotFound { .. }));
    let err = log
        .create_stream("bad/name", 1, Duration::from_secs(3600))
        .await
        .expect_err("name");
    assert!(err.to_string().contains("1 to 128 characters"), "{err}");
    let err = log
        .create_stream("r", 1, Duration::from_secs(8761 * 3600))
        .await
        .expect_err("retention");
    assert!(err.to_string().contains("1 to 8760 hours"), "{err}");
    let err = log
        .create_stream("r", 0, Duration::from_secs(3600))
        .await
        .expect_err("shards");
    assert!(err.to_string().contains("shard count"), "{err}");
}

#[tokio::test]
async fn throughput_limits_throttle_per_shard_per_second() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let opts = LogOptions {
        enforce_throughput_limits: true,
        ..options(&clock)
    };
    let log = open(dir.path(), opts).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let mut ok = 0;
    let mut throttled = 0;
    for _ in 0..3 {
        for r in log
            .put_records(
                "s",
                (0..500).map(|i| entry(&format!("k{i}"), "x")).collect(),
            )
            .await
            .expect("put")
        {
            match code(&r) {
                "OK" => ok += 1,
                "ProvisionedThroughputExceededException" => throttled += 1,
                other => panic!("unexpected {other}"),
            }
        }
    }
    assert_eq!((ok, throttled), (1000, 500));
    clock.advance_ms(1000);
    let r = log
        .put_records(
            "s",
            vec![
                entry("k", vec![0u8; 600 * 1024]),
                entry("k", vec![0u8; 600 * 1024]),
            ],
        )
        .await
        .expect("put");
    assert_eq!(
        r.iter().map(code).collect::<Vec<_>>(),
        ["OK", "ProvisionedThroughputExceededException"],
        "1 MiB/s"
    );
}
