//! The pipeline's Lambda functions as this configuration defines them: the four sink
//! functions (shardline-lambda's [`SinkFunction`]) and the flow's task functions (the
//! handlers of [`crate::handlers`]), for `shardline esm run`, `shardline lambda invoke` and
//! the task functions' bootstrap binaries.
//!
//! Backends: in-process, a function writes through the ports `[backend]` chooses, port by
//! port (see [`crate::wiring`]). A bootstrap chooses one backend for all its ports from
//! `SHARDLINE_BACKEND` ([`bootstrap_backend`] says which a configuration asks for): a task
//! function's bootstrap on `aws` puts every port of the pipeline on AWS (the stream on
//! Kinesis, the Parquet output on S3, checkpoints in the lease table, SNS), as the deploy
//! template runs it; on `embedded` it opens the data directory `SHARDLINE_DATA` with the
//! configuration's `[backend]`.

use anyhow::{Result, bail};
use serde_json::Value;
use shardline_flow::{RealClock, TaskContext};
use shardline_lambda::backends::{BACKEND_ENV, DATA_ENV};
use shardline_lambda::{
    BackendChoice, ErrorKind, Function, FunctionBackends, FunctionConfig, FunctionError,
    SinkFunction, SinkKind, function_fn,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{BackendKind, Config};
use crate::handlers::{PipelineHandle, lambda_task};
use crate::wiring::Backends;

/// Every function, sinks first.
pub const FUNCTIONS: [&str; 7] = [
    "s3-parquet",
    "dynamodb",
    "cloudwatch",
    "alerts",
    "data-collector",
    "pipeline-health",
    "metrics-analyzer",
];

/// The flow's task functions.
pub const TASK_FUNCTIONS: [&str; 3] = ["data-collector", "pipeline-health", "metrics-analyzer"];

/// A sink function's settings from `config`: the consumer's name (so the function and the
/// long-running consumer share dead letters and sink state), the sinks, the notifier.
pub fn function_config(config: &Config, kind: SinkKind) -> FunctionConfig {
    let c = &config.consumers;
    let consumer = match kind {
        SinkKind::S3Parquet => &c.s3.consumer.name,
        SinkKind::DynamoDb => &c.dynamodb.consumer.name,
        SinkKind::CloudWatch => &c.cloudwatch.consumer.name,
        SinkKind::Alerts => &c.alerts.consumer.name,
    };
    FunctionConfig {
        consumer: consumer.clone(),
        stream: config.stream.name.clone(),
        report_batch_item_failures: config.esm.reports_item_failures(),
        s3: c.s3.sink.clone(),
        dynamodb: c.dynamodb.sink.clone(),
        cloudwatch: c.cloudwatch.sink.clone(),
        alerts: c.alerts.sink.clone(),
        notifier: config.notifier.clone(),
        local: config.local.clone(),
        aws: config.aws.clone(),
    }
    .for_lambda(kind)
}

/// The sink function `kind` writing through the ports of `backends` (each on the backend
/// `[backend]` chose for it), alerts through the configured notifier (SNS on `aws`).
///
/// # Errors
/// A sink setting that cannot run, or the notifier cannot be set up.
pub fn sink_function_on(
    config: &Config,
    kind: SinkKind,
    backends: &Backends,
) -> Result<Arc<dyn Function>, FunctionError> {
    let fc = function_config(config, kind);
    let permanent = |what: String| FunctionError::of_kind(ErrorKind::Permanent, what);
    let notifier: Arc<dyn shardline_core::ports::Notifier> = match config.backend.notifier {
        BackendKind::Aws => match &backends.aws {
            Some(aws) => Arc::new(aws.notifier.clone()),
            None => return Err(permanent("the AWS backend is not set up".into())),
        },
        BackendKind::Embedded => match &backends.local {
            Some(local) => local.notifier(&fc.notifier),
            None => shardline_local::build_notifier(&fc.notifier, &config.data_dir),
        }
        .map_err(|e| permanent(format!("cannot set up the notifier: {e}")))?,
    };
    let ports = FunctionBackends {
        objects: backends.objects.clone(),
        table: backends.table.clone(),
        metrics: backends.metrics.clone(),
        state: backends.state.clone(),
        dead_letters: backends.dead_letters.clone(),
        notifier,
    };
    Ok(Arc::new(SinkFunction::new(kind, fc, ports)?))
}

/// The `SHARDLINE_BACKEND` a bootstrap of this configuration runs with. A task function
/// (`task`) runs on `aws` when no port is embedded, else on `embedded` with the
/// configuration's `[backend]` (which it reads from its configuration file). A sink function
/// runs on the backend of the ports it writes through (objects, table, metrics, state, dead
/// letters, notifier; it does not read the stream).
///
/// # Errors
/// A sink function's ports split between the backends: a bootstrap runs its ports on one.
pub fn bootstrap_backend(config: &Config, task: bool) -> Result<&'static str> {
    let b = &config.backend;
    if task {
        return Ok(if b.uses_data_dir() { "embedded" } else { "aws" });
    }
    let ports = [
        b.objects,
        b.table,
        b.metrics,
        b.state,
        b.dead_letters,
        b.notifier,
    ];
    if ports.iter().all(|k| *k == BackendKind::Aws) {
        Ok("aws")
    } else if ports.iter().all(|k| *k == BackendKind::Embedded) {
        Ok("embedded")
    } else {
        bail!(
            "[backend] puts some of a sink function's ports on aws and some embedded; a \
             bootstrap runs all of them on one backend: use --backend aws or --backend \
             embedded, or run the function in-process (without --binary)"
        )
    }
}

