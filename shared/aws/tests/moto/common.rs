//! The moto endpoint, backends on it, and a queue subscribed to an SNS topic.

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use shardline_aws::config::RetryConfig;
use shardline_aws::{AwsBackends, AwsConfig, Overrides};
use shardline_core::ports::Notification;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

pub const REGION: &str = "eu-west-1";

/// moto's URL, or a failure that says how to run these tests.
pub fn moto_url() -> String {
    std::env::var("SHARDLINE_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "SHARDLINE_MOTO_URL is not set: the AWS adapter tests run against moto's server. \
             Run scripts/test-all.sh (it installs and starts moto), or start \
             `.venv/bin/moto_server -H 127.0.0.1 -p 5000` and run \
             `SHARDLINE_MOTO_URL=http://127.0.0.1:5000 cargo test -p shardline-aws --features moto-tests`"
        )
    })
}

pub fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "moto-tests")
}

pub fn credentials_provider() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(credentials())
}

/// The `[aws]` block for moto: its URL for every service, short retry delays.
pub fn config() -> AwsConfig {
    AwsConfig {
        region: Some(REGION.into()),
        endpoint_url: Some(moto_url()),
        // moto parses a 1,000-datum PutMetricData (awsQuery) in about 25 s on this machine.
        attempt_timeout: Duration::from_secs(120),
        retry: RetryConfig {
            max_rounds: 10,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
        },
        ..AwsConfig::default()
    }
}

pub async fn backends_with(
    config: &AwsConfig,
    http_client: Option<SharedHttpClient>,
) -> AwsBackends {
    let b = AwsBackends::connect(
        config,
        Overrides {
            http_client,
            credentials: Some(credentials_provider()),
        },
    )
    .await
    .unwrap();
    b.ensure_own_resources().await.unwrap();
    b
}

pub async fn backends() -> AwsBackends {
    backends_with(&config(), None).await
}

/// Held by every test that writes to Kinesis: moto's Kinesis is not safe under concurrent
/// writers (it dropped 5% of acknowledged records with 4 writer threads).
pub async fn kinesis_writer() -> tokio::sync::MutexGuard<'static, ()> {
    static WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    WRITER.lock().await
}

/// An SQS queue subscribed to an SNS topic; reads back what SNS delivered.
pub struct Subscriber {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    seen: Mutex<Vec<Notification>>,
}

impl Subscriber {
    pub async fn subscribe(b: &AwsBackends, topic_arn: &str, queue: &str) -> Subscriber {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new(REGION))
            .endpoint_url(moto_url())
            .credentials_provider(credentials())
            .build();
        let sqs = aws_sdk_sqs::Client::from_conf(conf);
        let mut create = sqs.create_queue().queue_name(queue);
        if queue.ends_with(".fifo") {
            create = create.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
        }
        let queue_url = create
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
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap();
        Subscriber {
            sqs,
            queue_url,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Everything delivered so far (SNS's JSON envelopes, parsed).
    pub async fn delivered(&self) -> Vec<Notification> {
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = out.messages();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let attributes: BTreeMap<String, String> = envelope["MessageAttributes"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| {
                                (k.clone(), v["Value"].as_str().unwrap_or("").to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.seen.lock().unwrap().push(Notification {
                    topic: envelope["TopicArn"].as_str().unwrap_or("").to_string(),
                    subject: envelope["Subject"].as_str().unwrap_or("").to_string(),
                    message: envelope["Message"].as_str().unwrap_or("").to_string(),
                    attributes,
                    deduplication_id: None,
                });
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        self.seen.lock().unwrap().clone()
    }
}
