//! The dynamodb, cloudwatch and alerts functions on the AWS backends, against moto's server:
//! each real bootstrap, under the runner's Runtime API, chooses AWS from its environment as a
//! deployed function does (`SHARDLINE_BACKEND=aws`, `AWS_ENDPOINT_URL`, the settings the
//! template writes), and its effects are counted on AWS: items in the table, the statistics
//! CloudWatch holds, the messages SNS delivered. A replay of the whole stream by a new
//! execution environment (the mapping's checkpoints lost) adds nothing.
//!
//! Run as the `aws` tests (moto-tests feature, `SHARDLINE_MOTO_URL`):
//! `cargo test -p shardline-lambda --features shardline-aws/moto-tests --test aws_sinks`.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use bytes::Bytes;
use serde_json::json;
use shardline_core::ports::{DeadLetterStore, ItemTable, MetricPublisher, StatisticsQuery};
use shardline_core::stream::PutRecordsEntry;
use std::collections::BTreeMap;
use support::{
    Queue, REGION, VALID, backends, function_config, log_with, metric_entries, moto, run_bootstrap,
    run_id,
};

#[tokio::test]
async fn the_real_dynamodb_bootstrap_puts_each_item_once_on_aws() {
    let Some(url) = moto() else { return };
    let run = run_id();
    let b = backends(&url, &run).await;
    b.ensure_own_resources().await.unwrap();
    let table = format!("items-{run}");
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), metric_entries()).await;
    let config = function_config(
        &run,
        json!({"consumer": "dynamodb", "dynamodb": {"table": table}}),
    );
    let binary = env!("CARGO_BIN_EXE_dynamodb");
    let state = dir.path().join("esm");

    let counts = run_bootstrap(&url, binary, &config, &log, &state).await;
    assert_eq!(counts.records_done, VALID as u64 + 1);
    assert_eq!(b.table.count(&table).await.unwrap(), VALID as u64);
    assert_eq!(b.dead_letters.count(Some("dynamodb")).await.unwrap(), 1);

    std::fs::remove_file(state.join("checkpoints.json")).unwrap();
    let again = run_bootstrap(&url, binary, &config, &log, &state).await;
    assert_eq!(
        again.records_done,
        VALID as u64 + 1,
        "the replay was delivered"
    );
    assert_eq!(b.table.count(&table).await.unwrap(), VALID as u64);
    assert_eq!(b.dead_letters.count(Some("dynamodb")).await.unwrap(), 1);
}

/// SampleCount of `namespace`'s cpu_utilization summed over the four instances of
/// [`metric_entries`], over the two hours around now.
async fn sample_count(b: &shardline_aws::AwsBackends, namespace: &str) -> f64 {
    let hour_ms = 3_600_000;
    let start_ms = shardline_core::time::now_ms() / hour_ms * hour_ms - hour_ms;
    let mut total = 0.0;
    for i in 0..4 {
        let query = StatisticsQuery {
            namespace: namespace.into(),
            metric_name: "cpu_utilization".into(),
            dimensions: BTreeMap::from([
                ("InstanceID".to_string(), format!("i-{:06}", 100_000 + i)),
                ("Region".to_string(), REGION.to_string()),
            ]),
            start_ms,
            end_ms: start_ms + 3 * hour_ms,
            period_secs: 3 * 3600,
        };
        for d in b.metrics.get_metric_statistics(&query).await.unwrap() {
            total += d.values.sample_count;
        }
    }
    total
}

#[tokio::test]
async fn the_real_cloudwatch_bootstrap_publishes_each_sample_once_on_aws() {
    let Some(url) = moto() else { return };
    let run = run_id();
    let b = backends(&url, &run).await;
    b.ensure_own_resources().await.unwrap();
    let namespace = format!("ns-{run}");
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), metric_entries()).await;
    let config = function_config(
        &run,
        json!({"consumer": "cloudwatch", "cloudwatch": {"namespace": namespace}}),
    );
    let binary = env!("CARGO_BIN_EXE_cloudwatch");
    let state = dir.path().join("esm");

    let counts = run_bootstrap(&url, binary, &config, &log, &state).await;
    assert_eq!(counts.records_done, VALID as u64 + 1);
    assert_eq!(sample_count(&b, &namespace).await, VALID as f64);
    assert_eq!(b.dead_letters.count(Some("cloudwatch")).await.unwrap(), 1);

    std::fs::remove_file(state.join("checkpoints.json")).unwrap();
    let again = run_bootstrap(&url, binary, &config, &log, &state).await;
    assert_eq!(
        again.records_done,
        VALID as u64 + 1,
        "the replay was delivered"
    );
    assert_eq!(
        sample_count(&b, &namespace).await,
        VALID as f64,
        "the watermarks in the state table skip what was published"
    );
}

/// cpu_utilization samples `(seconds after t0, instance, value)`, t0 ten minutes back on a
/// minute boundary: `i-hot` breaches 80 in its first minute and is back under it two
/// minutes later; a later sample of another instance moves event time past both minutes.
fn alert_entries() -> Vec<PutRecordsEntry> {
    let t0 = shardline_core::time::now_ms() / 60_000 * 60 - 600;
    [
        (0, "i-hot", 95.0),
        (120, "i-hot", 10.0),
        (300, "i-cold", 10.0),
    ]
    .iter()
    .enumerate()
    .map(|(n, (dt, instance, value))| PutRecordsEntry {
        partition_key: (*instance).to_string(),
        explicit_hash_key: None,
        data: Bytes::from(
            json!({
                "metric_id": format!("cpu-{n}"), "metric_type": "cpu_utilization",
                "timestamp": t0 + dt, "value": value, "instance_id": instance,
                "region": REGION, "collected_at": "2026-01-01T00:00:00Z"
            })
            .to_string(),
        ),
    })
    .collect()
}

#[tokio::test]
async fn the_real_alerts_bootstrap_notifies_each_transition_once_through_sns() {
    let Some(url) = moto() else { return };
    let run = run_id();
    let b = backends(&url, &run).await;
    b.ensure_own_resources().await.unwrap();
    let topic = b
        .notifier
        .ensure_topic(&format!("alarms-{run}"))
        .await
        .unwrap();
    let queue = Queue::subscribed(&url, &b, &topic, &format!("alarms-{run}")).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), alert_entries()).await;
    let config = function_config(
        &run,
        json!({"consumer": "alerts", "alerts": {"topic": topic}}),
    );
    let binary = env!("CARGO_BIN_EXE_alerts");
    let state = dir.path().join("esm");

    let counts = run_bootstrap(&url, binary, &config, &log, &state).await;
    assert_eq!(counts.records_done, 3);
    let messages = queue.drain(2).await;
    let states: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            let a = &m["MessageAttributes"];
            (
                a["InstanceID"]["Value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                a["NewStateValue"]["Value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("i-hot".to_string(), "ALARM".to_string()),
            ("i-hot".to_string(), "OK".to_string())
        ],
        "{messages:?}"
    );
    for m in &messages {
        assert_eq!(m["TopicArn"].as_str(), Some(topic.as_str()));
        assert!(
            m["Message"].as_str().unwrap().contains("cpu_utilization"),
            "{m}"
        );
    }

    std::fs::remove_file(state.join("checkpoints.json")).unwrap();
    let again = run_bootstrap(&url, binary, &config, &log, &state).await;
    assert_eq!(again.records_done, 3, "the replay was delivered");
    let more = queue.drain(0).await;
    assert!(more.is_empty(), "no notification twice: {more:?}");
}
