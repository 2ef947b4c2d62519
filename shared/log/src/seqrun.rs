//! Sequence numbers for runs of consecutive offsets, without dividing for each one.
//!
//! A version-2 sequence number is one 188-bit integer in which the record's offset occupies
//! bits 80..144 and nothing else depends on it (see [`SequenceParts`]). So for the same shard,
//! shard creation time and arrival second, the number for offset `o + 1` is the number for
//! `o` plus 2^80 — as long as the offset is not clamped (`o + 1 <= i64::MAX`). [`SeqRun`]
//! keeps the last number as base-10^9 limbs and, when the next request continues the run,
//! adds 2^80 in decimal instead of re-encoding; any other request is encoded by
//! [`SequenceParts::encode`] and starts a new run. Both paths give identical text.

use shardline_core::SequenceNumber;
use shardline_core::stream::SequenceParts;

/// 2^80 in base 10^9, least significant limb first.
const TWO_POW_80: [u64; 3] = [174_706_176, 819_614_629, 1_208_925];
/// Limbs of nine decimal digits: 188 bits need at most 57 digits.
const LIMBS: usize = 7;
const BASE: u64 = 1_000_000_000;

/// Encodes the sequence numbers of records read or written in offset order.
#[derive(Debug, Default)]
pub struct SeqRun {
    /// Shard index, creation time and arrival second of the current run.
    key: Option<(u32, u64, u64)>,
    /// Offset of the last number encoded.
    offset: u64,
    /// That number in base 10^9, least significant limb first.
    limbs: [u64; LIMBS],
}

impl SeqRun {
    /// The sequence number of `parts`, equal to `parts.encode()`.
    pub fn encode(&mut self, parts: &SequenceParts) -> SequenceNumber {
        let key = (
            parts.shard_index,
            parts.shard_created_secs,
            parts.arrival_secs,
        );
        let continues = self.key == Some(key)
            && self.offset.checked_add(1) == Some(parts.offset)
            && parts.offset <= i64::MAX as u64;
        if !continues {
            let seq = parts.encode();
            self.restart(key, parts.offset, seq.as_str());
            return seq;
        }
        self.offset = parts.offset;
        let mut carry = 0u64;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let sum = *limb + TWO_POW_80.get(i).copied().unwrap_or(0) + carry;
            *limb = sum % BASE;
            carry = sum / BASE;
        }
        let mut buf = [b'0'; LIMBS * 9];
        for (i, limb) in self.limbs.iter().enumerate() {
            let mut v = *limb;
            let end = (LIMBS - i) * 9;
            for slot in buf[end - 9..end].iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let start = buf.iter().position(|&b| b != b'0').unwrap_or(buf.len() - 1);
        let text = std::str::from_utf8(&buf[start..]).unwrap_or("0");
        SequenceNumber::try_from(text.to_owned()).unwrap_or_else(|_| parts.encode())
    }

    /// Starts a new run at `offset` whose number is the decimal `text`.
    fn restart(&mut self, key: (u32, u64, u64), offset: u64, text: &str) {
        self.limbs = [0; LIMBS];
        let digits = text.as_bytes();
        let mut parsed = true;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let end = digits.len().saturating_sub(i * 9);
            let start = end.saturating_sub(9);
            for &d in &digits[start..end] {
                parsed &= d.is_ascii_digit();
                *limb = *limb * 10 + u64::from(d.wrapping_sub(b'0'));
            }
        }
        let fits = digits.len() <= LIMBS * 9;
        self.key = (parsed && fits).then_some(key);
        self.offset = offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts(shard_index: u32, offset: u64, created: u64, arrival: u64) -> SequenceParts {
        SequenceParts {
            shard_index,
            offset,
            shard_created_secs: created,
            arrival_secs: arrival,
        }
    }

    proptest! {
        #[test]
        fn runs_match_the_reference_encoding(shard in any::<u32>(), start in any::<u64>(),
                                             created in any::<u64>(), arrival in any::<u64>(),
                                             len in 1usize..300, jump in 0u64..3) {
            let mut run = SeqRun::default();
            for k in 0..len as u64 {
                let p = parts(shard, start.wrapping_add(k), created, arrival.wrapping_add(k / 100 * jump));
                prop_assert_eq!(run.encode(&p), p.encode());
            }
        }
    }

    #[test]
    fn matches_at_the_edges_and_across_restarts() {
        let mut run = SeqRun::default();
        let cases = [
            parts(0, 0, 0, 0),
            parts(0, 1, 0, 0),
            parts(0, 2, 0, 0),
            parts(3, i64::MAX as u64 - 1, 1_700_000_000, 1_700_000_001),
            parts(3, i64::MAX as u64, 1_700_000_000, 1_700_000_001),
            parts(3, i64::MAX as u64 + 1, 1_700_000_000, 1_700_000_001),
            parts(u32::MAX, u64::MAX, u64::MAX, u64::MAX),
            parts(1, 41, 1_764_158_400, 1_764_158_460),
            parts(1, 42, 1_764_158_400, 1_764_158_460),
            parts(1, 43, 1_764_158_400, 1_764_158_461),
            parts(1, 44, 1_764_158_400, 1_764_158_461),
            parts(2, 45, 1_764_158_400, 1_764_158_461),
            parts(2, 44, 1_764_158_400, 1_764_158_461),
        ];
        for p in cases {
            assert_eq!(run.encode(&p), p.encode(), "{p:?}");
        }
    }
}
