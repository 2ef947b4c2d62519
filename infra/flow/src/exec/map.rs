//! Map states, inline and distributed.
//!
//! Items come from `ItemReader` (the object store), `Items` (JSONata; default the state
//! input) or `ItemsPath` (JSONPath; default `$`), and must form an array. `ItemBatcher`
//! groups them; each item (or batch) is processed by the `ItemProcessor`, at most
//! `MaxConcurrency` at a time (0 = all), with its input rendered from `ItemSelector` (with
//! `$$.Map.Item.Index` and `.Value`). Outputs are returned in item order.
//!
//! Without a tolerated failure threshold the first failing iteration fails the state and
//! cancels the others. With `ToleratedFailureCount`/`Percentage` every iteration runs;
//! failed ones leave `{"Error", "Cause"}` in their slot, and more failures than tolerated
//! fail the state with `States.ExceedToleratedFailureThreshold`. Inline iterations read the
//! enclosing variables; a distributed Map's do not.

use super::dataflow::StateData;
use super::distributed::{ChildRecord, batches, read_items, write_results};
use super::executor::{Frame, Run};
use super::vars::Scope;
use crate::asl::{Count, MapState};
use crate::history::EventDetails;
use crate::jsonpath::{Env, type_name};
use crate::payload::render_in;
use crate::registry::TaskError;
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};

/// How a count field's value is checked.
#[derive(Clone, Copy)]
enum Kind {
    Integer,
    Float,
}

