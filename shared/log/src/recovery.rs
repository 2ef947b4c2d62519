//! Recovery: bringing a shard directory back to a consistent state on open.
//!
//! Rules, per shard:
//! 1. Segments are listed by base offset. Each segment must start where the previous one
//!    ended (dense offsets); a gap is mid-log damage.
//! 2. Sealed segments (all but the newest) are scanned whole: every frame must be valid
//!    (complete, CRC matching) and carry the next offset, up to the exact end of the file. Any
//!    bad frame in a sealed segment is mid-log damage: sealed segments were synced before the
//!    next one was created, so no crash can leave them torn. (Open therefore reads every
//!    retained byte once, sequentially.) The index is loaded and compared with the one the
//!    scan builds; a missing, damaged or disagreeing index is rewritten from the scan.
//! 3. The tail segment (the newest) is scanned frame by frame from the start. At the first
//!    position `p` where a frame is incomplete, fails its CRC, or does not carry the next
//!    offset, the rest of the file is searched for any valid frame carrying a later offset.
//!    - None found: `p..EOF` is a **torn tail** (an append that never completed, so never
//!      acknowledged). The file is cut at `p`, synced, and a warning names the bytes cut.
//!    - One found: valid data follows the damage, so this is **mid-log damage** and open fails
//!      with [`LogError::Corrupt`] naming the file and `p`. Nothing is changed on disk.
//! 4. The tail segment's index is rebuilt from the scan and written.
//!
//! Damage in the final frame of the tail segment is therefore indistinguishable from a torn
//! write and is cut; damage anywhere before a valid frame is refused. A process crash (even
//! SIGKILL mid-`write`) leaves a prefix of the last batch, always a torn tail. After power loss
//! a device could persist a later page of an unacknowledged batch without an earlier one; that
//! also reads as "valid frame after damage" and is refused rather than guessed at: `verify`
//! lists the damage, and cutting the segment at the reported offset loses only records that
//! were never acknowledged if the damage lies in the last batch. `crate::verify` checks
//! every frame of every segment without changing anything.

use std::path::Path;

use tracing::warn;

use crate::error::LogError;
use crate::frame::{self, Decoded, FrameHead};
use crate::index::{self, IndexEntry};
use crate::meta;
use crate::segment::{self, SegmentView};
use crate::writer::ActiveSegment;

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

/// Whether a valid frame with an offset of at least `min_offset` starts anywhere after `from`.
pub fn valid_frame_after(bytes: &[u8], from: usize, min_offset: u64) -> Option<usize> {
    (from + 1..bytes.len().saturating_sub(frame::HEADER + frame::MIN_BODY - 1)).find(|&q| {
        matches!(frame::check(&bytes[q..]), Decoded::Frame(h, _) if h.offset >= min_offset)
    })
}

/// A recovered shard: its read view's segments and the writer's active segment.
pub struct Recovered {
    /// Segments, oldest first; the last is active.
    pub segments: Vec<SegmentView>,
    /// The active segment for the writer.
    pub active: ActiveSegment,
}

/// Recovers one shard directory (creating it, with an empty first segment, if needed).
///
/// # Errors
/// [`LogError::Corrupt`] for mid-log damage, naming file and byte offset; I/O errors.
pub fn recover_shard(
    dir: &Path,
    stream: &str,
    shard: &str,
    index_interval: u64,
) -> Result<Recovered, LogError> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
    let bases = segment::list_segments(dir)?;
    if bases.is_empty() {
        let active = ActiveSegment::create(dir, 0)?;
        let view = SegmentView::open(&active.path, 0)?;
        return Ok(Recovered {
            segments: vec![view],
            active,
        });
    }
    let mut segments = Vec::with_capacity(bases.len());
    let (tail_base, sealed) = bases.split_last().unwrap_or((&0, &[]));
    for &base in sealed {
        let view = recover_sealed(dir, base, index_interval)?;
        segments.push(view);
    }
    let tail_path = segment::segment_path(dir, *tail_base);
    if let Some(prev) = segments.last()
        && prev.next_offset != *tail_base
    {
        {
            return Err(LogError::corrupt(
                &tail_path,
                0,
                format!(
                    "segment starts at offset {tail_base} but the previous one ends before {}",
                    prev.next_offset
                ),
            ));
        }
    }
    let bytes = std::fs::read(&tail_path).map_err(|e| LogError::io(&tail_path, e))?;
    let s = scan(&bytes, *tail_base, index_interval);
    if let Some((at, why)) = s.damage {
        if let Some(q) = valid_frame_after(&bytes, at as usize, s.next_offset) {
            return Err(LogError::corrupt(
                &tail_path,
                at,
                format!(
                    "{why}, followed by a valid frame at byte {q}: damage in the middle of the log"
                ),
            ));
        }
        let bytes_cut = bytes.len() as u64 - at;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&tail_path)
            .map_err(|e| LogError::io(&tail_path, e))?;
        f.set_len(at)
            .and_then(|()| f.sync_all())
            .map_err(|e| LogError::io(&tail_path, e))?;
        warn!(stream, shard, bytes_cut, file = %tail_path.display(), offset = at, reason = why, "torn tail truncated");
    }
    let idx = segment::index_path(dir, *tail_base);
    index::store(&idx, &s.index)?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&tail_path)
        .map_err(|e| LogError::io(&tail_path, e))?;
    let index_file = std::fs::OpenOptions::new()
        .append(true)
        .open(&idx)
        .map_err(|e| LogError::io(&idx, e))?;
    meta::sync_dir(dir)?;
    let mut view = SegmentView::open(&tail_path, *tail_base)?;
    view.index = s.index.clone();
    view.end = s.valid_len;
    view.next_offset = s.next_offset;
    view.last_arrival_ms = s.last_arrival_ms;
    segments.push(view);
    let active = ActiveSegment {
        base_offset: *tail_base,
        path: tail_path,
        file,
        index_file,
        index: s.index,
        size: s.valid_len,
        next_offset: s.next_offset,
        last_arrival_ms: s.last_arrival_ms,
    };
    Ok(Recovered { segments, active })
}

