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
    assert_eq!(l.data.as_ref(), String::from_utf8_lossy(&bad).as_bytes());
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
