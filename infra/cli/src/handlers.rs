//! The flow's task handlers, behind the seed's resource ARNs:
//!
//! | resource | handler |
//! |---|---|
//! | `function:data-collector` | collect (`metric_type` or all) and append to the stream; answers like the seed's Lambda |
//! | `function:pipeline-health` | per-consumer lag (from checkpoints or Lambda's IteratorAge: [`crate::health`]), dead letters, last checkpoint; `PipelineUnhealthy` past the configured lag |
//! | `function:metrics-analyzer` | the seed's per-instance aggregate for `metric_type`, through the query engine |
//! | `function:log-processor` | the seed's threshold check over the events of the last interval, read from the stream |
//! | `arn:aws:states:::sns:publish` | the configured notifier |
//!
//! `[flow.tasks]` entries in the configuration add (or replace) handlers that run a local
//! command or POST to an HTTP endpoint (see `default.toml`).

use anyhow::Result;
use serde_json::{Value, json};
use shardline_core::ports::Notification;
use shardline_core::stream::limits::MAX_GET_RECORDS;
use shardline_core::{MetricEvent, MetricType, StartingPosition};
use shardline_flow::external::{CommandHandler, HttpHandler};
use shardline_flow::{
    HandlerRegistry, SNS_PUBLISH, SnsPublish, TaskContext, TaskError, TaskHandler, handler_fn,
};
use shardline_producers::parse_metric_selection;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::pipeline::Pipeline;

/// The error name pipeline-health fails with.
pub const PIPELINE_UNHEALTHY: &str = "PipelineUnhealthy";

/// The pipeline the handlers act on: opened on first use, so that a registry can be built
/// (e.g. to validate a definition) without opening the data directory.
#[derive(Clone)]
pub struct PipelineHandle {
    config: Arc<Config>,
    cell: Arc<OnceCell<Pipeline>>,
}

impl PipelineHandle {
    /// A handle that opens the pipeline of `config` when a handler first runs.
    pub fn lazy(config: Config) -> Self {
        Self {
            config: Arc::new(config),
            cell: Arc::new(OnceCell::new()),
        }
    }

    /// A handle on an open pipeline.
    pub fn ready(pipeline: Pipeline) -> Self {
        Self {
            config: pipeline.config.clone(),
            cell: Arc::new(OnceCell::new_with(Some(pipeline))),
        }
    }

    /// Closes the pipeline if a handler opened it (flushes the log).
    ///
    /// # Errors
    /// When the log cannot be closed.
    pub async fn close(&self) -> Result<()> {
        match self.cell.get() {
            Some(p) => p.close().await,
            None => Ok(()),
        }
    }

    async fn get(&self) -> Result<Pipeline, TaskError> {
        self.cell
            .get_or_try_init(|| Pipeline::open(Config::clone(&self.config)))
            .await
            .cloned()
            .map_err(|e| failed(format!("{e:#}")))
    }
}

/// The Lambda functions the flow's Task resources name.
pub const LAMBDA_TASKS: [&str; 4] = [
    "data-collector",
    "pipeline-health",
    "metrics-analyzer",
    "log-processor",
];

/// A registry with every handler the seed's flow names, bound to `pipeline`, plus the
/// configured `[flow.tasks]` (which take precedence). A task entry that is invalid (both or
/// neither of `command` and `url`, a bad URL) is reported by [`task_targets`].
pub fn registry(pipeline: &PipelineHandle) -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    for name in LAMBDA_TASKS {
        if let Some(h) = lambda_task(pipeline, name) {
            r.register_lambda(name, h);
        }
    }
    r.register_resource(SNS_PUBLISH, bind(pipeline, sns_publish));
    if let Ok(targets) = task_targets(&pipeline.config) {
        for (key, handler) in targets {
            match key.strip_prefix("lambda:") {
                Some(name) => r.register_lambda(name, handler),
                None => r.register_resource(key, handler),
            };
        }
    }
    r
}

