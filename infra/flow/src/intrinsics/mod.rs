//! Intrinsic functions: `States.Format('x {}', $.a)` and the other 17.
//!
//! An intrinsic call is parsed once ([`Call::parse`]) and evaluated against the state's data
//! and context ([`Call::eval`]). Arguments are string literals in single quotes (escapes
//! `\'`, `\{`, `\}`, `\\`; any other escape, such as `\"`, makes the definition invalid as on
//! AWS), numbers, `true`/`false`/`null`, JSONPaths (`$…`, `$$…`, `$variable…`) and nested
//! calls. Every runtime failure is reported as `States.IntrinsicFailure`.

mod functions;

/// The hex digest of `data` with an AWS algorithm name (`MD5`, `SHA-1`, `SHA-256`, `SHA-384`,
/// `SHA-512`), shared with JSONata's `$hash`.
///
/// # Errors
/// A message naming an unsupported algorithm.
pub fn hash_hex(data: &[u8], algorithm: &str) -> Result<String, String> {
    functions::hash(data, algorithm)
}

use crate::jsonpath::{Env, JsonPath};
use serde_json::Value;

/// Names of all supported intrinsic functions.
pub const FUNCTIONS: [&str; 18] = [
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A single-quoted string; `raw` keeps the escapes so `States.Format` can tell `\{` from `{`.
    Str {
        /// The text between the quotes, escapes not yet applied.
        raw: String,
    },
    /// A number, boolean or null literal.
    Literal(Value),
    /// A JSONPath.
    Path(JsonPath),
    /// A nested call.
    Call(Call),
}

/// A parsed intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The function name, e.g. `States.Format`.
    pub name: String,
    /// The arguments in order.
    pub args: Vec<Arg>,
}

/// Parse or evaluation errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrinsicError {
    /// The call text is malformed or names an unknown function.
    #[error("invalid intrinsic function call {text:?}: {reason}")]
    Syntax {
        /// The call text.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// Evaluation failed (wrong argument types, counts, values, missing paths).
    #[error("{function}: {reason}")]
    Failure {
        /// The function that failed.
        function: String,
        /// Why.
        reason: String,
    },
}

impl IntrinsicError {
    /// The AWS error name for runtime failures.
    pub const ERROR_NAME: &'static str = "States.IntrinsicFailure";
}

/// Removes the escapes of a string literal.
pub(crate) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Call {
    /// True if `text` looks like an intrinsic call rather than a path.
    pub fn looks_like_call(text: &str) -> bool {
        text.trim_start().starts_with("States.")
    }

    /// Parses a call.
    ///
    /// # Errors
    /// [`IntrinsicError::Syntax`] naming the text and the problem (unknown function,
    /// unbalanced parentheses, bad literal, bad path).
    pub fn parse(text: &str) -> Result<Self, IntrinsicError> {
        let mut p = Parser {
            src: text,
            pos: 0,
            depth: 0,
        };
        let call = p.call()?;
        p.ws();
        if p.pos != text.len() {
            return Err(p.err("unexpected text after the closing ')'"));
        }
        Ok(call)
    }

    /// Evaluates the call.
    ///
    /// # Errors
    /// [`IntrinsicError::Failure`] with the function name and reason.
    pub fn eval(&self, data: &Value, context: &Value) -> Result<Value, IntrinsicError> {
        functions::eval(self, data, &Env::context_only(context))
    }

    /// Evaluates the call with variables in scope.
    ///
    /// # Errors
    /// [`IntrinsicError::Failure`] with the function name and reason.
    pub fn eval_in(&self, data: &Value, env: &Env<'_>) -> Result<Value, IntrinsicError> {
        functions::eval(self, data, env)
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

/// AWS allows at most this many nested intrinsic calls in one field.
pub const MAX_NESTING: usize = 10;

impl<'a> Parser<'a> {
    fn err(&self, reason: &str) -> IntrinsicError {
        IntrinsicError::Syntax {
            text: self.src.to_string(),
            reason: format!("{reason} (at offset {})", self.pos),
        }
    }
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }
    fn ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }
    fn call(&mut self) -> Result<Call, IntrinsicError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.err(&format!(
                "more than {MAX_NESTING} nested intrinsic functions"
            )));
        }
        let call = self.call_inner();
        self.depth -= 1;
        call
    }
    fn call_inner(&mut self) -> Result<Call, IntrinsicError> {
        self.ws();
        let open = self
            .rest()
            .find('(')
            .ok_or_else(|| self.err("missing '('"))?;
        let name = self.rest()[..open].trim().to_string();
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(self.err(&format!("unknown intrinsic function {name:?}")));
        }
        self.pos += open + 1;
        let mut args = Vec::new();
        self.ws();
        if let Some(r) = self.rest().strip_prefix(')') {
            self.pos = self.src.len() - r.len();
            return Ok(Call { name, args });
        }
        loop {
            args.push(self.arg()?);
            self.ws();
            match self.rest().chars().next() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Call { name, args });
                }
                _ => return Err(self.err("expected ',' or ')'")),
            }
        }
    }
    fn arg(&mut self) -> Result<Arg, IntrinsicError> {
        self.ws();
        let rest = &self.src[self.pos..];
        if let Some(body) = rest.strip_prefix('\'') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in body.char_indices() {
                if escaped {
                    // AWS accepts only these escapes in a string literal; `\"` and the
                    // like make the definition invalid.
                    if !matches!(c, '\'' | '{' | '}' | '\\') {
                        return Err(self.err(&format!(
                            "the escape \\{c} is not allowed in a string literal (only \\', \\{{, \\}} and \\\\)"
                        )));
                    }
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '\'' {
                    end = Some(i);
                    break;
                }
            }
            let end = end.ok_or_else(|| self.err("unterminated string literal"))?;
            let raw = body[..end].to_string();
            self.pos += end + 2;
            return Ok(Arg::Str { raw });
        }
        if rest.starts_with("States.") {
            return Ok(Arg::Call(self.call()?));
        }
        // A path or literal runs to the next ',' or ')' outside brackets and quotes.
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') if depth > 0 => quote = Some(c),
                (None, '[') => depth += 1,
                (None, ']') => depth = depth.saturating_sub(1),
                (None, ',' | ')') if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let token = rest[..end].trim();
        self.pos += end;
        if token.starts_with('$') {
            let path = JsonPath::parse(token).map_err(|e| self.err(&e.to_string()))?;
            return Ok(Arg::Path(path));
        }
        match serde_json::from_str::<Value>(token) {
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Arg::Literal(v)),
            _ => Err(self.err(&format!(
                "{token:?} is not a string, number, boolean, null, path or call"
            ))),
        }
    }
}
