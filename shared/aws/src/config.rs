//! Configuration of the AWS backend (the `[aws]` block of `shardline.toml`).
//!
//! Region, profile and endpoint fall back to the standard aws-config chain, so a setup that
//! works with the AWS CLI works here unchanged: `AWS_REGION` / `AWS_DEFAULT_REGION`,
//! `AWS_PROFILE`, `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_KINESIS`,
//! `_S3`, `_DYNAMODB`, `_CLOUDWATCH`, `_SNS`, the shared config and credentials files, and
//! the usual credential sources (environment, profile, `credential_process`, web identity,
//! ECS and EC2 instance roles). Credentials never appear in Shardline's configuration.
//!
//! Precedence for the endpoint of one service (the SDK's: settings in code before the
//! environment): `[aws.<service>] endpoint_url`, then `[aws] endpoint_url`, then
//! `AWS_ENDPOINT_URL_<SERVICE>` (or the profile's `services` section), then
//! `AWS_ENDPOINT_URL`, then the service's AWS endpoint for the region.
//!
//! # Layout
//! - [`AwsConfig`]: the whole block; [`ServiceConfig`], [`S3Config`], [`SnsConfig`]: per service.
//! - [`ResourceNames`]: where the adapters keep leases, sink state and dead letters.
//! - [`RetryConfig`]: the adapters' own retries (failed PutRecords entries, unprocessed
//!   DynamoDB items, throttled reads), on top of the SDK's per-request retries.
//!
//! Every key is shown with its default in `aws.example.toml` beside this crate's manifest.

use serde::{Deserialize, Serialize};
use shardline_core::units::{duration, size};
use std::time::Duration;

/// The `[aws]` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// AWS region; unset: `AWS_REGION`, then the profile's region.
    pub region: Option<String>,
    /// Named profile of `~/.aws/config`; unset: `AWS_PROFILE`, then `default`.
    pub profile: Option<String>,
    /// One endpoint for every service (moto, LocalStack); unset: `AWS_ENDPOINT_URL`, then AWS.
    pub endpoint_url: Option<String>,
    /// Attempts per request made by the SDK itself (its standard retry mode: throttling,
    /// 5xx and transient network errors, with exponential backoff and jitter).
    pub max_attempts: u32,
    /// Connect timeout per request.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Timeout of one attempt of a request (connect to last byte).
    #[serde(with = "duration")]
    pub attempt_timeout: Duration,
    /// Kinesis Data Streams.
    pub kinesis: KinesisConfig,
    /// S3.
    pub s3: S3Config,
    /// DynamoDB.
    pub dynamodb: DynamoDbConfig,
    /// CloudWatch.
    pub cloudwatch: ServiceConfig,
    /// SNS.
    pub sns: SnsConfig,
    /// Names of the resources the adapters keep their own data in.
    pub resources: ResourceNames,
    /// The adapters' retries.
    pub retry: RetryConfig,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            region: None,
            profile: None,
            endpoint_url: None,
            max_attempts: 3,
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
            kinesis: KinesisConfig::default(),
            s3: S3Config::default(),
            dynamodb: DynamoDbConfig::default(),
            cloudwatch: ServiceConfig::default(),
            sns: SnsConfig::default(),
            resources: ResourceNames::default(),
            retry: RetryConfig::default(),
        }
    }
}

/// Settings every service block has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Endpoint of this service only.
    pub endpoint_url: Option<String>,
}

/// `[aws.kinesis]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisConfig {
    /// Endpoint of Kinesis only.
    pub endpoint_url: Option<String>,
    /// How long a listing of a stream's shards is reused to tell whether a shard that reads
    /// empty is closed (for endpoints that never end a closed shard's iterator, like moto).
    #[serde(with = "duration")]
    pub shard_cache_ttl: Duration,
}

impl Default for KinesisConfig {
    fn default() -> Self {
        KinesisConfig {
            endpoint_url: None,
            shard_cache_ttl: Duration::from_secs(10),
        }
    }
}

/// `[aws.s3]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Endpoint of S3 only.
    pub endpoint_url: Option<String>,
    /// Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`: needed by
    /// most S3 stand-ins on `localhost` (the SDK already does it for IP addresses).
    pub force_path_style: bool,
    /// Objects larger than this are uploaded in parts (multipart upload).
    #[serde(with = "size")]
    pub multipart_threshold: u64,
    /// Size of each part but the last (S3 needs at least 5 MiB).
    #[serde(with = "size")]
    pub part_size: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint_url: None,
            force_path_style: false,
            multipart_threshold: 16 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
        }
    }
}

/// `[aws.dynamodb]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamoDbConfig {
    /// Endpoint of DynamoDB only.
    pub endpoint_url: Option<String>,
    /// BatchWriteItem calls in flight at once for one batch put.
    pub write_concurrency: usize,
}

impl Default for DynamoDbConfig {
    fn default() -> Self {
        DynamoDbConfig {
            endpoint_url: None,
            write_concurrency: 4,
        }
    }
}

/// `[aws.sns]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnsConfig {
    /// Endpoint of SNS only.
    pub endpoint_url: Option<String>,
    /// MessageGroupId of every message to a FIFO topic (`*.fifo`): one group keeps all
    /// notifications in publish order.
    pub message_group_id: String,
}

impl Default for SnsConfig {
    fn default() -> Self {
        SnsConfig {
            endpoint_url: None,
            message_group_id: "shardline".to_string(),
        }
    }
}

/// `[aws.resources]`: where the adapters keep their own data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceNames {
    /// DynamoDB table of shard leases and checkpoints (KCL lease schema, key `leaseKey`).
    pub lease_table: String,
    /// DynamoDB table of sink state (key `namespace` + `key`): alarm states, CloudWatch
    /// watermarks, the SNS publish ledger.
    pub state_table: String,
    /// S3 bucket of dead letters (records can be up to 1 MiB, past DynamoDB's 400 KB items).
    pub dead_letter_bucket: String,
    /// Key prefix of dead letters in that bucket.
    pub dead_letter_prefix: String,
}

impl Default for ResourceNames {
    fn default() -> Self {
        ResourceNames {
            lease_table: "shardline-leases".to_string(),
            state_table: "shardline-state".to_string(),
            dead_letter_bucket: "shardline-dead-letters".to_string(),
            dead_letter_prefix: "dead-letters/".to_string(),
        }
    }
}

/// `[aws.retry]`: the adapters' own retries, with exponential backoff and full jitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Rounds before giving up (failed PutRecords entries, unprocessed DynamoDB items,
    /// throttled GetRecords).
    pub max_rounds: u32,
    /// Upper bound of the first delay; each round doubles it.
    #[serde(with = "duration")]
    pub base_delay: Duration,
    /// Largest delay.
    #[serde(with = "duration")]
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_rounds: 10,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../aws.example.toml");
        let parsed: toml::Table = toml::from_str(text).unwrap();
        let aws: AwsConfig = parsed["aws"].clone().try_into().unwrap();
        assert_eq!(aws, AwsConfig::default());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = toml::from_str::<AwsConfig>("[s3]\nforce_path_stile = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("force_path_stile"), "{err}");
    }

    #[test]
    fn sizes_and_durations_parse_as_text() {
        let c: AwsConfig = toml::from_str(
            "max_attempts = 5\n[s3]\nmultipart_threshold = \"64MiB\"\n[retry]\nbase_delay = \"1ms\"\n",
        )
        .unwrap();
        assert_eq!(c.s3.multipart_threshold, 64 * 1024 * 1024);
        assert_eq!(c.retry.base_delay, Duration::from_millis(1));
        assert_eq!(c.max_attempts, 5);
    }
}
