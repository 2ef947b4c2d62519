//! CBOR (RFC 8949) for AWS CBOR 1.1: decoding requests into [`Value`], encoding responses.
//!
//! What the Java SDK and the KPL/KCL send is covered: definite and indefinite lengths (Jackson
//! writes indefinite-length maps and arrays), chunked strings, half/single/double floats, and
//! tag 1 for timestamps, which Kinesis CBOR carries as epoch **milliseconds** (an integer)
//! rather than RFC 8949's seconds. Other tags are read through to their content.
//!
//! Invariants: decoding never panics and never allocates more than the input can back (every
//! length is checked against the bytes left before anything is reserved); nesting deeper than
//! [`MAX_DEPTH`] is refused; the whole input must be exactly one item.

use crate::value::Value;

/// Deepest nesting a request may have.
pub const MAX_DEPTH: usize = 64;

/// Decodes one CBOR item that spans all of `bytes`; `None` when it is not valid CBOR.
pub fn decode(bytes: &[u8]) -> Option<Value> {
    let mut r = Reader { bytes, pos: 0 };
    let v = r.item(0)?;
    (r.pos == bytes.len()).then_some(v)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// An item head: major type and argument (`None` argument = indefinite length).
struct Head {
    major: u8,
    info: u8,
    arg: Option<u64>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn head(&mut self) -> Option<Head> {
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => Some(u64::from(info)),
            24 => Some(u64::from(self.byte()?)),
            25 => Some(u64::from(u16::from_be_bytes(
                self.take(2)?.try_into().ok()?,
            ))),
            26 => Some(u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().ok()?,
            ))),
            27 => Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            31 => None,
            _ => return None,
        };
        Some(Head { major, info, arg })
    }

    /// A length that the remaining input can hold (each element needs at least one byte).
    fn len(&self, arg: u64) -> Option<usize> {
        let n = usize::try_from(arg).ok()?;
        (n <= self.bytes.len() - self.pos).then_some(n)
    }

    fn at_break(&mut self) -> bool {
        if self.bytes.get(self.pos) == Some(&0xff) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn string_bytes(&mut self, major: u8, arg: Option<u64>) -> Option<Vec<u8>> {
        match arg {
            Some(n) => {
                let n = self.len(n)?;
                Some(self.take(n)?.to_vec())
            }
            None => {
                let mut out = Vec::new();
                while !self.at_break() {
                    let h = self.head()?;
                    if h.major != major {
                        return None;
                    }
                    let n = self.len(h.arg?)?;
                    out.extend_from_slice(self.take(n)?);
                }
                Some(out)
            }
        }
    }

    fn item(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let h = self.head()?;
        match h.major {
            0 => {
                let n = h.arg?;
                Some(i64::try_from(n).map_or(Value::Float(n as f64), Value::Int))
            }
            1 => {
                let n = h.arg?;
                Some(match i64::try_from(n) {
                    Ok(i) => Value::Int(-1 - i),
                    Err(_) => Value::Float(-1.0 - n as f64),
                })
            }
            2 => self.string_bytes(2, h.arg).map(Value::Bytes),
            3 => String::from_utf8(self.string_bytes(3, h.arg)?)
                .ok()
                .map(Value::Str),
            4 => {
                let mut items = Vec::new();
                match h.arg {
                    Some(n) => {
                        let n = self.len(n)?;
                        items.reserve(n.min(4096));
                        for _ in 0..n {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    None => {
                        while !self.at_break() {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                }
                Some(Value::Array(items))
            }
            5 => {
                let mut members = Vec::new();
                let mut member = |r: &mut Self| -> Option<()> {
                    let Value::Str(k) = r.item(depth + 1)? else {
                        return None;
                    };
                    let v = r.item(depth + 1)?;
                    members.push((k, v));
                    Some(())
                };
                match h.arg {
                    Some(n) => {
                        let n = self.len(n)?;
                        for _ in 0..n {
                            member(self)?;
                        }
                    }
                    None => {
                        while !self.at_break() {
                            member(self)?;
                        }
                    }
                }
                Some(Value::Map(members))
            }
            6 => {
                let tag = h.arg?;
                let inner = self.item(depth + 1)?;
                Some(match (tag, inner) {
                    (1, Value::Int(ms)) => Value::Timestamp(ms),
                    (1, Value::Float(ms)) if ms.is_finite() => Value::Timestamp(ms as i64),
                    (_, v) => v,
                })
            }
            _ => match (h.info, h.arg) {
                (20, _) => Some(Value::Bool(false)),
                (21, _) => Some(Value::Bool(true)),
                (22 | 23, _) => Some(Value::Null),
                (25, Some(bits)) => Some(Value::Float(f16_to_f64(bits as u16))),
                (26, Some(bits)) => Some(Value::Float(f64::from(f32::from_bits(bits as u32)))),
                (27, Some(bits)) => Some(Value::Float(f64::from_bits(bits))),
                _ => None,
            },
        }
    }
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Encodes `v` as CBOR (definite lengths; timestamps as tag 1 with epoch milliseconds).
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, v);
    out
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        head(out, 0, i as u64);
    } else {
        head(out, 1, (-1 - i) as u64);
    }
}

fn write(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Int(i) => int(out, *i),
        Value::Float(f) => {
            out.push(0xfb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Str(s) => {
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Timestamp(ms) => {
            out.push(0xc1);
            int(out, *ms);
        }
        Value::Array(items) => {
            head(out, 4, items.len() as u64);
            for i in items {
                write(out, i);
            }
        }
        Value::Map(members) => {
            head(out, 5, members.len() as u64);
            for (k, v) in members {
                head(out, 3, k.len() as u64);
                out.extend_from_slice(k.as_bytes());
                write(out, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_rfc_8949_examples() {
        let cases: Vec<(&[u8], Value)> = vec![
            (&[0x00], Value::Int(0)),
            (&[0x18, 0x64], Value::Int(100)),
            (&[0x39, 0x03, 0xe7], Value::Int(-1000)),
            (&[0xf9, 0x3c, 0x00], Value::Float(1.0)),
            (&[0xf9, 0xc4, 0x00], Value::Float(-4.0)),
            (&[0xfa, 0x47, 0xc3, 0x50, 0x00], Value::Float(100000.0)),
            (&[0xf5], Value::Bool(true)),
            (&[0xf6], Value::Null),
            (&[0x44, 1, 2, 3, 4], Value::Bytes(vec![1, 2, 3, 4])),
            (&[0x62, 0xc3, 0xbc], Value::s("ü")),
            (
                &[0x5f, 0x42, 1, 2, 0x43, 3, 4, 5, 0xff],
                Value::Bytes(vec![1, 2, 3, 4, 5]),
            ),
            (
                &[
                    0x7f, 0x65, b's', b't', b'r', b'e', b'a', 0x64, b'm', b'i', b'n', b'g', 0xff,
                ],
                Value::s("streaming"),
            ),
            (
                &[
                    0xbf, 0x61, b'a', 0x01, 0x61, b'b', 0x9f, 0x02, 0x03, 0xff, 0xff,
                ],
                Value::Map(vec![
                    ("a".into(), Value::Int(1)),
                    ("b".into(), Value::Array(vec![Value::Int(2), Value::Int(3)])),
                ]),
            ),
            (
                &[0xc1, 0x1b, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00],
                Value::Timestamp(1_700_000_000_000),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode(bytes), Some(want), "{bytes:02x?}");
        }
    }

    #[test]
    fn refuses_truncated_trailing_and_absurd_input() {
        assert_eq!(decode(&[0x44, 1, 2]), None, "truncated bytes");
        assert_eq!(decode(&[0x01, 0x02]), None, "trailing item");
        assert_eq!(
            decode(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None,
            "huge array"
        );
        assert_eq!(decode(&[0xa1, 0x01, 0x02]), None, "non-string key");
        assert_eq!(decode(&[0x81; 200]), None, "too deep");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn encoded_values_decode_back(
            s in ".{0,40}", b in proptest::collection::vec(any::<u8>(), 0..64),
            i in any::<i64>(), t in -10_000_000_000_000i64..10_000_000_000_000,
        ) {
            let v = Value::Map(vec![
                ("s".into(), Value::Str(s)),
                ("b".into(), Value::Bytes(b)),
                ("i".into(), Value::Int(i)),
                ("t".into(), Value::Timestamp(t)),
                ("a".into(), Value::Array(vec![Value::Bool(true), Value::Null, Value::Float(1.5)])),
            ]);
            prop_assert_eq!(decode(&encode(&v)), Some(v));
        }
    }
}