/// The handler of the flow's Lambda function `name`, bound to `pipeline` (what the flow
/// calls, and what the function's bootstrap and `shardline lambda invoke` run).
pub fn lambda_task(pipeline: &PipelineHandle, name: &str) -> Option<Arc<dyn TaskHandler>> {
    Some(match name {
        "data-collector" => bind(pipeline, data_collector),
        "pipeline-health" => bind(pipeline, crate::health::pipeline_health),
        "metrics-analyzer" => bind(pipeline, metrics_analyzer),
        "log-processor" => bind(pipeline, log_processor),
        _ => return None,
    })
}

/// The configured `[flow.tasks]` as handlers: `lambda:NAME` keys for Lambda functions
/// (given as a name or a function ARN), resource ARNs otherwise.
///
/// # Errors
/// One line per invalid entry, naming it and what to fix.
pub fn task_targets(config: &Config) -> Result<Vec<(String, Arc<dyn TaskHandler>)>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (key, t) in &config.flow.tasks {
        let handler: Arc<dyn TaskHandler> = match (&t.command, &t.url) {
            (Some(argv), None) if !argv.is_empty() => Arc::new(CommandHandler {
                argv: argv.clone(),
                timeout: t.timeout,
            }),
            (None, Some(url)) => match HttpHandler::new(url, t.timeout) {
                Ok(h) => Arc::new(h),
                Err(e) => {
                    problems.push(format!("flow.tasks.{key:?}: {e}"));
                    continue;
                }
            },
            _ => {
                problems.push(format!(
                    "flow.tasks.{key:?}: set exactly one of command = [\"program\", ...] and url = \"http://...\""
                ));
                continue;
            }
        };
        let lambda = if key.starts_with("arn:") {
            let parts: Vec<&str> = key.split(':').collect();
            match parts.as_slice() {
                ["arn", _, "lambda", _, _, "function", name, ..] => Some(name.to_string()),
                _ => None,
            }
        } else {
            Some(key.clone())
        };
        match lambda {
            Some(name) => out.push((format!("lambda:{name}"), handler)),
            None => out.push((key.clone(), handler)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        anyhow::bail!("{}", problems.join("\n"))
    }
}

fn bind<F, Fut>(pipeline: &PipelineHandle, f: F) -> Arc<dyn TaskHandler>
where
    F: Fn(Pipeline, Value, TaskContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    let handle = pipeline.clone();
    handler_fn(move |input, ctx| {
        let (handle, f) = (handle.clone(), f.clone());
        async move { f(handle.get().await?, input, ctx).await }
    })
}

pub(crate) fn failed(e: impl std::fmt::Display) -> TaskError {
    TaskError::new("States.TaskFailed", e.to_string())
}

fn metric_type_param(input: &Value) -> Result<Option<MetricType>, TaskError> {
    parse_metric_selection(input.get("metric_type").and_then(Value::as_str))
        .map_err(|e| TaskError::new("InvalidParameter", e.to_string()))
}

/// The seed's data-collector: collects one metric type (or all), appends the events to the
/// stream and answers as the seed's Lambda did (statusCode and a JSON body).
async fn data_collector(p: Pipeline, input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    let which = metric_type_param(&input)?;
    let (events, report) = p.collect_once(which).await.map_err(failed)?;
    if !report.failed.is_empty() {
        return Err(failed(format!(
            "{} of {} events were not appended: {}",
            report.failed.len(),
            events.len(),
            report
                .failed
                .first()
                .map(|f| f.reason.as_str())
                .unwrap_or("")
        )));
    }
    let instances: Vec<&str> = {
        let mut v: Vec<&str> = events.iter().map(|e| e.instance_id.as_str()).collect();
        v.dedup();
        v
    };
    let timestamp = events.first().map(|e| e.timestamp).unwrap_or_default();
    let body = json!({
        "message": format!("Successfully collected {} metrics", events.len()),
        "metric_type": which.map(|t| t.as_str()).unwrap_or("all"),
        "metrics_count": events.len(),
        "timestamp": timestamp,
        "instance_id": instances.first().copied().unwrap_or_default(),
        "instance_ids": instances,
        "stream": p.config.stream.name,
        "sequence_numbers": report.appended.iter().map(|a| a.sequence_number.as_str()).collect::<Vec<_>>(),
    });
    Ok(json!({ "statusCode": 200, "body": body.to_string() }))
}

/// The seed's per-instance aggregate (Athena Q1) for one metric type over the Parquet output,
/// for the samples of a window before now: `window_seconds` from the input, else
/// `[flow] analyzer_window` (by default the schedule's period). Only the day partitions and the
/// objects the window reaches are read, and the engine (its session, caches and buffers) is
/// dropped when the task returns, so a run costs what its window holds, not the history.
/// The result names the window and what the scan read.
async fn metrics_analyzer(p: Pipeline, input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let which = metric_type_param(&input)?.unwrap_or(MetricType::CpuUtilization);
    let now = ctx.clock.now_ms();
    let flow = &p.config.flow;
    let window_ms = match input.get("window_seconds") {
        Some(Value::Number(n)) => match n.as_i64().filter(|s| *s > 0) {
            Some(s) => Some(s.saturating_mul(1000)),
            None => {
                return Err(TaskError::new(
                    "InvalidParameter",
                    format!("window_seconds {n}: give a whole number of seconds above 0"),
                ));
            }
        },
        Some(Value::Null) | None => {
            flow.analyzer_window
                .millis(&flow.schedule, &flow.time_zone, now)
        }
        Some(other) => {
            return Err(TaskError::new(
                "InvalidParameter",
                format!("window_seconds {other}: give a whole number of seconds above 0"),
            ));
        }
    };
    let from = window_ms.map(|w| now.saturating_sub(w));
    let engine = crate::commands::query::engine(&p.config, p.backends.aws.as_ref())
        .map_err(|e| failed(format!("{e:#}")))?;
    let (rows, scan) = match p.config.backend.objects {
        // Read in place from the local directory: on a thread and runtime of its own.
        crate::config::BackendKind::Embedded => {
            scan_apart(
                move || async move { engine.metric_summary_scanned(which, from, None).await },
            )
            .await
            .map_err(failed)?
            .map_err(failed)?
        }
        // Through the AWS client, whose connections belong to this runtime.
        crate::config::BackendKind::Aws => engine
            .metric_summary_scanned(which, from, None)
            .await
            .map_err(failed)?,
    };
    tracing::debug!(
        metric = which.as_str(),
        window_ms = ?window_ms,
        files_listed = scan.files_listed,
        files_pruned = scan.files_pruned,
        bytes_scanned = scan.bytes_scanned,
        "metrics analysed"
    );
    let instances: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "instance_id": r.instance_id, "samples": r.samples, "avg": r.avg, "max": r.max, "min": r.min }))
        .collect();
    Ok(json!({
        "metric_type": which.as_str(),
        "window_seconds": window_ms.map(|w| w / 1000),
        "objects_listed": scan.files_listed,
        "objects_skipped": scan.files_pruned,
        "bytes_scanned": scan.bytes_scanned,
        "instances": instances.len(),
        "rows": instances,
    }))
}

