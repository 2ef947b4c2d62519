//! The [`Executor`] and the per-machine state loop.
//!
//! Invariants: each execution records `ExecutionStarted` first and exactly one of
//! `ExecutionSucceeded`/`ExecutionFailed`/`ExecutionTimedOut` last; every state entered is
//! exited unless its error leaves the machine; an execution performs at most
//! `max_transitions` state transitions (then fails with `States.Runtime`).

use crate::asl::{ResultPath, Source, State, StateKind, StateMachine, WaitFor};
use crate::clock::{FlowClock, format_ms};
use crate::history::{EventDetails, HistoryEvent, HistoryRecorder};
use crate::jsonpath::JsonPath;
use crate::registry::{HandlerRegistry, TaskError};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{debug, warn};

/// Identity of the state machine and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// The state machine's name (for `$$.StateMachine` and ARNs).
    pub state_machine_name: String,
    /// AWS account id used in ARNs.
    pub account: String,
    /// AWS region used in ARNs.
    pub region: String,
    /// `$$.Execution.RoleArn`, if any.
    pub role_arn: Option<String>,
    /// Upper bound on state transitions per execution.
    pub max_transitions: u64,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            state_machine_name: "InfraMonitoring-Pipeline-Orchestration".to_string(),
            account: "190517931751".to_string(),
            region: "eu-west-1".to_string(),
            role_arn: None,
            max_transitions: 25_000,
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Reached a terminal state.
    Succeeded,
    /// An error left the top-level machine.
    Failed,
    /// The machine's `TimeoutSeconds` elapsed.
    TimedOut,
}

/// The result of [`Executor::run`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// The execution's name.
    pub name: String,
    /// The execution ARN (`$$.Execution.Id`).
    pub execution_arn: String,
    /// How it ended.
    pub status: ExecutionStatus,
    /// The output when it succeeded.
    pub output: Option<Value>,
    /// The error name when it failed.
    pub error: Option<String>,
    /// The cause when it failed.
    pub cause: Option<String>,
    /// When it started (`$$.Execution.StartTime`).
    pub start_date: String,
    /// When it ended.
    pub stop_date: String,
    /// Every event, in order.
    pub history: Vec<HistoryEvent>,
}

impl Execution {
    /// Events of the given type, in order.
    pub fn events(&self, event_type: &str) -> Vec<&HistoryEvent> {
        self.history
            .iter()
            .filter(|e| e.event_type == event_type)
            .collect()
    }
}

/// Runs a validated state machine against handlers on a clock.
pub struct Executor {
    machine: Arc<StateMachine>,
    registry: Arc<HandlerRegistry>,
    clock: Arc<dyn FlowClock>,
    config: ExecutorConfig,
}

/// Per-branch position: the last event recorded and the Map item being processed.
#[derive(Debug, Clone, Default)]
pub(super) struct Frame {
    pub prev: u64,
    pub map_item: Option<(usize, Value)>,
}

/// One execution in progress.
pub(super) struct Run<'a> {
    pub exec: &'a Executor,
    pub history: HistoryRecorder,
    pub base_ctx: Value,
    pub execution_name: String,
    transitions: AtomicU64,
}

impl Executor {
    /// An executor with the default [`ExecutorConfig`].
    pub fn new(
        definition: StateMachine,
        registry: Arc<HandlerRegistry>,
        clock: Arc<dyn FlowClock>,
    ) -> Self {
        Self::with_config(definition, registry, clock, ExecutorConfig::default())
    }

    /// An executor with an explicit configuration.
    pub fn with_config(
        definition: StateMachine,
        registry: Arc<HandlerRegistry>,
        clock: Arc<dyn FlowClock>,
        config: ExecutorConfig,
    ) -> Self {
        Self {
            machine: Arc::new(definition),
            registry,
            clock,
            config,
        }
    }

    pub(super) fn registry(&self) -> &HandlerRegistry {
        &self.registry
    }

    pub(super) fn clock(&self) -> &Arc<dyn FlowClock> {
        &self.clock
    }

