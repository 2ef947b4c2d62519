//! The pipeline's Lambda functions as this configuration defines them: the four sink
//! functions (shardline-lambda's [`SinkFunction`]) and the flow's task functions (the
//! handlers of [`crate::handlers`]), for `shardline esm run`, `shardline lambda invoke` and
//! the task functions' bootstrap binaries.

use serde_json::Value;
use shardline_flow::{RealClock, TaskContext};
use shardline_lambda::backends::aws_unavailable;
use shardline_lambda::{
    BackendChoice, ErrorKind, Function, FunctionBackends, FunctionConfig, FunctionError,
    SinkFunction, SinkKind, function_fn,
};
use shardline_local::LocalBackends;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::handlers::{PipelineHandle, lambda_task};

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
        ..FunctionConfig::default()
    }
    .for_lambda(kind)
}

/// The sink function `kind` on the open embedded `backends`.
///
/// # Errors
/// A sink setting that cannot run, or the notifier cannot be set up.
pub fn sink_function(
    config: &Config,
    kind: SinkKind,
    backends: &LocalBackends,
) -> Result<Arc<dyn Function>, FunctionError> {
    let fc = function_config(config, kind);
    let notifier = backends.notifier(&fc.notifier).map_err(|e| {
        FunctionError::of_kind(
            ErrorKind::Permanent,
            format!("cannot set up the notifier: {e}"),
        )
    })?;
    let ports = FunctionBackends::local(backends, notifier);
    Ok(Arc::new(SinkFunction::new(kind, fc, ports)?))
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
/// `SHARDLINE__*` variables, the embedded backends in `SHARDLINE_DATA`.
pub fn run_task_bootstrap(name: &'static str) -> ExitCode {
    shardline_lambda::bootstrap::run_function(name, move || async move {
        let dir = match BackendChoice::from_env()? {
            BackendChoice::Embedded(dir) => dir,
            BackendChoice::Aws => return Err(aws_unavailable()),
        };
        let file = std::env::var_os("SHARDLINE_CONFIG").map(PathBuf::from);
        let config = Config::load(file.as_deref(), Some(&dir)).map_err(|e| {
            FunctionError::of_kind(
                ErrorKind::Permanent,
                format!("invalid configuration: {e:#}"),
            )
        })?;
        task_function(&PipelineHandle::lazy(config), name).ok_or_else(|| {
            FunctionError::of_kind(ErrorKind::Permanent, format!("{name} is not a flow task"))
        })
    })
}
