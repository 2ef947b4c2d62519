//! One SDK configuration, five service clients.
//!
//! [`AwsClients::connect`] runs the standard aws-config chain once (region, profile,
//! credentials, `AWS_ENDPOINT_URL[_<SERVICE>]`), applies the `[aws]` block over it, and builds
//! a client per service, each with the call-counting interceptor and its endpoint override.
//! Clients are cheap to clone and share one connection pool.
//!
//! [`Overrides`] lets tests (and embedders) put their own HTTP client (a fault-injecting
//! layer), credentials or retry rounds in place of the chain's.

use aws_config::retry::RetryConfig as SdkRetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use shardline_core::{Error, Result};
use std::sync::Arc;

use crate::config::AwsConfig;
use crate::counters::{ApiCounters, CountCalls};

/// What to use instead of the standard chain's choices.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The HTTP client (e.g. a fault-injecting layer over the default one).
    pub http_client: Option<SharedHttpClient>,
    /// A credentials provider instead of the chain's (static keys for moto, or a provider
    /// that fails, to see the error a user without credentials gets).
    pub credentials: Option<SharedCredentialsProvider>,
}

/// The service clients of one AWS backend, and their call counters.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// The `[aws]` block they were built from.
    pub config: Arc<AwsConfig>,
    /// The resolved region.
    pub region: String,
    /// Kinesis Data Streams.
    pub kinesis: aws_sdk_kinesis::Client,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// Requests sent, per service and action.
    pub counters: Arc<ApiCounters>,
}

impl AwsClients {
    /// Resolves the SDK configuration and builds the clients.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when no region can be found (the one thing the chain cannot
    /// default). Missing credentials surface on the first request, naming the service.
    pub async fn connect(config: &AwsConfig, overrides: Overrides) -> Result<Self> {
        let sdk = load_sdk_config(config, &overrides).await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| {
                Error::InvalidArgument(
                    "no AWS region configured: set AWS_REGION, `region` in the [aws] block, or a region in the AWS profile".into(),
                )
            })?;
        let counters = ApiCounters::new();
        let count = || CountCalls::new(Arc::clone(&counters));

        let mut kinesis = aws_sdk_kinesis::config::Builder::from(&sdk).interceptor(count());
        if let Some(url) = &config.kinesis.endpoint_url {
            kinesis = kinesis.endpoint_url(url);
        }
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .interceptor(count())
            .force_path_style(config.s3.force_path_style);
        if let Some(url) = &config.s3.endpoint_url {
            s3 = s3.endpoint_url(url);
        }
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(count());
        if let Some(url) = &config.dynamodb.endpoint_url {
            dynamodb = dynamodb.endpoint_url(url);
        }
        let mut cloudwatch = aws_sdk_cloudwatch::config::Builder::from(&sdk).interceptor(count());
        if let Some(url) = &config.cloudwatch.endpoint_url {
            cloudwatch = cloudwatch.endpoint_url(url);
        }
        let mut sns = aws_sdk_sns::config::Builder::from(&sdk).interceptor(count());
        if let Some(url) = &config.sns.endpoint_url {
            sns = sns.endpoint_url(url);
        }
        Ok(AwsClients {
            config: Arc::new(config.clone()),
            region,
            kinesis: aws_sdk_kinesis::Client::from_conf(kinesis.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch.build()),
            sns: aws_sdk_sns::Client::from_conf(sns.build()),
            counters,
        })
    }
}

async fn load_sdk_config(config: &AwsConfig, overrides: &Overrides) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(SdkRetryConfig::standard().with_max_attempts(config.max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(config.connect_timeout)
                .operation_attempt_timeout(config.attempt_timeout)
                .build(),
        );
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(http) = &overrides.http_client {
        loader = loader.http_client(http.clone());
    }
    if let Some(credentials) = &overrides.credentials {
        loader = loader.credentials_provider(credentials.clone());
    }
    loader.load().await
}
