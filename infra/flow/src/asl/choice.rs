//! Choice rules: comparisons, `And`/`Or`/`Not`, type tests and `StringMatches`.
//!
//! A comparison whose operand types do not match the operator's kind is false (as on AWS);
//! a `Variable` (or `*Path` operand) that selects nothing is a `States.Runtime` error except
//! under `IsPresent`, which is then false.

use super::parse::Errors;
use crate::jsonpath::{Env, JsonPath};
use crate::registry::TaskError;
use serde_json::Value;

/// The value kind a comparison works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `String…`.
    String,
    /// `Numeric…`.
    Numeric,
    /// `Boolean…`.
    Boolean,
    /// `Timestamp…` (RFC 3339).
    Timestamp,
}

/// The relation a comparison tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rel {
    /// `…Equals`.
    Eq,
    /// `…LessThan`.
    Lt,
    /// `…GreaterThan`.
    Gt,
    /// `…LessThanEquals`.
    Le,
    /// `…GreaterThanEquals`.
    Ge,
}

/// A test on the `Variable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A comparison.
    Compare(Kind, Rel),
    /// `StringMatches` (`*` wildcard, `\*` and `\\` escapes).
    Matches,
    /// `IsNull`.
    IsNull,
    /// `IsPresent`.
    IsPresent,
    /// `IsNumeric`.
    IsNumeric,
    /// `IsString`.
    IsString,
    /// `IsBoolean`.
    IsBoolean,
    /// `IsTimestamp`.
    IsTimestamp,
}

/// The right-hand side of a test.
#[derive(Debug, Clone)]
pub enum Operand {
    /// A literal.
    Value(Value),
    /// A `*Path` operand.
    Path(JsonPath),
}

/// A Choice rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// `And`.
    And(Vec<Rule>),
    /// `Or`.
    Or(Vec<Rule>),
    /// `Not`.
    Not(Box<Rule>),
    /// `Condition` (JSONata): the expression must yield a boolean.
    Condition(crate::jsonata::Jsonata),
    /// `Variable` + operator + operand.
    Test {
        /// `Variable`.
        variable: JsonPath,
        /// The operator.
        op: Op,
        /// The operand.
        operand: Operand,
    },
}

const KINDS: [(&str, Kind); 4] = [
    ("String", Kind::String),
    ("Numeric", Kind::Numeric),
    ("Boolean", Kind::Boolean),
    ("Timestamp", Kind::Timestamp),
];
const RELS: [(&str, Rel); 5] = [
    ("Equals", Rel::Eq),
    ("LessThanEquals", Rel::Le),
    ("GreaterThanEquals", Rel::Ge),
    ("LessThan", Rel::Lt),
    ("GreaterThan", Rel::Gt),
];

fn op_of(name: &str) -> Option<(Op, bool)> {
    let simple = match name {
        "StringMatches" => Some(Op::Matches),
        "IsNull" => Some(Op::IsNull),
        "IsPresent" => Some(Op::IsPresent),
        "IsNumeric" => Some(Op::IsNumeric),
        "IsString" => Some(Op::IsString),
        "IsBoolean" => Some(Op::IsBoolean),
        "IsTimestamp" => Some(Op::IsTimestamp),
        _ => None,
    };
    if let Some(op) = simple {
        return Some((op, false));
    }
    let (base, is_path) = match name.strip_suffix("Path") {
        Some(b) => (b, true),
        None => (name, false),
    };
    for (kp, kind) in KINDS {
        if let Some(rel_name) = base.strip_prefix(kp) {
            let rel = RELS.iter().find(|(r, _)| *r == rel_name).map(|(_, r)| *r)?;
            if kind == Kind::Boolean && rel != Rel::Eq {
                return None;
            }
            return Some((Op::Compare(kind, rel), is_path));
        }
    }
    None
}

