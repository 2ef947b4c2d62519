//! A single-pass reader for the plain JSON objects collectors write.
//!
//! Every consumer parses every record, so parsing is paid once per consumer per event. This
//! reader takes the common shape (a flat object of strings without escapes, numbers and
//! `null`, keys in any order, any JSON whitespace) straight into a [`MetricEvent`]; the
//! `serde` path then only sees what it declines. It declines (returns `None`) whenever it
//! could disagree with that path: an escape or control character in a string, a nested
//! value, a duplicate or missing field, a number out of `i64` range or not finite, an
//! unknown metric type or unit. So for every input it accepts, the event equals what
//! `serde_json` builds, except that `value` is rounded exactly (the standard library's
//! correctly rounded parse), where `serde_json`'s default float parse may differ in the
//! last bits.

use super::{MetricEvent, MetricType, Unit};

/// The event in `text`, or `None` when the `serde` path must decide.
pub(super) fn scan(text: &str) -> Option<MetricEvent> {
    let mut s = Scanner {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    let mut metric_id = None;
    let mut metric_type = None;
    let mut timestamp = None;
    let mut timestamp_ms: Option<Option<i64>> = None;
    let mut value = None;
    let mut unit: Option<Option<Unit>> = None;
    let mut instance_id = None;
    let mut region = None;
    let mut collected_at = None;

    s.expect(b'{')?;
    if s.peek()? == b'}' {
        return None;
    }
    // Collectors write the keys in this order (optional ones may be absent): compare the
    // next of them as a whole before reading a key byte by byte. Once a key is not among
    // them, the rest are read.
    let mut expected = WRITTEN_ORDER.iter();
    loop {
        let rest = &s.bytes[s.pos..];
        let key = match expected.find(|(_, quoted)| rest.starts_with(quoted.as_bytes())) {
            Some(&(name, quoted)) => {
                s.pos += quoted.len();
                name
            }
            None => s.string()?,
        };
        s.expect(b':')?;
        match key {
            "metric_id" => set(&mut metric_id, s.string()?.to_owned())?,
            "metric_type" => set(&mut metric_type, metric_type_of(s.string()?)?)?,
            "timestamp" => set(&mut timestamp, s.integer()?)?,
            "timestamp_ms" => set(&mut timestamp_ms, s.null_or(Scanner::integer)?)?,
            "value" => set(&mut value, s.value()?)?,
            "unit" => set(
                &mut unit,
                s.null_or(|s: &mut Scanner<'_>| unit_of(s.string()?))?,
            )?,
            "instance_id" => set(&mut instance_id, s.string()?.to_owned())?,
            "region" => set(&mut region, s.string()?.to_owned())?,
            "collected_at" => set(&mut collected_at, s.string()?.to_owned())?,
            _ => s.skip_scalar()?,
        }
        match s.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    s.skip_whitespace();
    if s.pos != s.bytes.len() {
        return None;
    }
    Some(MetricEvent {
        metric_id: metric_id?,
        metric_type: metric_type?,
        timestamp: timestamp?,
        timestamp_ms: timestamp_ms.flatten(),
        value: value?,
        unit: unit.flatten(),
        instance_id: instance_id?,
        region: region?,
        collected_at: collected_at?,
    })
}

/// The fields in the order `MetricEvent`'s `Serialize` writes them, with their quoted keys.
const WRITTEN_ORDER: [(&str, &str); 9] = [
    ("metric_id", "\"metric_id\""),
    ("metric_type", "\"metric_type\""),
    ("timestamp", "\"timestamp\""),
    ("timestamp_ms", "\"timestamp_ms\""),
    ("value", "\"value\""),
    ("unit", "\"unit\""),
    ("instance_id", "\"instance_id\""),
    ("region", "\"region\""),
    ("collected_at", "\"collected_at\""),
];

/// Fills a field seen for the first time; a second occurrence declines.
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

fn metric_type_of(name: &str) -> Option<MetricType> {
    MetricType::ALL.into_iter().find(|t| t.as_str() == name)
}

fn unit_of(name: &str) -> Option<Unit> {
    [Unit::Percent, Unit::MegabitsPerSecond]
        .into_iter()
        .find(|u| u.as_str() == name)
}

/// The index of the first `"`, `\\` or control character in `bytes`: eight bytes at a time
/// (the usual bit tricks on a `u64`), then the tail one by one.
fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `x - ONES * n` has its high bit set (where `x` had not) iff it was below n.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let found = below(x, 0x20)
            | below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte that is not whitespace, left in place.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.pos).copied()
    }

    /// The next byte that is not whitespace, taken.
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string without escapes or control characters, as a slice of the input.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let end = start + special_byte(&self.bytes[start..])?;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        // `start` and `end` sit next to ASCII quotes, so both are character boundaries.
        self.text.get(start..end)
    }

    /// `null`, or what `read` reads.
    fn null_or<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.skip_whitespace();
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| self.pos = end)
    }

    /// The text of a JSON number (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`) and
    /// whether it is an integer.
    fn number(&mut self) -> Option<(&'a str, bool)> {
        self.skip_whitespace();
        let start = self.pos;
        let digits = |s: &mut Self| {
            let from = s.pos;
            while s.bytes.get(s.pos).is_some_and(u8::is_ascii_digit) {
                s.pos += 1;
            }
            s.pos > from
        };
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let integer_part = self.pos;
        // No leading zeros: `0` alone, or a digit 1-9 first.
        if !digits(self) || (self.bytes[integer_part] == b'0' && self.pos - integer_part > 1) {
            return None;
        }
        let mut integer = true;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            integer = false;
            if !digits(self) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        Some((&self.text[start..self.pos], integer))
    }

    fn integer(&mut self) -> Option<i64> {
        match self.number()? {
            (text, true) => text.parse().ok(),
            _ => None,
        }
    }

    /// `value`: a JSON number, or a decimal string as the seed wrote it; finite only.
    fn value(&mut self) -> Option<f64> {
        let v = if self.peek()? == b'"' {
            self.string()?.trim().parse::<f64>().ok()?
        } else {
            self.number()?.0.parse::<f64>().ok()?
        };
        v.is_finite().then_some(v)
    }

    /// The value of a field the event does not have: a string, number, `true`, `false` or
    /// `null` (`serde` ignores it too); anything nested declines.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number().map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::EventError;
    use proptest::prelude::*;

    /// `from_json` as it was before this reader: `serde` first, then the checked path.
    fn reference(text: &str) -> Result<MetricEvent, EventError> {
        match serde_json::from_str::<MetricEvent>(text) {
            Ok(event) => event.validate().map(|()| event),
            Err(_) => MetricEvent::from_json_checked(text.as_bytes()),
        }
    }

    fn collector_event(i: i64) -> MetricEvent {
        MetricEvent {
            metric_id: format!("cpu-{}", 1_764_000_000 + i),
            metric_type: MetricType::CpuUtilization,
            timestamp: 1_764_000_000 + i,
            timestamp_ms: Some((1_764_000_000 + i) * 1000 + 123),
            value: 20.0 + i as f64 / 7.0,
            unit: Some(Unit::Percent),
            instance_id: format!("i-{i:06}"),
            region: "eu-west-1".into(),
            collected_at: "2025-11-24T16:00:00.123456+00:00".into(),
        }
    }

    #[test]
    fn collector_records_are_read_in_one_pass() {
        for i in 0..200 {
            let event = collector_event(i);
            let json = String::from_utf8(event.to_json()).unwrap();
            assert_eq!(scan(&json), Some(event), "{json}");
        }
        let seed = r#" { "metric_id" : "mem-1771500309", "metric_type":"memory_usage",
            "timestamp":1771500309, "value":"  42.5 ", "instance_id":"i-573923",
            "region":"eu-west-1", "collected_at":"2026-02-19T11:25:09", "note": "x",
            "n": -1.5e3, "t": true, "f": false, "z": null, "unit": null, "timestamp_ms": null } "#;
        let event = scan(seed).unwrap();
        assert_eq!(event.value, 42.5);
        assert_eq!(event.unit, None);
        assert_eq!(event.timestamp_ms, None);
        assert_eq!(Ok(event), reference(seed));
    }

    #[test]
    fn what_it_cannot_be_sure_of_is_left_to_serde() {
        let good = String::from_utf8(collector_event(1).to_json()).unwrap();
        let declined = [
            good.replace("i-000001", "i-\\u0030"),
            good.replace("eu-west-1", "eu\\nwest"),
            good.replace("eu-west-1", "eu\twest"),
            good.replace(
                "2025-11-24T16:00:00.123456+00:00",
                "2025-11-24T16:00:00.12345\u{1}",
            ),
            good.replace("\"region\"", "\"nested\":{\"a\":1},\"region\""),
            good.replace("\"region\"", "\"list\":[1],\"region\""),
            good.replace(
                "\"region\":\"eu-west-1\"",
                "\"region\":\"a\",\"region\":\"b\"",
            ),
            good.replace(",\"region\":\"eu-west-1\"", ""),
            good.replace("1764000001,", "01764000001,"),
            good.replace("1764000001,", "1764000001.0,"),
            good.replace("cpu_utilization", "gpu"),
            good.replace("Percent", "percent"),
            format!("{good}x"),
            format!("{good},"),
            "{}".to_string(),
            "[]".to_string(),
            good.replace("\"value\":20.142857142857142", "\"value\":1e999"),
            good.replace("\"value\":20.142857142857142", "\"value\":\"inf\""),
            good.replace("\"value\":20.142857142857142", "\"value\":-"),
            good.replace("\"value\":20.142857142857142", "\"value\":2."),
        ];
        for json in declined {
            assert!(scan(&json).is_none(), "should decline {json}");
            assert_eq!(
                MetricEvent::from_json(json.as_bytes()),
                reference(&json),
                "{json}"
            );
        }
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-z0-9 _:./\\-]{0,10}|[a-z\"\\\\\n\u{e9}\u{1F600}]{0,6}"
    }

    fn field(
        name: &'static str,
        value: impl Strategy<Value = String> + 'static,
    ) -> BoxedStrategy<String> {
        value.prop_map(move |v| format!("\"{name}\":{v}")).boxed()
    }

    fn quoted(s: String) -> String {
        serde_json::to_string(&s).unwrap()
    }

    fn record() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            (0.0..120.0f64).prop_map(|v| serde_json::to_string(&v).unwrap()),
            any::<f64>().prop_map(|v| serde_json::to_string(&v).unwrap()),
            (0u32..1000).prop_map(|v| v.to_string()),
            (0.0..120.0f64).prop_map(|v| format!("\" {v} \"")),
            Just("null".to_string()),
        ];
        let seconds = prop_oneof![
            (1i64..2_000_000_000).prop_map(|v| v.to_string()),
            any::<i64>().prop_map(|v| v.to_string()),
            Just("1.5".to_string()),
        ];
        let millis = prop_oneof![
            (1_000i64..2_000_000_000_000).prop_map(|v| v.to_string()),
            Just("null".to_string()),
        ];
        let kind = prop_oneof![
            Just("\"cpu_utilization\""),
            Just("\"network_traffic\""),
            Just("\"disk_usage\""),
            Just("\"gpu\""),
            Just("null"),
        ]
        .prop_map(str::to_string);
        let unit = prop_oneof![
            Just("\"Percent\""),
            Just("\"Megabits/Second\""),
            Just("\"Megabits\\/Second\""),
            Just("\"bytes\""),
            Just("null"),
        ]
        .prop_map(str::to_string);
        let extra = prop_oneof![
            Just("1"),
            Just("true"),
            Just("null"),
            Just("\"x\""),
            Just("[1]"),
            Just("{\"a\":1}"),
        ]
        .prop_map(str::to_string);
        let fields = vec![
            field("metric_id", text().prop_map(quoted)),
            field("metric_type", kind),
            field("timestamp", seconds),
            field("timestamp_ms", millis),
            field("value", number),
            field("unit", unit),
            field("instance_id", text().prop_map(quoted)),
            field("region", text().prop_map(quoted)),
            field("collected_at", text().prop_map(quoted)),
            field("extra", extra),
        ];
        let space = prop_oneof![Just(""), Just(" "), Just("\n\t"), Just("\r\n ")];
        (
            fields,
            proptest::collection::vec(any::<bool>(), 10),
            proptest::collection::vec(space, 4),
        )
            .prop_flat_map(|(fields, keep, space)| {
                let kept: Vec<String> = fields
                    .into_iter()
                    .zip(keep)
                    .enumerate()
                    // Usually every field: drop one now and then.
                    .filter(|(i, (_, k))| *k || *i % 3 != 0)
                    .map(|(_, (f, _))| f)
                    .collect();
                (Just(kept).prop_shuffle(), Just(space))
            })
            .prop_map(|(fields, space)| {
                let sep = format!("{},{}", space[0], space[1]);
                format!(
                    "{}{{{}{}{}}}{}",
                    space[2],
                    space[3],
                    fields.join(&sep),
                    space[1],
                    space[0]
                )
            })
    }

    proptest! {
        #[test]
        fn special_bytes_are_found_where_they_are(
            bytes in proptest::collection::vec(
                prop_oneof![0x20u8..0x7f, Just(b'"'), Just(b'\\'), 0u8..0x20, 0x80u8..=0xff],
                0..40,
            )
        ) {
            let naive = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(special_byte(&bytes), naive);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever the record, `from_json` decides as before; where this reader accepts,
        /// its event is `serde`'s (the value to the last bits, see the module docs).
        #[test]
        fn decides_like_serde(json in record()) {
            let now = MetricEvent::from_json(json.as_bytes());
            let before = reference(&json);
            match (&now, &before) {
                (Ok(a), Ok(b)) => {
                    // serde_json's default float parse is off by a few units in the last
                    // place at extreme exponents; the standard library's is exact.
                    let ulps = (a.value.to_bits() as i64 - b.value.to_bits() as i64).abs();
                    prop_assert!(ulps <= 4, "{} vs {} in {}", a.value, b.value, json);
                    let a = MetricEvent { value: b.value, ..a.clone() };
                    prop_assert_eq!(&a, b, "{}", json);
                }
                (Err(a), Err(b)) => prop_assert_eq!(
                    std::mem::discriminant(a), std::mem::discriminant(b), "{} / {} in {}", a, b, json
                ),
                _ => prop_assert!(false, "{:?} vs {:?} for {}", now, before, json),
            }
            if let Some(event) = scan(&json) {
                prop_assert_eq!(event.validate().map(|()| event), now, "{}", json);
            }
        }
    }
}
