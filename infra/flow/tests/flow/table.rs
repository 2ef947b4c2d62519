//! Table-driven conformance checks: each row is one definition, one input and what AWS
//! answers (an output, an execution error with words of its cause, or an invalid
//! definition). Expected answers come from AWS's documentation and from public suites that
//! record real AWS executions; each table names its source.

use serde_json::{Value, json};
use shardline_flow::{
    ExecutionStatus, Executor, HandlerRegistry, StateMachine, TaskError, VirtualClock, handler_fn,
};
use std::sync::Arc;

/// What AWS answers for a row.
pub enum Expect {
    /// The execution succeeds with this output.
    Output(Value),
    /// The execution fails with this error; the cause contains the text.
    Error(&'static str, &'static str),
    /// The definition is refused; one problem contains the text.
    Invalid(&'static str),
}

/// One row.
pub struct Row {
    pub name: &'static str,
    pub definition: Value,
    pub input: Value,
    pub expect: Expect,
}

/// A one-state machine around `state` (named `S`).
pub fn one(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

/// Handlers for the rows: `echo` returns its input, `fail` throws `Boom`.
pub fn registry() -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.register_lambda(
        "echo",
        handler_fn(|input: Value, _| async move { Ok(input) }),
    );
    r.register_lambda(
        "fail",
        handler_fn(|_, _| async { Err(TaskError::new("Boom", "it failed")) }),
    );
    r
}

pub const ECHO: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";
pub const FAIL: &str = "arn:aws:lambda:us-east-1:123456789012:function:fail";

/// Runs one definition: `Ok(output)`, `Err((error, cause))`, or `Err(("invalid", problems))`.
pub async fn outcome(def: &Value, input: Value) -> Result<Value, (String, String)> {
    let machine = StateMachine::from_value(def).map_err(|e| {
        let all: Vec<String> = e.iter().map(ToString::to_string).collect();
        ("invalid".to_string(), all.join("\n"))
    })?;
    let exec = Executor::new(
        machine,
        Arc::new(registry()),
        Arc::new(VirtualClock::new(1_700_000_000_000)),
    )
    .run(input, Some("row".into()))
    .await;
    match exec.status {
        ExecutionStatus::Succeeded => Ok(exec.output.unwrap_or_default()),
        _ => Err((
            exec.error.unwrap_or_default(),
            exec.cause.unwrap_or_default(),
        )),
    }
}

/// Runs every row and reports all mismatches at once.
pub async fn check(rows: Vec<Row>) {
    let mut wrong = Vec::new();
    for row in rows {
        let got = outcome(&row.definition, row.input.clone()).await;
        let ok = match (&row.expect, &got) {
            (Expect::Output(want), Ok(out)) => want == out,
            (Expect::Error(e, c), Err((ge, gc))) => ge == e && gc.contains(c),
            (Expect::Invalid(m), Err((ge, gc))) => ge == "invalid" && gc.contains(m),
            _ => false,
        };
        if !ok {
            let want = match &row.expect {
                Expect::Output(v) => format!("output {v}"),
                Expect::Error(e, c) => format!("error {e} with cause containing {c:?}"),
                Expect::Invalid(m) => format!("invalid definition mentioning {m:?}"),
            };
            wrong.push(format!("{}: want {want}, got {got:?}", row.name));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
