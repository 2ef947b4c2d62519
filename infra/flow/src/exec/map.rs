//! Inline Map states: the array at `ItemsPath` (of the effective input) is processed item by
//! item by the `ItemProcessor`, at most `MaxConcurrency` at a time (0 = all), and the
//! outputs are returned in item order. Each item's input is the item itself or the
//! `ItemSelector` (legacy `Parameters`) rendered with `$$.Map.Item.{Index, Value}`. The
//! first failing iteration fails the state and cancels the others.

use super::executor::{Frame, Run};
use crate::asl::{State, StateMachine};
use crate::history::EventDetails;
use crate::jsonpath::{JsonPath, type_name};
use crate::payload::render;
use crate::registry::TaskError;
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};

impl Run<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn map(
        &self,
        state: &State,
        processor: &StateMachine,
        items_path: &JsonPath,
        selector: Option<&Value>,
        max_concurrency: u64,
        eff: &Value,
        ctx: &Value,
        frame: &mut Frame,
    ) -> Result<Value, TaskError> {
        let items = match items_path.select(eff, ctx) {
            Ok(Value::Array(a)) => a,
            Ok(v) => {
                return Err(TaskError::new(
                    "States.Runtime",
                    format!(
                        "ItemsPath {items_path} must select an array, got {}",
                        type_name(&v)
                    ),
                ));
            }
            Err(e) => return Err(TaskError::new("States.Runtime", e.to_string())),
        };
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
        let limit = if max_concurrency == 0 {
            items.len().max(1)
        } else {
            max_concurrency as usize
        };
        let start_prev = frame.prev;
        let iterations = items.into_iter().enumerate().map(|(i, item)| {
            let mut f = Frame {
                prev: start_prev,
                map_item: Some((i, item.clone())),
            };
            let item_ctx = self.context(&state.name, 0, 0, &f);
            let mut item_ctx = item_ctx;
            if let (Some(obj), Some(st)) = (item_ctx.as_object_mut(), ctx.get("State")) {
                obj.insert("State".into(), st.clone());
            }
            async move {
                let input = match selector {
                    Some(t) => render(t, eff, &item_ctx)?,
                    None => item,
                };
                let d = |ty: &str, f: &mut Frame, e: Option<&TaskError>| {
                    self.record(
                        &mut f.prev,
                        ty,
                        EventDetails {
                            index: Some(i),
                            error: e.map(|e| e.error.clone()),
                            cause: e.map(|e| e.cause.clone()),
                            ..named()
                        },
                    );
                };
                d("MapIterationStarted", &mut f, None);
                let prev = f.prev;
                let out = self
                    .run_machine(
                        processor,
                        input,
                        Frame {
                            prev,
                            map_item: None,
                        },
                    )
                    .await;
                self.resync(&mut f);
                match &out {
                    Ok(_) => d("MapIterationSucceeded", &mut f, None),
                    Err(e) => d("MapIterationFailed", &mut f, Some(e)),
                }
                out
            }
        });
        let outcome: Result<Vec<Value>, TaskError> = futures::stream::iter(iterations)
            .buffered(limit)
            .try_collect()
            .await;
        self.resync(frame);
        match outcome {
            Ok(outs) => {
                self.record(&mut frame.prev, "MapStateSucceeded", named());
                Ok(Value::Array(outs))
            }
            Err(e) => {
                self.record(
                    &mut frame.prev,
                    "MapStateFailed",
                    EventDetails {
                        error: Some(e.error.clone()),
                        cause: Some(e.cause.clone()),
                        ..named()
                    },
                );
                Err(e)
            }
        }
    }
}
