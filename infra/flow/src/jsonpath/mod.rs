//! JSONPath as Step Functions uses it.
//!
//! A path starts with `$` (the state's data), `$$` (the context object) or `$name` (the
//! workflow variable `name`) and continues with `.name`, `['name']`, `[index]`, `[-index]`,
//! `[start:end]`, `[*]`, `.*`, `..name`, filter (`[?(@.status == 0)]`) or script index
//! (`[(@.length-1)]`) steps (see [`filter`]). A *reference path* (required by `ResultPath`,
//! Choice `Variable`, `*Path` fields) may only name fields and non-negative indices, so it
//! identifies at most one node. A path with a wildcard, slice, filter or `..` returns every
//! match as an array (in document order).
//!
//! Layout: this module (parsing, selection, `ResultPath` writes) and [`filter`] (filter
//! expressions and script indexes).
//!
//! Invariants: [`JsonPath::parse`] accepts exactly the grammar above; evaluation never
//! panics and reports a missing node (or an undefined variable) as [`PathError::NoMatch`].

pub mod filter;

use serde_json::{Map, Value};

/// What a path can reach besides the state's data: the context object and the variables.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The context object (`$$`).
    pub context: &'a Value,
    /// The workflow variables in scope (`$name`).
    pub vars: &'a Map<String, Value>,
}

