//! The [`Executor`] and the per-machine state loop.
//!
//! Invariants: each execution records `ExecutionStarted` first and exactly one of
//! `ExecutionSucceeded`/`ExecutionFailed`/`ExecutionTimedOut` last; every state entered is
//! exited unless its error leaves the machine; an execution performs at most
//! `max_transitions` state transitions (then fails with `States.Runtime`).

use super::dataflow::{Finished, StateData};
use super::vars::Scope;
use crate::asl::{ResultPath, Source, StateKind, StateMachine, WaitFor};
use crate::clock::{FlowClock, format_ms};
use crate::history::{EventDetails, HistoryEvent, HistoryRecorder};
use crate::jsonpath::{Env, JsonPath};
use crate::registry::{HandlerRegistry, TaskError};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shardline_core::ports::ObjectStore;
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
    /// `$$.Execution.RoleArn`; `arn:aws:iam::<account>:role/<state machine name>-role` when
    /// unset (every AWS execution has a role).
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
    objects: Option<Arc<dyn ObjectStore>>,
    mocks: Option<Arc<crate::mock::TestCase>>,
}

/// Per-branch position: the last event recorded, the Map item being processed and the
/// variable scope.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub prev: u64,
    pub map_item: Option<(usize, Value)>,
    pub vars: Arc<Scope>,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            prev: 0,
            map_item: None,
            vars: Scope::root(),
        }
    }
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
            objects: None,
            mocks: None,
        }
    }

    /// The object store a distributed Map's `ItemReader` and `ResultWriter` use (buckets
    /// are the store's buckets).
    pub fn with_object_store(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.objects = Some(store);
        self
    }

    /// Answers Task states from a mock test case (Step Functions Local's MockConfigFile):
    /// a state the case names never calls its handler.
    pub fn with_mocks(mut self, case: crate::mock::TestCase) -> Self {
        self.mocks = Some(Arc::new(case));
        self
    }

    pub(super) fn registry(&self) -> &HandlerRegistry {
        &self.registry
    }

    pub(super) fn objects(&self) -> Option<&Arc<dyn ObjectStore>> {
        self.objects.as_ref()
    }

    pub(super) fn mocks(&self) -> Option<&crate::mock::TestCase> {
        self.mocks.as_deref()
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
        let role = c.role_arn.clone().unwrap_or_else(|| {
            format!(
                "arn:aws:iam::{}:role/{}-role",
                c.account, c.state_machine_name
            )
        });
        let execution = json!({
            "Id": exec_arn, "Input": input, "Name": name, "RoleArn": role,
            "StartTime": start_date, "RedriveCount": 0,
        });
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
    env: &Env<'_>,
) -> Result<Value, TaskError> {
    match path {
        None => Ok(json!({})),
        Some(p) => p
            .select_in(data, env)
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
                let sd = StateData {
                    state,
                    ctx: self.context(&state.name, entered, 0, &frame),
                    raw: data,
                    vars: frame.vars.snapshot(),
                    entered_id: frame.prev,
                };
                let (done, next) = self.run_state(&sd, entered, &mut frame).await?;
                if let Some(assigned) = done.assigned {
                    frame.vars.assign(assigned)?;
                }
                self.record(
                    &mut frame.prev,
                    &format!("{ty}StateExited"),
                    EventDetails {
                        name: Some(name.clone()),
                        output: Some(done.output.clone()),
                        ..Default::default()
                    },
                );
                match next {
                    Some(n) => {
                        name = n;
                        data = done.output;
                    }
                    None => return Ok(done.output),
                }
            }
        }
        .boxed()
    }

    async fn run_state(
        &self,
        sd: &StateData<'_>,
        entered: i64,
        frame: &mut Frame,
    ) -> Result<(Finished, Option<String>), TaskError> {
        let state = sd.state;
        let next = state.next.clone();
        let assign = state.assign.as_ref();
        let output = state.output.as_ref();
        match &state.kind {
            StateKind::Pass {
                result,
                parameters,
                result_path: rp,
            } => {
                let eff = sd.effective()?;
                let eff = sd.arguments(&eff, parameters.as_ref())?;
                let has_result = !sd.jsonata();
                let r = result.clone().unwrap_or(eff);
                let done = sd.finish(r, None, Some(rp), assign, output, has_result)?;
                Ok((done, next))
            }
            StateKind::Succeed => {
                let eff = sd.effective()?;
                Ok((sd.finish(eff, None, None, None, output, false)?, None))
            }
            StateKind::Fail { error, cause } => {
                let text = |s: &Option<Source>, field: &str| -> Result<String, TaskError> {
                    let v = match s {
                        None => return Ok(String::new()),
                        Some(Source::Literal(t)) => return Ok(t.clone()),
                        Some(Source::Path(e)) => e.eval_in(&sd.raw, &sd.env()).map_err(|e| {
                            if e.error == "States.Runtime" {
                                sd.prefixed(
                                    "States.Runtime",
                                    format!("The JSONPath specified for the field '{field}' could not be found in the input: {}", e.cause),
                                )
                            } else {
                                e
                            }
                        })?,
                        Some(Source::Jsonata(e)) => {
                            let f = if field == "ErrorPath" { "Error" } else { "Cause" };
                            sd.render_jsonata(f, &json!(format!("{{% {} %}}", e.text())), &sd.states(None, None))?
                        }
                    };
                    match v {
                        Value::String(s) => Ok(s),
                        v => Err(sd.prefixed(
                            "States.Runtime",
                            format!("The field '{field}' must select a string, got {v}"),
                        )),
                    }
                };
                Err(TaskError::new(
                    text(error, "ErrorPath")?,
                    text(cause, "CausePath")?,
                ))
            }
            StateKind::Choice { choices, default } => {
                let eff = sd.effective()?;
                let mut chosen = None;
                for c in choices {
                    let hit = match &c.rule {
                        crate::asl::choice::Rule::Condition(e) => {
                            let cond = json!(format!("{{% {} %}}", e.text()));
                            match sd.render_jsonata("Condition", &cond, &sd.states(None, None))? {
                                Value::Bool(b) => b,
                                v => {
                                    return Err(sd.prefixed(
                                        "States.QueryEvaluationError",
                                        format!("The JSONata expression '{}' specified for the field 'Condition' returned an unexpected result type. Expected 'boolean', but was '{}' for value: {v}", e.text(), crate::jsonpath::type_name(&v)),
                                    ));
                                }
                            }
                        }
                        rule => rule.eval_in(&eff, &sd.env())?,
                    };
                    if hit {
                        chosen = Some(c);
                        break;
                    }
                }
                let (target, rule_assign, rule_output) = match chosen {
                    Some(c) => (
                        c.next.clone(),
                        c.assign.as_ref().or(assign),
                        c.output.as_ref().or(output),
                    ),
                    None => match default {
                        Some(d) => (d.clone(), assign, output),
                        None => {
                            return Err(TaskError::new(
                                "States.NoChoiceMatched",
                                format!(
                                    "no choice rule of state {:?} matched and it has no Default",
                                    state.name
                                ),
                            ));
                        }
                    },
                };
                let done = sd.finish(eff, None, None, rule_assign, rule_output, false)?;
                Ok((done, Some(target)))
            }
            StateKind::Wait(w) => {
                let eff = sd.effective()?;
                let ms = self.wait_ms(sd, w, &eff)?;
                self.exec.clock.sleep_ms(ms).await;
                Ok((sd.finish(eff, None, None, assign, output, false)?, next))
            }
            StateKind::Task { .. } | StateKind::Parallel { .. } | StateKind::Map(_) => {
                self.guarded(sd, entered, frame).await
            }
        }
    }

    /// How long a Wait state waits, with AWS's errors for bad paths and values.
    fn wait_ms(&self, sd: &StateData<'_>, w: &WaitFor, eff: &Value) -> Result<u64, TaskError> {
        let now = self.exec.clock.now_ms();
        let runtime = |m: String| sd.prefixed("States.Runtime", m);
        // Saturating: input may ask for any wait.
        let until = |t: i64| t.saturating_sub(now).max(0) as u64;
        // `what` names the field as AWS does ("SecondsPath parameter"); `shown` is the value
        // as AWS prints it after the path ("$.x == -1").
        let seconds = |v: &Value, what: &str, shown: String| -> Result<u64, TaskError> {
            match v.as_i64() {
                Some(n) if n >= 0 => Ok((n as u64).saturating_mul(1000)),
                Some(_) => Err(runtime(format!(
                    "The {what} references a negative value: {shown}"
                ))),
                None => Err(runtime(format!(
                    "The {what} cannot be parsed as a long value: {shown}"
                ))),
            }
        };
        match w {
            WaitFor::Seconds(s) => Ok(s.saturating_mul(1000)),
            WaitFor::Timestamp(t) => Ok(until(*t)),
            WaitFor::SecondsPath(p) => {
                let v = p.select_in(eff, &sd.env()).map_err(|_| {
                    runtime(format!(
                        "The SecondsPath parameter does not reference an input value: {p}"
                    ))
                })?;
                seconds(&v, "SecondsPath parameter", format!("{p} == {v}"))
            }
            WaitFor::TimestampPath(p) => {
                let v = p.select_in(eff, &sd.env()).map_err(|_| {
                    runtime(format!(
                        "The TimestampPath parameter does not reference an input value: {p}"
                    ))
                })?;
                match v.as_str().and_then(crate::clock::parse_timestamp) {
                    Some(t) => Ok(until(t)),
                    None => Err(runtime(format!(
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    ))),
                }
            }
            WaitFor::SecondsExpr(e) => {
                let v = sd.render_jsonata(
                    "Seconds",
                    &json!(format!("{{% {} %}}", e.text())),
                    &sd.states(None, None),
                )?;
                seconds(&v, "Seconds field", v.to_string())
            }
            WaitFor::TimestampExpr(e) => {
                let v = sd.render_jsonata(
                    "Timestamp",
                    &json!(format!("{{% {} %}}", e.text())),
                    &sd.states(None, None),
                )?;
                match v.as_str().and_then(crate::clock::parse_timestamp) {
                    Some(t) => Ok(until(t)),
                    None => Err(runtime(format!(
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    ))),
                }
            }
        }
    }
}
