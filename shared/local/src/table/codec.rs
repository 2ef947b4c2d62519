//! The stored form of an item: a compact binary encoding (earlier forms are still read).
//!
//! Layout (all lengths and numbers LEB128 varints):
//! `0xB2`, attribute count, then per attribute in name order: the name, a tag (`1` S, `2` N,
//! `3` B, `4` Bool, `5` Null), and for S/N/B the value's length and bytes, for Bool one byte
//! (0 or 1). A name is `k ≥ 1` for the `k`-th entry of [`KNOWN_NAMES`], or `0` followed by its
//! length and bytes. The pipeline's item attributes are all known names, so an item stores
//! none of its attribute names (about 45% of an InfraMetrics item's bytes).
//!
//! Earlier forms: `0xB1`, the same with every name written out (length, bytes); and JSON
//! (`{"attr": {"S": "…"}}`), which starts with `{`.

use shardline_core::ports::{AttrName, AttrRef, AttributeValue, Item};

/// First byte of a binary item with every name written out (read only).
const BINARY_V1: u8 = 0xB1;
/// First byte of a binary item with known names as numbers.
const BINARY_V2: u8 = 0xB2;

/// Attribute names stored as their position (from 1) in this list. Entries are only ever
/// appended: a stored number must keep naming the same attribute.
pub const KNOWN_NAMES: [&str; 13] = [
    "metric_id",
    "timestamp",
    "seed_metric_id",
    "epoch_seconds",
    "metric_type",
    "value",
    "unit",
    "instance_id",
    "region",
    "collected_at",
    "shard_id",
    "sequence_number",
    "arrival_ms",
];

fn known_name(name: &str) -> Option<usize> {
    // A match compiles to a length switch and one comparison, not a scan of the list.
    let k = match name {
        "metric_id" => 1,
        "timestamp" => 2,
        "seed_metric_id" => 3,
        "epoch_seconds" => 4,
        "metric_type" => 5,
        "value" => 6,
        "unit" => 7,
        "instance_id" => 8,
        "region" => 9,
        "collected_at" => 10,
        "shard_id" => 11,
        "sequence_number" => 12,
        "arrival_ms" => 13,
        _ => return None,
    };
    Some(k)
}

const TAG_S: u8 = 1;
const TAG_N: u8 = 2;
const TAG_B: u8 = 3;
const TAG_BOOL: u8 = 4;
const TAG_NULL: u8 = 5;

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends a value's tag and bytes.
fn put_value(out: &mut Vec<u8>, value: &AttributeValue) {
    match value {
        AttributeValue::S(s) => {
            out.push(TAG_S);
            put_bytes(out, s.as_bytes());
        }
        AttributeValue::N(n) => {
            out.push(TAG_N);
            put_bytes(out, n.as_bytes());
        }
        AttributeValue::B(b) => {
            out.push(TAG_B);
            put_bytes(out, b);
        }
        AttributeValue::Bool(b) => {
            out.push(TAG_BOOL);
            out.push(u8::from(*b));
        }
        AttributeValue::Null => out.push(TAG_NULL),
    }
}

/// Encodes an item.
pub fn encode(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(item, &mut out);
    out
}

/// [`encode`], appending to `out`.
pub fn encode_into(item: &Item, out: &mut Vec<u8>) {
    let size: usize = item
        .values()
        .map(|v| {
            8 + match v {
                AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                AttributeValue::B(b) => b.len(),
                AttributeValue::Bool(_) | AttributeValue::Null => 1,
            }
        })
        .sum();
    out.reserve(size + 4);
    out.push(BINARY_V2);
    put_varint(out, item.len());
    for (name, value) in item {
        match known_name(name) {
            Some(k) => put_varint(out, k),
            None => {
                out.push(0);
                put_bytes(out, name.as_bytes());
            }
        }
        put_value(out, value);
    }
}

