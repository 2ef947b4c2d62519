//! The sink functions and the mapping's OnFailure destination on the AWS backends, against
//! moto's server: the real `s3-parquet` bootstrap, under the runner's Runtime API, chooses AWS
//! from its environment as a deployed function does (`SHARDLINE_BACKEND=aws`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, the `aws` settings the template writes) and writes the Parquet objects
//! and the dead letter to S3 once across a replay; a batch the mapping gives up on reaches an
//! S3 bucket and an SNS topic through the ports.
//!
//! They run when shardline-aws's `moto-tests` feature is on (scripts/test-all.sh turns it on
//! after starting moto and exporting `SHARDLINE_MOTO_URL`); with it on and no URL they fail
//! saying how to run them. By hand:
//!
//! ```sh
//! .venv/bin/python scripts/moto_server.py 5000 &
//! SHARDLINE_MOTO_URL=http://127.0.0.1:5000 \
//!     cargo test -p shardline-lambda --features shardline-aws/moto-tests --test aws
//! ```

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use bytes::Bytes;
use serde_json::{Value, json};
use shardline_aws::AwsBackends;
use shardline_core::ports::{DeadLetterStore, ObjectStore, Stream};
use shardline_core::stream::PutRecordsEntry;
use shardline_lambda::esm::{Destination, EsmRunner, MappingConfig, Until};
use shardline_lambda::invoke::InProcess;
use shardline_lambda::{FunctionError, function_fn};
use std::path::Path;
use std::sync::Arc;
use support::{
    Queue, VALID, backends, function_config, log_with, mapping, metric_entries, moto,
    run_bootstrap, run_id,
};