impl Run<'_> {
    /// Resolves a count field (literal, `…Path` or JSONata) with AWS's runtime errors.
    fn count(
        &self,
        sd: &StateData<'_>,
        c: &Count,
        field: &str,
        kind: Kind,
        eff: &Value,
    ) -> Result<f64, TaskError> {
        let v = match c {
            Count::Fixed(n) => return Ok(*n),
            Count::Path(p) => p.select_in(eff, &sd.env()).map_err(|_| {
                sd.prefixed(
                    "States.Runtime",
                    format!("The {field}Path field refers to a value that could not be found: {p}"),
                )
            })?,
            Count::Expr(e) => sd.render_jsonata(
                field,
                &json!(format!("{{% {} %}}", e.text())),
                &sd.states(None, None),
            )?,
        };
        let n = match kind {
            Kind::Integer => v.as_i64().map(|n| n as f64),
            Kind::Float => v.as_f64(),
        };
        n.ok_or_else(|| {
            let shown = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            let what = match kind {
                Kind::Integer => "integer",
                Kind::Float => "float",
            };
            let src = match c {
                Count::Path(p) => format!(
                    "{field}Path field refers to value \"{shown}\" which is not a valid {what}: {p}"
                ),
                _ => format!("{field} field evaluated to \"{shown}\" which is not a valid {what}"),
            };
            sd.prefixed("States.Runtime", format!("The {src}"))
        })
    }

    async fn items(
        &self,
        sd: &StateData<'_>,
        m: &MapState,
        eff: &Value,
    ) -> Result<Vec<Value>, TaskError> {
        if let Some(reader) = &m.item_reader {
            let store = self.exec.objects().ok_or_else(|| {
                sd.prefixed(
                    "States.ItemReaderFailed",
                    "ItemReader needs an object store; none is configured for this run",
                )
            })?;
            let params = if sd.jsonata() {
                sd.render_jsonata(
                    "ItemReader/Arguments",
                    &reader.parameters,
                    &sd.states(None, None),
                )?
            } else {
                render_in(&reader.parameters, eff, &sd.env())?
            };
            let max = match &reader.max_items {
                Some(c) => Some(self.count(sd, c, "MaxItems", Kind::Integer, eff)? as u64),
                None => None,
            };
            return read_items(store, &reader.format, &params, max).await;
        }
        if sd.jsonata() {
            let v = match &m.items {
                Some(t) => sd.render_jsonata("Items", t, &sd.states(None, None))?,
                None => sd.raw.clone(),
            };
            return match v {
                Value::Array(a) => Ok(a),
                v => {
                    let text = m
                        .items
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(crate::jsonata::expression_text)
                        .unwrap_or("$states.input");
                    Err(sd.prefixed(
                        "States.QueryEvaluationError",
                        format!(
                            "The JSONata expression '{text}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {v}",
                            type_name(&v)
                        ),
                    ))
                }
            };
        }
        match m.items_path.select_in(eff, &sd.env()) {
            Ok(Value::Array(a)) => Ok(a),
            Ok(v) => Err(sd.prefixed(
                "States.Runtime",
                format!("Map state input must be an array but was: {v}"),
            )),
            Err(e) => Err(TaskError::new("States.Runtime", e.to_string())),
        }
    }

    pub(super) async fn map(
        &self,
        sd: &StateData<'_>,
        m: &MapState,
        eff: &Value,
        frame: &mut Frame,
    ) -> Result<Value, TaskError> {
        let state = sd.state;
        let mut items = self.items(sd, m, eff).await?;
        if let Some(b) = &m.item_batcher {
            let max_items = match &b.max_items {
                Some(c) => Some(self.count(sd, c, "MaxItemsPerBatch", Kind::Integer, eff)? as u64),
                None => None,
            };
            let max_bytes = match &b.max_bytes {
                Some(c) => {
                    Some(self.count(sd, c, "MaxInputBytesPerBatch", Kind::Integer, eff)? as u64)
                }
                None => None,
            };
            let batch_input = match &b.batch_input {
                Some(t) if sd.jsonata() => {
                    Some(sd.render_jsonata("ItemBatcher/BatchInput", t, &sd.states(None, None))?)
                }
                Some(t) => Some(render_in(t, eff, &sd.env())?),
                None => None,
            };
            items = batches(items, max_items, max_bytes, batch_input);
        }
        let max_concurrency =
            self.count(sd, &m.max_concurrency, "MaxConcurrency", Kind::Integer, eff)?;
        let tolerated_count = match &m.tolerated_count {
            Some(c) => {
                let n = self.count(sd, c, "ToleratedFailureCount", Kind::Integer, eff)?;
                if n < 0.0 {
                    return Err(sd.prefixed(
                        "States.Runtime",
                        "ToleratedFailureCount cannot be negative.",
                    ));
                }
                Some(n as usize)
            }
            None => None,
        };
        let tolerated_pct = match &m.tolerated_percentage {
            Some(c) => {
                let p = self.count(sd, c, "ToleratedFailurePercentage", Kind::Float, eff)?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(sd.prefixed(
                        "States.Runtime",
                        "ToleratedFailurePercentage must be between 0 and 100.",
                    ));
                }
                Some(p)
            }
            None => None,
        };
        let tolerant = tolerated_count.is_some() || tolerated_pct.is_some();
        let named = || EventDetails {
            name: Some(state.name.clone()),
            ..Default::default()
        };
        self.record(
            &mut frame.prev,
            "MapStateStarted",
            EventDetails {
                input: Some(json!({"length": items.len()})),
                ..named()
            },
        );
        let total = items.len();
        let limit = if max_concurrency < 1.0 {
            total.max(1)
        } else {
            max_concurrency as usize
        };
        let start_prev = frame.prev;
        let outer_vars = frame.vars.clone();
        let iterations = items.into_iter().enumerate().map(|(i, item)| {
            let f = Frame {
                prev: start_prev,
                map_item: Some((i, item.clone())),
                vars: if m.distributed {
                    Scope::root()
                } else {
                    outer_vars.child()
                },
            };
            let mut item_ctx = self.context(&state.name, 0, 0, &f);
            if let (Some(obj), Some(st)) = (item_ctx.as_object_mut(), sd.ctx.get("State")) {
                obj.insert("State".into(), st.clone());
            }
            self.iteration(sd, m, i, item, item_ctx, eff, f)
        });
        let outcomes: Vec<ChildRecord> = if tolerant {
            futures::stream::iter(iterations)
                .buffered(limit)
                .collect()
                .await
        } else {
            let r: Result<Vec<ChildRecord>, TaskError> = futures::stream::iter(iterations)
                .buffered(limit)
                .map(|rec| match rec.outcome {
                    Ok(_) => Ok(rec),
                    Err(e) => Err(e),
                })
                .try_collect()
                .await;
            match r {
                Ok(recs) => recs,
                Err(e) => return self.map_failed(frame, state, e),
            }
        };
        self.resync(frame);
        let failures = outcomes.iter().filter(|r| r.outcome.is_err()).count();
        let over_count = tolerated_count.is_some_and(|n| failures > n);
        let over_pct =
            tolerated_pct.is_some_and(|p| total > 0 && failures as f64 * 100.0 / total as f64 > p);
        if over_count || over_pct {
            return self.map_failed(
                frame,
                state,
                TaskError::new(
                    "States.ExceedToleratedFailureThreshold",
                    "The specified tolerated failure threshold was exceeded",
                ),
            );
        }
        let result = match (&m.result_writer, self.exec.objects()) {
            (Some(w), Some(store)) => {
                let params = if sd.jsonata() {
                    sd.render_jsonata(
                        "ResultWriter/Arguments",
                        &w.parameters,
                        &sd.states(None, None),
                    )?
                } else {
                    render_in(&w.parameters, eff, &sd.env())?
                };
                let ctx = &sd.ctx;
                let sm_arn = ctx["StateMachine"]["Id"].as_str().unwrap_or_default();
                let run_id = uuid::Uuid::new_v4();
                let label = m.label.clone().unwrap_or_else(|| state.name.clone());
                let map_run_arn = format!(
                    "{}/{label}:{run_id}",
                    sm_arn.replacen(":stateMachine:", ":mapRun:", 1)
                );
                write_results(store, &params, &map_run_arn, sm_arn, &outcomes)
                    .await
                    .map_err(|e| sd.prefixed(&e.error, e.cause))?
            }
            (Some(_), None) => {
                return Err(sd.prefixed(
                    "States.ResultWriterFailed",
                    "ResultWriter needs an object store; none is configured for this run",
                ));
            }
            (None, _) => Value::Array(
                outcomes
                    .into_iter()
                    .map(|r| match r.outcome {
                        Ok(v) => v,
                        Err(e) => json!({"Error": e.error, "Cause": e.cause}),
                    })
                    .collect(),
            ),
        };
        self.record(&mut frame.prev, "MapStateSucceeded", named());
        Ok(result)
    }

    fn map_failed(
        &self,
        frame: &mut Frame,
        state: &crate::asl::State,
        e: TaskError,
    ) -> Result<Value, TaskError> {
        self.resync(frame);
        self.record(
            &mut frame.prev,
            "MapStateFailed",
            EventDetails {
                name: Some(state.name.clone()),
                error: Some(e.error.clone()),
                cause: Some(e.cause.clone()),
                ..Default::default()
            },
        );
        Err(e)
    }

    #[allow(clippy::too_many_arguments)]
    async fn iteration(
        &self,
        sd: &StateData<'_>,
        m: &MapState,
        i: usize,
        item: Value,
        item_ctx: Value,
        eff: &Value,
        mut f: Frame,
    ) -> ChildRecord {
        let start = self.exec.clock().now_iso();
        let input = match &m.item_selector {
            Some(t) if sd.jsonata() => {
                let states = json!({"input": sd.raw, "context": item_ctx});
                crate::jsonata::render("ItemSelector", t, &states, &sd.vars)
                    .map_err(|e| sd.prefixed("States.QueryEvaluationError", e.0))
            }
            Some(t) => render_in(
                t,
                eff,
                &Env {
                    context: &item_ctx,
                    vars: &sd.vars,
                },
            ),
            None => Ok(item.clone()),
        };
        let d = |ty: &str, f: &mut Frame, e: Option<&TaskError>| {
            self.record(
                &mut f.prev,
                ty,
                EventDetails {
                    name: Some(sd.state.name.clone()),
                    index: Some(i),
                    error: e.map(|e| e.error.clone()),
                    cause: e.map(|e| e.cause.clone()),
                    ..Default::default()
                },
            );
        };
        let input = match input {
            Ok(v) => v,
            Err(e) => {
                return ChildRecord {
                    index: i,
                    input: item,
                    outcome: Err(e),
                    start: start.clone(),
                    stop: start,
                };
            }
        };
        d("MapIterationStarted", &mut f, None);
        let child = Frame {
            prev: f.prev,
            map_item: None,
            vars: f.vars.clone(),
        };
        let out = self.run_machine(&m.processor, input.clone(), child).await;
        self.resync(&mut f);
        match &out {
            Ok(_) => d("MapIterationSucceeded", &mut f, None),
            Err(e) => d("MapIterationFailed", &mut f, Some(e)),
        }
        ChildRecord {
            index: i,
            input,
            outcome: out,
            start,
            stop: self.exec.clock().now_iso(),
        }
    }
}
