//! Reading a definition's JSON into the model, collecting every problem found.
//!
//! Each state type accepts only its own ASL fields, and only those of its query language
//! (JSONPath: InputPath, Parameters, ResultSelector, ResultPath, OutputPath and `…Path`
//! fields; JSONata: Arguments, Output, Items, Condition); an unknown field, a field of the
//! wrong JSON type, a bad path, template or JSONata expression, `Next` together with `End`
//! (or neither), or a bad Retry/Catch list is reported with the state's name and the field.
//! Map's own fields are read in `parse_map`.

use super::choice::parse_rule;
use super::fields::Fields;
use super::model::*;
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

/// Fields every state type accepts in both languages.
const COMMON: [&str; 4] = ["Type", "Comment", "Next", "QueryLanguage"];

/// Fields only JSONPath states accept, and only JSONata states accept.
const JSONPATH_ONLY: [&str; 17] = [
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "Result",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "ItemsPath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
    "Iterator",
];
const JSONATA_ONLY: [&str; 3] = ["Arguments", "Output", "Items"];

fn allowed(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "Task" => &[
            "End",
            "Resource",
            "Parameters",
            "Arguments",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
            "Assign",
            "Output",
            "InputPath",
            "OutputPath",
        ],
        "Pass" => &[
            "End",
            "Result",
            "Parameters",
            "ResultPath",
            "Assign",
            "Output",
            "InputPath",
            "OutputPath",
        ],
        "Choice" => &[
            "Choices",
            "Default",
            "Assign",
            "Output",
            "InputPath",
            "OutputPath",
        ],
        "Wait" => &[
            "End",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "Assign",
            "Output",
            "InputPath",
            "OutputPath",
        ],
        "Succeed" => &["Output", "InputPath", "OutputPath"],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        "Parallel" => &[
            "End",
            "Branches",
            "Parameters",
            "Arguments",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Assign",
            "Output",
            "InputPath",
            "OutputPath",
        ],
        "Map" => &[
            "End",
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "Parameters",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Assign",
            "Output",
            "InputPath",
            "OutputPath",
        ],
        _ => return None,
    })
}

fn language(v: Option<&Value>) -> Result<Option<QueryLanguage>, String> {
    match v {
        None => Ok(None),
        Some(Value::String(l)) if l == "JSONPath" => Ok(Some(QueryLanguage::JsonPath)),
        Some(Value::String(l)) if l == "JSONata" => Ok(Some(QueryLanguage::Jsonata)),
        Some(v) => Err(format!("must be \"JSONPath\" or \"JSONata\", got {v}")),
    }
}

/// The longest state name AWS accepts.
pub(crate) const MAX_NAME_LEN: usize = 80;

/// Parses a machine (or branch) object; `inherited` is the enclosing query language.
pub(crate) fn parse_machine(
    v: &Value,
    owner: Option<&str>,
    field: &str,
    inherited: QueryLanguage,
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
    let query_language = match language(obj.get("QueryLanguage")) {
        Ok(l) => l.unwrap_or(inherited),
        Err(e) => {
            errs.push::<()>(owner, &at("QueryLanguage"), &e);
            inherited
        }
    };
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
        if let Some(s) = parse_state(name, sv, query_language, errs) {
            states.insert(name.clone(), s);
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
        query_language,
    })
}

