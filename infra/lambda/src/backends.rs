//! The ports a sink function writes through, and how a bootstrap chooses them.
//!
//! `SHARDLINE_BACKEND` chooses: `embedded` opens the data directory `SHARDLINE_DATA` (what
//! `shardline esm run` and `lambda invoke` pass to a bootstrap they start); `aws` talks to the
//! AWS services through shardline-aws. Unset, a process with `SHARDLINE_DATA` runs embedded and
//! one without it (a deployed function) runs on AWS.
//!
//! On AWS the function's `aws` settings (the `[aws]` block as JSON in
//! `SHARDLINE_FUNCTION_CONFIG`: the state table and dead-letter bucket the template deploys)
//! sit over the standard chain, which in Lambda gives the region (`AWS_REGION`) and the
//! role's credentials; `AWS_ENDPOINT_URL` points every service elsewhere (moto in the tests).
//! The sinks' bucket, table, namespace and topic come from the sink settings. Connecting
//! sends no request: a missing resource or permission fails the first invocation that needs
//! it, with the adapters' error naming the resource.
//!
//! A bootstrap under the local runner opens the sink stores of the data directory itself
//! (objects, items, metrics, sink state, dead letters); the runner holds only the log and
//! its own checkpoints, so the two processes never open the same file.

use shardline_aws::{AwsBackends, AwsConfig, Overrides};
use shardline_core::ports::{
    DeadLetterStore, ItemTable, MetricPublisher, Notifier, ObjectStore, StateStore,
};
use shardline_local::{LocalBackends, LocalOptions, NotifierConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::FunctionConfig;
use crate::error::{ErrorKind, FunctionError};

/// The variable that chooses the backends.
pub const BACKEND_ENV: &str = "SHARDLINE_BACKEND";
/// The embedded backends' data directory.
pub const DATA_ENV: &str = "SHARDLINE_DATA";

/// Every port a sink function may use.
#[derive(Clone)]
pub struct FunctionBackends {
    /// S3.
    pub objects: Arc<dyn ObjectStore>,
    /// DynamoDB items.
    pub table: Arc<dyn ItemTable>,
    /// CloudWatch.
    pub metrics: Arc<dyn MetricPublisher>,
    /// Sink state (alarms, watermarks).
    pub state: Arc<dyn StateStore>,
    /// Invalid records.
    pub dead_letters: Arc<dyn DeadLetterStore>,
    /// SNS.
    pub notifier: Arc<dyn Notifier>,
}

impl std::fmt::Debug for FunctionBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionBackends").finish_non_exhaustive()
    }
}

impl FunctionBackends {
    /// The embedded stand-ins, with `notifier` for alerts.
    pub fn local(backends: &LocalBackends, notifier: Arc<dyn Notifier>) -> Self {
        Self {
            objects: backends.objects.clone(),
            table: backends.table.clone(),
            metrics: backends.metrics.clone(),
            state: backends.state.clone(),
            dead_letters: backends.dead_letters.clone(),
            notifier,
        }
    }

    /// Opens the embedded backends under `data_dir`.
    ///
    /// # Errors
    /// [`crate::error::PERMANENT`] when the directory cannot be opened (in use by another
    /// process, unreadable), naming it.
    pub fn open_local(
        data_dir: &Path,
        options: LocalOptions,
        notifier: &NotifierConfig,
    ) -> Result<Self, FunctionError> {
        let backends = LocalBackends::open(data_dir, options).map_err(|e| {
            FunctionError::of_kind(
                ErrorKind::Permanent,
                format!(
                    "cannot open the embedded backends in {}: {e}",
                    data_dir.display()
                ),
            )
        })?;
        let notifier = backends.notifier(notifier).map_err(|e| {
            FunctionError::of_kind(
                ErrorKind::Permanent,
                format!("cannot set up the notifier: {e}"),
            )
        })?;
        Ok(Self::local(&backends, notifier))
    }

    /// The AWS adapters of `backends`.
    pub fn aws(backends: &AwsBackends) -> Self {
        Self {
            objects: Arc::new(backends.objects.clone()),
            table: Arc::new(backends.table.clone()),
            metrics: Arc::new(backends.metrics.clone()),
            state: Arc::new(backends.state.clone()),
            dead_letters: Arc::new(backends.dead_letters.clone()),
            notifier: Arc::new(backends.notifier.clone()),
        }
    }

    /// Connects the AWS adapters with `config` over the standard chain (sends no request).
    ///
    /// # Errors
    /// [`crate::error::PERMANENT`] when no region is configured, naming what to set.
    pub async fn connect_aws(config: &AwsConfig) -> Result<Self, FunctionError> {
        let backends = AwsBackends::connect(config, Overrides::default())
            .await
            .map_err(|e| {
                FunctionError::of_kind(
                    ErrorKind::Permanent,
                    format!("cannot set up the AWS backends: {e}"),
                )
            })?;
        Ok(Self::aws(&backends))
    }
}

/// Which backends a bootstrap runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendChoice {
    /// The embedded stand-ins in this data directory.
    Embedded(PathBuf),
    /// The AWS services.
    Aws,
}

impl BackendChoice {
    /// Reads [`BACKEND_ENV`] and [`DATA_ENV`].
    ///
    /// # Errors
    /// [`crate::error::PERMANENT`] for an unknown backend name or `embedded` without a data
    /// directory.
    pub fn from_env() -> Result<Self, FunctionError> {
        let data = std::env::var_os(DATA_ENV).filter(|d| !d.is_empty());
        let bad = |m: String| FunctionError::of_kind(ErrorKind::Permanent, m);
        match std::env::var(BACKEND_ENV).ok().as_deref() {
            Some("embedded") => data
                .map(|d| BackendChoice::Embedded(PathBuf::from(d)))
                .ok_or_else(|| {
                    bad(format!(
                        "{BACKEND_ENV}=embedded needs {DATA_ENV} (the data directory)"
                    ))
                }),
            Some("aws") => Ok(BackendChoice::Aws),
            None | Some("") => Ok(data.map_or(BackendChoice::Aws, |d| {
                BackendChoice::Embedded(PathBuf::from(d))
            })),
            Some(other) => Err(bad(format!(
                "{BACKEND_ENV}={other} is not a backend; use `embedded` or `aws`"
            ))),
        }
    }

    /// Opens the chosen backends for a function with `config`: the embedded ones with its
    /// `local` options and `notifier`, the AWS ones with its `aws` settings.
    ///
    /// # Errors
    /// As [`FunctionBackends::open_local`] and [`FunctionBackends::connect_aws`].
    pub async fn open(&self, config: &FunctionConfig) -> Result<FunctionBackends, FunctionError> {
        match self {
            BackendChoice::Embedded(dir) => {
                FunctionBackends::open_local(dir, config.local.clone(), &config.notifier)
            }
            BackendChoice::Aws => FunctionBackends::connect_aws(&config.aws).await,
        }
    }
}
