//! Stream vocabulary shared by every `Stream` backend (the embedded log and Kinesis).
//!
//! - [`ShardId`]: `shardId-000000000000`, a shard's index in its stream.
//! - [`HashKeyRange`]: each shard owns an inclusive range of the 128-bit hash-key space; a record
//!   goes to the shard whose range holds MD5(partition key) ([`hash_key`]) or its explicit hash key.
//! - [`SequenceNumber`]: a decimal string compared numerically. Shardline's own sequence numbers
//!   use Kinesis's version-2 layout ([`SequenceParts`]) so they decode back to (shard, offset).
//! - [`StartingPosition`]: the five iterator types; [`ShardIterator`]: an opaque token.
//! - [`limits`]: Kinesis's API limits, which the embedded log enforces too.

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::Error;

/// Kinesis API limits.
pub mod limits {
    /// Most records in one PutRecords call.
    pub const MAX_RECORDS_PER_PUT: usize = 500;
    /// Most bytes (data plus partition keys) in one PutRecords call.
    pub const MAX_BYTES_PER_PUT: usize = 5 * 1024 * 1024;
    /// Most bytes of one record's data plus partition key.
    pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
    /// Partition key length bounds, in Unicode characters.
    pub const PARTITION_KEY_CHARS: std::ops::RangeInclusive<usize> = 1..=256;
    /// Most records one GetRecords call returns.
    pub const MAX_GET_RECORDS: usize = 10_000;
    /// Most bytes one GetRecords call returns.
    pub const MAX_GET_BYTES: usize = 10 * 1024 * 1024;
    /// Default retention, hours.
    pub const DEFAULT_RETENTION_HOURS: u32 = 24;
    /// Longest retention, hours.
    pub const MAX_RETENTION_HOURS: u32 = 8_760;
}

/// The MD5 hash key of a partition key, as Kinesis computes it.
pub fn hash_key(partition_key: &str) -> u128 {
    let digest = Md5::digest(partition_key.as_bytes());
    u128::from_be_bytes(digest.into())
}

/// Checks a partition key and data against the per-record limits.
///
/// # Errors
/// A message naming the limit broken.
pub fn check_record_limits(partition_key: &str, data_len: usize) -> Result<(), String> {
    let chars = partition_key.chars().count();
    if !limits::PARTITION_KEY_CHARS.contains(&chars) {
        return Err(format!(
            "partition key must be 1 to 256 characters, got {chars}"
        ));
    }
    let total = partition_key.len() + data_len;
    if total > limits::MAX_RECORD_BYTES {
        return Err(format!(
            "record of {total} bytes (data plus partition key) exceeds the 1 MiB limit"
        ));
    }
    Ok(())
}

/// A shard's id: `shardId-` and its index as 12 decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The shard's index in its stream.
    pub fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shardId-{:012}", self.0)
    }
}

impl FromStr for ShardId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        s.strip_prefix("shardId-")
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u32>().ok())
            .map(ShardId)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "`{s}` is not a shard id (expected shardId-NNNNNNNNNNNN)"
                ))
            })
    }
}

impl Serialize for ShardId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ShardId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An inclusive range of the 128-bit hash-key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashKeyRange {
    /// First hash key, inclusive.
    #[serde(with = "u128_decimal")]
    pub start: u128,
    /// Last hash key, inclusive.
    #[serde(with = "u128_decimal")]
    pub end: u128,
}

impl HashKeyRange {
    /// Splits the whole key space evenly into `n` ranges (the last takes the remainder).
    pub fn split_even(n: u32) -> Vec<HashKeyRange> {
        let n = u128::from(n.max(1));
        // floor(2^128 / n), computed without overflowing: 2^128 = MAX + 1.
        // (For n = 1 the width is 2^128 itself, never used: the only shard ends at MAX.)
        let width = u128::MAX / n + (u128::MAX % n).saturating_add(1) / n * u128::from(n > 1);
        (0..n)
            .map(|i| HashKeyRange {
                start: i * width,
                end: if i == n - 1 {
                    u128::MAX
                } else {
                    (i + 1) * width - 1
                },
            })
            .collect()
    }

    /// Whether `key` falls in the range.
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }
}

