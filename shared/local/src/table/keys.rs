//! Order-preserving binary encoding of item keys.
//!
//! An item's redb key is `encode(partition) ++ encode(sort)`. Each component is
//! self-delimiting, so byte order of the concatenation is (partition, sort) order, and
//! every key of one partition shares the prefix `encode(partition)`.
//!
//! - String (`S`): the UTF-8 bytes with `0x00` escaped as `0x00 0xFF`, then `0x00 0x01`.
//!   Byte order equals string order.
//! - Number (`N`): DynamoDB numbers are decimals of up to 38 significant digits. Written as
//!   `0.d1d2…dn × 10^e` with `d1 ≠ 0` and no trailing zero digits:
//!   - zero: `0x02`;
//!   - positive: `0x03`, `e` as a big-endian `i32` with its sign bit flipped, each digit as
//!     `digit + 1`, then `0x00`;
//!   - negative: `0x01` followed by the positive encoding of `|x|` with every byte inverted.
//!
//!   Byte order equals numeric order, including negatives and fractions; `1`, `1.0` and
//!   `10e-1` encode identically, as DynamoDB treats them as the same key.

use shardline_core::Error;
use shardline_core::ports::{AttrRef, AttributeValue, KeyType};

/// Most significant digits of a DynamoDB number.
pub const MAX_DIGITS: usize = 38;

/// Appends the encoding of a key attribute of type `ty` to `out`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming `attr` when the value is not of type `ty` or not a number.
pub fn encode_key(
    out: &mut Vec<u8>,
    attr: &str,
    ty: KeyType,
    value: &AttributeValue,
) -> Result<(), Error> {
    match value.attr_ref() {
        Some(v) => encode_key_ref(out, attr, ty, v),
        None => Err(Error::InvalidArgument(format!(
            "key attribute {attr:?} must be of type {ty:?}, got {value:?}"
        ))),
    }
}

/// [`encode_key`] of a lent value.
///
/// # Errors
/// As [`encode_key`].
pub fn encode_key_ref(
    out: &mut Vec<u8>,
    attr: &str,
    ty: KeyType,
    value: AttrRef<'_>,
) -> Result<(), Error> {
    match (ty, value) {
        (KeyType::S, AttrRef::S(s)) => {
            encode_str(out, s);
            Ok(())
        }
        (KeyType::N, AttrRef::N(n)) => encode_number(out, n)
            .map_err(|why| Error::InvalidArgument(format!("key attribute {attr:?}: {why}"))),
        (ty, other) => Err(Error::InvalidArgument(format!(
            "key attribute {attr:?} must be of type {ty:?}, got {:?}",
            other.to_value()
        ))),
    }
}

