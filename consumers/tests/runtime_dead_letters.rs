//! Bad input never stalls a shard: one test per kind of invalid record, each asserting the
//! dead letter's reason and lineage and that the valid records around it still flow.

mod runtime_support;

use runtime_support::*;
use shardline_core::ShardId;

/// One bad record between two valid ones: it is dead-lettered with `reason`, and the valid
/// records on both sides still reach the sink.
async fn dead_letter_case(bad: Vec<u8>, reason: &str) {
    let env = Env::new(1).await;
    let mut input = valid(0..1);
    input.push(("i-bad".into(), bad.clone()));
    input.extend(valid(1..2));
    let put = env.put(input).await;
    let (sink, out) = CollectSink::new();
    let report = env
        .consumer(config("dlq"), Box::new(sink))
        .drain()
        .await
        .expect("drain");

    let got = delivered(&out);
    assert_eq!(
        seqs(&got),
        vec![put[0].1.clone(), put[2].1.clone()],
        "valid records flow"
    );
    let letters = env.dead_letters().list(Some("dlq")).await.expect("list");
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert!(
        l.reason.contains(reason),
        "reason `{}` should contain `{reason}`",
        l.reason
    );
    assert_eq!(l.shard, ShardId(0));
    assert_eq!(l.sequence_number, put[1].1);
    assert_eq!(l.partition_key, "i-bad");
    assert_eq!(l.stream, STREAM);
    assert_eq!(l.data.as_ref(), bad.as_slice(), "the exact bytes");
    assert_eq!(report.status.dead_letters, 1);
    assert_eq!(
        env.checkpoint("dlq", ShardId(0)).await,
        Some(put[2].1.clone())
    );
}

fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut e = event(7);
    e[field] = value;
    e.to_string().into_bytes()
}

#[tokio::test]
async fn unparseable_json_is_dead_lettered() {
    dead_letter_case(
        b"{\"metric_id\": \"cpu-1\", oops".to_vec(),
        "not a metric event",
    )
    .await;
}

#[tokio::test]
async fn unknown_metric_type_is_dead_lettered() {
    dead_letter_case(
        with("metric_type", "gpu_utilization".into()),
        "unknown metric_type `gpu_utilization`",
    )
    .await;
}

#[tokio::test]
async fn non_finite_value_is_dead_lettered() {
    dead_letter_case(with("value", "NaN".into()), "value is not a finite number").await;
}

#[tokio::test]
async fn negative_value_is_dead_lettered() {
    dead_letter_case(with("value", (-5.5).into()), "value -5.5 is negative").await;
}

#[tokio::test]
async fn percent_above_100_is_dead_lettered() {
    dead_letter_case(
        with("value", 150.0.into()),
        "cpu_utilization value 150 is above 100 percent",
    )
    .await;
}

#[tokio::test]
async fn missing_field_is_dead_lettered() {
    let mut e = event(3);
    e.as_object_mut().map(|o| o.remove("region"));
    dead_letter_case(e.to_string().into_bytes(), "missing field `region`").await;
}

#[tokio::test]
async fn invalid_utf8_is_dead_lettered_with_its_exact_bytes() {
    let mut bad = with("region", "eu-west-1".into());
    let at = bad.windows(4).position(|w| w == b"west").expect("region");
    bad[at] = 0xff;
    dead_letter_case(bad, "malformed: not a metric event").await;
}

#[tokio::test]
async fn a_host_clock_in_2100_is_clock_skew() {
    // 2100-01-01T00:00:00Z, far ahead of the record's arrival at the stream.
    dead_letter_case(
        with("timestamp", 4_102_444_800_i64.into()),
        "clock_skew: event time 2100-01-01",
    )
    .await;
}

#[tokio::test]
async fn timestamps_beyond_epoch_milliseconds_are_clock_skew() {
    dead_letter_case(
        with("timestamp", 9_223_372_036_854_775_i64.into()),
        "clock_skew",
    )
    .await;
    dead_letter_case(with("timestamp", i64::MAX.into()), "clock_skew").await;
    dead_letter_case(with("timestamp", i64::MIN.into()), "bad_timestamp").await;
}

#[tokio::test]
async fn a_wider_window_admits_old_and_skewed_events_for_its_consumer() {
    let env = Env::new(1).await;
    let mut input = valid(0..1);
    input.push(("i-2100".into(), with("timestamp", 4_102_444_800_i64.into())));
    input.push(("i-1990".into(), with("timestamp", 631_152_000_i64.into())));
    let put = env.put(input).await;

    let (sink, out) = CollectSink::new();
    env.consumer(config("default-window"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert_eq!(seqs(&delivered(&out)), vec![put[0].1.clone()]);
    let letters = env
        .dead_letters()
        .list(Some("default-window"))
        .await
        .expect("list");
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert!(
        reasons[0].contains("ahead of") && reasons[0].contains("max_skew"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("before") && reasons[1].contains("max_age"),
        "{reasons:?}"
    );

    // A backfill run gives its consumer a window that reaches back (and here ahead) further.
    let (sink, out) = CollectSink::new();
    let backfill = shardline_consumers::runtime::ConsumerConfig {
        event_time: Some(shardline_core::EventTimeLimits {
            max_age: std::time::Duration::from_secs(40 * 366 * 86_400),
            max_skew: std::time::Duration::from_secs(80 * 366 * 86_400),
        }),
        ..config("backfill")
    };
    env.consumer(backfill, Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert_eq!(seqs(&delivered(&out)).len(), 3);
    assert_eq!(
        env.dead_letters()
            .count(Some("backfill"))
            .await
            .expect("count"),
        0
    );
}