mod u128_decimal {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A sequence number: a decimal string, ordered by numeric value.
///
/// Any backend's sequence numbers fit (Kinesis's are opaque to clients); Shardline's own decode
/// into [`SequenceParts`] with [`SequenceNumber::parts`].
///
/// The text is shared: cloning a sequence number (checkpoints, pending lists, sink records)
/// does not allocate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SequenceNumber(Arc<str>);

impl SequenceNumber {
    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A sequence number from text already in canonical form, as [`FromStr`] leaves it:
    /// 1 to 128 ASCII digits without a leading zero (or `0`). For encoders that produce that
    /// form, so they skip the check; other text makes a number that compares wrongly (debug
    /// builds panic on it).
    pub fn from_canonical(text: &str) -> Self {
        debug_assert!(
            !text.is_empty()
                && text.len() <= 128
                && text.bytes().all(|b| b.is_ascii_digit())
                && (text == "0" || !text.starts_with('0')),
            "`{text}` is not a canonical sequence number"
        );
        SequenceNumber(Arc::from(text))
    }

    /// `0`: lower than every record's sequence number ("before the first record").
    pub fn before_all() -> Self {
        SequenceNumber(Arc::from("0"))
    }

    /// Decodes a version-2 sequence number into its parts.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the number is not a version-2 sequence number.
    pub fn parts(&self) -> Result<SequenceParts, Error> {
        SequenceParts::decode(self)
    }
}

impl TryFrom<String> for SequenceNumber {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl FromStr for SequenceNumber {
    type Err = Error;
    /// Validates and copies the digits once (into the shared text), without leading zeros.
    fn from_str(s: &str) -> Result<Self, Error> {
        let trimmed = s.trim_start_matches('0');
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidArgument(format!(
                "`{s}` is not a sequence number (expected a decimal string)"
            )));
        }
        Ok(SequenceNumber(Arc::from(if trimmed.is_empty() {
            "0"
        } else {
            trimmed
        })))
    }
}

impl From<SequenceNumber> for String {
    fn from(s: SequenceNumber) -> String {
        s.0.to_string()
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        // Both are canonical (no leading zeros): longer is larger, else compare digits.
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The fields of a Kinesis version-2 sequence number.
///
/// Layout, as 47 hex digits of one 188-bit number (then written in decimal):
/// `2` · shard creation time, epoch s (9) · low hex digit of the shard index (1) ·
/// per-shard offset (16, top bit clear) · reserved `00` (2) · arrival time, epoch s (9) ·
/// shard index (8, top bit clear) · version `2` (1).
/// The offset sits above the arrival time, so within a shard the numbers increase with the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SequenceParts {
    /// Index of the shard the record is in.
    pub shard_index: u32,
    /// Position of the record within its shard (0-based, strictly increasing).
    pub offset: u64,
    /// When the shard was created, epoch seconds.
    pub shard_created_secs: u64,
    /// When the record arrived, epoch seconds.
    pub arrival_secs: u64,
}

mod encode;

/// Largest value a 9-hex-digit time field holds.
const TIME_MAX: u64 = (1 << 36) - 1;

impl SequenceParts {
    /// Encodes into the decimal version-2 form.
    ///
    /// Fields past their width are clamped: shard index to 31 bits, offset to 63 bits, times
    /// to 36 bits.
    pub fn encode(&self) -> SequenceNumber {
        SequenceNumber(Arc::from(encode::to_decimal(self)))
    }

    /// Decodes a version-2 sequence number.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming what does not fit the layout.
    pub fn decode(seq: &SequenceNumber) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "sequence number {seq} is not a Shardline sequence number: {why}"
            ))
        };
        let hex = decimal_to_hex(seq.as_str()).ok_or_else(|| bad("too large"))?;
        if hex.len() != 47 || !hex.starts_with('2') || !hex.ends_with('2') {
            return Err(bad("not version 2"));
        }
        let field = |a: usize, b: usize| u64::from_str_radix(&hex[a..b], 16).unwrap_or(u64::MAX);
        let offset = field(11, 27);
        let shard = field(38, 46);
        if offset > i64::MAX as u64 || shard > 0x7fff_ffff {
            return Err(bad("field out of range"));
        }
        if field(10, 11) != shard & 0xf {
            return Err(bad("shard index digits disagree"));
        }
        Ok(SequenceParts {
            shard_index: shard as u32,
            offset,
            shard_created_secs: field(1, 10),
            arrival_secs: field(29, 38),
        })
    }
}