/// Starts an item written attribute by attribute ([`put_attr`], in name order); returns
/// where its attribute count goes, for [`set_count`].
pub fn start(out: &mut Vec<u8>) -> usize {
    out.push(BINARY_V2);
    out.push(0);
    out.len() - 1
}

/// Writes the attribute count of an item begun with [`start`]. Returns `false` when the count
/// does not fit the one byte [`start`] left (128 attributes or more): encode the item whole
/// with [`encode_into`] instead.
pub fn set_count(out: &mut [u8], at: usize, count: usize) -> bool {
    match (u8::try_from(count), out.get_mut(at)) {
        (Ok(c), Some(slot)) if c < 0x80 => {
            *slot = c;
            true
        }
        _ => false,
    }
}

/// Appends one attribute of an item begun with [`start`]; the bytes are those
/// [`encode_into`] writes for the same attribute. Returns the name's number (from 1) when it
/// is one of [`KNOWN_NAMES`].
pub fn put_attr(out: &mut Vec<u8>, name: &str, value: AttrRef<'_>) -> Option<usize> {
    let known = known_name(name);
    match known {
        Some(k) => put_varint(out, k),
        None => {
            out.push(0);
            put_bytes(out, name.as_bytes());
        }
    }
    let (tag, text) = match value {
        AttrRef::S(s) => (TAG_S, s),
        AttrRef::N(n) => (TAG_N, n),
    };
    out.push(tag);
    put_bytes(out, text.as_bytes());
    known
}

/// `a < b` in byte order, usable in constants.
const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// `KNOWN_RANKS[k]`: where known name number `k` (from 1) sorts among [`KNOWN_NAMES`], so
/// two known names compare as two numbers.
pub const KNOWN_RANKS: [u8; KNOWN_NAMES.len() + 1] = {
    let mut ranks = [0u8; KNOWN_NAMES.len() + 1];
    let mut k = 0;
    while k < KNOWN_NAMES.len() {
        let mut below = 0u8;
        let mut j = 0;
        while j < KNOWN_NAMES.len() {
            if str_less(KNOWN_NAMES[j], KNOWN_NAMES[k]) {
                below += 1;
            }
            j += 1;
        }
        ranks[k + 1] = below;
        k += 1;
    }
    ranks
};

/// Reads the stored bytes front to back.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| format!("item ends early at byte {}", self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<usize, String> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!("length at byte {} is too long", self.at))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let end = self
            .at
            .checked_add(len)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| format!("a {len}-byte field at byte {} runs past the item", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn text(&mut self) -> Result<String, String> {
        let at = self.at;
        let raw = self.bytes()?;
        String::from_utf8(raw.to_vec()).map_err(|_| format!("text at byte {at} is not UTF-8"))
    }
}

