//! Producer behaviour against a deterministic throttling stream.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shardline_core::MetricEvent;
use shardline_producers::{
    ByteSize, OrderingMode, Producer, ProducerConfig, ProducerError, SyntheticCollector,
    SyntheticConfig,
};
use support::ThrottlingStream;

fn fast_config() -> ProducerConfig {
    ProducerConfig {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..ProducerConfig::default()
    }
}

fn events(instances: usize, rounds: i64, seed: u64) -> Vec<MetricEvent> {
    let mut c = SyntheticCollector::new(
        SyntheticConfig {
            instances,
            ..SyntheticConfig::default()
        },
        Some(seed),
    )
    .expect("collector");
    (0..rounds)
        .flat_map(|r| c.collect(None, 1_771_500_000_000 + r * 1000))
        .collect()
}

/// Per instance, the event ids in the order they reached the stream.
fn order_in_stream(stream: &ThrottlingStream) -> BTreeMap<String, Vec<(i64, String)>> {
    let mut out: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for shard in stream.appended.lock().expect("lock").iter() {
        for (key, data) in shard {
            let e = MetricEvent::from_json(data).expect("valid event");
            out.entry(key.clone()).or_default().push((
                e.timestamp_ms.unwrap_or_default(),
                e.metric_type.to_string(),
            ));
        }
    }
    out
}

fn order_given(events: &[MetricEvent]) -> BTreeMap<String, Vec<(i64, String)>> {
    let mut out: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for e in events {
        out.entry(e.instance_id.clone()).or_default().push((
            e.timestamp_ms.unwrap_or_default(),
            e.metric_type.to_string(),
        ));
    }
    out
}

#[tokio::test]
async fn throttled_entries_are_retried_until_all_are_appended_in_order() {
    // Every 3rd distinct record is throttled twice; every 7th call fails as a whole.
    let stream = Arc::new(ThrottlingStream::new(4, 3, 2));
    let producer = Producer::new(stream.clone(), "metrics", fast_config()).expect("producer");
    let input = events(20, 30, 1);
    let n = input.len();
    let report = producer.send(input.clone()).await.expect("send");

    assert_eq!(report.appended.len(), n);
    assert!(report.failed.is_empty(), "{:?}", report.failed.first());
    assert_eq!(stream.total(), n, "no duplicates, nothing lost");
    assert!(
        report.retries >= (n / 3 * 2) as u64,
        "retries {}",
        report.retries
    );
    assert!(stream.whole_call_failures.load(Ordering::SeqCst) > 0);
    assert_eq!(order_in_stream(&stream), order_given(&input));
    let indexes: Vec<usize> = report.appended.iter().map(|a| a.index).collect();
    assert_eq!(indexes, (0..n).collect::<Vec<_>>());
    // Sequence numbers are distinct and decode to the shard that was reported.
    let seqs: BTreeSet<_> = report
        .appended
        .iter()
        .map(|a| a.sequence_number.clone())
        .collect();
    assert_eq!(seqs.len(), n);
    for a in &report.appended {
        assert_eq!(
            a.sequence_number.parts().expect("v2").shard_index,
            a.shard_id.0
        );
    }
}

#[tokio::test]
async fn calls_respect_record_and_byte_limits() {
    let stream = Arc::new(ThrottlingStream::new(2, 0, 0));
    let cfg = ProducerConfig {
        ordering: OrderingMode::Unordered,
        max_records_per_call: 100,
        max_bytes_per_call: ByteSize::mib(1),
        ..fast_config()
    };
    let producer = Producer::new(stream.clone(), "metrics", cfg).expect("producer");
    let input = events(50, 20, 2); // 4,000 events
    let report = producer.send(input).await.expect("send");
    assert_eq!(report.appended.len(), 4000);
    assert_eq!(report.calls, 40, "4,000 records at 100 per call");
    assert_eq!(stream.max_call_records.load(Ordering::SeqCst), 100);
    assert!(stream.max_call_bytes.load(Ordering::SeqCst) <= 1024 * 1024);
    assert_eq!(report.retries, 0);
}

#[tokio::test]
async fn permanent_errors_are_reported_not_retried() {
    let stream = Arc::new(ThrottlingStream::new(1, 0, 0));
    let producer = Producer::new(stream.clone(), "metrics", fast_config()).expect("producer");
    let mut input = events(2, 2, 3);
    input[1].instance_id = "bad-instance".into();
    input[5].instance_id = "x".repeat(300);
    let report = producer.send(input).await.expect("send");
    assert_eq!(report.appended.len(), 14);
    assert_eq!(report.failed.len(), 2);
    assert_eq!(report.failed[0].index, 1);
    assert_eq!(report.failed[0].error_code, "ValidationException");
    assert_eq!(report.failed[0].attempts, 1);
    assert_eq!(report.failed[1].index, 5);
    assert!(
        report.failed[1].reason.contains("1 to 256"),
        "{}",
        report.failed[1].reason
    );
    assert_eq!(report.retries, 0);
}

