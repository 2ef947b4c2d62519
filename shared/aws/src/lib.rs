//! Shardline's ports on AWS: Kinesis Data Streams, S3, DynamoDB, CloudWatch and SNS through
//! aws-sdk-rust.
//!
//! [`AwsBackends::connect`] resolves the standard AWS configuration chain (region, profile,
//! credentials, `AWS_ENDPOINT_URL[_<SERVICE>]`) with the `[aws]` block of the configuration
//! over it, and builds one adapter per port. The same code talks to AWS and to moto's server
//! (the tests run every port's conformance suite against moto).
//!
//! # Layout
//! - [`config`]: [`AwsConfig`], the `[aws]` block (region, profile, endpoints, per-service
//!   settings, resource names, retries).
//! - [`client`]: the SDK configuration and the five service clients.
//! - [`error`]: SDK errors to Shardline errors with a retry class and one actionable line.
//! - [`counters`]: API calls per service and action (AWS bills per request).
//! - [`backoff`]: the adapters' own retry rounds (exponential backoff, full jitter).
//! - [`kinesis`]: [`KinesisStream`], the `Stream` port.
//! - [`s3`]: [`S3ObjectStore`], the `ObjectStore` port.
//! - [`dynamodb`]: [`DynamoItemTable`] (`ItemTable`), [`DynamoStateStore`] (`StateStore`),
//!   [`DynamoLeaseTable`] (`CheckpointStore` and `LeaseStore`, KCL lease schema).
//! - [`cloudwatch`]: [`CloudWatchPublisher`], the `MetricPublisher` port.
//! - [`sns`]: [`SnsNotifier`], the `Notifier` port.
//! - [`dead_letters`]: [`S3DeadLetterStore`], the `DeadLetterStore` port.
//! - [`infra`]: what a configuration needs on AWS ([`infra::InfraPlan`]): status and bootstrap.
//!
//! # Where each port keeps its data on AWS
//! | port | home |
//! |---|---|
//! | Stream | the Kinesis stream |
//! | ObjectStore | the S3 buckets the sinks name |
//! | ItemTable | the DynamoDB tables the sinks name (`InfraMetrics`) |
//! | MetricPublisher | CloudWatch; its watermarks in the state table |
//! | Notifier | the SNS topic; published deduplication ids in the state table |
//! | CheckpointStore, LeaseStore | DynamoDB `resources.lease_table` (KCL lease schema) |
//! | StateStore | DynamoDB `resources.state_table` |
//! | DeadLetterStore | S3 `resources.dead_letter_bucket` (records can exceed DynamoDB's 400 KB items) |

pub mod backoff;
pub mod client;
pub mod cloudwatch;
pub mod config;
pub mod counters;
pub mod dead_letters;
pub mod dynamodb;
pub mod error;
pub mod infra;
pub mod kinesis;
pub mod s3;
pub mod sns;

use shardline_core::Result;
use shardline_core::ports::ObjectStore;
use std::sync::Arc;

pub use client::{AwsClients, Overrides};
pub use cloudwatch::CloudWatchPublisher;
pub use config::AwsConfig;
pub use counters::{ApiCallCount, ApiCounters};
pub use dead_letters::S3DeadLetterStore;
pub use dynamodb::{DynamoItemTable, DynamoLeaseTable, DynamoStateStore};
pub use kinesis::KinesisStream;
pub use s3::S3ObjectStore;
pub use sns::SnsNotifier;

/// Whether this build runs the tests against moto (the `moto-tests` feature): other crates'
/// moto tests check it, so that `--features shardline-aws/moto-tests` turns theirs on too.
pub const MOTO_TESTS: bool = cfg!(feature = "moto-tests");

/// Every port on AWS, sharing one set of clients and call counters.
#[derive(Debug, Clone)]
pub struct AwsBackends {
    /// The clients (and their counters).
    pub clients: AwsClients,
    /// Kinesis.
    pub stream: KinesisStream,
    /// S3.
    pub objects: S3ObjectStore,
    /// DynamoDB items.
    pub table: DynamoItemTable,
    /// Checkpoints and leases.
    pub leases: DynamoLeaseTable,
    /// Sink state.
    pub state: DynamoStateStore,
    /// CloudWatch.
    pub metrics: CloudWatchPublisher,
    /// SNS.
    pub notifier: SnsNotifier,
    /// Dead letters.
    pub dead_letters: S3DeadLetterStore,
}

impl AwsBackends {
    /// Resolves the configuration chain and builds every adapter. Sends no request.
    ///
    /// # Errors
    /// As [`AwsClients::connect`] (no region).
    pub async fn connect(config: &AwsConfig, overrides: Overrides) -> Result<Self> {
        let clients = AwsClients::connect(config, overrides).await?;
        let state = DynamoStateStore::new(&clients);
        let shared_state: Arc<dyn shardline_core::ports::StateStore> = Arc::new(state.clone());
        let objects = S3ObjectStore::new(&clients);
        Ok(AwsBackends {
            stream: KinesisStream::new(&clients),
            table: DynamoItemTable::new(&clients),
            leases: DynamoLeaseTable::new(&clients),
            metrics: CloudWatchPublisher::new(&clients, Arc::clone(&shared_state)),
            notifier: SnsNotifier::new(&clients, shared_state),
            dead_letters: S3DeadLetterStore::new(
                objects.clone(),
                &config.resources.dead_letter_bucket,
                &config.resources.dead_letter_prefix,
            ),
            objects,
            state,
            clients,
        })
    }

    /// Creates what the adapters keep their own data in (lease and state tables, dead-letter
    /// bucket), idempotently. The stream, the sinks' buckets and tables and the topic are
    /// created by their owners' `create_stream` / `ensure_*` calls.
    ///
    /// # Errors
    /// The first failing creation, naming it.
    pub async fn ensure_own_resources(&self) -> Result<()> {
        self.leases.ensure_table().await?;
        self.state.ensure_table().await?;
        self.dead_letters.ensure_bucket().await?;
        Ok(())
    }

    /// Requests sent so far, per service and action.
    pub fn counters(&self) -> &Arc<ApiCounters> {
        &self.clients.counters
    }

    /// The object store as a shared port.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(self.objects.clone())
    }
}
