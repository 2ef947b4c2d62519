//! Checking a decoded request against its shape, with Kinesis's wording.
//!
//! Two passes, as the service makes them:
//! 1. [`check_types`]: each known member must have its type; the first mismatch fails the whole
//!    request with a `SerializationException` (e.g. `class java.lang.String can not be
//!    converted to an Integer`). Unknown members and nulls are dropped; base64 blobs are decoded
//!    (and must be canonical base64); JSON timestamps (seconds) become milliseconds; integers
//!    are floored and clamped to 32 bits.
//! 2. [`check_constraints`]: every rule of every member, members and rules in shape order, up to
//!    ten failures, reported together as `N validation error(s) detected: Value 'v' at 'path'
//!    failed to satisfy constraint: ...` (a `ValidationException`).

use base64::Engine as _;

use crate::error::ApiError;
use crate::shape::{Member, Rule, Type};
use crate::value::Value;

const NUMBER_CLASS: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";

/// Pass 1: types. Returns the request with only known, typed members.
///
/// # Errors
/// `SerializationException` naming the first mismatch.
pub fn check_types(v: &Value, members: &[Member]) -> Result<Value, ApiError> {
    let Value::Map(_) = v else {
        return Err(ApiError::bare("SerializationException"));
    };
    structure(v, members)
}

fn structure(v: &Value, members: &[Member]) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for m in members {
        if let Some(val) = v.get(m.name)
            && let Some(typed) = check_type(val, &m.ty)?
        {
            out.push((m.name.to_string(), typed));
        }
    }
    Ok(Value::Map(out))
}

fn object_error(v: &Value) -> ApiError {
    match v {
        Value::Array(_) => ApiError::serialization("Start of list found where not expected"),
        _ => ApiError::serialization("Start of structure or map found where not expected."),
    }
}

fn check_type(v: &Value, ty: &Type) -> Result<Option<Value>, ApiError> {
    let number = matches!(v, Value::Int(_) | Value::Float(_));
    let object = matches!(v, Value::Array(_) | Value::Map(_) | Value::Bytes(_));
    Ok(Some(match ty {
        Type::Bool => match v {
            Value::Bool(_) => v.clone(),
            Value::Str(s) => {
                return Err(ApiError::serialization(format!(
                    "'{}' can not be converted to an Boolean",
                    s.to_uppercase()
                )));
            }
            _ if number => {
                return Err(ApiError::serialization(format!(
                    "{NUMBER_CLASS} can not be converted to an Boolean"
                )));
            }
            _ => return Err(object_error(v)),
        },
        Type::Int => match v {
            Value::Int(i) => Value::Int((*i).min(i64::from(i32::MAX))),
            Value::Float(f) => Value::Int(f.floor().min(f64::from(i32::MAX)) as i64),
            Value::Bool(_) => {
                return Err(ApiError::serialization(
                    "class java.lang.Boolean can not be converted to an Integer",
                ));
            }
            Value::Str(_) => {
                return Err(ApiError::serialization(
                    "class java.lang.String can not be converted to an Integer",
                ));
            }
            Value::Timestamp(ms) => Value::Int(*ms),
            _ => return Err(object_error(v)),
        },
        Type::Str => match v {
            Value::Str(_) => v.clone(),
            Value::Bool(_) => {
                return Err(ApiError::serialization(
                    "class java.lang.Boolean can not be converted to an String",
                ));
            }
            _ if number => {
                return Err(ApiError::serialization(format!(
                    "{NUMBER_CLASS} can not be converted to an String"
                )));
            }
            _ => return Err(object_error(v)),
        },
        Type::Blob => match v {
            Value::Bytes(_) => v.clone(),
            Value::Str(s) => Value::Bytes(decode_blob(s)?),
            Value::Bool(_) => {
                return Err(ApiError::serialization(
                    "class java.lang.Boolean can not be converted to a Blob",
                ));
            }
            _ if number => {
                return Err(ApiError::serialization(format!(
                    "{NUMBER_CLASS} can not be converted to a Blob"
                )));
            }
            _ => return Err(object_error(v)),
        },
        Type::Timestamp => match v {
            Value::Timestamp(_) => v.clone(),
            Value::Int(secs) => Value::Timestamp(secs.saturating_mul(1000)),
            Value::Float(secs) if secs.is_finite() => Value::Timestamp((secs * 1000.0) as i64),
            Value::Float(_) => Value::Timestamp(i64::MAX),
            Value::Bool(_) => {
                return Err(ApiError::serialization(
                    "class java.lang.Boolean can not be converted to milliseconds since epoch",
                ));
            }
            Value::Str(_) => {
                return Err(ApiError::serialization(
                    "class java.lang.String can not be converted to milliseconds since epoch",
                ));
            }
            _ if object => return Err(object_error(v)),
            _ => return Ok(None),
        },
        Type::List(item) => match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(check_type(i, &item.ty)?.unwrap_or(Value::Null));
                }
                Value::Array(out)
            }
            Value::Map(_) | Value::Bytes(_) => {
                return Err(ApiError::serialization(
                    "Start of structure or map found where not expected.",
                ));
            }
            _ => return Err(ApiError::serialization("Expected list or null")),
        },
        Type::Map(item) => match v {
            Value::Map(members) => {
                let mut out: Vec<(String, Value)> = Vec::with_capacity(members.len());
                for (k, val) in members {
                    let typed = check_type(val, &item.ty)?.unwrap_or(Value::Null);
                    out.retain(|(key, _)| key != k);
                    out.push((k.clone(), typed));
                }
                Value::Map(out)
            }
            Value::Array(_) => {
                return Err(ApiError::serialization(
                    "Start of list found where not expected",
                ));
            }
            _ => return Err(ApiError::serialization("Expected map or null")),
        },
        Type::Struct(members) => match v {
            Value::Map(_) => structure(v, members)?,
            Value::Array(_) => {
                return Err(ApiError::serialization(
                    "Start of list found where not expected",
                ));
            }
            _ => return Err(ApiError::serialization("Expected null")),
        },
    }))
}