/// The flow's task function `name` on `pipeline`, or `None` for another name.
pub fn task_function(pipeline: &PipelineHandle, name: &str) -> Option<Arc<dyn Function>> {
    let handler = lambda_task(pipeline, name)?;
    let name = name.to_string();
    Some(function_fn(name.clone(), move |event: Value| {
        let (handler, name) = (Arc::clone(&handler), name.clone());
        async move {
            let ctx = TaskContext {
                state_name: name.clone(),
                resource: format!("arn:aws:lambda:eu-west-1:123456789012:function:{name}"),
                execution_name: uuid_like(),
                retry_count: 0,
                clock: Arc::new(RealClock),
            };
            handler
                .invoke(event, &ctx)
                .await
                .map_err(|e| FunctionError::new(e.error, e.cause))
        }
    }))
}

fn uuid_like() -> String {
    format!("lambda-{}", shardline_core::time::now_ms())
}

/// `main` of the task functions' bootstraps: the configuration from `SHARDLINE_CONFIG` and
/// `SHARDLINE__*` variables (as for `shardline`); the backends from `SHARDLINE_BACKEND`:
/// `embedded` opens the data directory `SHARDLINE_DATA` with the configuration's
/// `[backend]`, `aws` puts every port on AWS (the `[aws]` settings over the standard chain:
/// in Lambda, the region and the role's credentials) and keeps nothing on the local disk.
pub fn run_task_bootstrap(name: &'static str) -> ExitCode {
    shardline_lambda::bootstrap::run_function(name, move || async move {
        let choice = BackendChoice::from_env()?;
        let file = std::env::var_os("SHARDLINE_CONFIG").map(PathBuf::from);
        let dir = match &choice {
            BackendChoice::Embedded(dir) => dir.clone(),
            // Nothing is written there with every port on AWS; Lambda's /tmp is writable.
            BackendChoice::Aws => std::env::var_os(DATA_ENV)
                .filter(|d| !d.is_empty())
                .map_or_else(|| std::env::temp_dir().join("shardline"), PathBuf::from),
        };
        let mut config = Config::load(file.as_deref(), Some(&dir)).map_err(|e| {
            FunctionError::of_kind(
                ErrorKind::Permanent,
                format!("invalid configuration: {e:#}"),
            )
        })?;
        if choice == BackendChoice::Aws {
            config.set_backend(BackendKind::Aws);
        }
        tracing::info!(function = name, backend = ?choice, "{BACKEND_ENV} chose the backends");
        task_function(&PipelineHandle::lazy(config), name).ok_or_else(|| {
            FunctionError::of_kind(ErrorKind::Permanent, format!("{name} is not a flow task"))
        })
    })
}
