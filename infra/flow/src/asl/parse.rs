//! Reading a definition's JSON into the model, collecting every problem found.
//!
//! Each state type accepts only its own ASL fields; an unknown field, a field of the wrong
//! JSON type, a bad path or template, `Next` together with `End` (or neither), or a bad
//! Retry/Catch list is reported with the state's name and the field.

use super::choice::parse_rule;
use super::fields::Fields;
use super::model::*;
use crate::jsonpath::JsonPath;
use serde_json::Value;
use std::collections::BTreeMap;

/// A problem in a definition: which state (if any), which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The state's name; `None` for top-level fields.
    pub state: Option<String>,
    /// The field, e.g. `Next` or `Retry[0].ErrorEquals`.
    pub field: String,
    /// What is wrong and, where useful, how to fix it.
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.state {
            write!(f, "state {s:?}: ")?;
        }
        write!(f, "field {:?}: {}", self.field, self.message)
    }
}

/// Collected problems.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub Vec<ValidationError>);

impl Errors {
    /// Records a problem; returns `None` so callers can `return errs.push(..)`.
    pub fn push<T>(&mut self, state: Option<&str>, field: &str, message: &str) -> Option<T> {
        self.0.push(ValidationError {
            state: state.map(str::to_string),
            field: field.to_string(),
            message: message.to_string(),
        });
        None
    }
}

const COMMON: [&str; 5] = ["Type", "Comment", "InputPath", "OutputPath", "Next"];

fn allowed(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "Task" => &[
            "End",
            "Resource",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
        ],
        "Pass" => &["End", "Result", "Parameters", "ResultPath"],
        "Choice" => &["Choices", "Default"],
        "Wait" => &[
            "End",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
        ],
        "Succeed" => &[],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        "Parallel" => &[
            "End",
            "Branches",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
        ],
        "Map" => &[
            "End",
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "MaxConcurrency",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
        ],
        _ => return None,
    })
}

/// Parses a machine (or branch) object.
pub(crate) fn parse_machine(
    v: &Value,
    owner: Option<&str>,
    field: &str,
    errs: &mut Errors,
) -> Option<StateMachine> {
    let Some(obj) = v.as_object() else {
        return errs.push(
            owner,
            field,
            "must be a JSON object with StartAt and States",
        );
    };
    let at = |f: &str| {
        if field.is_empty() {
            f.to_string()
        } else {
            format!("{field}.{f}")
        }
    };
    for k in obj.keys() {
        if ![
            "StartAt",
            "States",
            "Comment",
            "TimeoutSeconds",
            "Version",
            "ProcessorConfig",
            "QueryLanguage",
        ]
        .contains(&k.as_str())
        {
            errs.push::<()>(owner, &at(k), "unknown field");
        }
    }
    let start_at = match obj.get("StartAt") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            return errs.push(
                owner,
                &at("StartAt"),
                &format!("must be a state name, got {v}"),
            );
        }
        None => return errs.push(owner, &at("StartAt"), "is required: name the first state"),
    };
    let Some(states_obj) = obj
        .get("States")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    else {
        return errs.push(
            owner,
            &at("States"),
            "is required and must be a non-empty object of states",
        );
    };
    let mut states = BTreeMap::new();
    for (name, sv) in states_obj {
        if let Some(s) = parse_state(name, sv, errs) {
            states.insert(name.clone(), s);
        }
    }
    match obj.get("QueryLanguage") {
        None => {}
        Some(Value::String(l)) if l == "JSONPath" => {}
        Some(v) => {
            errs.push::<()>(
                owner,
                &at("QueryLanguage"),
                &format!("{v} is not supported; only \"JSONPath\" definitions run here"),
            );
        }
    }
    let timeout_seconds = match obj.get("TimeoutSeconds") {
        None => None,
        Some(v) => match v.as_u64().filter(|n| *n > 0) {
            Some(n) => Some(n),
            None => errs.push(
                owner,
                &at("TimeoutSeconds"),
                &format!("must be a positive integer, got {v}"),
            ),
        },
    };
    let comment = obj
        .get("Comment")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(StateMachine {
        comment,
        start_at,
        states,
        timeout_seconds,
    })
}

