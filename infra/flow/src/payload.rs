//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`) and `.$` expressions.
//!
//! A key ending in `.$` takes its value from a JSONPath (`$…` on the state's data, `$$…` on
//! the context object) or an intrinsic call; the `.$` suffix is dropped from the output key.
//! Other values are copied. Objects nested in objects and arrays are processed the same way.

use crate::intrinsics::Call;
use crate::jsonpath::{Env, JsonPath};
use crate::registry::TaskError;
use serde_json::{Map, Value};

/// The right-hand side of a `.$` key.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A JSONPath.
    Path(JsonPath),
    /// An intrinsic function call.
    Call(Call),
}

impl Expr {
    /// Parses a path or an intrinsic call.
    ///
    /// # Errors
    /// A message naming the text and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if Call::looks_like_call(text) {
            Call::parse(text).map(Expr::Call).map_err(|e| e.to_string())
        } else {
            JsonPath::parse(text)
                .map(Expr::Path)
                .map_err(|e| e.to_string())
        }
    }

    /// Evaluates against the data and the context object.
    ///
    /// # Errors
    /// `States.Runtime` for a path that selects nothing, `States.IntrinsicFailure` for a
    /// failing call.
    pub fn eval(&self, data: &Value, ctx: &Value) -> Result<Value, TaskError> {
        self.eval_in(data, &Env::context_only(ctx))
    }

    /// Evaluates with the variables of `env` in scope.
    ///
    /// # Errors
    /// As [`Expr::eval`].
    pub fn eval_in(&self, data: &Value, env: &Env<'_>) -> Result<Value, TaskError> {
        match self {
            Expr::Path(p) => p
                .select_in(data, env)
                .map_err(|e| TaskError::new("States.Runtime", e.to_string())),
            Expr::Call(c) => c
                .eval_in(data, env)
                .map_err(|e| TaskError::new("States.IntrinsicFailure", e.to_string())),
        }
    }
}

/// Checks every `.$` entry of a template; returns `(key, problem)` pairs.
pub fn check_template(template: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk_check(template, &mut out);
    out
}

fn walk_check(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if let Some(plain) = k.strip_suffix(".$")
                    && m.contains_key(plain)
                {
                    out.push((
                        k.clone(),
                        format!("cannot be combined with {plain:?}: a field is either a literal or a path"),
                    ));
                }
                if k.ends_with(".$") {
                    match v.as_str() {
                        Some(text) => {
                            if let Err(e) = Expr::parse(text) {
                                out.push((k.clone(), e));
                            }
                        }
                        None => out.push((
                            k.clone(),
                            "a key ending in \".$\" needs a string path or intrinsic call"
                                .to_string(),
                        )),
                    }
                } else {
                    walk_check(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| walk_check(v, out)),
        _ => {}
    }
}

/// Renders a template against `data` and the context object.
///
/// # Errors
/// As [`Expr::eval`]; the message names the key.
pub fn render(template: &Value, data: &Value, ctx: &Value) -> Result<Value, TaskError> {
    render_in(template, data, &Env::context_only(ctx))
}

/// Renders a template with the variables of `env` in scope.
///
/// # Errors
/// As [`render`].
pub fn render_in(template: &Value, data: &Value, ctx: &Env<'_>) -> Result<Value, TaskError> {
    match template {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                if let Some(key) = k.strip_suffix(".$") {
                    let text = v.as_str().unwrap_or_default();
                    let expr = Expr::parse(text).map_err(|e| {
                        TaskError::new("States.Runtime", format!("field {k:?}: {e}"))
                    })?;
                    let value = expr.eval_in(data, ctx).map_err(|mut e| {
                        e.cause = format!("field {k:?}: {}", e.cause);
                        e
                    })?;
                    out.insert(key.to_string(), value);
                } else {
                    out.insert(k.clone(), render_in(v, data, ctx)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .map(|v| render_in(v, data, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}
