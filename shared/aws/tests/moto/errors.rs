//! What a user sees when something is missing: one line naming the service, the action and
//! what to do; never the SDK's debug output.

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use shardline_aws::{AwsBackends, Overrides};
use shardline_core::conformance::unique;
use shardline_core::ports::{ItemQuery, ItemTable, Notification, Notifier, ObjectStore, Stream};
use shardline_core::stream::PutRecordsEntry;
use shardline_core::{Error, RetryClass};

use crate::common::{backends, config, credentials_provider};

fn one_clear_line(e: &Error) -> String {
    let line = e.to_string();
    assert!(!line.contains('\n'), "one line: {line}");
    for debug in [
        "DispatchFailure",
        "ServiceError",
        "SdkError",
        "raw:",
        "ErrorMetadata",
        "{ ",
    ] {
        assert!(
            !line.contains(debug),
            "no SDK debug output ({debug}): {line}"
        );
    }
    line
}

#[tokio::test]
async fn missing_resources_say_run_infra_bootstrap() {
    let b = backends().await;
    let stream = unique("missing-stream");
    let put = b
        .stream
        .put_records(
            &stream,
            vec![PutRecordsEntry {
                partition_key: "k".into(),
                explicit_hash_key: None,
                data: "x".into(),
            }],
        )
        .await
        .unwrap_err();
    let line = one_clear_line(&put);
    assert!(matches!(put, Error::NotFound { .. }), "{put:?}");
    assert!(
        line.starts_with("Kinesis stream \"missing-stream"),
        "{line}"
    );
    assert!(
        line.contains("PutRecords")
            && line.contains("shardline infra bootstrap")
            && line.contains("eu-west-1"),
        "{line}"
    );

    let q = ItemQuery {
        table: unique("missing-table"),
        partition: shardline_core::ports::AttributeValue::S("x".into()),
        sort_from: None,
        sort_to: None,
        limit: None,
    };
    let query = b.table.query(&q).await.unwrap_err();
    let line = one_clear_line(&query);
    assert!(
        line.contains("DynamoDB table")
            && line.contains("Query")
            && line.contains("shardline infra bootstrap"),
        "{line}"
    );

    let list = b
        .objects
        .list(&unique("missing-bucket"), "")
        .await
        .unwrap_err();
    let line = one_clear_line(&list);
    assert!(
        line.contains("S3")
            && line.contains("ListObjectsV2")
            && line.contains("shardline infra bootstrap"),
        "{line}"
    );

    let note = Notification {
        topic: unique("missing-topic"),
        subject: "s".into(),
        message: "m".into(),
        attributes: Default::default(),
        deduplication_id: None,
    };
    let publish = b.notifier.publish(&note).await.unwrap_err();
    let line = one_clear_line(&publish);
    assert!(
        line.contains("SNS topic") && line.contains("shardline infra bootstrap"),
        "{line}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retryable_and_says_what_to_check() {
    let mut c = config();
    c.endpoint_url = Some("http://127.0.0.1:9".into());
    c.max_attempts = 1;
    let b = AwsBackends::connect(
        &c,
        Overrides {
            http_client: None,
            credentials: Some(credentials_provider()),
        },
    )
    .await
    .unwrap();
    let e = b.stream.list_streams().await.unwrap_err();
    let line = one_clear_line(&e);
    assert_eq!(e.retry_class(), RetryClass::Retryable);
    assert!(
        line.contains("Kinesis ListStreams")
            && line.contains("cannot reach the endpoint")
            && line.contains("AWS_ENDPOINT_URL"),
        "{line}"
    );
}

#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no providers in chain provided credentials",
        )))
    }
}

#[tokio::test]
async fn no_credentials_says_how_to_provide_them() {
    let b = AwsBackends::connect(
        &config(),
        Overrides {
            http_client: None,
            credentials: Some(SharedCredentialsProvider::new(NoCredentials)),
        },
    )
    .await
    .unwrap();
    let e = b.objects.ensure_bucket("any-bucket").await.unwrap_err();
    let line = one_clear_line(&e);
    assert_eq!(e.retry_class(), RetryClass::Permanent);
    assert!(
        line.starts_with("S3 HeadBucket on bucket \"any-bucket\": no AWS credentials found"),
        "{line}"
    );
    assert!(
        line.contains("AWS_PROFILE") && line.contains("AWS_ACCESS_KEY_ID"),
        "{line}"
    );
}
