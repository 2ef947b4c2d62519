//! [`Value`]: a request or response document, independent of its wire encoding.
//!
//! Requests arrive as JSON (AWS JSON 1.1) or CBOR (AWS CBOR 1.1) and are decoded into a
//! [`Value`] before validation, so both encodings get the same checks and the same error
//! wording; responses are built as [`Value`]s and written in the encoding the request used.
//!
//! Differences between the encodings live in the leaves: a blob is a base64 string in JSON and
//! a byte string in CBOR ([`Value::Bytes`]); a timestamp is a number of seconds in JSON and
//! epoch milliseconds under tag 1 in CBOR ([`Value::Timestamp`] on the way out).
//!
//! Invariant: maps keep their members in document order; a repeated key resolves to its last
//! occurrence (as `JSON.parse` does).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A decoded document.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` (and absent members, once looked up).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A text string.
    Str(String),
    /// A byte string (CBOR only on the way in; a blob on the way out).
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// An object, members in document order.
    Map(Vec<(String, Value)>),
    /// A timestamp, epoch milliseconds (CBOR tag 1 on the way in; output only otherwise).
    Timestamp(i64),
}

impl Value {
    /// The member `key` of a map (the last one when repeated); `None` otherwise.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| !matches!(v, Value::Null)),
            _ => None,
        }
    }

    /// The text of a string member.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer member (floats are floored, as the service does).
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Value::Int(i)) => Some(*i),
            Some(Value::Float(f)) if f.is_finite() => Some(f.floor() as i64),
            _ => None,
        }
    }

    /// A map from string pairs, for building responses.
    pub fn map<const N: usize>(members: [(&str, Value); N]) -> Value {
        Value::Map(
            members
                .into_iter()
                .filter(|(_, v)| !matches!(v, Value::Null))
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// A string value.
    pub fn s(text: impl Into<String>) -> Value {
        Value::Str(text.into())
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            out.push((k, v));
        }
        Ok(Value::Map(out))
    }
}

/// Parses a JSON document; `None` when it is not valid JSON.
pub fn from_json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// Writes `v` as JSON: bytes as standard base64, timestamps as seconds with milliseconds.
pub fn to_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_json(&mut out, v);
    out
}

/// Appends `v` as JSON to `out` (what [`to_json`] writes).
pub(crate) fn write_json(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) if f.is_finite() => out.extend_from_slice(f.to_string().as_bytes()),
        Value::Float(_) => out.extend_from_slice(b"null"),
        Value::Str(s) => write_str(out, s),
        Value::Bytes(b) => write_base64(out, b),
        Value::Timestamp(ms) => write_timestamp(out, *ms),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        Value::Map(members) => {
            out.push(b'{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_json(out, v);
            }
            out.push(b'}');
        }
    }
}

/// Appends `s` as a JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping of a plain string cannot fail on a Vec.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `b` as a JSON string of standard base64.
pub(crate) fn write_base64(out: &mut Vec<u8>, b: &[u8]) {
    use base64::Engine as _;
    out.push(b'"');
    let start = out.len();
    let len = base64::encoded_len(b.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(b, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + n);
    out.push(b'"');
}

/// Appends epoch milliseconds `ms` as JSON seconds with three decimals.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, ms: i64) {
    use std::io::Write as _;
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let _ = write!(out, "{secs}.{frac:03}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_in_member_order_and_last_key_wins() {
        let v = from_json(br#"{"b":1,"a":[true,null,"x",2.5],"b":3}"#).expect("json");
        assert_eq!(v.int("b"), Some(3));
        assert_eq!(
            String::from_utf8(to_json(&v)).expect("utf8"),
            r#"{"b":1,"a":[true,null,"x",2.5],"b":3}"#
        );
        assert!(from_json(b"{").is_none());
        assert_eq!(
            from_json(b"18446744073709551615"),
            Some(Value::Float(1.8446744073709552e19))
        );
    }

    #[test]
    fn bytes_and_timestamps_have_their_json_forms() {
        let v = Value::map([
            ("Data", Value::Bytes(b"hello".to_vec())),
            ("At", Value::Timestamp(1_700_000_000_123)),
            ("Gone", Value::Null),
        ]);
        assert_eq!(
            String::from_utf8(to_json(&v)).expect("utf8"),
            r#"{"Data":"aGVsbG8=","At":1700000000.123}"#
        );
    }
}
