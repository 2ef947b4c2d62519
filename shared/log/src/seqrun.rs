//! Sequence numbers for runs of consecutive offsets, without dividing for each one.
//!
//! A version-2 sequence number is one 188-bit integer in which the record's offset occupies
//! bits 80..144 and nothing else depends on it (see [`SequenceParts`]). So for the same shard,
//! shard creation time and arrival second, the number for offset `o + 1` is the number for
//! `o` plus 2^80 — as long as the offset is not clamped (`o + 1 <= i64::MAX`). [`SeqRun`]
//! keeps the last number's decimal digits and, when the next request continues the run, adds
//! 2^80 to them nine digits at a time; any other request is encoded by [`SequenceParts::encode`]
//! and starts a new run. Both paths give identical text.

use shardline_core::SequenceNumber;
use shardline_core::stream::SequenceParts;

/// 2^80 in groups of nine decimal digits, least significant first.
const TWO_POW_80_GROUPS: [u32; 3] = [174_706_176, 819_614_629, 1_208_925];
/// One group's base.
const GROUP_BASE: u32 = 1_000_000_000;
/// Groups of nine digits held: 188 bits need at most 57 digits.
const GROUPS: usize = 7;
/// Room for the digits.
const WIDTH: usize = GROUPS * 9;

/// Encodes the sequence numbers of records read or written in offset order.
#[derive(Debug)]
pub struct SeqRun {
    /// Shard index, creation time and arrival second of the current run.
    key: Option<(u32, u64, u64)>,
    /// Offset of the last number encoded.
    offset: u64,
    /// That number's ASCII digits, right-aligned, zero-padded on the left.
    digits: [u8; WIDTH],
    /// Index of its leading digit in `digits`.
    start: usize,
}

impl Default for SeqRun {
    fn default() -> Self {
        SeqRun {
            key: None,
            offset: 0,
            digits: [b'0'; WIDTH],
            start: WIDTH - 1,
        }
    }
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
        self.add_two_pow_80();
        // Digits from `leading nonzero digit` on: canonical (the tests compare every run
        // against `SequenceParts::encode`).
        match std::str::from_utf8(&self.digits[self.start..]) {
            Ok(text) => SequenceNumber::from_canonical(text),
            Err(_) => parts.encode(),
        }
    }

    /// Adds 2^80 to the digits, nine at a time: each group of nine is a number below 10^9,
    /// so a group plus a group of 2^80 plus a carry fits a `u32`. A group is rewritten only
    /// when it changed. The leading digit only moves left, to the highest group written.
    fn add_two_pow_80(&mut self) {
        let mut carry = 0u32;
        let mut g = 0usize;
        while g < GROUPS && (g < TWO_POW_80_GROUPS.len() || carry > 0) {
            let end = WIDTH - g * 9;
            let group = &mut self.digits[end - 9..end];
            let value = group
                .iter()
                .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'))
                + TWO_POW_80_GROUPS.get(g).copied().unwrap_or(0)
                + carry;
            carry = u32::from(value >= GROUP_BASE);
            let mut v = value - carry * GROUP_BASE;
            for slot in group.iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
            g += 1;
        }
        let written = WIDTH - g * 9;
        let lead = self
            .digits
            .get(written..self.start)
            .and_then(|above| above.iter().position(|&d| d != b'0'))
            .map_or(self.start, |p| written + p);
        self.start = self.start.min(lead);
    }

    /// Starts a new run at `offset` whose number is the decimal `text`.
    fn restart(&mut self, key: (u32, u64, u64), offset: u64, text: &str) {
        let fits =
            !text.is_empty() && text.len() < WIDTH && text.bytes().all(|b| b.is_ascii_digit());
        self.digits = [b'0'; WIDTH];
        if fits {
            self.start = WIDTH - text.len();
            self.digits[self.start..].copy_from_slice(text.as_bytes());
        }
        self.key = fits.then_some(key);
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

    #[test]
    fn a_run_continues_by_addition_over_many_digits() {
        let mut run = SeqRun::default();
        let first = parts(7, 1_000, 1_764_158_400, 1_764_158_460);
        let text = run.encode(&first);
        assert!(text.as_str().len() > 50, "{text}");
        assert_eq!(
            run.key,
            Some((7, 1_764_158_400, 1_764_158_460)),
            "run started"
        );
        for o in 1_001..21_000 {
            let p = parts(7, o, 1_764_158_400, 1_764_158_460);
            assert_eq!(run.encode(&p), p.encode(), "offset {o}");
            assert_eq!((run.key.is_some(), run.offset), (true, o), "still one run");
        }
    }
}
