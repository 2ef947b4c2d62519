//! One Task attempt: resolve the resource, invoke the handler (with the Task's timeout),
//! record `TaskScheduled`, `TaskStarted` and `TaskSucceeded`/`TaskFailed`/`TaskTimedOut`.
//! When the run has a mock test case that names the state, its mocked answer replaces the
//! handler (and is recorded the same way).

use super::dataflow::StateData;
use super::executor::{Frame, Run};
use crate::asl::Timeout;
use crate::history::EventDetails;
use crate::registry::{TaskContext, TaskError};
use futures::FutureExt as _;
use serde_json::{Value, json};

impl Run<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn task(
        &self,
        sd: &StateData<'_>,
        resource: &str,
        timeout: &Option<Timeout>,
        eff: &Value,
        params: Value,
        retry_count: u64,
        frame: &mut Frame,
    ) -> Result<Value, TaskError> {
        let state = sd.state;
        let details = |f: fn(&mut EventDetails)| {
            let mut d = EventDetails {
                name: Some(state.name.clone()),
                resource: Some(resource.to_string()),
                ..Default::default()
            };
            f(&mut d);
            d
        };
        let timeout_s = match timeout {
            None => None,
            Some(Timeout::Seconds(s)) => Some(*s),
            Some(Timeout::Expr(e)) => {
                let v = sd.render_jsonata(
                    "TimeoutSeconds",
                    &json!(format!("{{% {} %}}", e.text())),
                    &sd.states(None, None),
                )?;
                Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                    sd.prefixed(
                        "States.Runtime",
                        format!("TimeoutSeconds must be a positive integer, got {v}"),
                    )
                })?)
            }
            Some(Timeout::Path(p)) => {
                let v = p
                    .select_in(eff, &sd.env())
                    .map_err(|e| TaskError::new("States.Runtime", e.to_string()))?;
                Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                    TaskError::new(
                        "States.Runtime",
                        format!("TimeoutSecondsPath {p} must select a positive integer, got {v}"),
                    )
                })?)
            }
        };
        let mut scheduled = details(|_| {});
        scheduled.input = Some(params.clone());
        self.record(&mut frame.prev, "TaskScheduled", scheduled);
        if let Some(answer) = self.exec.mocks().and_then(|m| m.next_answer(&state.name)) {
            self.record(&mut frame.prev, "TaskStarted", details(|_| {}));
            let mut d = details(|_| {});
            return match answer {
                Ok(out) => {
                    d.output = Some(out.clone());
                    self.record(&mut frame.prev, "TaskSucceeded", d);
                    Ok(out)
                }
                Err(e) => {
                    d.error = Some(e.error.clone());
                    d.cause = Some(e.cause.clone());
                    self.record(&mut frame.prev, "TaskFailed", d);
                    Err(e)
                }
            };
        }
        let resolved = match self.exec.registry().resolve(resource, params) {
            Ok(r) => r,
            Err(e) => {
                let mut d = details(|_| {});
                d.error = Some(e.error.clone());
                d.cause = Some(e.cause.clone());
                self.record(&mut frame.prev, "TaskFailed", d);
                return Err(e);
            }
        };
        self.record(&mut frame.prev, "TaskStarted", details(|_| {}));
        let tctx = TaskContext {
            state_name: state.name.clone(),
            resource: resource.to_string(),
            execution_name: self.execution_name.clone(),
            retry_count,
            clock: self.exec.clock().clone(),
        };
        let handler = resolved.handler.clone();
        let call = async move { handler.invoke(resolved.input, &tctx).await }.boxed();
        let outcome = match timeout_s {
            Some(s) => {
                self.exec
                    .clock()
                    .run_with_timeout(s.saturating_mul(1000), call)
                    .await
            }
            None => Some(call.await),
        };
        match outcome {
            Some(Ok(out)) => {
                let out = if resolved.wrap_payload {
                    json!({"Payload": out, "StatusCode": 200, "ExecutedVersion": "$LATEST"})
                } else {
                    out
                };
                let mut d = details(|_| {});
                d.output = Some(out.clone());
                self.record(&mut frame.prev, "TaskSucceeded", d);
                Ok(out)
            }
            Some(Err(e)) => {
                let mut d = details(|_| {});
                d.error = Some(e.error.clone());
                d.cause = Some(e.cause.clone());
                self.record(&mut frame.prev, "TaskFailed", d);
                Err(e)
            }
            None => {
                let e = TaskError::new(
                    "States.Timeout",
                    format!(
                        "the task did not finish within {} seconds",
                        timeout_s.unwrap_or_default()
                    ),
                );
                let mut d = details(|_| {});
                d.error = Some(e.error.clone());
                d.cause = Some(e.cause.clone());
                self.record(&mut frame.prev, "TaskTimedOut", d);
                Err(e)
            }
        }
    }
}
