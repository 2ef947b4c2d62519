//! Scanning a segment's bytes: the valid prefix, and what lies after damage.
//!
//! [`scan`] walks frames from the start while each is valid and carries the next offset; the
//! first position where that fails is the *damage*. What follows the damage decides what it
//! is (see `crate::recovery`): [`synced_frame_after`] looks for a valid frame flagged
//! [`frame::SYNCED_BEFORE`] (proof that the damaged bytes had been synced), and
//! [`valid_frame_after`] for any valid frame (the rule for segments written before the flag
//! existed, and what `verify` resynchronises on). Both check the cheap fields (the offset, the
//! flag) before computing a CRC, so searching megabytes of garbage stays fast.

use crate::frame::{self, Decoded, FrameHead};
use crate::index::IndexEntry;

/// The outcome of scanning a segment's bytes from the start.
#[derive(Debug, Default)]
pub struct Scan {
    /// Index entries for the valid prefix.
    pub index: Vec<IndexEntry>,
    /// Length of the valid prefix.
    pub valid_len: u64,
    /// One past the last valid offset.
    pub next_offset: u64,
    /// Arrival of the last valid record.
    pub last_arrival_ms: Option<i64>,
    /// Whether the first frame carries [`frame::SYNCED_BEFORE`] (`None`: no valid frame).
    /// Every segment written since the flag exists has it on its first frame.
    pub first_synced_before: Option<bool>,
    /// Where and why the valid prefix ends early, if it does.
    pub damage: Option<(u64, &'static str)>,
}

/// Scans `bytes` (a whole segment with base `base`) frame by frame.
pub fn scan(bytes: &[u8], base: u64, index_interval: u64) -> Scan {
    let mut s = Scan {
        next_offset: base,
        ..Scan::default()
    };
    let mut pos = 0usize;
    let mut last_index: Option<usize> = None;
    while pos < bytes.len() {
        let (head, len): (FrameHead, usize) = match frame::check(&bytes[pos..]) {
            Decoded::Frame(h, len) => (h, len),
            Decoded::Incomplete { .. } => {
                s.damage = Some((pos as u64, "incomplete frame"));
                break;
            }
            Decoded::Bad(why) => {
                s.damage = Some((pos as u64, why));
                break;
            }
        };
        if head.offset != s.next_offset {
            s.damage = Some((pos as u64, "frame does not carry the next offset"));
            break;
        }
        if pos == 0 {
            s.first_synced_before = Some(head.synced_before);
        }
        if last_index.is_none_or(|p| (pos - p) as u64 >= index_interval) {
            s.index.push(IndexEntry {
                offset: head.offset,
                arrival_ms: head.arrival_ms,
                position: pos as u64,
            });
            last_index = Some(pos);
        }
        s.next_offset += 1;
        s.last_arrival_ms = Some(head.arrival_ms);
        pos += len;
    }
    s.valid_len = pos as u64;
    s
}

/// Positions after `from` where a frame could start (a header and minimal body fit).
fn candidates(bytes: &[u8], from: usize) -> std::ops::Range<usize> {
    from + 1
        ..bytes
            .len()
            .saturating_sub(frame::HEADER + frame::MIN_BODY - 1)
}

/// The offset field of a would-be frame at `q` (a candidate position).
fn offset_at(bytes: &[u8], q: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[q + frame::HEADER..q + frame::HEADER + 8]);
    u64::from_le_bytes(a)
}

/// Where the first valid frame with an offset of at least `min_offset` starts after `from`.
pub fn valid_frame_after(bytes: &[u8], from: usize, min_offset: u64) -> Option<usize> {
    candidates(bytes, from).find(|&q| {
        offset_at(bytes, q) >= min_offset
            && matches!(frame::check(&bytes[q..]), Decoded::Frame(h, _) if h.offset >= min_offset)
    })
}

