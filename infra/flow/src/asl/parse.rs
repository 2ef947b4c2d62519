//! Reading a definition's JSON into the model, collecting every problem found.
//!
//! Each state type accepts only its own ASL fields; an unknown field, a field of the wrong
//! JSON type, a bad path or template, `Next` together with `End` (or neither), or a bad
//! Retry/Catch list is reported with the state's name and the field.

use super::choice::parse_rule;
use super::model::*;
use crate::jsonpath::JsonPath;
use crate::payload::{Expr, check_template};
use serde_json::{Map, Value};
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

struct Fields<'a, 'e> {
    state: &'a str,
    obj: &'a Map<String, Value>,
    errs: &'e mut Errors,
}

impl Fields<'_, '_> {
    fn err<T>(&mut self, field: &str, msg: &str) -> Option<T> {
        self.errs.push(Some(self.state), field, msg)
    }
    fn string(&mut self, f: &str) -> Option<String> {
        match self.obj.get(f)? {
            Value::String(s) => Some(s.clone()),
            v => self.err(f, &format!("must be a string, got {v}")),
        }
    }
    fn uint(&mut self, f: &str) -> Option<u64> {
        let v = self.obj.get(f)?;
        match v.as_u64() {
            Some(n) => Some(n),
            None => self.err(f, &format!("must be a non-negative integer, got {v}")),
        }
    }
    fn path(&mut self, f: &str, reference: bool) -> Option<JsonPath> {
        let s = self.string(f)?;
        let parsed = if reference {
            JsonPath::parse_reference(&s)
        } else {
            JsonPath::parse(&s)
        };
        parsed.map_err(|e| self.err::<()>(f, &e.to_string())).ok()
    }
    /// `InputPath`/`OutputPath`: absent → `$`, null → `None`.
    fn io_path(&mut self, f: &str) -> Option<JsonPath> {
        match self.obj.get(f) {
            Some(Value::Null) => None,
            None => JsonPath::parse("$").ok(),
            Some(_) => self.path(f, false),
        }
    }
    fn result_path(&mut self, f: &str) -> ResultPath {
        match self.obj.get(f) {
            Some(Value::Null) => ResultPath::Discard,
            None => JsonPath::parse("$")
                .map(ResultPath::At)
                .unwrap_or(ResultPath::Discard),
            Some(_) => self
                .path(f, true)
                .map(ResultPath::At)
                .unwrap_or(ResultPath::Discard),
        }
    }
    fn template(&mut self, f: &str) -> Option<Value> {
        let v = self.obj.get(f)?.clone();
        if !v.is_object() {
            return self.err(f, "must be a JSON object");
        }
        for (key, problem) in check_template(&v) {
            self.err::<()>(&format!("{f}.{key}"), &problem);
        }
        Some(v)
    }
    fn error_list(&mut self, f: &str, v: Option<&Value>) -> Vec<String> {
        let list: Option<Vec<String>> = v
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
            .filter(|l: &Vec<String>| {
                !l.is_empty() && Some(l.len()) == v.and_then(Value::as_array).map(Vec::len)
            });
        match list {
            Some(l) => {
                if l.iter().any(|e| e == "States.ALL") && l.len() > 1 {
                    self.err::<()>(f, "\"States.ALL\" must appear alone in ErrorEquals");
                }
                l
            }
            None => self
                .err(f, "must be a non-empty array of error names")
                .unwrap_or_default(),
        }
    }
    fn retry(&mut self) -> Vec<Retrier> {
        let Some(list) = self.obj.get("Retry") else {
            return Vec::new();
        };
        let Some(list) = list.as_array() else {
            return self.err("Retry", "must be an array").unwrap_or_default();
        };
        let mut out = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let f = format!("Retry[{i}]");
            let Some(o) = r.as_object() else {
                self.err::<()>(&f, "must be an object");
                continue;
            };
            for k in o.keys() {
                if ![
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ]
                .contains(&k.as_str())
                {
                    self.err::<()>(&format!("{f}.{k}"), "unknown field");
                }
            }
            let error_equals = self.error_list(&format!("{f}.ErrorEquals"), o.get("ErrorEquals"));
            let num =
                |k: &str, min: f64| o.get(k).map(|v| v.as_f64().filter(|n| *n >= min).ok_or(v));
            let mut bad = |k: &str, v: &Value, want: &str| {
                self.err::<()>(&format!("{f}.{k}"), &format!("must be {want}, got {v}"))
            };
            let mut int_field = |k: &str, min: u64, default: u64| match o.get(k) {
                None => default,
                Some(v) => match v.as_u64().filter(|n| *n >= min) {
                    Some(n) => n,
                    None => {
                        bad(k, v, &format!("an integer >= {min}"));
                        default
                    }
                },
            };
            let interval_seconds = int_field("IntervalSeconds", 1, 1);
            let max_attempts = int_field("MaxAttempts", 0, 3);
            let max_delay_seconds = o
                .contains_key("MaxDelaySeconds")
                .then(|| int_field("MaxDelaySeconds", 1, 1));
            let backoff_rate = match num("BackoffRate", 1.0) {
                None => 2.0,
                Some(Ok(n)) => n,
                Some(Err(v)) => {
                    self.err::<()>(
                        &format!("{f}.BackoffRate"),
                        &format!("must be a number >= 1.0, got {v}"),
                    );
                    2.0
                }
            };
            let full_jitter = match o.get("JitterStrategy").map(|v| v.as_str()) {
                None | Some(Some("NONE")) => false,
                Some(Some("FULL")) => true,
                _ => {
                    self.err::<()>(
                        &format!("{f}.JitterStrategy"),
                        "must be \"FULL\" or \"NONE\"",
                    );
                    false
                }
            };
            out.push(Retrier {
                error_equals,
                interval_seconds,
                max_attempts,
                backoff_rate,
                max_delay_seconds,
                full_jitter,
            });
        }
        self.all_last("Retry", out.iter().map(|r| &r.error_equals));
        out
    }
    fn catch(&mut self) -> Vec<Catcher> {
        let Some(list) = self.obj.get("Catch") else {
            return Vec::new();
        };
        let Some(list) = list.as_array() else {
            return self.err("Catch", "must be an array").unwrap_or_default();
        };
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let f = format!("Catch[{i}]");
            let Some(o) = c.as_object() else {
                self.err::<()>(&f, "must be an object");
                continue;
            };
            for k in o.keys() {
                if !["ErrorEquals", "ResultPath", "Next", "Comment"].contains(&k.as_str()) {
                    self.err::<()>(&format!("{f}.{k}"), "unknown field");
                }
            }
            let error_equals = self.error_list(&format!("{f}.ErrorEquals"), o.get("ErrorEquals"));
            let mut sub = Fields {
                state: self.state,
                obj: o,
                errs: self.errs,
            };
            let result_path = sub.result_path("ResultPath");
            let next = match o.get("Next") {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    self.err::<()>(&format!("{f}.Next"), "is required and must be a state name");
                    String::new()
                }
            };
            out.push(Catcher {
                error_equals,
                result_path,
                next,
            });
        }
        self.all_last("Catch", out.iter().map(|c| &c.error_equals));
        out
    }
    fn all_last<'x>(&mut self, field: &str, lists: impl Iterator<Item = &'x Vec<String>>) {
        let lists: Vec<_> = lists.collect();
        for (i, l) in lists.iter().enumerate() {
            if l.iter().any(|e| e == "States.ALL") && i + 1 != lists.len() {
                self.err::<()>(
                    &format!("{field}[{i}].ErrorEquals"),
                    "a \"States.ALL\" entry must be the last one",
                );
            }
        }
    }
    fn io(&mut self) -> Io {
        Io {
            parameters: self.template("Parameters"),
            result_selector: self.template("ResultSelector"),
            result_path: self.result_path("ResultPath"),
            retry: self.retry(),
            catch: self.catch(),
        }
    }
    fn source(&mut self, lit: &str, path: &str) -> Option<Source> {
        match (self.obj.contains_key(lit), self.obj.contains_key(path)) {
            (true, true) => self.err(path, &format!("cannot be combined with {lit:?}")),
            (true, false) => self.string(lit).map(Source::Literal),
            (false, true) => {
                let s = self.string(path)?;
                match Expr::parse(&s) {
                    Ok(e) => Some(Source::Path(e)),
                    Err(e) => self.err(path, &e),
                }
            }
            (false, false) => None,
        }
    }
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
    let timeout_seconds = obj.get("TimeoutSeconds").and_then(Value::as_u64);
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
                (true, false) => f
                    .uint("TimeoutSeconds")
                    .filter(|n| *n > 0)
                    .map(Timeout::Seconds),
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

impl Fields<'_, '_> {
    fn io_without_parameters(&mut self) -> Io {
        Io {
            parameters: None,
            result_selector: self.template("ResultSelector"),
            result_path: self.result_path("ResultPath"),
            retry: self.retry(),
            catch: self.catch(),
        }
    }
}
