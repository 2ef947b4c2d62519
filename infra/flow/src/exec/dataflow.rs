//! A state's data flow in its query language.
//!
//! JSONPath: InputPath → Parameters → the work → ResultSelector → `Assign` (its `$` is the
//! result) → ResultPath (into the raw input) → OutputPath. Choice and Wait assign from and
//! output their effective input.
//!
//! JSONata: `Arguments` (default: the state input) → the work → `Assign` and `Output` (default:
//! the result, or the input for states without one), all evaluated with `$states.input`,
//! `$states.result`, `$states.errorOutput` and `$states.context`.
//!
//! In both, every reference reads the variables as they were when the state was entered;
//! the state's `Assign` is returned to the caller, which commits it when the state ends.
//! Field evaluation failures carry AWS's cause prefix: "An error occurred while executing
//! the state 'S' (entered at the event id #N)."

use super::executor::{io_path, result_path};
use crate::asl::{QueryLanguage, ResultPath, State};
use crate::jsonpath::Env;
use crate::payload::render_in;
use crate::registry::TaskError;
use serde_json::{Map, Value, json};

/// What a state sees while it runs.
pub(super) struct StateData<'s> {
    /// The state.
    pub state: &'s State,
    /// The state's raw input.
    pub raw: Value,
    /// The context object (`$$`, `$states.context`).
    pub ctx: Value,
    /// The variables as they were when the state was entered.
    pub vars: Map<String, Value>,
    /// The id of the `…StateEntered` event.
    pub entered_id: u64,
}

/// The outcome of a state's data flow: its output and the variables it assigns.
pub(super) struct Finished {
    pub output: Value,
    pub assigned: Option<Map<String, Value>>,
}

impl StateData<'_> {
    pub fn env(&self) -> Env<'_> {
        Env {
            context: &self.ctx,
            vars: &self.vars,
        }
    }

    pub fn jsonata(&self) -> bool {
        self.state.query_language == QueryLanguage::Jsonata
    }

    /// AWS's prefix for errors raised while the state runs.
    pub fn prefixed(&self, error: &str, msg: impl std::fmt::Display) -> TaskError {
        TaskError::new(
            error,
            format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). {msg}",
                self.state.name, self.entered_id
            ),
        )
    }

    /// `$states` for JSONata expressions.
    pub fn states(&self, result: Option<&Value>, error_output: Option<&Value>) -> Value {
        let mut s = json!({"input": self.raw, "context": self.ctx});
        if let Some(obj) = s.as_object_mut() {
            if let Some(r) = result {
                obj.insert("result".into(), r.clone());
            }
            if let Some(e) = error_output {
                obj.insert("errorOutput".into(), e.clone());
            }
        }
        s
    }

    /// Evaluates a JSONata field value.
    pub fn render_jsonata(
        &self,
        field: &str,
        v: &Value,
        states: &Value,
    ) -> Result<Value, TaskError> {
        crate::jsonata::render(field, v, states, &self.vars)
            .map_err(|e| self.prefixed("States.QueryEvaluationError", e.0))
    }

    /// The effective input: InputPath applied (JSONPath), the raw input (JSONata).
    pub fn effective(&self) -> Result<Value, TaskError> {
        if self.jsonata() {
            return Ok(self.raw.clone());
        }
        io_path(&self.state.input_path, &self.raw, &self.env())
    }

    /// Parameters on the effective input (JSONPath) or Arguments (JSONata); the
    /// effective input when neither is set.
    pub fn arguments(&self, eff: &Value, template: Option<&Value>) -> Result<Value, TaskError> {
        match template {
            None => Ok(eff.clone()),
            Some(t) if self.jsonata() => {
                self.render_jsonata("Arguments", t, &self.states(None, None))
            }
            Some(t) => render_in(t, eff, &self.env()),
        }
    }

    /// Finishes a state that produced `result` (Task, Parallel, Map, Pass) or, with
    /// `result_path: None`, a state whose "result" is its effective input (Choice, Wait).
    pub fn finish(
        &self,
        result: Value,
        result_selector: Option<&Value>,
        result_path: Option<&ResultPath>,
        assign: Option<&Value>,
        output: Option<&Value>,
        has_result: bool,
    ) -> Result<Finished, TaskError> {
        if self.jsonata() {
            let states = self.states(has_result.then_some(&result), None);
            let assigned = self.assign_jsonata(assign, &states)?;
            let output = match output {
                Some(o) => self.render_jsonata("Output", o, &states)?,
                None if has_result => result,
                None => self.raw.clone(),
            };
            return Ok(Finished { output, assigned });
        }
        let result = match result_selector {
            Some(t) => render_in(t, &result, &self.env())?,
            None => result,
        };
        let assigned = self.assign_jsonpath(assign, &result)?;
        let merged = match result_path {
            Some(rp) => result_path_into(rp, &self.raw, result)?,
            None => result,
        };
        let output = io_path(&self.state.output_path, &merged, &self.env())?;
        Ok(Finished { output, assigned })
    }

    /// The output and assignments of a caught error.
    pub fn caught(
        &self,
        error_output: Value,
        catcher: &crate::asl::Catcher,
    ) -> Result<Finished, TaskError> {
        if self.jsonata() {
            let states = self.states(None, Some(&error_output));
            let assigned = self.assign_jsonata(catcher.assign.as_ref(), &states)?;
            let output = match &catcher.output {
                Some(o) => self.render_jsonata("Output", o, &states)?,
                None => error_output,
            };
            return Ok(Finished { output, assigned });
        }
        let assigned = self.assign_jsonpath(catcher.assign.as_ref(), &error_output)?;
        let output = result_path(&catcher.result_path, &self.raw, error_output)?;
        Ok(Finished { output, assigned })
    }

    fn assign_jsonata(
        &self,
        assign: Option<&Value>,
        states: &Value,
    ) -> Result<Option<Map<String, Value>>, TaskError> {
        match assign {
            None => Ok(None),
            Some(a) => match self.render_jsonata("Assign", a, states)? {
                Value::Object(m) => Ok(Some(m)),
                _ => Ok(None),
            },
        }
    }

    fn assign_jsonpath(
        &self,
        assign: Option<&Value>,
        data: &Value,
    ) -> Result<Option<Map<String, Value>>, TaskError> {
        match assign {
            None => Ok(None),
            Some(a) => match render_in(a, data, &self.env())? {
                Value::Object(m) => Ok(Some(m)),
                _ => Ok(None),
            },
        }
    }
}

fn result_path_into(rp: &ResultPath, raw: &Value, result: Value) -> Result<Value, TaskError> {
    result_path(rp, raw, result)
}
