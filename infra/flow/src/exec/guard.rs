//! Retry and Catch around Task, Parallel and Map states.
//!
//! One attempt = the effective input → Parameters/Arguments → the work → the state's data
//! flow (see `dataflow`). A failed attempt is matched against `Retry` in order: the first
//! retrier whose `ErrorEquals` matches decides; if it has attempts left the state waits its
//! backoff (on the execution's clock) and runs again with `$$.State.RetryCount` one higher,
//! otherwise `Catch` is tried. The first matching catcher produces the state's output from
//! `{"Error", "Cause"}` (its ResultPath in JSONPath, its Output in JSONata), assigns its
//! variables and transitions to its `Next`.

use super::dataflow::{Finished, StateData};
use super::executor::{Frame, Run};
use super::retry::{any_matches, delay_ms};
use crate::asl::{Io, StateKind};
use crate::history::EventDetails;
use crate::registry::TaskError;
use serde_json::json;
use tracing::info;

fn io_of(kind: &StateKind) -> Option<&Io> {
    match kind {
        StateKind::Task { io, .. } | StateKind::Parallel { io, .. } => Some(io),
        StateKind::Map(m) => Some(&m.io),
        _ => None,
    }
}

impl Run<'_> {
    pub(super) async fn guarded(
        &self,
        sd: &StateData<'_>,
        entered: i64,
        frame: &mut Frame,
    ) -> Result<(Finished, Option<String>), TaskError> {
        let state = sd.state;
        let Some(io) = io_of(&state.kind) else {
            return Err(TaskError::new(
                "States.Runtime",
                "state type has no Retry/Catch",
            ));
        };
        let mut used = vec![0u64; io.retry.len()];
        let mut retry_count = 0u64;
        loop {
            let attempt_sd = StateData {
                state,
                raw: sd.raw.clone(),
                ctx: self.context(&state.name, entered, retry_count, frame),
                vars: sd.vars.clone(),
                entered_id: sd.entered_id,
            };
            let err = match self.attempt(&attempt_sd, io, retry_count, frame).await {
                Ok(done) => return Ok((done, state.next.clone())),
                Err(e) => e,
            };
            if let Some(i) = io
                .retry
                .iter()
                .position(|r| any_matches(&r.error_equals, &err.error))
            {
                let r = &io.retry[i];
                if used[i] < r.max_attempts {
                    let wait = delay_ms(r, used[i]);
                    used[i] += 1;
                    retry_count += 1;
                    info!(state = %state.name, error = %err.error, attempt = used[i], wait_ms = wait, "retrying state");
                    let ty = format!("{}RetryScheduled", state.kind.type_name());
                    self.record(
                        &mut frame.prev,
                        &ty,
                        EventDetails {
                            name: Some(state.name.clone()),
                            error: Some(err.error.clone()),
                            cause: Some(err.cause.clone()),
                            attempt: Some(used[i]),
                            wait_ms: Some(wait),
                            ..Default::default()
                        },
                    );
                    self.exec.clock().sleep_ms(wait).await;
                    continue;
                }
            }
            if let Some(c) = io
                .catch
                .iter()
                .find(|c| any_matches(&c.error_equals, &err.error))
            {
                info!(state = %state.name, error = %err.error, next = %c.next, "error caught");
                let done = attempt_sd.caught(json!({"Error": err.error, "Cause": err.cause}), c)?;
                return Ok((done, Some(c.next.clone())));
            }
            return Err(err);
        }
    }

    async fn attempt(
        &self,
        sd: &StateData<'_>,
        io: &Io,
        retry_count: u64,
        frame: &mut Frame,
    ) -> Result<Finished, TaskError> {
        let state = sd.state;
        let eff = sd.effective()?;
        let result = match &state.kind {
            StateKind::Task {
                resource, timeout, ..
            } => {
                let params = sd.arguments(&eff, io.parameters.as_ref())?;
                self.task(sd, resource, timeout, &eff, params, retry_count, frame)
                    .await?
            }
            StateKind::Parallel { branches, .. } => {
                let params = sd.arguments(&eff, io.parameters.as_ref())?;
                self.parallel(state, branches, params, frame).await?
            }
            StateKind::Map(m) => self.map(sd, m, &eff, frame).await?,
            _ => {
                return Err(TaskError::new(
                    "States.Runtime",
                    "state type has no Retry/Catch",
                ));
            }
        };
        sd.finish(
            result,
            io.result_selector.as_ref(),
            Some(&io.result_path),
            state.assign.as_ref(),
            state.output.as_ref(),
            true,
        )
    }
}