/// Appends the string encoding.
pub fn encode_str(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Appends the number encoding of the decimal text `n`.
///
/// # Errors
/// A sentence saying why `n` is not a DynamoDB number.
pub fn encode_number(out: &mut Vec<u8>, n: &str) -> Result<(), String> {
    if encode_plain_integer(out, n) {
        return Ok(());
    }
    let (negative, digits, exp) = parse_decimal(n)?;
    if digits.is_empty() {
        out.push(0x02);
        return Ok(());
    }
    let mut body = Vec::with_capacity(digits.len() + 5);
    body.extend_from_slice(&((exp as u32) ^ 0x8000_0000).to_be_bytes());
    body.extend(digits.iter().map(|d| d + 1));
    body.push(0x00);
    if negative {
        out.push(0x01);
        out.extend(body.iter().map(|b| !b));
    } else {
        out.push(0x03);
        out.extend_from_slice(&body);
    }
    Ok(())
}

/// [`encode_number`] of a plain non-negative integer (digits only, at most 38 of them after
/// leading zeros, such as a millisecond timestamp) without parsing it into a digit list.
/// Returns `false`, writing nothing, for any other text.
fn encode_plain_integer(out: &mut Vec<u8>, n: &str) -> bool {
    let bytes = n.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let Some(first) = bytes.iter().position(|&d| d != b'0') else {
        out.push(0x02);
        return true;
    };
    let significant = &bytes[first..];
    let last = significant.iter().rposition(|&d| d != b'0').unwrap_or(0);
    let (Ok(exp), true) = (u32::try_from(significant.len()), last < MAX_DIGITS) else {
        return false;
    };
    if exp > 126 {
        return false;
    }
    out.push(0x03);
    out.extend_from_slice(&(exp ^ 0x8000_0000).to_be_bytes());
    out.extend(significant[..=last].iter().map(|d| d - b'0' + 1));
    out.push(0x00);
    true
}

/// Parses decimal text into (negative, significant digits, exponent) with the value
/// `±0.d1d2… × 10^exp`; zero has no digits.
fn parse_decimal(n: &str) -> Result<(bool, Vec<u8>, i32), String> {
    let bad = |why: &str| format!("{n:?} is not a number: {why}");
    let (negative, rest) = match n.as_bytes().first() {
        Some(b'-') => (true, &n[1..]),
        Some(b'+') => (false, &n[1..]),
        _ => (false, n),
    };
    let (mantissa, exp_text) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let exp10: i32 = match exp_text {
        Some(t) => t
            .parse()
            .map_err(|_| bad("the exponent is not an integer"))?,
        None => 0,
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad("expected digits"));
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err(bad(
            "expected decimal digits, '.', and an optional exponent",
        ));
    }
    let all: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let Some(first) = all.iter().position(|&d| d != 0) else {
        return Ok((false, Vec::new(), 0));
    };
    let last = all.iter().rposition(|&d| d != 0).unwrap_or(first);
    let digits = all[first..=last].to_vec();
    if digits.len() > MAX_DIGITS {
        return Err(bad("more than 38 significant digits"));
    }
    // Value = 0.all × 10^(int_len); dropping `first` leading zeros shifts the exponent.
    let int_len = i32::try_from(int_part.len()).map_err(|_| bad("too long"))?;
    let lead = i32::try_from(first).map_err(|_| bad("too long"))?;
    let exp = int_len
        .checked_sub(lead)
        .and_then(|e| e.checked_add(exp10))
        .ok_or_else(|| bad("exponent out of range"))?;
    if !(-130..=126).contains(&exp) {
        return Err(bad("magnitude outside DynamoDB's range (1e-130 to 1e126)"));
    }
    Ok((negative, digits, exp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(n: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_number(&mut out, n).unwrap();
        out
    }

    /// The general path, without the plain-integer shortcut.
    fn enc_general(n: &str) -> Vec<u8> {
        let (negative, digits, exp) = parse_decimal(n).unwrap();
        assert!(!negative);
        let mut out = Vec::new();
        if digits.is_empty() {
            out.push(0x02);
        } else {
            out.push(0x03);
            out.extend_from_slice(&((exp as u32) ^ 0x8000_0000).to_be_bytes());
            out.extend(digits.iter().map(|d| d + 1));
            out.push(0x00);
        }
        out
    }

    proptest! {
        #[test]
        fn plain_integers_take_the_shortcut_to_the_same_bytes(v in any::<u64>(), zeros in 0usize..3) {
            let text = format!("{}{v}", "0".repeat(zeros));
            let mut fast = Vec::new();
            prop_assert!(encode_plain_integer(&mut fast, &text));
            prop_assert_eq!(fast, enc_general(&text));
        }
    }

    #[test]
    fn the_shortcut_leaves_everything_else_to_the_general_path() {
        for n in ["-1", "1.5", "1e3", "", "+7", "12a"] {
            let mut out = Vec::new();
            assert!(!encode_plain_integer(&mut out, n), "{n}");
            assert!(out.is_empty());
        }
        let long = "9".repeat(39);
        assert!(!encode_plain_integer(&mut Vec::new(), &long));
        assert!(
            encode_number(&mut Vec::new(), &long).is_err(),
            "39 digits are refused"
        );
        assert_eq!(enc("1000"), enc_general("1000"));
        assert_eq!(enc("0"), vec![0x02]);
    }

    #[test]
    fn equal_numbers_encode_equally() {
        assert_eq!(enc("1"), enc("1.0"));
        assert_eq!(enc("1"), enc("10e-1"));
        assert_eq!(enc("0"), enc("-0.000"));
        assert_eq!(enc("-12.5"), enc("-1.25e1"));
    }

    #[test]
    fn ordering_of_hand_picked_numbers() {
        let sorted = [
            "-1e10",
            "-100",
            "-12.5",
            "-12.25",
            "-1",
            "-0.5",
            "-0.05",
            "0",
            "0.001",
            "0.5",
            "1",
            "1.5",
            "9",
            "10",
            "12.25",
            "12.5",
            "100",
            "1700000000",
            "1e20",
        ];
        for pair in sorted.windows(2) {
            assert!(enc(pair[0]) < enc(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn rejects_non_numbers() {
        for bad in [
            "",
            "-",
            "abc",
            "1.2.3",
            "NaN",
            "inf",
            "1e",
            "1e999999999999",
        ] {
            assert!(encode_number(&mut Vec::new(), bad).is_err(), "{bad:?}");
        }
        let long = "1".repeat(39);
        assert!(encode_number(&mut Vec::new(), &long).is_err());
    }

    #[test]
    fn strings_with_nul_stay_ordered() {
        let e = |s: &str| {
            let mut v = Vec::new();
            encode_str(&mut v, s);
            v
        };
        assert!(e("a") < e("a\0"));
        assert!(e("a\0") < e("a\0b"));
        assert!(e("a\0b") < e("ab"));
        assert!(e("ab") < e("b"));
    }

    proptest! {
        #[test]
        fn byte_order_is_numeric_order(a in -1.0e12f64..1.0e12, b in -1.0e12f64..1.0e12) {
            let (ta, tb) = (format!("{a}"), format!("{b}"));
            let (ea, eb) = (enc(&ta), enc(&tb));
            prop_assert_eq!(ea.cmp(&eb), a.partial_cmp(&b).unwrap(), "{} vs {}", ta, tb);
        }

        #[test]
        fn integers_order(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(enc(&a.to_string()).cmp(&enc(&b.to_string())), a.cmp(&b));
        }
    }
}
