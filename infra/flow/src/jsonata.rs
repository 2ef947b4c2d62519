//! JSONata expressions, as Step Functions evaluates them in `QueryLanguage: "JSONata"` states.
//!
//! A field value is an expression when the whole JSON string is `{% … %}` (no text around it:
//! `" {% x %} "` is a literal string, as on AWS). Expressions are parsed when the definition
//! is read and evaluated with `$states` (`input`, `result`, `errorOutput`, `context`) and
//! every workflow variable in scope bound as `$name`; `$` itself is not bound to the input
//! (AWS's examples always go through `$states.input`).
//!
//! The engine is `jsonata-core` (the jsonata-js test suite passes in full), extended with the
//! functions AWS adds: `$partition`, `$range`, `$hash`, `$random([seed])`, `$uuid` and
//! `$parse`; `$eval` is refused, as on AWS.
//!
//! Invariants: evaluation never panics and ends within [`EVAL_TIMEOUT_MS`]; a result that is
//! *undefined* is reported as such
//! (`Ok(None)`), so callers can fail with AWS's "returned nothing (undefined)"; numbers
//! that are whole are returned as JSON integers (`3`, not `3.0`).

use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::value::JValue;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Map, Value};

/// The longest one expression may evaluate (then it fails with JSONata's D1012), so a
/// runaway expression (unbounded recursion, a huge `$range`) cannot stall an execution.
pub const EVAL_TIMEOUT_MS: u64 = 10_000;

/// A parsed `{% … %}` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsonata {
    text: String,
}

/// The text inside `{% … %}`, if `s` is an expression.
pub fn expression_text(s: &str) -> Option<&str> {
    s.strip_prefix("{%")
        .and_then(|r| r.strip_suffix("%}"))
        .map(str::trim)
}

impl std::fmt::Display for Jsonata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Jsonata {
    /// Parses the text inside `{% … %}`.
    ///
    /// # Errors
    /// The parser's message (with its JSONata error code) when the text is not JSONata.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the JSONata expression is empty".to_string());
        }
        jsonata_core::parser::parse(text).map_err(|e| e.to_string())?;
        Ok(Self {
            text: text.to_string(),
        })
    }

    /// The expression's text (without `{% %}`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates with `$states` and the variables bound; `Ok(None)` when the result is
    /// undefined.
    ///
    /// # Errors
    /// The engine's message (e.g. `T1006: Attempted to invoke a non-function`).
    pub fn eval(&self, states: &Value, vars: &Map<String, Value>) -> Result<Option<Value>, String> {
        let ast = jsonata_core::parser::parse(&self.text).map_err(|e| e.to_string())?;
        let mut context = Context::new();
        for (name, value) in vars {
            context.bind(name.clone(), JValue::from(value.clone()));
        }
        context.bind("states".to_string(), JValue::from(states.clone()));
        let options = EvaluatorOptions {
            timeout_ms: Some(EVAL_TIMEOUT_MS),
            ..EvaluatorOptions::default()
        };
        let mut ev = Evaluator::with_options(context, options);
        register_aws_functions(&mut ev).map_err(|e| e.message().to_string())?;
        let out = ev
            .evaluate(&ast, &JValue::Null)
            .map_err(|e| e.message().to_string())?;
        Ok(to_json(&out))
    }
}

/// Checks every `{% … %}` string in a field value; returns `(path, problem)` pairs, the path
/// written as AWS writes it (`Arguments/FunctionName`).
pub fn check_template(field: &str, v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk_check(field, v, &mut out);
    out
}

fn walk_check(at: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => {
            if let Some(text) = expression_text(s)
                && let Err(e) = Jsonata::parse(text)
            {
                out.push((
                    at.to_string(),
                    format!("invalid JSONata expression {text:?}: {e}"),
                ));
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| walk_check(&format!("{at}[{i}]"), v, out)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| walk_check(&format!("{at}/{k}"), v, out)),
        _ => {}
    }
}

/// Why a field's evaluation failed, worded as AWS words it (after the state prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

