//! The consumer runtime against the real embedded log and local stores: consumption,
//! checkpoint resume, starting positions, retries and permanent sink errors.

mod runtime_support;

use runtime_support::*;
use shardline_consumers::runtime::{Consumer, ConsumerConfig, ConsumerError};
use shardline_core::{SequenceNumber, ShardId, StartingPosition};
use std::time::Duration;

#[tokio::test]
async fn drains_every_record_of_every_shard_and_checkpoints_the_last() {
    let env = Env::new(3).await;
    let put = env.put(valid(0..600)).await;
    let (sink, out) = CollectSink::new();
    let report = env
        .consumer(config("c1"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    let got = delivered(&out);
    assert_eq!(got.len(), 600);
    assert_eq!(report.status.records_in, 600);
    assert_eq!(report.status.records_delivered, 600);
    assert_eq!(report.status.dead_letters, 0);
    let mut want: Vec<SequenceNumber> = put.iter().map(|(_, s)| s.clone()).collect();
    let mut have = seqs(&got);
    want.sort();
    have.sort();
    assert_eq!(have, want, "each record delivered once");
    // Per shard in sequence order.
    for shard in 0..3 {
        let s: Vec<_> = got
            .iter()
            .filter(|r| r.shard == ShardId(shard))
            .map(|r| r.sequence_number.clone())
            .collect();
        assert!(s.windows(2).all(|w| w[0] < w[1]), "shard {shard} in order");
    }
    let lasts = last_per_shard(&put);
    assert_eq!(lasts.len(), 3, "records spread over all shards");
    for (shard, last) in lasts {
        assert_eq!(env.checkpoint("c1", shard).await, Some(last.clone()));
        assert_eq!(report.status.shards[&shard].checkpointed, Some(last));
        assert_eq!(report.status.shards[&shard].millis_behind_latest, 0);
    }
    assert!(report.status.last_checkpoint_ms.is_some());
}

#[tokio::test]
async fn a_restarted_consumer_resumes_after_its_checkpoint() {
    let env = Env::new(2).await;
    env.put(valid(0..100)).await;
    let (sink, first) = CollectSink::new();
    env.consumer(config("resume"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert_eq!(delivered(&first).len(), 100);

    let newer = env.put(valid(100..150)).await;
    let (sink, second) = CollectSink::new();
    let report = env
        .consumer(config("resume"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    let mut got = seqs(&delivered(&second));
    let mut want: Vec<_> = newer.iter().map(|(_, s)| s.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "only the records appended after the stop");
    assert_eq!(report.status.records_in, 50);

    // Another consumer has its own checkpoints and reads everything.
    let (sink, other) = CollectSink::new();
    env.consumer(config("other"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert_eq!(delivered(&other).len(), 150);
}

#[tokio::test]
async fn latest_skips_existing_records_when_no_checkpoint_exists() {
    let env = Env::new(1).await;
    env.put(valid(0..20)).await;
    let (sink, out) = CollectSink::new();
    let cfg = ConsumerConfig {
        starting_position: StartingPosition::Latest,
        ..config("latest")
    };
    let report = env
        .consumer(cfg, Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert!(delivered(&out).is_empty());
    assert_eq!(report.status.records_in, 0);
    assert_eq!(env.checkpoint("latest", ShardId(0)).await, None);
}

#[tokio::test]
async fn a_retryable_sink_error_is_retried_then_succeeds() {
    let env = Env::new(1).await;
    let put = env.put(valid(0..30)).await;
    let (mut sink, out) = CollectSink::new();
    sink.fail_retryable = 3;
    let attempts = sink.attempts.clone();
    let report = env
        .consumer(config("flaky"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert_eq!(
        delivered(&out).len(),
        30,
        "the same batch went through after the failures"
    );
    assert_eq!(attempts.lock().map(|a| *a).unwrap_or(0), 4);
    assert_eq!(report.status.retries, 3);
    assert_eq!(
        env.checkpoint("flaky", ShardId(0)).await,
        Some(put[29].1.clone())
    );
}

/// A sink error of any class is retried in place (`retry.max_attempts` tries); then the
/// consumer stops, and only a supervisor starts it again.
#[tokio::test]
async fn a_permanent_sink_error_stops_the_consumer_without_checkpointing() {
    let env = Env::new(1).await;
    env.put(valid(0..10)).await;
    let (mut sink, out) = CollectSink::new();
    sink.fail_permanent = true;
    let attempts = sink.attempts.clone();
    let err = env
        .consumer(config("broken"), Box::new(sink))
        .drain()
        .await
        .expect_err("stops");
    assert!(
        matches!(err, ConsumerError::Sink { ref sink, shard: ShardId(0), .. } if sink == "collect"),
        "{err}"
    );
    assert!(
        err.to_string().contains("table schema does not match"),
        "{err}"
    );
    assert!(delivered(&out).is_empty());
    assert_eq!(
        attempts.lock().map(|a| *a).unwrap_or(0),
        6,
        "retried in place"
    );
    assert_eq!(
        env.checkpoint("broken", ShardId(0)).await,
        None,
        "nothing skipped"
    );
}

#[tokio::test]
async fn a_bad_configuration_is_refused_with_the_setting_named() {
    let env = Env::new(1).await;
    let (sink, _) = CollectSink::new();
    let cfg = ConsumerConfig {
        batch_size: 0,
        ..config("bad")
    };
    let err = Consumer::new(
        cfg,
        env.log.clone(),
        env.checkpoints(),
        env.dead_letters(),
        Box::new(sink),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("batch_size 0"), "{err}");
}

/// On paused time: were the minute-long backoff waited out, the 20 s (virtual) bound would
/// fire first.
#[tokio::test(start_paused = true)]
async fn shutdown_is_not_held_up_by_retries_of_a_failing_sink() {
    let env = Env::new(1).await;
    env.put(valid(0..10)).await;
    let (mut sink, out) = CollectSink::new();
    sink.fail_retryable = u32::MAX;
    let attempts = sink.attempts.clone();
    let mut cfg = config("stuck");
    // Each retry would wait up to a minute: nine of them, minutes in all.
    cfg.retry.initial_backoff = Duration::from_secs(60);
    cfg.retry.max_backoff = Duration::from_secs(60);
    cfg.retry.max_attempts = 10;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(env.consumer(cfg, Box::new(sink)).run(rx));
    for _ in 0..500 {
        if attempts.lock().map(|a| *a).unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tx.send(true).expect("send shutdown");
    let err = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("stops without waiting out the retries")
        .expect("task")
        .expect_err("the failing write is reported");
    assert!(
        matches!(
            err,
            ConsumerError::Sink {
                shard: ShardId(0),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("slow down"), "{err}");
    assert_eq!(
        attempts.lock().map(|a| *a).unwrap_or(0),
        1,
        "no retry after the shutdown"
    );
    assert!(delivered(&out).is_empty());
    assert_eq!(
        env.checkpoint("stuck", ShardId(0)).await,
        None,
        "nothing checkpointed past what was written"
    );
}