/// Parquet objects under `bucket/metrics/` on S3: their keys and rows (from each footer).
async fn parquet_objects(b: &AwsBackends, bucket: &str) -> Vec<(String, u64)> {
    use parquet::file::reader::FileReader;
    let mut out = Vec::new();
    for meta in b.objects.list(bucket, "metrics/").await.unwrap() {
        if !meta.key.ends_with(".parquet") {
            continue;
        }
        let body = b.objects.get(bucket, &meta.key).await.unwrap().unwrap();
        let reader = parquet::file::reader::SerializedFileReader::new(body).unwrap();
        out.push((
            meta.key,
            reader.metadata().file_metadata().num_rows() as u64,
        ));
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_real_s3_parquet_bootstrap_runs_on_aws_from_its_environment_and_replays_add_nothing() {
    let Some(url) = moto() else { return };
    let run = run_id();
    let b = backends(&url, &run).await;
    // What the template deploys.
    b.ensure_own_resources().await.unwrap();
    let bucket = format!("lake-{run}");
    b.objects.ensure_bucket(&bucket).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_with(dir.path(), metric_entries()).await;
    let config = function_config(
        &run,
        json!({"consumer": "s3-parquet", "s3": {"bucket": bucket}}),
    );
    let binary = env!("CARGO_BIN_EXE_s3-parquet");
    let state = dir.path().join("esm");

    let counts = run_bootstrap(&url, binary, &config, &log, &state).await;
    assert_eq!(counts.records_done, VALID as u64 + 1);
    let objects = parquet_objects(&b, &bucket).await;
    assert_eq!(
        objects.iter().map(|(_, n)| n).sum::<u64>(),
        VALID as u64,
        "every valid record is one row in S3: {objects:?}"
    );
    assert_eq!(
        b.dead_letters.count(Some("s3-parquet")).await.unwrap(),
        1,
        "the invalid record is a dead letter in the dead-letter bucket"
    );

    // A replay from the start (the mapping's checkpoints lost), by a new execution environment.
    std::fs::remove_file(state.join("checkpoints.json")).unwrap();
    let again = run_bootstrap(&url, binary, &config, &log, &state).await;
    assert_eq!(
        again.records_done,
        VALID as u64 + 1,
        "the replay was delivered"
    );
    assert_eq!(
        parquet_objects(&b, &bucket).await,
        objects,
        "exactly once across the replay"
    );
    assert_eq!(b.dead_letters.count(Some("s3-parquet")).await.unwrap(), 1);
}

/// Three records that a function fails on every time.
async fn failing_mapping(
    data: &Path,
    destination: Destination,
) -> (shardline_lambda::esm::EsmCounts, Vec<String>) {
    let entries = (0..3)
        .map(|i| PutRecordsEntry {
            partition_key: format!("k{i}"),
            explicit_hash_key: None,
            data: Bytes::from(json!({"n": i}).to_string()),
        })
        .collect();
    let (log, seqs) = log_with(data, entries).await;
    let f = function_fn("always-failing", |_event: Value| async {
        Err::<Value, _>(FunctionError::new("Boom", "fails every batch"))
    });
    let config = MappingConfig {
        maximum_retry_attempts: 1,
        function_response_types: Vec::new(),
        ..mapping("always-failing")
    };
    let runner = EsmRunner::new(
        config,
        log.clone() as Arc<dyn Stream>,
        Arc::new(InProcess::new(f)),
        Some(destination),
        &data.join("esm"),
    )
    .unwrap();
    let counts = runner.run(Until::CaughtUp).await.unwrap();
    (counts, seqs)
}

fn assert_record(record: &Value, seqs: &[String]) {
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    let info = &record["KinesisBatchInfo"];
    assert_eq!(info["shardId"], "shardId-000000000000");
    assert_eq!(info["startSequenceNumber"].as_str(), Some(seqs[0].as_str()));
    assert_eq!(info["endSequenceNumber"].as_str(), Some(seqs[2].as_str()));
    assert_eq!(info["batchSize"], 3);
    assert!(
        info["streamArn"]
            .as_str()
            .unwrap()
            .ends_with(":stream/metrics"),
        "{info}"
    );
}

#[tokio::test]
async fn a_batch_given_up_on_reaches_s3_and_sns_through_the_ports_on_moto() {
    let Some(url) = moto() else { return };
    let run = run_id();
    let b = backends(&url, &run).await;
    b.ensure_own_resources().await.unwrap();

    // S3: one object under AWS's key layout, the record with the invocation's event as payload.
    let bucket = format!("esm-failures-{run}");
    let dir = tempfile::tempdir().unwrap();
    let (counts, seqs) = failing_mapping(
        dir.path(),
        Destination::S3 {
            bucket: bucket.clone(),
            store: b.object_store(),
        },
    )
    .await;
    assert_eq!(counts.invocations, 2, "the first try and one retry");
    let objects = b.objects.list(&bucket, "aws/lambda/").await.unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(
        objects[0].key.contains("/shardId-000000000000/"),
        "{}",
        objects[0].key
    );
    let body = b
        .objects
        .get(&bucket, &objects[0].key)
        .await
        .unwrap()
        .unwrap();
    let record: Value = serde_json::from_slice(&body).unwrap();
    assert_record(&record, &seqs);
    assert_eq!(record["payload"]["Records"].as_array().unwrap().len(), 3);

    // SNS: the record as the message, read back from a queue subscribed to the topic.
    let topic = b
        .notifier
        .ensure_topic(&format!("esm-failures-{run}"))
        .await
        .unwrap();
    let queue = Queue::subscribed(&url, &b, &topic, &format!("esm-failures-{run}")).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, seqs) = failing_mapping(
        dir.path(),
        Destination::Sns {
            topic_arn: topic.clone(),
            notifier: Arc::new(b.notifier.clone()),
        },
    )
    .await;
    let messages = queue.drain(1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["TopicArn"].as_str(), Some(topic.as_str()));
    let record: Value = serde_json::from_str(messages[0]["Message"].as_str().unwrap()).unwrap();
    assert_record(&record, &seqs);
}