/// Converts a decimal string to lowercase hex; `None` past 256 bits.
fn decimal_to_hex(dec: &str) -> Option<String> {
    // Little-endian base-2^32 limbs.
    let mut limbs: Vec<u64> = vec![0];
    for c in dec.chars() {
        let mut carry = u64::from(c.to_digit(10)?);
        for limb in limbs.iter_mut() {
            let v = *limb * 10 + carry;
            *limb = v & 0xffff_ffff;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry);
        }
        if limbs.len() > 8 {
            return None;
        }
    }
    let mut out = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&format!("{limb:x}"));
        } else {
            out.push_str(&format!("{limb:08x}"));
        }
    }
    Some(out)
}

/// Where a reader starts in a shard: Kinesis's five shard-iterator types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StartingPosition {
    /// The oldest record still retained.
    TrimHorizon,
    /// Just after the newest record: only records appended from now on.
    Latest,
    /// The record with this sequence number.
    AtSequenceNumber(SequenceNumber),
    /// The record after this sequence number.
    AfterSequenceNumber(SequenceNumber),
    /// The first record that arrived at or after this time (epoch milliseconds).
    AtTimestamp(i64),
}

impl fmt::Display for StartingPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartingPosition::TrimHorizon => f.write_str("TRIM_HORIZON"),
            StartingPosition::Latest => f.write_str("LATEST"),
            StartingPosition::AtSequenceNumber(s) => write!(f, "AT_SEQUENCE_NUMBER:{s}"),
            StartingPosition::AfterSequenceNumber(s) => write!(f, "AFTER_SEQUENCE_NUMBER:{s}"),
            StartingPosition::AtTimestamp(ms) => {
                write!(f, "AT_TIMESTAMP:{}", crate::time::format_rfc3339_ms(*ms))
            }
        }
    }
}

impl FromStr for StartingPosition {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let need = |what: &str| {
            Error::InvalidArgument(format!("`{s}`: {kind} needs {what}, as `{kind}:<{what}>`"))
        };
        match (kind.to_ascii_uppercase().as_str(), arg) {
            ("TRIM_HORIZON", None) => Ok(StartingPosition::TrimHorizon),
            ("LATEST", None) => Ok(StartingPosition::Latest),
            ("AT_SEQUENCE_NUMBER", Some(a)) => Ok(StartingPosition::AtSequenceNumber(a.parse()?)),
            ("AFTER_SEQUENCE_NUMBER", Some(a)) => {
                Ok(StartingPosition::AfterSequenceNumber(a.parse()?))
            }
            ("AT_TIMESTAMP", Some(a)) => crate::time::parse_rfc3339_ms(a)
                .or_else(|| a.parse::<i64>().ok())
                .map(StartingPosition::AtTimestamp)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "`{a}` is not an RFC 3339 time or epoch milliseconds"
                    ))
                }),
            ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", None) => Err(need("sequence number")),
            ("AT_TIMESTAMP", None) => Err(need("RFC 3339 time")),
            _ => Err(Error::InvalidArgument(format!(
                "`{s}` is not a starting position (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER:<seq>, \
                 AFTER_SEQUENCE_NUMBER:<seq>, AT_TIMESTAMP:<RFC 3339>)"
            ))),
        }
    }
}

impl TryFrom<String> for StartingPosition {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<StartingPosition> for String {
    fn from(p: StartingPosition) -> String {
        p.to_string()
    }
}

/// An opaque read position handed out by a backend (Kinesis's shard iterator).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardIterator(pub String);

/// One record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsEntry {
    /// Partition key: 1 to 256 characters; MD5 of it picks the shard.
    pub partition_key: String,
    /// Overrides the MD5 of the partition key, when set.
    pub explicit_hash_key: Option<u128>,
    /// The payload, at most 1 MiB with the partition key.
    pub data: Bytes,
}