/// Recovers a sealed segment: every frame verified, index loaded or rebuilt.
fn recover_sealed(dir: &Path, base: u64, index_interval: u64) -> Result<SegmentView, LogError> {
    let path = segment::segment_path(dir, base);
    let idx = segment::index_path(dir, base);
    let mut view = SegmentView::open(&path, base)?;
    let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
    let s = scan(&bytes, base, index_interval);
    if let Some((at, why)) = s.damage {
        return Err(LogError::corrupt(
            &path,
            at,
            format!("{why} in a sealed segment: damage in the middle of the log"),
        ));
    }
    if s.index.is_empty() {
        return Err(LogError::corrupt(
            &path,
            0,
            "sealed segment holds no records",
        ));
    }
    view.index = match index::load(&idx, base)? {
        Some(loaded) if loaded == s.index => loaded,
        loaded => {
            let why = if loaded.is_some() {
                "disagrees with the segment"
            } else {
                "missing or damaged"
            };
            warn!(file = %idx.display(), entries = s.index.len(), reason = why, "segment index rebuilt");
            index::store(&idx, &s.index)?;
            s.index
        }
    };
    view.end = s.valid_len;
    view.next_offset = s.next_offset;
    view.last_arrival_ms = s.last_arrival_ms;
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            frame::encode(
                &mut out,
                10 + i,
                1000 + i as i64,
                "key",
                None,
                &vec![i as u8; (i % 40) as usize],
            );
        }
        out
    }

    #[test]
    fn scan_builds_the_index_and_finds_the_end() {
        let bytes = segment(50);
        let s = scan(&bytes, 10, 256);
        assert_eq!(
            (s.valid_len, s.next_offset, s.last_arrival_ms),
            (bytes.len() as u64, 60, Some(1049))
        );
        assert!(s.damage.is_none());
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

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let s = scan(&bytes, 0, 64);
            prop_assert!(s.valid_len <= bytes.len() as u64);
            let _ = valid_frame_after(&bytes, 0, 0);
        }

        #[test]
        fn damage_is_found_at_the_damaged_frame(n in 2u64..40, victim in 0u64..40, bit in 0u8..8, at in 0usize..1000) {
            let victim = victim % n;
            let clean = segment(n);
            let start = scan(&clean[..], 10, 1 << 20);
            let frame_starts: Vec<usize> = {
                let mut v = Vec::new();
                let mut p = 0;
                while p < clean.len() {
                    v.push(p);
                    let Decoded::Frame(_, len) = frame::check(&clean[p..]) else { break };
                    p += len;
                }
                v
            };
            prop_assert_eq!(start.next_offset, 10 + n);
            let begin = frame_starts[victim as usize];
            let end = frame_starts.get(victim as usize + 1).copied().unwrap_or(clean.len());
            let mut bytes = clean.clone();
            let pos = begin + at % (end - begin);
            bytes[pos] ^= 1 << bit;
            let s = scan(&bytes, 10, 1 << 20);
            prop_assert_eq!(s.damage.map(|d| d.0), Some(begin as u64));
            prop_assert_eq!(s.next_offset, 10 + victim);
            let later = valid_frame_after(&bytes, begin, s.next_offset);
            prop_assert_eq!(later.is_some(), victim + 1 < n, "a later valid frame exists iff the damage is mid-log");
        }
    }
}