/// Parses a rule; `field` names it in errors (e.g. `Choices[0]`).
pub(super) fn parse_rule(
    v: &Value,
    state: &str,
    field: &str,
    top: bool,
    errs: &mut Errors,
) -> Option<Rule> {
    let Some(obj) = v.as_object() else {
        return errs.push(Some(state), field, "a choice rule must be an object");
    };
    for (key, combinator) in [("And", 0), ("Or", 1), ("Not", 2)] {
        let Some(inner) = obj.get(key) else { continue };
        let f = format!("{field}.{key}");
        if combinator == 2 {
            return parse_rule(inner, state, &f, false, errs).map(|r| Rule::Not(Box::new(r)));
        }
        let Some(list) = inner.as_array().filter(|l| !l.is_empty()) else {
            return errs.push(Some(state), &f, "must be a non-empty array of rules");
        };
        let rules: Vec<Rule> = list
            .iter()
            .enumerate()
            .filter_map(|(i, r)| parse_rule(r, state, &format!("{f}[{i}]"), false, errs))
            .collect();
        if rules.len() != list.len() {
            return None;
        }
        return Some(if combinator == 0 {
            Rule::And(rules)
        } else {
            Rule::Or(rules)
        });
    }
    let variable = match obj
        .get("Variable")
        .map(|v| v.as_str().map(JsonPath::parse_reference))
    {
        Some(Some(Ok(p))) => p,
        Some(Some(Err(e))) => {
            return errs.push(Some(state), &format!("{field}.Variable"), &e.to_string());
        }
        Some(None) => {
            return errs.push(
                Some(state),
                &format!("{field}.Variable"),
                "must be a string path",
            );
        }
        None => return errs.push(Some(state), &format!("{field}.Variable"), "is required"),
    };
    let allowed =
        |k: &str| k == "Variable" || k == "Comment" || (top && (k == "Next" || k == "Assign"));
    let ops: Vec<(&String, &Value)> = obj.iter().filter(|(k, _)| !allowed(k)).collect();
    let [(name, operand)] = ops.as_slice() else {
        let names: Vec<&str> = ops.iter().map(|(k, _)| k.as_str()).collect();
        return errs.push(
            Some(state),
            field,
            &format!("needs exactly one comparison operator, found {names:?}"),
        );
    };
    let f = format!("{field}.{name}");
    let Some((op, is_path)) = op_of(name) else {
        return errs.push(Some(state), &f, "unknown comparison operator");
    };
    let operand = if is_path {
        match operand.as_str().map(JsonPath::parse_reference) {
            Some(Ok(p)) => Operand::Path(p),
            Some(Err(e)) => return errs.push(Some(state), &f, &e.to_string()),
            None => return errs.push(Some(state), &f, "must be a string path"),
        }
    } else {
        let ok = match op {
            Op::Compare(Kind::String, _) | Op::Matches => operand.is_string(),
            Op::Compare(Kind::Numeric, _) => operand.is_number(),
            Op::Compare(Kind::Boolean, _) => operand.is_boolean(),
            Op::Compare(Kind::Timestamp, _) => operand.as_str().and_then(timestamp).is_some(),
            _ => operand.is_boolean(),
        };
        if !ok {
            return errs.push(
                Some(state),
                &f,
                &format!("operand {operand} has the wrong type for this operator"),
            );
        }
        Operand::Value((*operand).clone())
    };
    Some(Rule::Test {
        variable,
        op,
        operand,
    })
}

fn timestamp(s: &str) -> Option<i64> {
    crate::clock::parse_timestamp(s)
}

