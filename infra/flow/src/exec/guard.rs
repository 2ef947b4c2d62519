//! Retry and Catch around Task, Parallel and Map states.
//!
//! One attempt = Parameters → the work → ResultSelector → ResultPath → OutputPath. A failed
//! attempt is matched against `Retry` in order: the first retrier whose `ErrorEquals`
//! matches decides; if it has attempts left the state waits its backoff (on the execution's
//! clock) and runs again with `$$.State.RetryCount` one higher, otherwise `Catch` is tried.
//! The first matching catcher writes `{"Error", "Cause"}` at its ResultPath into the raw
//! input and transitions to its `Next`.

use super::executor::{Frame, Run, io_path, result_path};
use super::retry::{any_matches, delay_ms};
use crate::asl::{Io, State, StateKind};
use crate::history::EventDetails;
use crate::payload::render;
use crate::registry::TaskError;
use serde_json::{Value, json};
use tracing::info;

impl Run<'_> {
    pub(super) async fn guarded(
        &self,
        state: &State,
        io: &Io,
        raw: Value,
        entered: i64,
        frame: &mut Frame,
    ) -> Result<(Value, Option<String>), TaskError> {
        let mut used = vec![0u64; io.retry.len()];
        let mut retry_count = 0u64;
        loop {
            let ctx = self.context(&state.name, entered, retry_count, frame);
            let attempt = self
                .attempt(state, io, &raw, &ctx, retry_count, frame)
                .await;
            let err = match attempt {
                Ok(out) => return Ok((out, state.next.clone())),
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
                let out = result_path(
                    &c.result_path,
                    &raw,
                    json!({"Error": err.error, "Cause": err.cause}),
                )?;
                return Ok((out, Some(c.next.clone())));
            }
            return Err(err);
        }
    }

    async fn attempt(
        &self,
        state: &State,
        io: &Io,
        raw: &Value,
        ctx: &Value,
        retry_count: u64,
        frame: &mut Frame,
    ) -> Result<Value, TaskError> {
        let eff = io_path(&state.input_path, raw, ctx)?;
        let result = match &state.kind {
            StateKind::Task {
                resource, timeout, ..
            } => {
                let params = match &io.parameters {
                    Some(t) => render(t, &eff, ctx)?,
                    None => eff.clone(),
                };
                self.task(
                    state,
                    resource,
                    timeout,
                    &eff,
                    params,
                    ctx,
                    retry_count,
                    frame,
                )
                .await?
            }
            StateKind::Parallel { branches, .. } => {
                let params = match &io.parameters {
                    Some(t) => render(t, &eff, ctx)?,
                    None => eff.clone(),
                };
                self.parallel(state, branches, params, frame).await?
            }
            StateKind::Map {
                processor,
                items_path,
                item_selector,
                max_concurrency,
                ..
            } => {
                self.map(
                    state,
                    processor,
                    items_path,
                    item_selector.as_ref(),
                    *max_concurrency,
                    &eff,
                    ctx,
                    frame,
                )
                .await?
            }
            _ => {
                return Err(TaskError::new(
                    "States.Runtime",
                    "state type has no Retry/Catch",
                ));
            }
        };
        let result = match &io.result_selector {
            Some(t) => render(t, &result, ctx)?,
            None => result,
        };
        let merged = result_path(&io.result_path, raw, result)?;
        io_path(&state.output_path, &merged, ctx)
    }
}
