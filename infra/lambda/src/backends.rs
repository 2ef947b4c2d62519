//! The ports a sink function writes through, and how a bootstrap chooses them.
//!
//! `SHARDLINE_BACKEND` chooses: `embedded` opens the data directory `SHARDLINE_DATA` (what
//! `shardline esm run` and `lambda invoke` pass to a bootstrap they start); `aws` talks to the
//! AWS services. Unset, a process with `SHARDLINE_DATA` runs embedded and one without it (a
//! deployed function) runs on AWS.
//!
//! A bootstrap under the local runner opens the sink stores of the data directory itself
//! (objects, items, metrics, sink state, dead letters); the runner holds only the log and
//! its own checkpoints, so the two processes never open the same file.

use shardline_core::ports::{
    DeadLetterStore, ItemTable, MetricPublisher, Notifier, ObjectStore, StateStore,
};
use shardline_local::{LocalBackends, LocalOptions, NotifierConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

    /// Opens the chosen backends.
    ///
    /// # Errors
    /// As [`FunctionBackends::open_local`]; on AWS, until the AWS adapters are part of the
    /// build, a [`crate::error::PERMANENT`] error saying so.
    pub fn open(
        &self,
        options: LocalOptions,
        notifier: &NotifierConfig,
    ) -> Result<FunctionBackends, FunctionError> {
        match self {
            BackendChoice::Embedded(dir) => FunctionBackends::open_local(dir, options, notifier),
            BackendChoice::Aws => Err(aws_unavailable()),
        }
    }
}

/// The error of a bootstrap asked to run on AWS by a build without the AWS adapters.
pub fn aws_unavailable() -> FunctionError {
    FunctionError::of_kind(
        ErrorKind::Permanent,
        format!(
            "this build has no AWS backends (the shardline-aws adapters are not wired into the \
             bootstraps yet); run with {BACKEND_ENV}=embedded and {DATA_ENV}=<dir>"
        ),
    )
}