/// Decodes a stored item (binary, or JSON as earlier versions stored it). The error says what
/// is wrong, for a corruption report.
pub fn decode(bytes: &[u8]) -> Result<Item, String> {
    let names_known = match bytes.first() {
        Some(&BINARY_V2) => true,
        Some(&BINARY_V1) => false,
        Some(b'{') => {
            return serde_json::from_slice(bytes).map_err(|e| format!("JSON item: {e}"));
        }
        Some(b) => return Err(format!("unknown item format (first byte {b:#04x})")),
        None => return Err("empty item".into()),
    };
    let mut r = Reader { bytes, at: 1 };
    let count = r.varint()?;
    let mut item = Item::with_capacity(count.min(KNOWN_NAMES.len()));
    for _ in 0..count {
        let name: AttrName = if names_known {
            let at = r.at;
            match r.varint()? {
                0 => r.text()?.into(),
                k => KNOWN_NAMES
                    .get(k - 1)
                    .copied()
                    .ok_or_else(|| format!("unknown attribute name number {k} at byte {at}"))?
                    .into(),
            }
        } else {
            r.text()?.into()
        };
        let tag_at = r.at;
        let value = match r.byte()? {
            TAG_S => AttributeValue::S(r.text()?),
            TAG_N => AttributeValue::N(r.text()?),
            TAG_B => AttributeValue::B(r.bytes()?.to_vec()),
            TAG_BOOL => AttributeValue::Bool(r.byte()? != 0),
            TAG_NULL => AttributeValue::Null,
            t => return Err(format!("unknown value tag {t} at byte {tag_at}")),
        };
        item.insert(name, value);
    }
    if r.at != bytes.len() {
        return Err(format!(
            "{} bytes left after the last attribute",
            bytes.len() - r.at
        ));
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Item {
        Item::from([
            (
                "metric_id".to_string(),
                AttributeValue::S("cpu-i-000001".into()),
            ),
            (
                "timestamp".to_string(),
                AttributeValue::N("1771500000123".into()),
            ),
            ("value".to_string(), AttributeValue::N("45.25".into())),
            ("blob".to_string(), AttributeValue::B((0..=255).collect())),
            ("ok".to_string(), AttributeValue::Bool(true)),
            ("no".to_string(), AttributeValue::Bool(false)),
            ("nothing".to_string(), AttributeValue::Null),
            ("long".to_string(), AttributeValue::S("é".repeat(300))),
        ])
    }

    #[test]
    fn every_value_kind_round_trips_and_is_smaller_than_json() {
        let item = sample();
        let bytes = encode(&item);
        assert_eq!(decode(&bytes), Ok(item.clone()));
        let json = serde_json::to_vec(&item).expect("json");
        assert!(
            bytes.len() < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
        assert_eq!(decode(&encode(&Item::new())), Ok(Item::new()));
    }

    #[test]
    fn known_ranks_order_known_names_as_their_text() {
        let mut sorted: Vec<&str> = KNOWN_NAMES.to_vec();
        sorted.sort_unstable();
        for (i, name) in KNOWN_NAMES.iter().enumerate() {
            let rank = sorted.iter().position(|n| n == name).expect("listed");
            assert_eq!(usize::from(KNOWN_RANKS[i + 1]), rank, "{name}");
        }
    }

    #[test]
    fn known_names_are_stored_as_numbers_and_others_written_out() {
        let item = Item::from([
            ("metric_id".to_string(), AttributeValue::S("cpu-i-1".into())),
            ("custom".to_string(), AttributeValue::S("x".into())),
        ]);
        let bytes = encode(&item);
        assert_eq!(bytes[0], BINARY_V2);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("metric_id"), "{text}");
        assert!(text.contains("custom"), "{text}");
        assert_eq!(decode(&bytes), Ok(item));
        let mut unknown = vec![BINARY_V2, 1, 99, TAG_NULL];
        assert!(decode(&unknown).unwrap_err().contains("name number 99"));
        unknown[2] = 1;
        assert!(decode(&unknown).is_ok());
    }

    /// The earlier binary form, every name written out.
    fn encode_v1(item: &Item) -> Vec<u8> {
        let mut out = vec![BINARY_V1];
        put_varint(&mut out, item.len());
        for (name, value) in item {
            put_bytes(&mut out, name.as_bytes());
            put_value(&mut out, value);
        }
        out
    }

    #[test]
    fn every_known_name_maps_to_its_place_in_the_list() {
        for (i, name) in KNOWN_NAMES.iter().enumerate() {
            assert_eq!(known_name(name), Some(i + 1), "{name}");
        }
        assert_eq!(known_name("metric"), None);
    }

    #[test]
    fn items_of_the_earlier_binary_form_still_read() {
        let item = sample();
        assert_eq!(decode(&encode_v1(&item)), Ok(item));
    }

    #[test]
    fn items_stored_as_json_still_read() {
        let item = sample();
        let json = serde_json::to_vec(&item).expect("json");
        assert_eq!(decode(&json), Ok(item));
    }

    #[test]
    fn damage_is_reported_not_misread() {
        let bytes = encode(&sample());
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).unwrap_err().contains("left after"));
        assert!(decode(&[0x42]).unwrap_err().contains("unknown item format"));
        assert!(decode(&[]).is_err());
    }
}
