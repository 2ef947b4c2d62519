//! Filter expressions `[?( … )]` and script indexes `[( … )]`, as the JSONPath
//! implementation behind Step Functions (Jayway) reads them.
//!
//! Grammar (whitespace allowed between tokens):
//! ```text
//! or      := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | "(" or ")" | compare
//! compare := operand ( ("==" | "!=" | "<" | "<=" | ">" | ">=") operand )?
//! operand := "@" steps | "$" steps | number | 'text' | "text" | true | false | null
//! ```
//! A lone operand tests existence (`[?(@.isbn)]`). Comparisons follow Jayway: `==`/`!=`
//! compare JSON values (numbers by value); `<`, `<=`, `>`, `>=` hold only between two numbers
//! or two strings. An operand that selects nothing makes its comparison false.
//!
//! A script index is `(@.length)`, `(@.length - N)` or `(@.length + N)`; it names one array
//! element counted from the array's length.

use super::{JsonPath, Step};
use serde_json::Value;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// `@…`: a path relative to the element being tested.
    Current(Vec<Step>),
    /// `$…`: a path from the document root.
    Root(Vec<Step>),
    /// A JSON literal.
    Literal(Value),
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `a || b`.
    Or(Box<Filter>, Box<Filter>),
    /// `a && b`.
    And(Box<Filter>, Box<Filter>),
    /// `!a`.
    Not(Box<Filter>),
    /// `operand` alone: true if it selects something (a literal is tested for truth).
    Exists(Operand),
    /// `lhs op rhs`.
    Compare(Operand, CmpOp, Operand),
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }
    fn ws(&mut self) {
        let t = self.rest().trim_start();
        self.pos = self.src.len() - t.len();
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Filter, String> {
        if self.eat("!") {
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(format!("expected ')' at {:?}", self.rest()));
            }
            return Ok(inner);
        }
        let lhs = self.operand()?;
        for (tok, op) in [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ] {
            if self.eat(tok) {
                let rhs = self.operand()?;
                return Ok(Filter::Compare(lhs, op, rhs));
            }
        }
        Ok(Filter::Exists(lhs))
    }
    fn operand(&mut self) -> Result<Operand, String> {
        self.ws();
        let rest = self.rest();
        let first = rest.chars().next().ok_or("an operand is missing")?;
        if first == '@' || first == '$' {
            // The path runs to the first operator, closing parenthesis or space outside brackets.
            let mut depth = 0usize;
            let mut quote = None;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '\'' | '"') => quote = Some(c),
                    (None, '[') => depth += 1,
                    (None, ']') => depth = depth.saturating_sub(1),
                    (None, c) if depth == 0 && " )=!<>&|".contains(c) => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let text = &rest[..end];
            self.pos += end;
            let as_root = format!("${}", &text[1..]);
            let path = JsonPath::parse(&as_root).map_err(|e| e.to_string())?;
            return Ok(if first == '@' {
                Operand::Current(path.steps)
            } else {
                Operand::Root(path.steps)
            });
        }
        if first == '\'' || first == '"' {
            let body = &rest[1..];
            let end = body
                .find(first)
                .ok_or_else(|| "unterminated string in a filter".to_string())?;
            self.pos += end + 2;
            return Ok(Operand::Literal(Value::String(body[..end].to_string())));
        }
        let end = rest
            .find(|c: char| " )=!<>&|".contains(c))
            .unwrap_or(rest.len());
        let token = &rest[..end];
        let value: Value = serde_json::from_str(token)
            .map_err(|_| format!("{token:?} is not a path, number, string, boolean or null"))?;
        self.pos += end;
        Ok(Operand::Literal(value))
    }
}

/// Parses the text between `[?(` and `)]`.
pub(super) fn parse_filter(text: &str) -> Result<Filter, String> {
    let mut lx = Lexer { src: text, pos: 0 };
    let f = lx.or()?;
    lx.ws();
    if lx.pos != text.len() {
        return Err(format!("unexpected {:?} in a filter", lx.rest()));
    }
    Ok(f)
}

/// Parses the text between `[(` and `)]`: the offset from the array's length.
pub(super) fn parse_script(text: &str) -> Result<i64, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bad = || format!("script index ({text}) is not supported; use (@.length-N)");
    let rest = compact.strip_prefix("@.length").ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok(0);
    }
    let (sign, n) = match rest.split_at(1) {
        ("-", n) => (-1, n),
        ("+", n) => (1, n),
        _ => return Err(bad()),
    };
    n.parse::<i64>().map(|n| sign * n).map_err(|_| bad())
}

fn resolve<'v>(op: &'v Operand, current: &'v Value, root: &'v Value) -> Option<Value> {
    let (steps, doc) = match op {
        Operand::Literal(v) => return Some(v.clone()),
        Operand::Current(s) => (s, current),
        Operand::Root(s) => (s, root),
    };
    let mut nodes = vec![doc];
    let definite = steps
        .iter()
        .all(|s| matches!(s, Step::Field(_) | Step::Index(_) | Step::FromEnd(_)));
    for step in steps {
        nodes = super::apply_step(step, nodes, root);
    }
    if definite {
        nodes.first().map(|v| (*v).clone())
    } else {
        Some(Value::Array(nodes.into_iter().cloned().collect()))
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

impl Filter {
    /// True if `current` (an array element or object) passes the filter.
    pub fn test(&self, current: &Value, root: &Value) -> bool {
        match self {
            Filter::Or(a, b) => a.test(current, root) || b.test(current, root),
            Filter::And(a, b) => a.test(current, root) && b.test(current, root),
            Filter::Not(a) => !a.test(current, root),
            Filter::Exists(op) => match resolve(op, current, root) {
                Some(Value::Bool(b)) if matches!(op, Operand::Literal(_)) => b,
                Some(_) => true,
                None => false,
            },
            Filter::Compare(l, op, r) => {
                let (Some(a), Some(b)) = (resolve(l, current, root), resolve(r, current, root))
                else {
                    return false;
                };
                let ord = match (&a, &b) {
                    (Value::Number(_), Value::Number(_)) => a
                        .as_f64()
                        .zip(b.as_f64())
                        .and_then(|(x, y)| x.partial_cmp(&y)),
                    (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                    _ => None,
                };
                use std::cmp::Ordering::*;
                match op {
                    CmpOp::Eq => numbers_equal(&a, &b),
                    CmpOp::Ne => !numbers_equal(&a, &b),
                    CmpOp::Lt => ord == Some(Less),
                    CmpOp::Le => matches!(ord, Some(Less | Equal)),
                    CmpOp::Gt => ord == Some(Greater),
                    CmpOp::Ge => matches!(ord, Some(Greater | Equal)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_tests_comparisons() -> Result<(), String> {
        let root = serde_json::json!({"limit": 2});
        let item = serde_json::json!({"status": 0, "name": "a", "n": 3});
        let yes = [
            "@.status == 0",
            "@.name == 'a'",
            "@.n > $.limit",
            "@.n >= 3 && @.status != 1",
            "@.x || @.n",
            "!(@.status == 1)",
            "@.name",
        ];
        for f in yes {
            assert!(parse_filter(f)?.test(&item, &root), "{f}");
        }
        let no = [
            "@.status == '0'",
            "@.n < 'z'",
            "@.missing == 1",
            "@.missing",
        ];
        for f in no {
            assert!(!parse_filter(f)?.test(&item, &root), "{f}");
        }
        assert!(parse_filter("@.a ==").is_err());
        assert_eq!(parse_script("@.length - 1"), Ok(-1));
        assert!(parse_script("@.foo").is_err());
        Ok(())
    }
}
