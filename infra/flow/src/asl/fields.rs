//! Typed access to one state's JSON fields, recording a [`ValidationError`](super::ValidationError) for every
//! field that is missing, mistyped or malformed (paths, templates, Retry, Catch).

use super::model::*;
use super::parse::Errors;
use crate::jsonpath::JsonPath;
use crate::payload::{Expr, check_template};
use serde_json::{Map, Value};

/// One JSON object (a state, a retrier, a catcher) being read for state `state`.
pub(super) struct Fields<'a, 'e> {
    pub state: &'a str,
    pub obj: &'a Map<String, Value>,
    pub errs: &'e mut Errors,
    pub lang: QueryLanguage,
}

impl Fields<'_, '_> {
    pub(super) fn err<T>(&mut self, field: &str, msg: &str) -> Option<T> {
        self.errs.push(Some(self.state), field, msg)
    }
    pub(super) fn string(&mut self, f: &str) -> Option<String> {
        match self.obj.get(f)? {
            Value::String(s) => Some(s.clone()),
            v => self.err(f, &format!("must be a string, got {v}")),
        }
    }
    pub(super) fn uint(&mut self, f: &str) -> Option<u64> {
        let v = self.obj.get(f)?;
        match v.as_u64() {
            Some(n) => Some(n),
            None => self.err(f, &format!("must be a non-negative integer, got {v}")),
        }
    }
    pub(super) fn path(&mut self, f: &str, reference: bool) -> Option<JsonPath> {
        let s = self.string(f)?;
        let parsed = if reference {
            JsonPath::parse_reference(&s)
        } else {
            JsonPath::parse(&s)
        };
        parsed.map_err(|e| self.err::<()>(f, &e.to_string())).ok()
    }
    /// `InputPath`/`OutputPath`: absent → `$`, null → `None`.
    pub(super) fn io_path(&mut self, f: &str) -> Option<JsonPath> {
        match self.obj.get(f) {
            Some(Value::Null) => None,
            None => JsonPath::parse("$").ok(),
            Some(_) => self.path(f, false),
        }
    }
    pub(super) fn result_path(&mut self, f: &str) -> ResultPath {
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
    /// A payload template: `.$` keys in JSONPath states, `{% %}` strings in JSONata states.
    /// JSONPath templates must be objects or arrays (AWS accepts both).
    pub(super) fn template(&mut self, f: &str) -> Option<Value> {
        let v = self.obj.get(f)?.clone();
        match self.lang {
            QueryLanguage::JsonPath => {
                if !v.is_object() && !v.is_array() {
                    return self.err(f, "must be a JSON object or array");
                }
                for (key, problem) in check_template(&v) {
                    self.err::<()>(&format!("{f}.{key}"), &problem);
                }
            }
            QueryLanguage::Jsonata => {
                for (at, problem) in crate::jsonata::check_template(f, &v) {
                    self.err::<()>(&at, &problem);
                }
            }
        }
        Some(v)
    }

    /// `Assign`: an object of variable names (JSONPath keys may end in `.$`).
    pub(super) fn assign(&mut self, f: &str) -> Option<Value> {
        let v = self.obj.get(f)?;
        let Some(m) = v.as_object() else {
            return self.err(f, "must be a JSON object of variable names and values");
        };
        for k in m.keys() {
            let name = match self.lang {
                QueryLanguage::JsonPath => k.strip_suffix(".$").unwrap_or(k),
                QueryLanguage::Jsonata => k,
            };
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.err::<()>(
                    &format!("{f}.{k}"),
                    "is not a valid variable name (letters, digits and '_', not starting with a digit)",
                );
            } else if name == "states" {
                self.err::<()>(
                    &format!("{f}.{k}"),
                    "\"states\" is reserved by Step Functions",
                );
            }
        }
        self.template(f)
    }
    pub(super) fn error_list(&mut self, f: &str, v: Option<&Value>) -> Vec<String> {
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
    pub(super) fn retry(&mut self) -> Vec<Retrier> {
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
    pub(super) fn catch(&mut self) -> Vec<Catcher> {
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
            let own = match self.lang {
                QueryLanguage::JsonPath => "ResultPath",
                QueryLanguage::Jsonata => "Output",
            };
            for k in o.keys() {
                if !["ErrorEquals", own, "Next", "Comment", "Assign"].contains(&k.as_str()) {
                    self.err::<()>(&format!("{f}.{k}"), "unknown field");
                }
            }
            let error_equals = self.error_list(&format!("{f}.ErrorEquals"), o.get("ErrorEquals"));
            let mut sub = Fields {
                state: self.state,
                obj: o,
                errs: self.errs,
                lang: self.lang,
            };
            let result_path = sub.result_path("ResultPath");
            let assign = sub.assign("Assign");
            let output = sub.template("Output");
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
                assign,
                output,
            });
        }
        self.all_last("Catch", out.iter().map(|c| &c.error_equals));
        out
    }
    pub(super) fn all_last<'x>(
        &mut self,
        field: &str,
        lists: impl Iterator<Item = &'x Vec<String>>,
    ) {
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
    pub(super) fn io(&mut self) -> Io {
        let params = match self.lang {
            QueryLanguage::JsonPath => "Parameters",
            QueryLanguage::Jsonata => "Arguments",
        };
        Io {
            parameters: self.template(params),
            result_selector: self.template("ResultSelector"),
            result_path: self.result_path("ResultPath"),
            retry: self.retry(),
            catch: self.catch(),
        }
    }
    pub(super) fn source(&mut self, lit: &str, path: &str) -> Option<Source> {
        match (self.obj.contains_key(lit), self.obj.contains_key(path)) {
            (true, true) => self.err(path, &format!("cannot be combined with {lit:?}")),
            (false, true) => {
                let s = self.string(path)?;
                match Expr::parse(&s) {
                    Ok(e) => Some(Source::Path(e)),
                    Err(e) => self.err(path, &e),
                }
            }
            (true, false) if self.lang == QueryLanguage::Jsonata => {
                let s = self.string(lit)?;
                match crate::jsonata::expression_text(&s) {
                    Some(text) => match crate::jsonata::Jsonata::parse(text) {
                        Ok(e) => Some(Source::Jsonata(e)),
                        Err(e) => self.err(lit, &e),
                    },
                    None => Some(Source::Literal(s)),
                }
            }
            (true, false) => self.string(lit).map(Source::Literal),
            (false, false) => None,
        }
    }
}