static NO_VARS: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Env<'a> {
    /// An environment with a context object and no variables.
    pub fn context_only(context: &'a Value) -> Self {
        Env {
            context,
            vars: &NO_VARS,
        }
    }
}

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.name` or `['name']`.
    Field(String),
    /// `[3]`.
    Index(usize),
    /// `[-1]`: counted from the end.
    FromEnd(usize),
    /// `[start:end]` with optional, possibly negative bounds; selects several nodes.
    Slice(Option<i64>, Option<i64>),
    /// `..name`: every descendant field called `name`; selects several nodes.
    Descendant(String),
    /// `[*]` or `.*`.
    Wildcard,
    /// `[?( … )]`: the elements (or the object) passing a filter; selects several nodes.
    Filter(Box<filter::Filter>),
    /// `[(@.length-N)]`: the element at the array's length plus this offset.
    Script(i64),
}

/// Where a path is rooted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state's data.
    Data,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Variable(String),
}

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    /// The root the path starts from.
    pub root: Root,
    /// The steps after the root.
    pub steps: Vec<Step>,
    text: String,
}

/// Errors from parsing or evaluating a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The text is not a valid path.
    #[error("invalid JSONPath {path:?}: {reason}")]
    Syntax {
        /// The path text.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The path is valid but selects nothing in the given document.
    #[error("the JSONPath {0:?} could not be found in the input")]
    NoMatch(String),
    /// A reference path was needed but the path has a wildcard.
    #[error("{0:?} is not a reference path (wildcards are not allowed here)")]
    NotReference(String),
    /// Writing through a path met a value that is neither an object nor absent.
    #[error("unable to apply ResultPath {path:?}: {reason}")]
    Write {
        /// The path text.
        path: String,
        /// What blocked the write.
        reason: String,
    },
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonPath {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`PathError::Syntax`] naming the path and the offending part.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let syntax = |reason: &str| PathError::Syntax {
            path: text.to_string(),
            reason: reason.to_string(),
        };
        let (root, mut rest) = if let Some(r) = text.strip_prefix("$$") {
            (Root::Context, r)
        } else if let Some(r) = text.strip_prefix('$') {
            if r.starts_with(|c: char| c.is_alphabetic() || c == '_') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(syntax(&format!("{name:?} is not a variable name")));
                }
                (Root::Variable(name.to_string()), &r[end..])
            } else {
                (Root::Data, r)
            }
        } else {
            return Err(syntax("a path must start with '$' or '$$'"));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("..") {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() || name == "*" {
                    return Err(syntax("'..' must be followed by a field name"));
                }
                steps.push(Step::Descendant(name.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('.') {
                if let Some(r2) = r.strip_prefix('*') {
                    steps.push(Step::Wildcard);
                    rest = r2;
                    continue;
                }
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() {
                    return Err(syntax("empty field name after '.'"));
                }
                if name.contains([' ', ']', '\'', '"', ',', '(', ')']) {
                    return Err(syntax(&format!("invalid character in field name {name:?}")));
                }
                steps.push(Step::Field(name.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let close = if r.starts_with('\'') || r.starts_with('"') {
                    let q = &r[..1];
                    let end = r[1..]
                        .find(q)
                        .ok_or_else(|| syntax("unterminated quoted name"))?;
                    let name = &r[1..1 + end];
                    let after = &r[2 + end..];
                    if !after.starts_with(']') {
                        return Err(syntax("expected ']' after quoted name"));
                    }
                    steps.push(Step::Field(name.to_string()));
                    2 + end
                } else {
                    let end = closing_bracket(r).ok_or_else(|| syntax("missing ']'"))?;
                    let inner = r[..end].trim();
                    let bound = |b: &str| -> Result<Option<i64>, PathError> {
                        let b = b.trim();
                        if b.is_empty() {
                            return Ok(None);
                        }
                        b.parse()
                            .map(Some)
                            .map_err(|_| syntax(&format!("{b:?} is not a slice bound")))
                    };
                    if inner == "*" {
                        steps.push(Step::Wildcard);
                    } else if let Some(f) = inner.strip_prefix('?') {
                        let body = f
                            .trim()
                            .strip_prefix('(')
                            .and_then(|b| b.strip_suffix(')'))
                            .ok_or_else(|| syntax("a filter is written [?( … )]"))?;
                        let parsed = filter::parse_filter(body).map_err(|e| syntax(&e))?;
                        steps.push(Step::Filter(Box::new(parsed)));
                    } else if let Some(body) =
                        inner.strip_prefix('(').and_then(|b| b.strip_suffix(')'))
                    {
                        steps.push(Step::Script(
                            filter::parse_script(body).map_err(|e| syntax(&e))?,
                        ));
                    } else if let Some((a, b)) = inner.split_once(':') {
                        steps.push(Step::Slice(bound(a)?, bound(b)?));
                    } else if let Some(n) = inner.strip_prefix('-') {
                        let n: usize = n
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| syntax(&format!("{inner:?} is not an index")))?;
                        steps.push(Step::FromEnd(n));
                    } else {
                        let i: usize = inner.parse().map_err(|_| {
                            syntax(&format!("{inner:?} is not an index, '*' or a quoted name"))
                        })?;
                        steps.push(Step::Index(i));
                    }
                    end
                };
                rest = &r[close + 1..];
            } else {
                return Err(syntax(&format!("unexpected {rest:?}")));
            }
        }
        Ok(Self {
            root,
            steps,
            text: text.to_string(),
        })
    }

    /// Parses a reference path (no wildcards).
    ///
    /// # Errors
    /// As [`JsonPath::parse`], plus [`PathError::NotReference`].
    pub fn parse_reference(text: &str) -> Result<Self, PathError> {
        let p = Self::parse(text)?;
        if p.is_reference() {
            Ok(p)
        } else {
            Err(PathError::NotReference(text.to_string()))
        }
    }

    /// True if the path only names fields and non-negative indices.
    pub fn is_reference(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s, Step::Field(_) | Step::Index(_)))
    }

    /// True if the path selects at most one node (no wildcard, slice or `..`).
    pub fn is_definite(&self) -> bool {
        self.steps.iter().all(|s| {
            matches!(
                s,
                Step::Field(_) | Step::Index(_) | Step::FromEnd(_) | Step::Script(_)
            )
        })
    }

    /// Selects from `data` (for `$`) or `context` (for `$$`); no variables are defined.
    ///
    /// # Errors
    /// [`PathError::NoMatch`] if a definite path selects nothing.
    pub fn select(&self, data: &Value, context: &Value) -> Result<Value, PathError> {
        self.select_in(data, &Env::context_only(context))
    }

    /// Selects from `data`, the context object or a variable of `env`.
    ///
    /// # Errors
    /// [`PathError::NoMatch`] if a definite path selects nothing or names an undefined
    /// variable.
    pub fn select_in(&self, data: &Value, env: &Env<'_>) -> Result<Value, PathError> {
        let doc = match &self.root {
            Root::Data => data,
            Root::Context => env.context,
            Root::Variable(name) => env
                .vars
                .get(name)
                .ok_or_else(|| PathError::NoMatch(self.text.clone()))?,
        };
        let mut nodes: Vec<&Value> = vec![doc];
        for step in &self.steps {
            nodes = apply_step(step, nodes, doc);
        }
        if self.is_definite() {
            return nodes
                .first()
                .map(|v| (*v).clone())
                .ok_or_else(|| PathError::NoMatch(self.text.clone()));
        }
        Ok(Value::Array(nodes.into_iter().cloned().collect()))
    }

    /// Returns a copy of `target` with `value` written at this reference path, creating
    /// missing objects on the way (`ResultPath` semantics; `$` replaces the whole document).
    ///
    /// # Errors
    /// [`PathError::Write`] when an intermediate node is not an object (or an index is out of
    /// range).
    pub fn write(&self, target: &Value, value: Value) -> Result<Value, PathError> {
        let mut root = target.clone();
        let werr = |reason: String| PathError::Write {
            path: self.text.clone(),
            reason,
        };
        let mut cur = &mut root;
        for step in &self.steps {
            cur = match step {
                Step::Field(name) => {
                    if cur.is_null() {
                        *cur = Value::Object(Map::new());
                    }
                    match cur {
                        Value::Object(m) => m.entry(name.clone()).or_insert(Value::Null),
                        other => {
                            return Err(werr(format!(
                                "cannot add field {name:?} to a {}",
                                type_name(other)
                            )));
                        }
                    }
                }
                Step::Index(i) => {
                    let kind = type_name(cur);
                    match cur.as_array_mut().and_then(|a| a.get_mut(*i)) {
                        Some(v) => v,
                        None => return Err(werr(format!("no element {i} in a {kind}"))),
                    }
                }
                _ => {
                    return Err(werr(
                        "only field names and indices can be written".to_string(),
                    ));
                }
            };
        }
        *cur = value;
        Ok(root)
    }
}

/// The nodes one step selects from each of `nodes`, in order.
pub(crate) fn apply_step<'v>(
    step: &Step,
    nodes: Vec<&'v Value>,
    root: &'v Value,
) -> Vec<&'v Value> {
    let mut next = Vec::new();
    for n in nodes {
        match (step, n) {
            (Step::Field(f), Value::Object(m)) => next.extend(m.get(f)),
            (Step::Index(i), Value::Array(a)) => next.extend(a.get(*i)),
            (Step::Wildcard, Value::Array(a)) => next.extend(a.iter()),
            (Step::Wildcard, Value::Object(m)) => next.extend(m.values()),
            (Step::FromEnd(k), Value::Array(a)) => {
                next.extend(a.len().checked_sub(*k).and_then(|i| a.get(i)))
            }
            (Step::Script(off), Value::Array(a)) => {
                let i = a.len() as i64 + off;
                next.extend(usize::try_from(i).ok().and_then(|i| a.get(i)))
            }
            (Step::Slice(from, to), Value::Array(a)) => {
                let len = a.len() as i64;
                let clamp = |b: i64| if b < 0 { (len + b).max(0) } else { b.min(len) };
                let (s, e) = (clamp(from.unwrap_or(0)), clamp(to.unwrap_or(len)));
                if s < e {
                    next.extend(&a[s as usize..e as usize]);
                }
            }
            (Step::Filter(f), Value::Array(a)) => {
                next.extend(a.iter().filter(|item| f.test(item, root)))
            }
            (Step::Filter(f), v @ Value::Object(_)) if f.test(v, root) => next.push(v),
            (Step::Descendant(name), v) => descendants(v, name, &mut next),
            _ => {}
        }
    }
    next
}

/// The index of the `]` closing a bracket whose content starts `r`, skipping quoted text and
/// nested brackets.
fn closing_bracket(r: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    for (i, c) in r.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') if depth == 0 => return Some(i),
            (None, ']') => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Collects every field called `name` below `v`, in document order.
fn descendants<'v>(v: &'v Value, name: &str, out: &mut Vec<&'v Value>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == name {
                    out.push(child);
                }
                descendants(child, name, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| descendants(c, name, out)),
        _ => {}
    }
}

/// The JSON type name of a value, as used in error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_fields_indices_and_wildcards() {
        let doc = json!({"a": {"b": [10, 20, {"c": "x"}]}, "k y": 1});
        let sel = |p: &str| JsonPath::parse(p).and_then(|p| p.select(&doc, &json!({"ctx": 5})));
        assert_eq!(sel("$.a.b[1]"), Ok(json!(20)));
        assert_eq!(sel("$['a']['b'][2].c"), Ok(json!("x")));
        assert_eq!(sel("$['k y']"), Ok(json!(1)));
        assert_eq!(sel("$.a.b[*]"), Ok(json!([10, 20, {"c": "x"}])));
        assert_eq!(sel("$$.ctx"), Ok(json!(5)));
        assert_eq!(sel("$"), Ok(doc.clone()));
        assert!(matches!(sel("$.a.zz"), Err(PathError::NoMatch(_))));
    }

    #[test]
    fn slices_negative_indices_and_descendants() {
        let doc = json!({"a": [1, 2, 3, 4], "n": {"id": 1, "k": [{"id": 2}, {"x": {"id": 3}}]}});
        let sel = |p: &str| JsonPath::parse(p).and_then(|p| p.select(&doc, &json!({})));
        assert_eq!(sel("$.a[-1]"), Ok(json!(4)));
        assert_eq!(sel("$.a[1:3]"), Ok(json!([2, 3])));
        assert_eq!(sel("$.a[-2:]"), Ok(json!([3, 4])));
        assert_eq!(sel("$.a[:2]"), Ok(json!([1, 2])));
        assert_eq!(sel("$.a[3:1]"), Ok(json!([])));
        assert_eq!(sel("$..id"), Ok(json!([1, 2, 3])));
        assert!(matches!(sel("$.a[-5]"), Err(PathError::NoMatch(_))));
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "a.b",
            "$.",
            "$[x]",
            "$['a'",
            "$.a b",
            "$.a[?(@.x ==)]",
            "$.a[(@.size)]",
            "$..",
            "$.a[1:x]",
            "$.a[-0]",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} accepted");
        }
        for not_ref in ["$.a[*]", "$.a[-1]", "$.a[0:1]", "$..a"] {
            assert!(
                matches!(
                    JsonPath::parse_reference(not_ref),
                    Err(PathError::NotReference(_))
                ),
                "{not_ref}"
            );
        }
    }

    #[test]
    fn writes_create_nested_objects() -> Result<(), PathError> {
        let p = JsonPath::parse_reference("$.x.y.z")?;
        assert_eq!(
            p.write(&json!({"a": 1}), json!(2))?,
            json!({"a": 1, "x": {"y": {"z": 2}}})
        );
        let root = JsonPath::parse_reference("$")?;
        assert_eq!(root.write(&json!({"a": 1}), json!("r"))?, json!("r"));
        assert!(p.write(&json!({"x": 3}), json!(1)).is_err());
        Ok(())
    }
}