/// Decodes a JSON blob, refusing what the service refuses, with its messages.
fn decode_blob(s: &str) -> Result<Vec<u8>, ApiError> {
    let len = s.chars().count();
    if !len.is_multiple_of(4) {
        return Err(ApiError::serialization(format!(
            "'{s}' can not be converted to a Blob: Base64 encoded length is expected a multiple \
             of 4 bytes but found: {len}"
        )));
    }
    let bytes = s.as_bytes();
    let bad = bytes.iter().enumerate().find(|&(i, &b)| {
        !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            || (b == b'=' && bytes.get(i + 1).is_some_and(|&n| n != b'='))
    });
    if let Some((_, _)) = bad {
        let c = s
            .chars()
            .enumerate()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
                    || (c == '=' && s.chars().nth(i + 1).is_some_and(|n| n != '='))
            })
            .map_or('?', |(_, c)| c);
        return Err(ApiError::serialization(format!(
            "'{s}' can not be converted to a Blob: Invalid Base64 character: '{c}'"
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(bytes)
        .map_err(|_| {
            ApiError::serialization(format!(
                "'{s}' can not be converted to a Blob: Invalid last non-pad Base64 character \
                 dectected"
            ))
        })
}

/// Pass 2: constraints, on a request [`check_types`] returned.
///
/// # Errors
/// `ValidationException` listing up to ten failures.
pub fn check_constraints(v: &Value, members: &[Member]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    members_of(v, members, "", &mut errors);
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "{} validation error{} detected: {}",
        errors.len(),
        if errors.len() > 1 { "s" } else { "" },
        errors.join("; ")
    )))
}

fn members_of(v: &Value, members: &[Member], parent: &str, errors: &mut Vec<String>) {
    for m in members {
        member(v, m.name, v.get(m.name), m, parent, errors);
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Length as the service counts it: UTF-16 units of text, bytes of blobs, items of lists/maps.
fn length(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.encode_utf16().count(),
        Value::Bytes(b) => b.len(),
        Value::Array(a) => a.len(),
        Value::Map(m) => m.len(),
        _ => 0,
    }
}

fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Timestamp(t) => Some(*t),
        _ => None,
    }
}