/// Runs `scan` to completion on a thread of its own, under a single-threaded runtime that
/// ends with it, and hands back its result. A scan decodes millions of rows in bursts of
/// short-lived buffers; made on `up`'s worker threads, the allocator kept those threads'
/// pages resident after the scan had freed them (a long run at 20,000 events/s stepped up by
/// hundreds of MiB at each flow run, and a flow whose analyzer ran out of process did not),
/// whereas the heap of a thread that exits is given back.
async fn scan_apart<F, Fut, T>(scan: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("metrics-analyzer".into())
        .spawn(move || {
            let out = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(scan()))
                .map_err(|e| format!("cannot start the scan's runtime: {e}"));
            let _ = tx.send(out);
        })
        .map_err(|e| format!("cannot start the scan's thread: {e}"))?;
    rx.await
        .map_err(|_| "the scan's thread ended without an answer (it panicked)".to_string())?
}

/// The seed's log-processor threshold check, over the events that arrived in the last
/// `interval_seconds` (default: the flow's own period, three hours for the seed).
async fn log_processor(p: Pipeline, input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let interval_ms = input
        .get("interval_seconds")
        .and_then(Value::as_i64)
        .unwrap_or(3 * 3600)
        .saturating_mul(1000);
    let since = ctx.clock.now_ms().saturating_sub(interval_ms);
    let rules: BTreeMap<MetricType, f64> = p
        .alerts_config()
        .rules
        .iter()
        .map(|r| (r.metric, r.threshold))
        .collect();
    let stream = &p.config.stream.name;
    let shards = p.stream.list_shards(stream).await.map_err(failed)?;
    let (mut processed, mut invalid) = (0u64, 0u64);
    let mut breaches = Vec::new();
    for shard in shards {
        let mut it = p
            .stream
            .get_shard_iterator(
                stream,
                shard.shard_id,
                &StartingPosition::AtTimestamp(since),
            )
            .await
            .map_err(failed)?;
        loop {
            let out = p
                .stream
                .get_records(&it, MAX_GET_RECORDS)
                .await
                .map_err(failed)?;
            for r in &out.records {
                match MetricEvent::from_json(&r.data) {
                    Ok(e) => {
                        processed += 1;
                        if let Some(t) = rules.get(&e.metric_type).filter(|t| e.value > **t) {
                            breaches.push(json!({
                                "instance_id": e.instance_id, "metric_type": e.metric_type.as_str(),
                                "value": e.value, "threshold": t, "timestamp": e.timestamp,
                            }));
                        }
                    }
                    Err(_) => invalid += 1,
                }
            }
            match out.next_iterator {
                Some(next) if !out.records.is_empty() => it = next,
                _ => break,
            }
        }
    }
    for b in &breaches {
        tracing::warn!(instance = %b["instance_id"], metric = %b["metric_type"], value = %b["value"], "threshold exceeded");
    }
    Ok(
        json!({ "processed": processed, "invalid": invalid, "breaches": breaches.len(), "alerts": breaches }),
    )
}