/// The outcome of one entry of a put_records call, in the same position as the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PutRecordResult {
    /// Appended (and, in the default durability mode, on disk).
    Ok {
        /// The shard the record went to.
        shard_id: ShardId,
        /// Its sequence number.
        sequence_number: SequenceNumber,
    },
    /// Not appended; other entries of the same call are unaffected.
    Err {
        /// `ProvisionedThroughputExceededException`, `InternalFailure` or `ValidationException`.
        error_code: String,
        /// What went wrong, naming the limit.
        error_message: String,
    },
}

impl PutRecordResult {
    /// Whether this entry was appended.
    pub fn is_ok(&self) -> bool {
        matches!(self, PutRecordResult::Ok { .. })
    }
}

/// A record read back from a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub sequence_number: SequenceNumber,
    /// The partition key it was put with.
    pub partition_key: String,
    /// The explicit hash key it was put with, if any.
    pub explicit_hash_key: Option<u128>,
    /// When the stream accepted it, epoch milliseconds.
    pub approximate_arrival_ms: i64,
    /// The payload.
    pub data: Bytes,
}

/// The answer to a get_records call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecordsOutput {
    /// Up to the requested limit, at most 10,000 records and 10 MiB.
    pub records: Vec<Record>,
    /// Where to read next; `None` at the end of a closed shard.
    pub next_iterator: Option<ShardIterator>,
    /// How far the last returned record is behind the shard's newest, in milliseconds.
    pub millis_behind_latest: u64,
}

/// A shard as described by list_shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardDescription {
    /// Its id.
    pub shard_id: ShardId,
    /// Hash keys it owns.
    pub hash_key_range: HashKeyRange,
    /// Parent shard after a split or merge.
    pub parent_shard_id: Option<ShardId>,
    /// The other parent after a merge.
    pub adjacent_parent_shard_id: Option<ShardId>,
    /// First sequence number of the shard.
    pub starting_sequence_number: SequenceNumber,
    /// Last sequence number, once the shard is closed.
    pub ending_sequence_number: Option<SequenceNumber>,
}

/// Lifecycle state of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    /// Being created.
    Creating,
    /// Readable and writable.
    Active,
    /// Resharding or changing retention.
    Updating,
    /// Being deleted.
    Deleting,
}

