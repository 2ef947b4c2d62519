//! Opens the backends the configuration names. This is the one place that chooses them:
//! producers, consumers and the flow see only the ports.
//!
//! Each port is `embedded` or `aws` (`[backend]`, or `--backend` for all at once):
//!
//! | port | embedded | aws |
//! |---|---|---|
//! | stream | the log under `<data>/log` | Kinesis Data Streams |
//! | objects | `<data>/s3` | S3 |
//! | table | `<data>/local/table` | DynamoDB |
//! | metrics | `<data>/local/metrics.redb` | CloudWatch |
//! | notifier | `[notifier]` targets | SNS |
//! | checkpoints (and leases) | `<data>/local/checkpoints.redb` | DynamoDB, KCL lease schema |
//! | state | `<data>/local/state.redb` | DynamoDB |
//! | dead_letters | `<data>/local/dead_letters.redb` | S3 |
//!
//! The embedded stores are opened only when a port uses one, and the AWS clients only when a
//! port is `aws`: with every port on AWS nothing of the pipeline is kept on the local disk.
//! Opening the AWS backend resolves the standard configuration chain and sends no request.

use anyhow::{Context, Result};
use shardline_aws::{AwsBackends, Overrides};
use shardline_core::lease::LeaseStore;
use shardline_core::ports::{
    CheckpointStore, DeadLetterStore, ItemTable, MetricPublisher, Notifier, ObjectStore,
    StateStore, Stream,
};
use shardline_local::LocalBackends;
use shardline_log::{Log, LogOptions};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{BackendKind, Config, Durability};

/// The stores of every port but the stream, as the configuration chose them.
#[derive(Clone)]
pub struct Backends {
    /// Checkpoints.
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// Shard leases (on the checkpoints' backend).
    pub leases: Arc<dyn LeaseStore>,
    /// Objects (the Parquet output, the S3 sink's manifests).
    pub objects: Arc<dyn ObjectStore>,
    /// Item tables.
    pub table: Arc<dyn ItemTable>,
    /// Metric statistics.
    pub metrics: Arc<dyn MetricPublisher>,
    /// Dead letters.
    pub dead_letters: Arc<dyn DeadLetterStore>,
    /// Sink state.
    pub state: Arc<dyn StateStore>,
    /// The embedded stores, when a port uses one.
    pub local: Option<LocalBackends>,
    /// The AWS adapters (and their call counters), when a port is on AWS.
    pub aws: Option<AwsBackends>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("local", &self.local.as_ref().map(|l| l.data_dir.clone()))
            .field("aws", &self.aws.as_ref().map(|a| a.clients.region.clone()))
            .finish_non_exhaustive()
    }
}

/// Opens the embedded log under `<data>/log` (recovery runs here).
pub async fn open_log(config: &Config) -> Result<Arc<Log>> {
    let options = LogOptions {
        durability: match config.stream.durability {
            Durability::Fsync => shardline_log::Durability::Fsync,
            Durability::Buffered => shardline_log::Durability::Buffered,
        },
        segment_bytes: config.stream.segment_size.bytes(),
        open_sealed_segments: config.stream.open_sealed_segments,
        sealed_handle_idle: config.stream.sealed_handle_idle,
        enforce_throughput_limits: config.stream.enforce_limits,
        ..LogOptions::default()
    };
    let dir = config.log_dir();
    let log = Log::open(&dir, options)
        .await
        .with_context(|| format!("cannot open the log in {}", dir.display()))?;
    Ok(Arc::new(log))
}

/// The AWS adapters, when any port is `aws`: the standard chain with `[aws]` over it.
///
/// # Errors
/// No region anywhere in the chain (the one thing it cannot default).
pub async fn open_aws(config: &Config) -> Result<Option<AwsBackends>> {
    if !config.backend.any(BackendKind::Aws) {
        return Ok(None);
    }
    let aws = AwsBackends::connect(&config.aws, Overrides::default())
        .await
        .context("cannot set up the AWS backend")?;
    Ok(Some(aws))
}

/// The embedded stand-ins (objects, table, metrics, checkpoints, dead letters, state), all of
/// them, whatever the configuration says.
pub fn open_local(config: &Config) -> Result<LocalBackends> {
    LocalBackends::open(&config.data_dir, config.local.clone()).with_context(|| {
        format!(
            "cannot open the embedded backends in {}",
            config.data_dir.display()
        )
    })
}