/// Where the first valid frame flagged [`frame::SYNCED_BEFORE`] starts after `from`, among
/// frames whose offset could follow `min_offset` in the bytes left (at least `min_offset`,
/// at most one more per smallest frame).
pub fn synced_frame_after(bytes: &[u8], from: usize, min_offset: u64) -> Option<usize> {
    let smallest = (frame::HEADER + frame::MIN_BODY) as u64;
    let max_offset =
        min_offset.saturating_add((bytes.len() - from.min(bytes.len())) as u64 / smallest);
    candidates(bytes, from).find(|&q| {
        bytes[q + frame::HEADER + 18] & frame::SYNCED_BEFORE != 0
            && (min_offset..=max_offset).contains(&offset_at(bytes, q))
            && matches!(frame::check(&bytes[q..]), Decoded::Frame(h, _) if h.synced_before)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `n` frames from offset 10; frames whose index is in `synced` carry the flag.
    fn segment(n: u64, synced: impl Fn(u64) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            frame::encode(
                &mut out,
                10 + i,
                1000 + i as i64,
                "key",
                None,
                &vec![i as u8; (i % 40) as usize],
                synced(i),
            );
        }
        out
    }

    fn frame_starts(bytes: &[u8]) -> Vec<usize> {
        let mut v = Vec::new();
        let mut p = 0;
        while p < bytes.len() {
            v.push(p);
            let Decoded::Frame(_, len) = frame::check(&bytes[p..]) else {
                break;
            };
            p += len;
        }
        v
    }

    #[test]
    fn scan_builds_the_index_and_finds_the_end() {
        let bytes = segment(50, |i| i == 0);
        let s = scan(&bytes, 10, 256);
        assert_eq!(
            (s.valid_len, s.next_offset, s.last_arrival_ms),
            (bytes.len() as u64, 60, Some(1049))
        );
        assert!(s.damage.is_none());
        assert_eq!(s.first_synced_before, Some(true));
        assert_eq!(
            s.index[0],
            IndexEntry {
                offset: 10,
                arrival_ms: 1000,
                position: 0
            }
        );
        assert!(
            s.index
                .windows(2)
                .all(|w| w[1].position - w[0].position >= 256)
        );
    }

    #[test]
    fn synced_frames_are_found_only_when_flagged_and_plausible() {
        // Batches start at 0, 10 and 20.
        let bytes = segment(30, |i| i % 10 == 0);
        let starts = frame_starts(&bytes);
        assert_eq!(synced_frame_after(&bytes, starts[3], 13), Some(starts[10]));
        assert_eq!(synced_frame_after(&bytes, starts[12], 22), Some(starts[20]));
        assert_eq!(
            synced_frame_after(&bytes, starts[21], 31),
            None,
            "none after the last batch start"
        );
        assert_eq!(valid_frame_after(&bytes, starts[21], 31), Some(starts[22]));
        // Offsets below the next expected one are stale, not a continuation.
        assert_eq!(synced_frame_after(&bytes, starts[3], 1000), None);
        // Nor is an offset beyond what the bytes left could hold: a frame with offset 20 can
        // not follow offset 0 within the few bytes after frame 19.
        assert_eq!(synced_frame_after(&bytes, starts[19] - 1, 0), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let s = scan(&bytes, 0, 64);
            prop_assert!(s.valid_len <= bytes.len() as u64);
            let _ = valid_frame_after(&bytes, 0, 0);
            let _ = synced_frame_after(&bytes, 0, 0);
            let _ = synced_frame_after(&bytes, bytes.len() + 5, 0);
        }

        #[test]
        fn damage_is_found_at_the_damaged_frame(n in 2u64..40, victim in 0u64..40, bit in 0u8..8, at in 0usize..1000, batch in 1u64..8) {
            let victim = victim % n;
            let clean = segment(n, |i| i % batch == 0);
            let starts = frame_starts(&clean);
            prop_assert_eq!(scan(&clean[..], 10, 1 << 20).next_offset, 10 + n);
            let begin = starts[victim as usize];
            let end = starts.get(victim as usize + 1).copied().unwrap_or(clean.len());
            let mut bytes = clean.clone();
            bytes[begin + at % (end - begin)] ^= 1 << bit;
            let s = scan(&bytes, 10, 1 << 20);
            prop_assert_eq!(s.damage.map(|d| d.0), Some(begin as u64));
            prop_assert_eq!(s.next_offset, 10 + victim);
            let later = valid_frame_after(&bytes, begin, s.next_offset);
            prop_assert_eq!(later.is_some(), victim + 1 < n, "a later valid frame exists iff the damage is not in the last frame");
            // A synced frame follows iff a later batch starts after the damaged frame.
            let next_batch = (victim + 1..n).find(|i| i % batch == 0);
            let synced = synced_frame_after(&bytes, begin, s.next_offset);
            prop_assert_eq!(synced, next_batch.map(|i| starts[i as usize]));
        }
    }
}