/// A stream as described by describe_stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDescription {
    /// Its name.
    pub name: String,
    /// Its ARN (the embedded log makes one up in the same form).
    pub arn: String,
    /// Status.
    pub status: StreamStatus,
    /// Retention period, hours.
    pub retention_hours: u32,
    /// When it was created, epoch milliseconds.
    pub created_ms: i64,
    /// Its shards, open and closed.
    pub shards: Vec<ShardDescription>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The straightforward encoding: the layout as hex text, converted to decimal.
    fn reference_encode(p: &SequenceParts) -> SequenceNumber {
        let hex = format!(
            "2{:09x}{:x}{:016x}00{:09x}{:08x}2",
            p.shard_created_secs.min(TIME_MAX),
            p.shard_index & 0xf,
            p.offset.min(i64::MAX as u64),
            p.arrival_secs.min(TIME_MAX),
            p.shard_index & 0x7fff_ffff,
        );
        SequenceNumber(Arc::from(hex_to_decimal(&hex)))
    }

    /// Converts a lowercase hex string to decimal (arbitrary length).
    fn hex_to_decimal(hex: &str) -> String {
        // Little-endian base-1e9 limbs.
        let mut limbs: Vec<u64> = vec![0];
        for c in hex.chars() {
            let mut carry = u64::from(c.to_digit(16).unwrap_or(0));
            for limb in limbs.iter_mut() {
                let v = *limb * 16 + carry;
                *limb = v % 1_000_000_000;
                carry = v / 1_000_000_000;
            }
            while carry > 0 {
                limbs.push(carry % 1_000_000_000);
                carry /= 1_000_000_000;
            }
        }
        let mut out = String::new();
        for (i, limb) in limbs.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&limb.to_string());
            } else {
                out.push_str(&format!("{limb:09}"));
            }
        }
        out
    }

    #[test]
    fn encoding_matches_the_reference_on_edge_values() {
        for (s, o, c, a) in [
            (0, 0, 0, 0),
            (15, 1, 1_700_000_000, 1_700_000_001),
            (16, 1 << 40, TIME_MAX, TIME_MAX + 1),
            (u32::MAX, u64::MAX, u64::MAX, u64::MAX),
        ] {
            let p = SequenceParts {
                shard_index: s,
                offset: o,
                shard_created_secs: c,
                arrival_secs: a,
            };
            let seq = p.encode();
            assert_eq!(seq, reference_encode(&p));
            assert!(!seq.as_str().starts_with('0'), "{seq}");
        }
    }

    #[test]
    fn shard_ids_format_and_parse() {
        assert_eq!(ShardId(3).to_string(), "shardId-000000000003");
        assert_eq!(
            "shardId-000000000012".parse::<ShardId>().ok(),
            Some(ShardId(12))
        );
        assert!("shard-1".parse::<ShardId>().is_err());
    }

    #[test]
    fn even_split_matches_kinesis() {
        let r = HashKeyRange::split_even(4);
        assert_eq!(r[0].start, 0);
        assert_eq!(
            r[1].start.to_string(),
            "85070591730234615865843651857942052864"
        );
        assert_eq!(r[3].end, u128::MAX);
        for w in r.windows(2) {
            assert_eq!(w[0].end + 1, w[1].start);
        }
        assert_eq!(
            HashKeyRange::split_even(1)[0],
            HashKeyRange {
                start: 0,
                end: u128::MAX
            }
        );
    }

    #[test]
    fn md5_hash_key_matches_reference() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
    }

    #[test]
    fn limits_name_what_broke() {
        assert!(
            check_record_limits("", 1)
                .expect_err("rejected")
                .contains("1 to 256")
        );
        assert!(
            check_record_limits(&"k".repeat(257), 1)
                .expect_err("rejected")
                .contains("1 to 256")
        );
        assert!(
            check_record_limits("k", 1024 * 1024)
                .expect_err("rejected")
                .contains("1 MiB")
        );
        assert!(check_record_limits("k", 1024 * 1024 - 1).is_ok());
    }

    #[test]
    fn starting_positions_parse() {
        assert_eq!(
            "TRIM_HORIZON".parse::<StartingPosition>().ok(),
            Some(StartingPosition::TrimHorizon)
        );
        assert_eq!(
            "AT_TIMESTAMP:2026-01-01T00:00:00Z"
                .parse::<StartingPosition>()
                .ok(),
            Some(StartingPosition::AtTimestamp(1_767_225_600_000))
        );
        assert!("AT_SEQUENCE_NUMBER".parse::<StartingPosition>().is_err());
        assert!("SOMEWHERE".parse::<StartingPosition>().is_err());
    }

    proptest! {
        #[test]
        fn sequence_parts_round_trip(shard in 0u32..0x7fff_ffff, offset in 0u64..(i64::MAX as u64),
                                     created in 0u64..TIME_MAX, arrival in 0u64..TIME_MAX) {
            let p = SequenceParts { shard_index: shard, offset, shard_created_secs: created, arrival_secs: arrival };
            let seq = p.encode();
            prop_assert_eq!(SequenceParts::decode(&seq).ok(), Some(p));
            let again: SequenceNumber = seq.as_str().parse().expect("decimal");
            prop_assert_eq!(again, seq);
        }

        #[test]
        fn encoding_matches_the_reference(shard_index in any::<u32>(), offset in any::<u64>(),
                                          created in any::<u64>(), arrival in any::<u64>()) {
            let p = SequenceParts { shard_index, offset, shard_created_secs: created, arrival_secs: arrival };
            prop_assert_eq!(p.encode(), reference_encode(&p));
        }

        #[test]
        fn sequence_numbers_increase_with_offset(shard in 0u32..1000, a in 0u64..(1u64 << 62), d in 1u64..1000,
                                                 t1 in 0u64..TIME_MAX, t2 in 0u64..TIME_MAX) {
            let lo = SequenceParts { shard_index: shard, offset: a, shard_created_secs: 1, arrival_secs: t1 }.encode();
            let hi = SequenceParts { shard_index: shard, offset: a + d, shard_created_secs: 1, arrival_secs: t2 }.encode();
            prop_assert!(lo < hi);
        }
    }
}