fn parse_state(
    name: &str,
    v: &Value,
    machine_lang: QueryLanguage,
    errs: &mut Errors,
) -> Option<State> {
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
    let lang = match language(obj.get("QueryLanguage")) {
        Ok(Some(QueryLanguage::JsonPath)) if machine_lang == QueryLanguage::Jsonata => {
            // AWS refuses a JSONPath state in a JSONata state machine (the other way round
            // is allowed): a JSONata machine's states are all JSONata.
            errs.push::<()>(
                Some(name),
                "QueryLanguage",
                "\"JSONPath\" is not allowed in a state machine whose QueryLanguage is \"JSONata\"",
            );
            machine_lang
        }
        Ok(l) => l.unwrap_or(machine_lang),
        Err(e) => {
            errs.push::<()>(Some(name), "QueryLanguage", &e);
            machine_lang
        }
    };
    for k in obj.keys() {
        let k = k.as_str();
        let terminal_no_next = matches!(ty, "Choice" | "Succeed" | "Fail") && k == "Next";
        if (!COMMON.contains(&k) && !extra.contains(&k)) || terminal_no_next {
            errs.push::<()>(Some(name), k, &format!("is not a field of a {ty} state"));
        } else if lang == QueryLanguage::Jsonata && JSONPATH_ONLY.contains(&k) {
            errs.push::<()>(
                Some(name),
                k,
                "is a JSONPath field; a JSONata state uses Arguments, Output and {% %} expressions",
            );
        } else if lang == QueryLanguage::JsonPath && JSONATA_ONLY.contains(&k) {
            errs.push::<()>(
                Some(name),
                k,
                "is a JSONata field; set \"QueryLanguage\": \"JSONata\" on the state or machine",
            );
        }
    }
    if name.chars().count() > MAX_NAME_LEN {
        errs.push::<()>(
            Some(name),
            "Type",
            &format!("the state name is longer than {MAX_NAME_LEN} characters"),
        );
    }
    let mut f = Fields {
        state: name,
        obj,
        errs,
        lang,
    };
    let input_path = f.io_path("InputPath");
    let output_path = f.io_path("OutputPath");
    let assign = f.assign("Assign");
    let output = f.template("Output");
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
                obj.get("TimeoutSeconds"),
                obj.contains_key("TimeoutSecondsPath"),
            ) {
                (Some(_), true) => f.err(
                    "TimeoutSecondsPath",
                    "cannot be combined with \"TimeoutSeconds\"",
                ),
                (Some(Value::String(_)), false) if lang == QueryLanguage::Jsonata => {
                    f.expr("TimeoutSeconds").map(Timeout::Expr)
                }
                (Some(_), false) => match f.uint("TimeoutSeconds") {
                    Some(0) => f.err("TimeoutSeconds", "must be a positive integer"),
                    n => n.map(Timeout::Seconds),
                },
                (None, true) => f.path("TimeoutSecondsPath", true).map(Timeout::Path),
                _ => None,
            };
            let heartbeat_seconds = match obj.get("HeartbeatSeconds") {
                Some(Value::String(_)) if lang == QueryLanguage::Jsonata => {
                    f.expr("HeartbeatSeconds");
                    None
                }
                _ => f.uint("HeartbeatSeconds"),
            };
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
                if let Some(rule) = choice_rule(&mut f, c, &format!("Choices[{i}]")) {
                    choices.push(rule);
                }
            }
            StateKind::Choice { choices, default }
        }
        "Wait" => StateKind::Wait(wait(&mut f)?),
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
                .filter_map(|(i, b)| {
                    parse_machine(b, Some(name), &format!("Branches[{i}]"), lang, f.errs)
                })
                .collect();
            if branches.len() != list.len() {
                return None;
            }
            StateKind::Parallel { branches, io }
        }
        _ => StateKind::Map(Box::new(super::parse_map::parse_map(&mut f)?)),
    };
    Some(State {
        name: name.to_string(),
        input_path,
        output_path,
        next: if end { None } else { next },
        kind,
        query_language: lang,
        assign,
        output,
    })
}

fn choice_rule(f: &mut Fields<'_, '_>, c: &Value, field: &str) -> Option<ChoiceRule> {
    let next = c.get("Next").and_then(Value::as_str).map(str::to_string);
    if next.is_none() {
        f.err::<()>(
            &format!("{field}.Next"),
            "is required at the top level of a choice rule",
        );
    }
    let obj = c.as_object()?;
    let mut sub = Fields {
        state: f.state,
        obj,
        errs: f.errs,
        lang: f.lang,
    };
    let assign = sub.assign("Assign");
    let rule = if f.lang == QueryLanguage::Jsonata {
        for k in obj.keys() {
            if !["Condition", "Next", "Comment", "Assign", "Output"].contains(&k.as_str()) {
                f.err::<()>(
                    &format!("{field}.{k}"),
                    "is not a field of a JSONata choice rule (Condition, Next, Assign, Output)",
                );
            }
        }
        let mut sub = Fields {
            state: f.state,
            obj,
            errs: f.errs,
            lang: f.lang,
        };
        let output = sub.template("Output");
        let cond = match obj.get("Condition") {
            Some(Value::String(_)) => sub.expr("Condition").map(super::choice::Rule::Condition),
            _ => sub.err("Condition", "is required: a JSONata expression \"{% … %}\""),
        };
        return Some(ChoiceRule {
            rule: cond?,
            next: next?,
            assign,
            output,
        });
    } else {
        parse_rule(c, f.state, field, true, f.errs)
    };
    Some(ChoiceRule {
        rule: rule?,
        next: next?,
        assign,
        output: None,
    })
}

fn wait(f: &mut Fields<'_, '_>) -> Option<WaitFor> {
    let obj = f.obj;
    let present: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    if present.len() != 1 {
        return f.err(
            "Seconds",
            &format!("exactly one of Seconds, Timestamp, SecondsPath, TimestampPath is required, found {present:?}"),
        );
    }
    let jsonata_string =
        |k: &str| f.lang == QueryLanguage::Jsonata && obj.get(k).is_some_and(Value::is_string);
    Some(match present[0] {
        "Seconds" if jsonata_string("Seconds") => WaitFor::SecondsExpr(f.expr("Seconds")?),
        "Seconds" => WaitFor::Seconds(f.uint("Seconds")?),
        "Timestamp" => {
            let s = f.string("Timestamp")?;
            if f.lang == QueryLanguage::Jsonata
                && let Some(text) = crate::jsonata::expression_text(&s)
            {
                return crate::jsonata::Jsonata::parse(text)
                    .map(WaitFor::TimestampExpr)
                    .map_err(|e| f.err::<()>("Timestamp", &e))
                    .ok();
            }
            match crate::clock::parse_timestamp(&s) {
                Some(t) => WaitFor::Timestamp(t),
                None => {
                    return f.err(
                        "Timestamp",
                        &format!("{s:?} is not an ISO-8601 extended offset date-time (e.g. 2016-03-14T01:59:00Z)"),
                    );
                }
            }
        }
        "SecondsPath" => WaitFor::SecondsPath(f.path("SecondsPath", true)?),
        _ => WaitFor::TimestampPath(f.path("TimestampPath", true)?),
    })
}
