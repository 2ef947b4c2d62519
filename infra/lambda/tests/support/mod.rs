//! Support for the moto tests of the functions: moto's URL, each test's own resource names,
//! the test's clients, an embedded log with records, the real bootstrap of a function run
//! under the runner's Runtime API from its AWS environment, and a queue subscribed to an SNS
//! topic (to read what was published).

#![allow(dead_code, clippy::unwrap_used)]

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use bytes::Bytes;
use serde_json::{Value, json};
use shardline_aws::config::ResourceNames;
use shardline_aws::{AwsBackends, AwsConfig, Overrides};
use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, PutRecordsEntry};
use shardline_lambda::FunctionConfig;
use shardline_lambda::esm::{EsmCounts, EsmRunner, MappingConfig, Until};
use shardline_lambda::invoke::Invoker;
use shardline_lambda::runtime_api::{ProcessConfig, ProcessFunction};
use shardline_log::{Durability, Log, LogOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const REGION: &str = "eu-west-1";
pub const VALID: usize = 30;

/// moto's URL when the moto tests are on.
pub fn moto() -> Option<String> {
    if !shardline_aws::MOTO_TESTS {
        return None;
    }
    Some(std::env::var("SHARDLINE_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "SHARDLINE_MOTO_URL is not set: these tests run against moto's server. Run \
             scripts/test-all.sh, or start `.venv/bin/python scripts/moto_server.py 5000` and run \
             `SHARDLINE_MOTO_URL=http://127.0.0.1:5000 cargo test -p shardline-lambda \
             --features shardline-aws/moto-tests --test aws`"
        )
    }))
}

/// Names of one test's own resources (moto keeps everything between tests).
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// The function's `aws` settings as the template writes them: resource names only (region,
/// endpoint and credentials come from the environment).
pub fn function_aws(run: &str) -> AwsConfig {
    AwsConfig {
        resources: ResourceNames {
            lease_table: format!("leases-{run}"),
            state_table: format!("state-{run}"),
            dead_letter_bucket: format!("dead-letters-{run}"),
            dead_letter_prefix: "dead-letters/".into(),
        },
        ..AwsConfig::default()
    }
}

/// The test's own view of moto, with the function's resource names.
pub async fn backends(url: &str, run: &str) -> AwsBackends {
    let config = AwsConfig {
        region: Some(REGION.into()),
        endpoint_url: Some(url.into()),
        ..function_aws(run)
    };
    AwsBackends::connect(
        &config,
        Overrides {
            http_client: None,
            credentials: Some(SharedCredentialsProvider::new(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "moto-tests",
            ))),
        },
    )
    .await
    .unwrap()
}

pub async fn log_with(data: &Path, entries: Vec<PutRecordsEntry>) -> (Arc<Log>, Vec<String>) {
    let log = Log::open(
        data.join("log"),
        LogOptions {
            durability: Durability::Buffered,
            ..LogOptions::default()
        },
    )
    .await
    .unwrap();
    log.create_stream("metrics", 1, Duration::from_secs(86_400))
        .await
        .unwrap();
    let seqs = log
        .put_records("metrics", entries)
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r {
            PutRecordResult::Ok {
                sequence_number, ..
            } => sequence_number.as_str().to_string(),
            PutRecordResult::Err { error_message, .. } => panic!("{error_message}"),
        })
        .collect();
    (Arc::new(log), seqs)
}

/// `VALID` metric events and one invalid record.
pub fn metric_entries() -> Vec<PutRecordsEntry> {
    let now = shardline_core::time::now_ms() / 1000;
    let mut entries: Vec<PutRecordsEntry> = (0..VALID)
        .map(|i| PutRecordsEntry {
            partition_key: format!("i-{:06}", 100_000 + i % 4),
            explicit_hash_key: None,
            data: Bytes::from(
                json!({
                    "metric_id": format!("cpu-{i}"), "metric_type": "cpu_utilization",
                    "timestamp": now - i as i64, "value": format!("{}.5", 20 + i),
                    "instance_id": format!("i-{:06}", 100_000 + i % 4), "region": REGION,
                    "collected_at": "2026-01-01T00:00:00Z"
                })
                .to_string(),
            ),
        })
        .collect();
    entries.insert(
        5,
        PutRecordsEntry {
            partition_key: "bad".into(),
            explicit_hash_key: None,
            data: Bytes::from_static(b"{\"not\": \"a metric\"}"),
        },
    );
    entries
}

pub fn mapping(function: &str) -> MappingConfig {
    MappingConfig {
        batch_size: 10,
        retry_backoff: Duration::ZERO,
        poll_interval: Duration::from_millis(1),
        maximum_retry_attempts: 3,
        function_response_types: vec!["ReportBatchItemFailures".into()],
        ..MappingConfig::new(function, "metrics")
    }
}

/// Runs the real bootstrap `binary` of `function` with `config` as a deployed function runs
/// (`SHARDLINE_BACKEND=aws`, moto's endpoint, Lambda's region) under a mapping over `log`
/// until caught up, in a new execution environment; the mapping's counts.
pub async fn run_bootstrap(
    url: &str,
    binary: &str,
    config: &FunctionConfig,
    log: &Arc<Log>,
    state: &Path,
) -> EsmCounts {
    let function = config.consumer.clone();
    let mut p = ProcessConfig::new(function.as_str(), binary);
    for (k, v) in [
        ("SHARDLINE_BACKEND", "aws"),
        ("AWS_ENDPOINT_URL", url),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
    ] {
        p.env.insert(k.into(), v.into());
    }
    p.env.insert(
        "SHARDLINE_FUNCTION_CONFIG".into(),
        serde_json::to_string(config).unwrap(),
    );
    let f = ProcessFunction::new(p);
    let invoker: Arc<dyn Invoker> = f.clone();
    let runner = EsmRunner::new(mapping(&function), log.clone(), invoker, None, state).unwrap();
    let counts = runner.run(Until::CaughtUp).await.unwrap();
    f.shutdown().await;
    counts
}

/// A function's settings: `json` (the sink part) over the test's resource names.
pub fn function_config(run: &str, json: Value) -> FunctionConfig {
    FunctionConfig {
        aws: function_aws(run),
        ..FunctionConfig::from_json(&json.to_string()).unwrap()
    }
}

/// An SQS queue on moto subscribed to an SNS topic.
pub struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// A queue named `name` subscribed to `topic`.
    pub async fn subscribed(url: &str, b: &AwsBackends, topic: &str, name: &str) -> Queue {
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new(REGION))
                .endpoint_url(url)
                .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
                .build(),
        );
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let queue_arn = attrs
            .attributes()
            .unwrap()
            .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .unwrap()
            .clone();
        b.clients
            .sns
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap();
        Queue {
            sqs,
            url: queue_url,
        }
    }

    /// The envelopes of the messages waiting (each deleted from the queue): polls (1 s each,
    /// at most 20) until `expected` came, then once more for any beyond them.
    pub async fn drain(&self, expected: usize) -> Vec<Value> {
        let mut messages = Vec::new();
        for _ in 0..20 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            if out.messages().is_empty() && messages.len() >= expected {
                break;
            }
            for m in out.messages() {
                messages.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        messages
    }
}