impl Fields<'_, '_> {
    /// A JSONata expression field (`{% … %}`), or `None` with an error if it is not one.
    pub(super) fn expr(&mut self, f: &str) -> Option<crate::jsonata::Jsonata> {
        let s = self.string(f)?;
        match crate::jsonata::expression_text(&s) {
            Some(text) => crate::jsonata::Jsonata::parse(text)
                .map_err(|e| self.err::<()>(f, &e))
                .ok(),
            None => self.err(f, "must be a number or a JSONata expression \"{% … %}\""),
        }
    }

    /// A count field: a number, its `…Path` (JSONPath) or a `{% %}` string (JSONata).
    pub(super) fn count(&mut self, f: &str, path: &str) -> Option<Count> {
        match (self.obj.get(f), self.obj.get(path)) {
            (Some(_), Some(_)) => self.err(path, &format!("cannot be combined with {f:?}")),
            (Some(Value::Number(n)), None) => match n.as_f64().filter(|n| *n >= 0.0) {
                Some(n) => Some(Count::Fixed(n)),
                None => self.err(f, &format!("must be a non-negative number, got {n}")),
            },
            (Some(Value::String(_)), None) if self.lang == QueryLanguage::Jsonata => {
                self.expr(f).map(Count::Expr)
            }
            (Some(v), None) => self.err(f, &format!("must be a non-negative number, got {v}")),
            (None, Some(_)) => self.path(path, true).map(Count::Path),
            (None, None) => None,
        }
    }

    pub(super) fn io_without_parameters(&mut self) -> Io {
        Io {
            parameters: None,
            result_selector: self.template("ResultSelector"),
            result_path: self.result_path("ResultPath"),
            retry: self.retry(),
            catch: self.catch(),
        }
    }
}