fn parse_state(name: &str, v: &Value, errs: &mut Errors) -> Option<State> {
    let Some(obj) = v.as_object() else {
        return errs.push(Some(name), "Type", "a state must be a JSON object");
    };
    let ty = match obj.get("Type").and_then(Value::as_str) {
        Some(t) => t,
        None => {
            return errs.push(
                Some(name),
                "Type",
                "is required (Task, Pass, Choice, Wait, Succeed, Fail, Parallel or Map)",
            );
        }
    };
    let Some(extra) = allowed(ty) else {
        return errs.push(Some(name), "Type", &format!("unknown state type {ty:?}"));
    };
    for k in obj.keys() {
        let terminal_no_next = matches!(ty, "Choice" | "Succeed" | "Fail") && k == "Next";
        let io_less = ty == "Fail" && (k == "InputPath" || k == "OutputPath");
        if (!COMMON.contains(&k.as_str()) && !extra.contains(&k.as_str()))
            || terminal_no_next
            || io_less
        {
            errs.push::<()>(Some(name), k, &format!("is not a field of a {ty} state"));
        }
    }
    let mut f = Fields {
        state: name,
        obj,
        errs,
    };
    let input_path = f.io_path("InputPath");
    let output_path = f.io_path("OutputPath");
    let next = f.string("Next");
    let end = match obj.get("End") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => f
            .err("End", &format!("must be a boolean, got {v}"))
            .unwrap_or(false),
    };
    if !matches!(ty, "Choice" | "Succeed" | "Fail") {
        match (next.is_some(), end) {
            (true, true) => {
                f.err::<()>("Next", "cannot be combined with \"End\": true");
            }
            (false, false) => {
                f.err::<()>("Next", "is required unless \"End\": true");
            }
            _ => {}
        }
    }
    let kind = match ty {
        "Task" => {
            let resource = match f.string("Resource") {
                Some(r) if r.starts_with("arn:") => r,
                Some(r) => return f.err("Resource", &format!("{r:?} is not an ARN")),
                None => return f.err("Resource", "is required"),
            };
            let timeout = match (
                obj.contains_key("TimeoutSeconds"),
                obj.contains_key("TimeoutSecondsPath"),
            ) {
                (true, true) => f.err(
                    "TimeoutSecondsPath",
                    "cannot be combined with \"TimeoutSeconds\"",
                ),
                (true, false) => match f.uint("TimeoutSeconds") {
                    Some(0) => f.err("TimeoutSeconds", "must be a positive integer"),
                    n => n.map(Timeout::Seconds),
                },
                (false, true) => f.path("TimeoutSecondsPath", true).map(Timeout::Path),
                _ => None,
            };
            let heartbeat_seconds = f.uint("HeartbeatSeconds");
            StateKind::Task {
                resource,
                io: f.io(),
                timeout,
                heartbeat_seconds,
            }
        }
        "Pass" => StateKind::Pass {
            result: obj.get("Result").cloned(),
            parameters: f.template("Parameters"),
            result_path: f.result_path("ResultPath"),
        },
        "Choice" => {
            let default = f.string("Default");
            let Some(list) = obj
                .get("Choices")
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
            else {
                return f.err("Choices", "is required and must be a non-empty array");
            };
            let mut choices = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let field = format!("Choices[{i}]");
                let next = c.get("Next").and_then(Value::as_str).map(str::to_string);
                if next.is_none() {
                    f.err::<()>(
                        &format!("{field}.Next"),
                        "is required at the top level of a choice rule",
                    );
                }
                if let (Some(rule), Some(next)) = (parse_rule(c, name, &field, true, f.errs), next)
                {
                    choices.push((rule, next));
                }
            }
            StateKind::Choice { choices, default }
        }
        "Wait" => {
            let present: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
                .into_iter()
                .filter(|k| obj.contains_key(*k))
                .collect();
            if present.len() != 1 {
                return f.err("Seconds", &format!("exactly one of Seconds, Timestamp, SecondsPath, TimestampPath is required, found {present:?}"));
            }
            StateKind::Wait(match present[0] {
                "Seconds" => WaitFor::Seconds(f.uint("Seconds")?),
                "Timestamp" => {
                    let s = f.string("Timestamp")?;
                    match chrono::DateTime::parse_from_rfc3339(&s) {
                        Ok(t) => WaitFor::Timestamp(t.timestamp_millis()),
                        Err(e) => {
                            return f.err(
                                "Timestamp",
                                &format!("{s:?} is not an RFC 3339 timestamp: {e}"),
                            );
                        }
                    }
                }
                "SecondsPath" => WaitFor::SecondsPath(f.path("SecondsPath", true)?),
                _ => WaitFor::TimestampPath(f.path("TimestampPath", true)?),
            })
        }
        "Succeed" => StateKind::Succeed,
        "Fail" => StateKind::Fail {
            error: f.source("Error", "ErrorPath"),
            cause: f.source("Cause", "CausePath"),
        },
        "Parallel" => {
            let Some(list) = obj
                .get("Branches")
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
            else {
                return f.err(
                    "Branches",
                    "is required and must be a non-empty array of state machines",
                );
            };
            let io = f.io();
            let branches: Vec<StateMachine> = list
                .iter()
                .enumerate()
                .filter_map(|(i, b)| parse_machine(b, Some(name), &format!("Branches[{i}]"), errs))
                .collect();
            if branches.len() != list.len() {
                return None;
            }
            StateKind::Parallel { branches, io }
        }
        _ => {
            let (pf, pv) = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
                (Some(p), None) => ("ItemProcessor", p),
                (None, Some(p)) => ("Iterator", p),
                (Some(_), Some(_)) => {
                    return f.err("Iterator", "cannot be combined with \"ItemProcessor\"");
                }
                (None, None) => {
                    return f.err("ItemProcessor", "is required (or the legacy \"Iterator\")");
                }
            };
            if obj.contains_key("ItemSelector") && obj.contains_key("Parameters") {
                return f.err("Parameters", "cannot be combined with \"ItemSelector\"");
            }
            let items_path = match obj.get("ItemsPath") {
                None => JsonPath::parse("$").ok()?,
                Some(_) => f.path("ItemsPath", true)?,
            };
            let item_selector = f
                .template("ItemSelector")
                .or_else(|| f.template("Parameters"));
            let max_concurrency = f.uint("MaxConcurrency").unwrap_or(0);
            let io = Io {
                parameters: None,
                ..f.io_without_parameters()
            };
            let processor = parse_machine(pv, Some(name), pf, errs)?;
            StateKind::Map {
                processor: Box::new(processor),
                items_path,
                item_selector,
                max_concurrency,
                io,
            }
        }
    };
    Some(State {
        name: name.to_string(),
        input_path,
        output_path,
        next: if end { None } else { next },
        kind,
    })
}