/// How a value prints in a message (Java's `toString` of what the service deserialized).
fn show(v: &Value, m: &Member) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Timestamp(t) => t.to_string(),
        Value::Bytes(b) => format!("java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]", b.len()),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| m.member_str.map_or_else(|| show(i, m), str::to_string))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Map(members) => format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, val)| format!(
                    "{k}={}",
                    m.member_str.map_or_else(|| show(val, m), str::to_string)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn member(
    siblings: &Value,
    name: &str,
    value: Option<&Value>,
    m: &Member,
    parent: &str,
    errors: &mut Vec<String>,
) {
    let path = if parent.is_empty() {
        lower_first(name)
    } else {
        format!("{parent}.{}", lower_first(name))
    };
    let fail = |errors: &mut Vec<String>, v: Option<&Value>, msg: String| {
        let shown = match v {
            None | Some(Value::Null) => "null".to_string(),
            Some(v) => format!("'{}'", show(v, m)),
        };
        errors.push(format!(
            "Value {shown} at '{path}' failed to satisfy constraint: {msg}"
        ));
    };
    for rule in m.rules {
        if errors.len() >= 10 {
            return;
        }
        let Some(v) = value else {
            match rule {
                Rule::NotNull => fail(errors, None, "Member must not be null".into()),
                Rule::NotNullUnless(other) if siblings.get(other).is_none() => {
                    fail(errors, None, "Member must not be null".into())
                }
                _ => {}
            }
            continue;
        };
        let ok = match rule {
            Rule::NotNull | Rule::NotNullUnless(_) => true,
            Rule::Ge(n) => number(v).is_none_or(|x| x >= *n),
            Rule::Le(n) => number(v).is_none_or(|x| x <= *n),
            Rule::Pattern(p) => match v {
                Value::Str(s) => p.matches(s),
                _ => true,
            },
            Rule::LenGe(n) => length(v) >= *n,
            Rule::LenLe(n) => length(v) <= *n,
            Rule::Enum(set) => matches!(v, Value::Str(s) if set.contains(&s.as_str())),
            Rule::ChildLengths(lo, hi) => match v {
                Value::Array(items) => items.iter().all(|i| (lo..=hi).contains(&&length(i))),
                _ => true,
            },
            Rule::ChildKeyLengths(lo, hi) => match v {
                Value::Map(ms) => ms
                    .iter()
                    .all(|(k, _)| (lo..=hi).contains(&&k.encode_utf16().count())),
                _ => true,
            },
            Rule::ChildValueLengths(lo, hi) => match v {
                Value::Map(ms) => ms.iter().all(|(_, x)| (lo..=hi).contains(&&length(x))),
                _ => true,
            },
        };
        if ok {
            continue;
        }
        let msg = match rule {
            Rule::Ge(n) => format!("Member must have value greater than or equal to {n}"),
            Rule::Le(n) => format!("Member must have value less than or equal to {n}"),
            Rule::Pattern(p) => format!(
                "Member must satisfy regular expression pattern: {}",
                p.text()
            ),
            Rule::LenGe(n) => format!("Member must have length greater than or equal to {n}"),
            Rule::LenLe(n) => format!("Member must have length less than or equal to {n}"),
            Rule::Enum(set) => format!("Member must satisfy enum value set: [{}]", set.join(", ")),
            Rule::ChildLengths(lo, hi) => format!(
                "Member must satisfy constraint: [Member must have length less than or equal \
                 to {hi}, Member must have length greater than or equal to {lo}]"
            ),
            Rule::ChildKeyLengths(lo, hi) => format!(
                "Map keys must satisfy constraint: [Member must have length less than or equal \
                 to {hi}, Member must have length greater than or equal to {lo}]"
            ),
            Rule::ChildValueLengths(lo, hi) => format!(
                "Map value must satisfy constraint: [Member must have length less than or \
                 equal to {hi}, Member must have length greater than or equal to {lo}]"
            ),
            Rule::NotNull | Rule::NotNullUnless(_) => continue,
        };
        fail(errors, Some(v), msg);
    }
    let Some(v) = value else { return };
    match (&m.ty, v) {
        (Type::List(item), Value::Array(items)) => {
            for (i, x) in items.iter().enumerate() {
                let p = format!("{path}.{}", i + 1);
                member(
                    v,
                    "member",
                    Some(x).filter(|x| !matches!(x, Value::Null)),
                    item,
                    &p,
                    errors,
                );
            }
        }
        (Type::Map(item), Value::Map(ms)) => {
            for (k, x) in ms.iter().rev() {
                let p = format!("{path}.{k}");
                member(v, "member", Some(x), item, &p, errors);
            }
        }
        (Type::Struct(members), Value::Map(_)) => members_of(v, members, &path, errors),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