#[tokio::test]
async fn attempts_are_bounded() {
    // Every record throttled 10 times; 3 attempts allowed.
    let stream = Arc::new(ThrottlingStream::new(1, 1, 10));
    let cfg = ProducerConfig {
        max_attempts: 3,
        ..fast_config()
    };
    let producer = Producer::new(stream.clone(), "metrics", cfg).expect("producer");
    let report = producer.send(events(1, 1, 4)).await.expect("send");
    assert!(report.appended.is_empty());
    assert_eq!(report.failed.len(), 4);
    for f in &report.failed {
        assert!(f.attempts <= 3, "{f:?}");
        assert!(
            f.reason.contains("gave up after 3 attempts"),
            "{}",
            f.reason
        );
    }
    assert_eq!(stream.total(), 0);
}

#[tokio::test]
async fn unknown_stream_fails_the_send_with_its_name() {
    let stream = Arc::new(ThrottlingStream::new(1, 0, 0));
    let producer = Producer::new(stream, "nope", fast_config()).expect("producer");
    let err = producer
        .send(events(1, 1, 5))
        .await
        .expect_err("no such stream");
    assert!(err.to_string().contains("`nope`"), "{err}");
    let ProducerError::Stream { partial, .. } = err else {
        panic!("expected a stream error");
    };
    assert_eq!(partial.failed.len(), 4);
}

#[tokio::test]
async fn sends_wait_while_in_flight_bytes_are_at_the_limit() {
    let stream = Arc::new(ThrottlingStream::new(1, 0, 0));
    // Hold every call at the gate.
    let held = stream
        .gate
        .forget_permits(tokio::sync::Semaphore::MAX_PERMITS);
    assert!(held > 0);
    let cfg = ProducerConfig {
        max_in_flight_bytes: ByteSize::mib(1),
        ..fast_config()
    };
    let producer = Arc::new(Producer::new(stream.clone(), "metrics", cfg).expect("producer"));
    // ~5,000 events of ~250 bytes: more than 1 MiB, so the first send takes all permits.
    let big = events(100, 13, 6);
    let small = events(1, 1, 7);
    let p1 = producer.clone();
    let first = tokio::spawn(async move { p1.send(big).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(producer.in_flight_bytes(), 1024 * 1024);
    let p2 = producer.clone();
    let second = tokio::spawn(async move { p2.send(small).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!second.is_finished(), "second send must wait for capacity");
    assert_eq!(
        stream.entered.load(Ordering::SeqCst),
        1,
        "only the first send's first call is out"
    );
    assert_eq!(stream.total(), 0);

    stream.gate.add_permits(1_000_000);
    let r1 = first.await.expect("join").expect("send");
    let r2 = second.await.expect("join").expect("send");
    assert_eq!(r1.appended.len(), 5200);
    assert_eq!(r2.appended.len(), 4);
    producer.flush().await.expect("flush");
    assert_eq!(producer.in_flight_bytes(), 0);
    producer.close();
    assert!(matches!(
        producer.send(events(1, 1, 8)).await,
        Err(ProducerError::Closed(_))
    ));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// N events sent → N records appended, each instance's in the order given.
    #[test]
    fn every_event_is_appended_once_in_per_instance_order(
        instances in 1usize..20, rounds in 1i64..8, every in 1usize..5, times in 0u32..3, seed in 0u64..1000,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let stream = Arc::new(ThrottlingStream::new(3, every, times));
        let producer = Producer::new(stream.clone(), "metrics", fast_config()).expect("producer");
        let input = events(instances, rounds, seed);
        let report = rt.block_on(producer.send(input.clone())).expect("send");
        proptest::prop_assert_eq!(report.appended.len(), input.len());
        proptest::prop_assert_eq!(stream.total(), input.len());
        proptest::prop_assert_eq!(order_in_stream(&stream), order_given(&input));
    }
}

/// Closing the producer (shutdown) ends a send waiting out a retry backoff at once: the
/// entries not appended are reported failed, and nothing is put again.
#[tokio::test]
async fn close_ends_a_send_waiting_to_retry() {
    // Every record throttled many times; an hour between attempts.
    let stream = Arc::new(ThrottlingStream::new(1, 1, 100));
    let cfg = ProducerConfig {
        max_attempts: 50,
        base_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(stream.clone(), "metrics", cfg).expect("producer"));
    let send = tokio::spawn({
        let producer = Arc::clone(&producer);
        async move { producer.send(events(1, 1, 4)).await }
    });
    for _ in 0..1000 {
        if stream.calls.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(stream.calls.load(Ordering::SeqCst), 1, "first attempt made");
    producer.close();
    let report = tokio::time::timeout(Duration::from_secs(60), send)
        .await
        .expect("the send ended once closed, not after the backoff")
        .expect("task")
        .expect("send");
    assert!(report.appended.is_empty());
    assert_eq!(report.failed.len(), 4);
    for f in &report.failed {
        assert_eq!(f.error_code, "NotSent", "{f:?}");
        assert!(f.reason.contains("producer closed"), "{}", f.reason);
    }
    // One instance: its records go one at a time, so one was tried once, the rest never.
    let attempts: u32 = report.failed.iter().map(|f| f.attempts).sum();
    assert_eq!(attempts, 1, "{:?}", report.failed);
    assert_eq!(stream.calls.load(Ordering::SeqCst), 1, "nothing put again");
    assert!(matches!(
        producer.send(events(1, 1, 4)).await,
        Err(ProducerError::Closed(_))
    ));
}
