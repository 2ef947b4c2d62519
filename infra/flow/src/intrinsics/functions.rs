//! Evaluation of the 18 intrinsic functions, with AWS's argument checks.

use super::{Arg, Call, IntrinsicError, unescape};
use crate::jsonpath::{Env, type_name};
use base64::Engine as _;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Map, Value, json};

pub(super) fn eval(call: &Call, data: &Value, ctx: &Env<'_>) -> Result<Value, IntrinsicError> {
    let name = call.name.as_str();
    let fail = |reason: String| IntrinsicError::Failure {
        function: name.to_string(),
        reason,
    };
    if name == "States.Format" {
        return format(call, data, ctx).map_err(fail);
    }
    let mut args = Vec::with_capacity(call.args.len());
    for a in &call.args {
        args.push(arg_value(a, data, ctx).map_err(|e| match e {
            Err2::Nested(e) => e,
            Err2::Msg(m) => fail(m),
        })?);
    }
    apply(name, &args).map_err(fail)
}

enum Err2 {
    Nested(IntrinsicError),
    Msg(String),
}

fn arg_value(a: &Arg, data: &Value, ctx: &Env<'_>) -> Result<Value, Err2> {
    match a {
        Arg::Str { raw } => Ok(Value::String(unescape(raw))),
        Arg::Literal(v) => Ok(v.clone()),
        Arg::Path(p) => p.select_in(data, ctx).map_err(|e| Err2::Msg(e.to_string())),
        Arg::Call(c) => c.eval_in(data, ctx).map_err(Err2::Nested),
    }
}

fn count(args: &[Value], min: usize, max: usize) -> Result<(), String> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!("expected {want} arguments, got {}", args.len()));
    }
    Ok(())
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .ok_or_else(|| format!("{what} must be an integer, got {} {v}", type_name(v)))
}

/// A number rounded half up (towards positive infinity), as AWS's math functions take
/// their arguments: 1.5 → 2, -1.5 → -1, -1.51 → -2.
fn rounded(v: &Value, what: &str) -> Result<i64, String> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    v.as_f64()
        .map(|f| (f + 0.5).floor())
        .filter(|f| f.abs() < 9.0e15)
        .map(|f| f as i64)
        .ok_or_else(|| format!("{what} must be a number, got {} {v}", type_name(v)))
}

/// How `States.Format` prints a value: strings bare, objects as `{k=v, k2=v2}` and arrays as
/// `[a, b]` (Java's `toString`, which AWS's answers show), other values as JSON.
fn java_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(java_text).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", java_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn string<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("{what} must be a string, got {} {v}", type_name(v)))
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{what} must be an array, got {}", type_name(v)))
}

fn format(call: &Call, data: &Value, ctx: &Env<'_>) -> Result<Value, String> {
    let Some(Arg::Str { raw }) = call.args.first() else {
        return Err("the first argument must be a string literal template".to_string());
    };
    let mut values = Vec::new();
    for a in &call.args[1..] {
        let v = arg_value(a, data, ctx).map_err(|e| match e {
            Err2::Nested(e) => e.to_string(),
            Err2::Msg(m) => m,
        })?;
        values.push(java_text(&v));
    }
    let mut out = String::new();
    let mut next = values.iter();
    let mut chars = raw.chars().peekable();
    let mut used = 0;
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                used += 1;
                out.push_str(next.next().ok_or_else(|| {
                    format!(
                        "the template has more '{{}}' than the {} arguments",
                        values.len()
                    )
                })?);
            }
            c => out.push(c),
        }
    }
    if used != values.len() {
        return Err(format!(
            "the template has {used} '{{}}' placeholders but {} arguments were given",
            values.len()
        ));
    }
    Ok(Value::String(out))
}