/// `arn:aws:states:::sns:publish` through the configured notifier.
async fn sns_publish(p: Pipeline, input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    let publish = SnsPublish::from_input(&input)?;
    let notification = Notification {
        topic: publish.topic_arn,
        subject: publish.subject.unwrap_or_default(),
        message: publish.message,
        attributes: BTreeMap::new(),
        deduplication_id: None,
    };
    let id = p.notifier.publish(&notification).await.map_err(failed)?;
    Ok(json!({ "MessageId": id }))
}

/// The built-in seed flow definition.
pub const SEED_FLOW: &str = include_str!("../../deploy/statemachine/pipeline.asl.json");

/// Reads a definition file, or the built-in seed flow.
pub fn load_definition(file: Option<&std::path::Path>) -> Result<String> {
    use anyhow::Context;
    match file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read state machine definition {}", f.display())),
        None => Ok(SEED_FLOW.to_string()),
    }
}

/// How many alarms are in the ALARM state now.
pub async fn alarms_in_alarm(p: &Pipeline) -> Result<usize> {
    let cfg = p.alerts_config();
    let states = shardline_consumers::sinks::alerts::read_alarm_states(
        p.backends.state.as_ref(),
        &cfg.state_namespace(),
    )
    .await?;
    Ok(states
        .iter()
        .filter(|s| s.state == shardline_consumers::sinks::alerts::AlarmState::Alarm)
        .count())
}