    /// Runs one execution to its end. `execution_name` defaults to a random UUID.
    pub async fn run(&self, input: Value, execution_name: Option<String>) -> Execution {
        let name = execution_name.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let start_date = self.clock.now_iso();
        let c = &self.config;
        let sm_arn = format!(
            "arn:aws:states:{}:{}:stateMachine:{}",
            c.region, c.account, c.state_machine_name
        );
        let exec_arn = format!(
            "arn:aws:states:{}:{}:execution:{}:{}",
            c.region, c.account, c.state_machine_name, name
        );
        let mut execution = json!({
            "Id": exec_arn, "Input": input, "Name": name, "StartTime": start_date,
        });
        if let (Some(role), Some(obj)) = (&c.role_arn, execution.as_object_mut()) {
            obj.insert("RoleArn".to_string(), json!(role));
        }
        let run = Run {
            exec: self,
            history: HistoryRecorder::default(),
            base_ctx: json!({"Execution": execution, "StateMachine": {"Id": sm_arn, "Name": c.state_machine_name}}),
            execution_name: name.clone(),
            transitions: AtomicU64::new(0),
        };
        let mut frame = Frame::default();
        run.record(
            &mut frame.prev,
            "ExecutionStarted",
            EventDetails {
                input: Some(input.clone()),
                ..Default::default()
            },
        );
        let body = run.run_machine(&self.machine, input, frame.clone());
        let outcome = match self.machine.timeout_seconds {
            Some(secs) => {
                self.clock
                    .run_with_timeout(secs.saturating_mul(1000), body)
                    .await
            }
            None => Some(body.await),
        };
        let (status, output, error) = match outcome {
            Some(Ok(out)) => (ExecutionStatus::Succeeded, Some(out), None),
            Some(Err(e)) => (ExecutionStatus::Failed, None, Some(e)),
            None => (
                ExecutionStatus::TimedOut,
                None,
                Some(TaskError::new(
                    "States.Timeout",
                    "the execution exceeded its TimeoutSeconds",
                )),
            ),
        };
        let last = run.history.events().last().map(|e| e.id).unwrap_or(0);
        frame.prev = last;
        let (ty, details) = match (&status, &error) {
            (ExecutionStatus::Succeeded, _) => (
                "ExecutionSucceeded",
                EventDetails {
                    output: output.clone(),
                    ..Default::default()
                },
            ),
            (s, e) => {
                let ty = if *s == ExecutionStatus::TimedOut {
                    "ExecutionTimedOut"
                } else {
                    "ExecutionFailed"
                };
                (
                    ty,
                    EventDetails {
                        error: e.as_ref().map(|e| e.error.clone()),
                        cause: e.as_ref().map(|e| e.cause.clone()),
                        ..Default::default()
                    },
                )
            }
        };
        run.record(&mut frame.prev, ty, details);
        if let Some(e) = &error {
            warn!(execution = %name, error = %e.error, cause = %e.cause, "execution did not succeed");
        }
        Execution {
            name,
            execution_arn: exec_arn,
            status,
            output,
            error: error.as_ref().map(|e| e.error.clone()),
            cause: error.map(|e| e.cause),
            start_date,
            stop_date: self.clock.now_iso(),
            history: run.history.events(),
        }
    }
}

/// Applies an InputPath/OutputPath (`None` is the JSON null: `{}`).
pub(super) fn io_path(
    path: &Option<JsonPath>,
    data: &Value,
    ctx: &Value,
) -> Result<Value, TaskError> {
    match path {
        None => Ok(json!({})),
        Some(p) => p
            .select(data, ctx)
            .map_err(|e| TaskError::new("States.Runtime", e.to_string())),
    }
}

/// Applies a ResultPath to the state's raw input.
pub(super) fn result_path(
    rp: &ResultPath,
    raw_input: &Value,
    result: Value,
) -> Result<Value, TaskError> {
    match rp {
        ResultPath::Discard => Ok(raw_input.clone()),
        ResultPath::At(p) => p
            .write(raw_input, result)
            .map_err(|e| TaskError::new("States.ResultPathMatchFailure", e.to_string())),
    }
}