fn apply(name: &str, a: &[Value]) -> Result<Value, String> {
    match name {
        "States.StringToJson" => {
            count(a, 1, 1)?;
            let s = string(&a[0], "the argument")?;
            if s.trim().is_empty() {
                // AWS answers null for an empty or blank string.
                return Ok(Value::Null);
            }
            serde_json::from_str(s).map_err(|e| format!("the string is not JSON: {e}"))
        }
        "States.JsonToString" => {
            count(a, 1, 1)?;
            Ok(Value::String(a[0].to_string()))
        }
        "States.Array" => Ok(Value::Array(a.to_vec())),
        "States.ArrayPartition" => {
            count(a, 2, 2)?;
            let arr = array(&a[0], "the first argument")?;
            let size = int(&a[1], "the chunk size")?;
            if size <= 0 {
                return Err(format!("the chunk size must be positive, got {size}"));
            }
            let chunks = arr.chunks(size as usize).map(|c| Value::Array(c.to_vec()));
            Ok(Value::Array(chunks.collect()))
        }
        "States.ArrayContains" => {
            count(a, 2, 2)?;
            Ok(Value::Bool(
                array(&a[0], "the first argument")?.contains(&a[1]),
            ))
        }
        "States.ArrayRange" => {
            count(a, 3, 3)?;
            let (start, end) = (int(&a[0], "start")?, int(&a[1], "end")?);
            let step = int(&a[2], "step")?;
            if step == 0 {
                return Err("step must not be 0".to_string());
            }
            let mut out = Vec::new();
            let mut v = start;
            while (step > 0 && v <= end) || (step < 0 && v >= end) {
                if out.len() >= 1000 {
                    return Err("the range has more than 1000 elements".to_string());
                }
                out.push(json!(v));
                v += step;
            }
            Ok(Value::Array(out))
        }
        "States.ArrayGetItem" => {
            count(a, 2, 2)?;
            let arr = array(&a[0], "the first argument")?;
            let i = int(&a[1], "the index")?;
            usize::try_from(i)
                .ok()
                .and_then(|i| arr.get(i))
                .cloned()
                .ok_or_else(|| format!("index {i} is out of bounds for an array of {}", arr.len()))
        }
        "States.ArrayLength" => {
            count(a, 1, 1)?;
            Ok(json!(array(&a[0], "the argument")?.len()))
        }
        "States.ArrayUnique" => {
            count(a, 1, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in array(&a[0], "the argument")? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "States.Base64Encode" => {
            count(a, 1, 1)?;
            let s = string(&a[0], "the argument")?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(s),
            ))
        }
        "States.Base64Decode" => {
            count(a, 1, 1)?;
            let s = string(&a[0], "the argument")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("the argument is not base64: {e}"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| "the decoded data is not UTF-8 text".to_string())
        }
        "States.Hash" => {
            count(a, 2, 2)?;
            let data = match &a[0] {
                Value::String(s) => s.clone(),
                Value::Null => return Err("the data to hash must not be null".to_string()),
                other => other.to_string(),
            };
            hash(data.as_bytes(), string(&a[1], "the algorithm")?).map(Value::String)
        }
        "States.JsonMerge" => {
            count(a, 3, 3)?;
            let (Value::Object(l), Value::Object(r)) = (&a[0], &a[1]) else {
                return Err("both inputs to merge must be objects".to_string());
            };
            match &a[2] {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err("only shallow merges (false) are supported, as on AWS".to_string());
                }
                other => {
                    return Err(format!(
                        "the deep-merge flag must be a boolean, got {}",
                        type_name(other)
                    ));
                }
            }
            let mut out: Map<String, Value> = l.clone();
            out.extend(r.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(Value::Object(out))
        }
        "States.MathRandom" => {
            count(a, 2, 3)?;
            let (start, end) = (rounded(&a[0], "start")?, rounded(&a[1], "end")?);
            if start >= end {
                return Err(format!("start ({start}) must be less than end ({end})"));
            }
            let v = match a.get(2) {
                Some(seed) => {
                    let seed = rounded(seed, "seed")?;
                    rand::rngs::StdRng::seed_from_u64(seed as u64).random_range(start..end)
                }
                None => rand::rng().random_range(start..end),
            };
            Ok(json!(v))
        }
        "States.MathAdd" => {
            count(a, 2, 2)?;
            let s = rounded(&a[0], "the first number")?
                .checked_add(rounded(&a[1], "the second number")?)
                .ok_or_else(|| "the sum overflows".to_string())?;
            Ok(json!(s))
        }
        "States.StringSplit" => {
            count(a, 2, 2)?;
            let s = string(&a[0], "the string")?;
            let seps: Vec<char> = string(&a[1], "the delimiter")?.chars().collect();
            let parts = s
                .split(|c| seps.contains(&c))
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_string()));
            Ok(Value::Array(parts.collect()))
        }
        "States.UUID" => {
            count(a, 0, 0)?;
            Ok(Value::String(uuid::Uuid::new_v4().to_string()))
        }
        other => Err(format!("unknown intrinsic function {other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hash(data: &[u8], algorithm: &str) -> Result<String, String> {
    use sha2::Digest as _;
    Ok(match algorithm {
        "MD5" => hex(&md5::Md5::digest(data)),
        "SHA-1" => hex(&sha1::Sha1::digest(data)),
        "SHA-256" => hex(&sha2::Sha256::digest(data)),
        "SHA-384" => hex(&sha2::Sha384::digest(data)),
        "SHA-512" => hex(&sha2::Sha512::digest(data)),
        other => {
            return Err(format!(
                "unsupported hash algorithm {other:?}; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"
            ));
        }
    })
}
