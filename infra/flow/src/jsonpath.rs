//! JSONPath as Step Functions uses it.
//!
//! A path starts with `$` (the state's data) or `$$` (the context object) and continues with
//! `.name`, `['name']`, `[index]`, `[*]` or `.*` steps. A *reference path* (required by
//! `ResultPath`, Choice `Variable`, `*Path` fields) may only name fields and indices, so it
//! always identifies at most one node. A path with a wildcard returns every match as an array.
//!
//! Invariants: [`JsonPath::parse`] accepts exactly the grammar above; evaluation never
//! panics and reports a missing node as [`PathError::NoMatch`].

use serde_json::{Map, Value};

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.name` or `['name']`.
    Field(String),
    /// `[3]`.
    Index(usize),
    /// `[*]` or `.*`.
    Wildcard,
}

/// Where a path is rooted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state's data.
    Data,
    /// `$$`: the context object.
    Context,
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
            (Root::Data, r)
        } else {
            return Err(syntax("a path must start with '$' or '$$'"));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
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
                    let end = r.find(']').ok_or_else(|| syntax("missing ']'"))?;
                    let inner = r[..end].trim();
                    if inner == "*" {
                        steps.push(Step::Wildcard);
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

    /// True if the path has no wildcard.
    pub fn is_reference(&self) -> bool {
        !self.steps.iter().any(|s| matches!(s, Step::Wildcard))
    }

    /// Selects from `data` (for `$`) or `context` (for `$$`).
    ///
    /// # Errors
    /// [`PathError::NoMatch`] if a reference path selects nothing.
    pub fn select(&self, data: &Value, context: &Value) -> Result<Value, PathError> {
        let doc = match self.root {
            Root::Data => data,
            Root::Context => context,
        };
        if self.is_reference() {
            let mut cur = doc;
            for step in &self.steps {
                cur = match (step, cur) {
                    (Step::Field(n), Value::Object(m)) => m.get(n),
                    (Step::Index(i), Value::Array(a)) => a.get(*i),
                    _ => None,
                }
                .ok_or_else(|| PathError::NoMatch(self.text.clone()))?;
            }
            return Ok(cur.clone());
        }
        let mut nodes: Vec<&Value> = vec![doc];
        for step in &self.steps {
            let mut next = Vec::new();
            for n in nodes {
                match (step, n) {
                    (Step::Field(f), Value::Object(m)) => next.extend(m.get(f)),
                    (Step::Index(i), Value::Array(a)) => next.extend(a.get(*i)),
                    (Step::Wildcard, Value::Array(a)) => next.extend(a.iter()),
                    (Step::Wildcard, Value::Object(m)) => next.extend(m.values()),
                    _ => {}
                }
            }
            nodes = next;
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
                Step::Wildcard => return Err(werr("wildcards cannot be written".to_string())),
            };
        }
        *cur = value;
        Ok(root)
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
    fn rejects_bad_syntax() {
        for bad in ["a.b", "$.", "$[x]", "$['a'", "$.a..b", "$.a b"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(matches!(
            JsonPath::parse_reference("$.a[*]"),
            Err(PathError::NotReference(_))
        ));
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