fn ordering_holds(rel: Rel, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    matches!(
        (rel, o),
        (Rel::Eq, Equal)
            | (Rel::Lt, Less)
            | (Rel::Gt, Greater)
            | (Rel::Le, Less | Equal)
            | (Rel::Ge, Greater | Equal)
    )
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literals.
pub fn string_matches(text: &str, pattern: &str) -> bool {
    let mut toks: Vec<Option<char>> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => toks.push(Some(chars.next().unwrap_or('\\'))),
            '*' => toks.push(None),
            c => toks.push(Some(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // dp[j]: pattern prefix of length j matches the text prefix processed so far.
    let mut dp = vec![false; toks.len() + 1];
    dp[0] = true;
    for j in 1..=toks.len() {
        dp[j] = dp[j - 1] && toks[j - 1].is_none();
    }
    for &ch in &text {
        let mut next = vec![false; toks.len() + 1];
        for j in 1..=toks.len() {
            next[j] = match toks[j - 1] {
                None => next[j - 1] || dp[j],
                Some(p) => dp[j - 1] && p == ch,
            };
        }
        dp = next;
    }
    dp[toks.len()]
}

impl Rule {
    /// Evaluates the rule.
    ///
    /// # Errors
    /// `States.Runtime` when a path selects nothing (except under `IsPresent`).
    pub fn eval(&self, data: &Value, ctx: &Value) -> Result<bool, TaskError> {
        self.eval_in(data, &Env::context_only(ctx))
    }

    /// Evaluates a JSONPath rule with variables in scope. A `Condition` is evaluated by the
    /// executor, which knows `$states`; here it is an error.
    ///
    /// # Errors
    /// As [`Rule::eval`].
    pub fn eval_in(&self, data: &Value, ctx: &Env<'_>) -> Result<bool, TaskError> {
        match self {
            Rule::Condition(e) => Err(TaskError::new(
                "States.Runtime",
                format!("the Condition {e} needs a JSONata state"),
            )),
            Rule::And(rs) => {
                for r in rs {
                    if !r.eval_in(data, ctx)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rs) => {
                for r in rs {
                    if r.eval_in(data, ctx)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(r) => Ok(!r.eval_in(data, ctx)?),
            Rule::Test {
                variable,
                op,
                operand,
            } => {
                let runtime = |e: crate::jsonpath::PathError| {
                    TaskError::new(
                        "States.Runtime",
                        format!("Invalid path in a Choice rule: {e}"),
                    )
                };
                let var = match variable.select_in(data, ctx) {
                    Ok(v) => Some(v),
                    Err(_) if *op == Op::IsPresent => None,
                    Err(e) => return Err(runtime(e)),
                };
                let rhs = match operand {
                    Operand::Value(v) => v.clone(),
                    Operand::Path(p) => p.select_in(data, ctx).map_err(runtime)?,
                };
                let Some(var) = var else {
                    return Ok(rhs == Value::Bool(false));
                };
                let test = |b: bool| rhs == Value::Bool(b);
                Ok(match op {
                    Op::IsPresent => test(true),
                    Op::IsNull => test(var.is_null()),
                    Op::IsNumeric => test(var.is_number()),
                    Op::IsString => test(var.is_string()),
                    Op::IsBoolean => test(var.is_boolean()),
                    Op::IsTimestamp => test(var.as_str().and_then(timestamp).is_some()),
                    Op::Matches => match (var.as_str(), rhs.as_str()) {
                        (Some(t), Some(p)) => string_matches(t, p),
                        _ => false,
                    },
                    Op::Compare(kind, rel) => {
                        let ord = match kind {
                            Kind::String => var.as_str().zip(rhs.as_str()).map(|(a, b)| a.cmp(b)),
                            Kind::Numeric => var
                                .as_f64()
                                .zip(rhs.as_f64())
                                .and_then(|(a, b)| a.partial_cmp(&b)),
                            Kind::Boolean => {
                                var.as_bool().zip(rhs.as_bool()).map(|(a, b)| a.cmp(&b))
                            }
                            Kind::Timestamp => var
                                .as_str()
                                .and_then(timestamp)
                                .zip(rhs.as_str().and_then(timestamp))
                                .map(|(a, b)| a.cmp(&b)),
                        };
                        ord.is_some_and(|o| ordering_holds(*rel, o))
                    }
                })
            }
        }
    }
}