impl Run<'_> {
    pub(super) fn record(&self, prev: &mut u64, ty: &str, details: EventDetails) {
        self.history
            .record(prev, self.exec.clock.now_ms(), ty, details);
    }

    /// The `$$` context object for a state.
    pub(super) fn context(
        &self,
        state: &str,
        entered_ms: i64,
        retry_count: u64,
        frame: &Frame,
    ) -> Value {
        let mut ctx = self.base_ctx.clone();
        if let Some(obj) = ctx.as_object_mut() {
            obj.insert("State".into(), json!({"Name": state, "EnteredTime": format_ms(entered_ms), "RetryCount": retry_count}));
            if let Some((i, v)) = &frame.map_item {
                obj.insert("Map".into(), json!({"Item": {"Index": i, "Value": v}}));
            }
        }
        ctx
    }

    /// Runs a machine (or branch) from `StartAt` to a terminal state.
    pub(super) fn run_machine<'s>(
        &'s self,
        m: &'s StateMachine,
        input: Value,
        mut frame: Frame,
    ) -> BoxFuture<'s, Result<Value, TaskError>> {
        async move {
            let mut name = m.start_at.clone();
            let mut data = input;
            loop {
                let n = self.transitions.fetch_add(1, Ordering::SeqCst) + 1;
                if n > self.exec.config.max_transitions {
                    return Err(TaskError::new(
                        "States.Runtime",
                        format!(
                            "the execution exceeded {} state transitions",
                            self.exec.config.max_transitions
                        ),
                    ));
                }
                let state = m.states.get(&name).ok_or_else(|| {
                    TaskError::new("States.Runtime", format!("no state named {name:?}"))
                })?;
                let ty = state.kind.type_name();
                let entered = self.exec.clock.now_ms();
                self.record(
                    &mut frame.prev,
                    &format!("{ty}StateEntered"),
                    EventDetails {
                        name: Some(name.clone()),
                        input: Some(data.clone()),
                        ..Default::default()
                    },
                );
                debug!(execution = %self.execution_name, state = %name, "state entered");
                let (output, next) = self.run_state(state, data, entered, &mut frame).await?;
                self.record(
                    &mut frame.prev,
                    &format!("{ty}StateExited"),
                    EventDetails {
                        name: Some(name.clone()),
                        output: Some(output.clone()),
                        ..Default::default()
                    },
                );
                match next {
                    Some(n) => {
                        name = n;
                        data = output;
                    }
                    None => return Ok(output),
                }
            }
        }
        .boxed()
    }

    async fn run_state(
        &self,
        state: &State,
        raw: Value,
        entered: i64,
        frame: &mut Frame,
    ) -> Result<(Value, Option<String>), TaskError> {
        let ctx = self.context(&state.name, entered, 0, frame);
        let finish = |result: Value, rp: &ResultPath| -> Result<Value, TaskError> {
            let merged = result_path(rp, &raw, result)?;
            io_path(&state.output_path, &merged, &ctx)
        };
        match &state.kind {
            StateKind::Pass {
                result,
                parameters,
                result_path: rp,
            } => {
                let eff = io_path(&state.input_path, &raw, &ctx)?;
                let eff = match parameters {
                    Some(t) => crate::payload::render(t, &eff, &ctx)?,
                    None => eff,
                };
                let r = result.clone().unwrap_or(eff);
                Ok((finish(r, rp)?, state.next.clone()))
            }
            StateKind::Succeed => Ok((
                io_path(
                    &state.output_path,
                    &io_path(&state.input_path, &raw, &ctx)?,
                    &ctx,
                )?,
                None,
            )),
            StateKind::Fail { error, cause } => {
                let text = |s: &Option<Source>, field: &str| -> Result<String, TaskError> {
                    match s {
                        None => Ok(String::new()),
                        Some(Source::Literal(t)) => Ok(t.clone()),
                        Some(Source::Path(e)) => match e.eval(&raw, &ctx)? {
                            Value::String(s) => Ok(s),
                            v => Err(TaskError::new(
                                "States.Runtime",
                                format!("{field} must select a string, got {v}"),
                            )),
                        },
                    }
                };
                Err(TaskError::new(
                    text(error, "ErrorPath")?,
                    text(cause, "CausePath")?,
                ))
            }
            StateKind::Choice { choices, default } => {
                let eff = io_path(&state.input_path, &raw, &ctx)?;
                let mut next = None;
                for (rule, target) in choices {
                    if rule.eval(&eff, &ctx)? {
                        next = Some(target.clone());
                        break;
                    }
                }
                let next = next.or_else(|| default.clone()).ok_or_else(|| {
                    TaskError::new(
                        "States.NoChoiceMatched",
                        format!(
                            "no choice rule of state {:?} matched and it has no Default",
                            state.name
                        ),
                    )
                })?;
                Ok((io_path(&state.output_path, &eff, &ctx)?, Some(next)))
            }
            StateKind::Wait(w) => {
                let eff = io_path(&state.input_path, &raw, &ctx)?;
                let now = self.exec.clock.now_ms();
                let bad = |m: String| TaskError::new("States.Runtime", m);
                let ms = match w {
                    WaitFor::Seconds(s) => s.saturating_mul(1000),
                    WaitFor::Timestamp(t) => t.saturating_sub(now).max(0) as u64,
                    WaitFor::SecondsPath(p) => {
                        let v = p.select(&eff, &ctx).map_err(|e| bad(e.to_string()))?;
                        v.as_u64()
                            .ok_or_else(|| {
                                bad(format!(
                                    "SecondsPath {p} must select a non-negative integer, got {v}"
                                ))
                            })?
                            .saturating_mul(1000)
                    }
                    WaitFor::TimestampPath(p) => {
                        let v = p.select(&eff, &ctx).map_err(|e| bad(e.to_string()))?;
                        let t = v
                            .as_str()
                            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                            .ok_or_else(|| {
                                bad(format!(
                                    "TimestampPath {p} must select an RFC 3339 timestamp, got {v}"
                                ))
                            })?;
                        t.timestamp_millis().saturating_sub(now).max(0) as u64
                    }
                };
                self.exec.clock.sleep_ms(ms).await;
                Ok((io_path(&state.output_path, &eff, &ctx)?, state.next.clone()))
            }
            StateKind::Task { io, .. }
            | StateKind::Parallel { io, .. }
            | StateKind::Map { io, .. } => self.guarded(state, io, raw, entered, frame).await,
        }
    }
}