/// Opens the stores of every port but the stream as `[backend]` chooses them.
pub async fn open_backends(config: &Config) -> Result<Backends> {
    let aws = open_aws(config).await?;
    open_backends_with(config, aws)
}

/// [`open_backends`] with the AWS adapters already made (one set of clients per process).
pub fn open_backends_with(config: &Config, aws: Option<AwsBackends>) -> Result<Backends> {
    let kinds = &config.backend;
    let local = if kinds.stores_any(BackendKind::Embedded) {
        Some(open_local(config)?)
    } else {
        None
    };
    let pick = |kind: BackendKind| -> Result<Choice<'_>> {
        match kind {
            BackendKind::Embedded => local
                .as_ref()
                .map(Choice::Local)
                .context("the embedded stores are not open"),
            BackendKind::Aws => aws
                .as_ref()
                .map(Choice::Aws)
                .context("the AWS backend is not set up"),
        }
    };
    let checkpoints: (Arc<dyn CheckpointStore>, Arc<dyn LeaseStore>) =
        match pick(kinds.checkpoints)? {
            Choice::Local(l) => (l.checkpoints.clone(), l.leases.clone()),
            Choice::Aws(a) => (Arc::new(a.leases.clone()), Arc::new(a.leases.clone())),
        };
    let objects: Arc<dyn ObjectStore> = match pick(kinds.objects)? {
        Choice::Local(l) => l.objects.clone(),
        Choice::Aws(a) => a.object_store(),
    };
    let table: Arc<dyn ItemTable> = match pick(kinds.table)? {
        Choice::Local(l) => l.table.clone(),
        Choice::Aws(a) => Arc::new(a.table.clone()),
    };
    let metrics: Arc<dyn MetricPublisher> = match pick(kinds.metrics)? {
        Choice::Local(l) => l.metrics.clone(),
        Choice::Aws(a) => Arc::new(a.metrics.clone()),
    };
    let dead_letters: Arc<dyn DeadLetterStore> = match pick(kinds.dead_letters)? {
        Choice::Local(l) => l.dead_letters.clone(),
        Choice::Aws(a) => Arc::new(a.dead_letters.clone()),
    };
    let state: Arc<dyn StateStore> = match pick(kinds.state)? {
        Choice::Local(l) => l.state.clone(),
        Choice::Aws(a) => Arc::new(a.state.clone()),
    };
    Ok(Backends {
        checkpoints: checkpoints.0,
        leases: checkpoints.1,
        objects,
        table,
        metrics,
        dead_letters,
        state,
        local,
        aws,
    })
}

enum Choice<'a> {
    Local(&'a LocalBackends),
    Aws(&'a AwsBackends),
}

/// The stream port: the embedded log (also returned, for what only it offers) or Kinesis.
pub async fn open_stream(
    config: &Config,
    aws: Option<&AwsBackends>,
) -> Result<(Arc<dyn Stream>, Option<Arc<Log>>)> {
    match config.backend.stream {
        BackendKind::Embedded => {
            let log = open_log(config).await?;
            Ok((log.clone(), Some(log)))
        }
        BackendKind::Aws => {
            let aws = aws.context("the AWS backend is not set up")?;
            Ok((Arc::new(aws.stream.clone()), None))
        }
    }
}

/// The notifier of alerts and the flow's SNS tasks: the `[notifier]` targets, or SNS.
pub fn open_notifier(config: &Config, backends: &Backends) -> Result<Arc<dyn Notifier>> {
    match config.backend.notifier {
        BackendKind::Embedded => {
            shardline_local::build_notifier(&config.notifier, &config.data_dir)
                .context("cannot set up the notifier (check [notifier] in the configuration)")
        }
        BackendKind::Aws => {
            let aws = backends
                .aws
                .as_ref()
                .context("the AWS backend is not set up")?;
            Ok(Arc::new(aws.notifier.clone()))
        }
    }
}

/// The directory holding the Hive-partitioned Parquet output of the embedded object store.
pub fn parquet_root(config: &Config) -> PathBuf {
    let sink = &config.consumers.s3.sink;
    let mut root = config.data_dir.join("s3").join(&sink.bucket);
    for part in sink.prefix.split('/').filter(|p| !p.is_empty()) {
        root.push(part);
    }
    root
}