/// Evaluates a field value: `{% … %}` strings anywhere inside are replaced by their result,
/// everything else is copied. `field` names the field in errors (`Output/result`).
///
/// # Errors
/// A [`FieldError`] when an expression fails or is undefined.
pub fn render(
    field: &str,
    v: &Value,
    states: &Value,
    vars: &Map<String, Value>,
) -> Result<Value, FieldError> {
    match v {
        Value::String(s) => match expression_text(s) {
            Some(text) => {
                let undefined = || {
                    FieldError(format!(
                        "The JSONata expression '{text}' specified for the field '{field}' returned nothing (undefined)."
                    ))
                };
                let expr = Jsonata::parse(text).map_err(|e| {
                    FieldError(format!(
                        "The JSONata expression '{text}' specified for the field '{field}' threw an error during evaluation. {e}"
                    ))
                })?;
                match expr.eval(states, vars) {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(undefined()),
                    Err(e) => Err(FieldError(format!(
                        "The JSONata expression '{text}' specified for the field '{field}' threw an error during evaluation. {e}"
                    ))),
                }
            }
            None => Ok(v.clone()),
        },
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| render(&format!("{field}[{i}]"), v, states, vars))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                out.insert(k.clone(), render(&format!("{field}/{k}"), v, states, vars)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn fail(msg: impl Into<String>) -> EvaluatorError {
    EvaluatorError::EvaluationError(msg.into())
}

fn arg_json(args: &[JValue], i: usize) -> Option<Value> {
    args.get(i).and_then(to_json)
}

fn register_aws_functions(ev: &mut Evaluator) -> Result<(), EvaluatorError> {
    ev.register_fn("partition", |args: &[JValue]| {
        let (Some(Value::Array(items)), Some(size)) = (arg_json(args, 0), arg_json(args, 1)) else {
            return Err(fail("$partition(array, size) needs an array and a size"));
        };
        let size = size
            .as_f64()
            .filter(|n| *n >= 1.0 && n.fract() == 0.0)
            .ok_or_else(|| fail("the $partition size must be a positive integer"))?;
        let chunks: Vec<Value> = items
            .chunks(size as usize)
            .map(|c| Value::Array(c.to_vec()))
            .collect();
        Ok(JValue::from(Value::Array(chunks)))
    })?;
    ev.register_fn("range", |args: &[JValue]| {
        let num = |i: usize| {
            arg_json(args, i)
                .and_then(|v| v.as_f64())
                .filter(|n| n.fract() == 0.0)
                .map(|n| n as i64)
        };
        let (Some(start), Some(end), Some(step)) = (num(0), num(1), num(2)) else {
            return Err(fail("$range(start, end, step) needs three integers"));
        };
        if step == 0 {
            return Err(fail("the $range step must not be 0"));
        }
        let mut out = Vec::new();
        let mut v = start;
        while (step > 0 && v <= end) || (step < 0 && v >= end) {
            if out.len() >= 1000 {
                return Err(fail("$range produces at most 1000 items"));
            }
            out.push(Value::from(v));
            v += step;
        }
        Ok(JValue::from(Value::Array(out)))
    })?;
    ev.register_fn("hash", |args: &[JValue]| {
        let data = match arg_json(args, 0) {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => return Err(fail("$hash needs the data to hash")),
            Some(other) => other.to_string(),
        };
        let Some(Value::String(alg)) = arg_json(args, 1) else {
            return Err(fail("$hash(data, algorithm) needs an algorithm name"));
        };
        crate::intrinsics::hash_hex(data.as_bytes(), &alg)
            .map(JValue::from)
            .map_err(fail)
    })?;
    ev.register_fn_override("random", |args: &[JValue]| {
        let n: f64 = match arg_json(args, 0) {
            Some(seed) => {
                let seed = seed
                    .as_f64()
                    .ok_or_else(|| fail("the $random seed must be a number"))?;
                rand::rngs::StdRng::seed_from_u64(seed as i64 as u64).random()
            }
            None => rand::rng().random(),
        };
        Ok(JValue::from_f64(n))
    })?;
    ev.register_fn("uuid", |_: &[JValue]| {
        Ok(JValue::from(uuid::Uuid::new_v4().to_string()))
    })?;
    ev.register_fn_override("parse", |args: &[JValue]| {
        let Some(Value::String(s)) = arg_json(args, 0) else {
            return Err(fail("$parse needs a JSON string"));
        };
        serde_json::from_str::<Value>(&s)
            .map(JValue::from)
            .map_err(|e| fail(format!("$parse: the string is not JSON: {e}")))
    })?;
    ev.register_fn_override("eval", |_: &[JValue]| {
        Err(fail(
            "$eval is not available in Step Functions; use $parse instead",
        ))
    })?;
    Ok(())
}

/// Converts an engine value to JSON; `None` for undefined (and for functions, which have no
/// JSON form). Whole numbers become integers.
pub(crate) fn to_json(v: &JValue) -> Option<Value> {
    Some(match v {
        JValue::Undefined | JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. } => {
            return None;
        }
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => number(*n),
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(a) => Value::Array(a.iter().filter_map(to_json).collect()),
        JValue::Object(m) => Value::Object(
            m.iter()
                .filter_map(|(k, v)| to_json(v).map(|v| (k.clone(), v)))
                .collect(),
        ),
    })
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(text: &str) -> Result<Option<Value>, String> {
        let mut vars = Map::new();
        vars.insert("x".into(), json!(41));
        Jsonata::parse(text)?.eval(&json!({"input": {"a": [1, 2, 3]}}), &vars)
    }

    #[test]
    fn binds_states_and_variables_and_adds_aws_functions() {
        assert_eq!(eval("$x + 1"), Ok(Some(json!(42))));
        assert_eq!(eval("$sum($states.input.a)"), Ok(Some(json!(6))));
        assert_eq!(eval("$states.input.nope"), Ok(None));
        assert_eq!(
            eval("$partition([1,2,3,4,5], 2)"),
            Ok(Some(json!([[1, 2], [3, 4], [5]])))
        );
        assert_eq!(eval("$range(0, 10, 5)"), Ok(Some(json!([0, 5, 10]))));
        assert_eq!(
            eval("$parse('{\"k\": [true]}')"),
            Ok(Some(json!({"k": [true]})))
        );
        assert_eq!(
            eval("$hash('input data', 'SHA-1')"),
            Ok(Some(json!("aaff4a450a104cd177d28d18d74485e8cae074b7")))
        );
        assert_eq!(eval("$length($uuid())"), Ok(Some(json!(36))));
        assert_eq!(eval("$random(7) = $random(7)"), Ok(Some(json!(true))));
        assert!(eval("$eval('1')").is_err_and(|e| e.contains("$parse")));
        assert!(Jsonata::parse("1 +").is_err());
        let endless = eval("($f := function($x){ $f($x) + 1 }; $f(1))");
        assert!(endless.is_err(), "{endless:?}");
        assert_eq!(expression_text("{% 1 %}"), Some("1"));
        assert_eq!(expression_text(" {% 1 %} "), None);
    }
}
