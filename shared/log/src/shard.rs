//! One shard's shared state and its read path.
//!
//! Invariants: `segments` is never empty and is ordered by base offset; every segment but the
//! last is sealed; the last is the active one its writer appends to. The trim horizon is the
//! first segment's base offset. Offsets are dense: segment `i + 1` starts at segment `i`'s
//! `next_offset`. Arrival times never decrease along a shard (the writer clamps them), so
//! "first record at or after time t" is a binary search over segments and index entries.
//! A read takes its segment's handle while holding the view lock (from the active segment, or
//! opened through the log's [`SealedHandles`] cache for a sealed one), then reads without it.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use shardline_core::stream::{HashKeyRange, ShardId};

use crate::error::LogError;
use crate::frame::{self, Frame};
use crate::handles::SealedHandles;
use crate::index;
use crate::segment::{self, SegmentView};
use crate::throttle::{ReadThrottle, Throttle};

/// The committed segments of a shard.
#[derive(Debug)]
pub struct ShardView {
    /// Oldest first; the last one is active.
    pub segments: Vec<SegmentView>,
}

impl ShardView {
    /// Offset of the oldest retained record.
    pub fn trim_offset(&self) -> u64 {
        self.segments.first().map_or(0, |s| s.base_offset)
    }

    /// One past the newest committed offset.
    pub fn next_offset(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.next_offset)
    }

    /// Committed bytes over all segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.end).sum()
    }

    /// Arrival time of the newest committed record.
    pub fn last_arrival_ms(&self) -> Option<i64> {
        self.segments.iter().rev().find_map(|s| s.last_arrival_ms)
    }

    /// The segment holding `offset`, if it is retained and committed.
    fn locate(&self, offset: u64) -> Option<&SegmentView> {
        let i = self.segments.partition_point(|s| s.base_offset <= offset);
        let seg = self.segments.get(i.checked_sub(1)?)?;
        (offset < seg.next_offset).then_some(seg)
    }
}

/// A shard: identity, committed view, counters and throttle.
#[derive(Debug)]
pub struct Shard {
    /// Its stream's name.
    pub stream: String,
    /// Its id.
    pub id: ShardId,
    /// Hash keys it owns.
    pub range: HashKeyRange,
    /// Creation time, epoch seconds.
    pub created_secs: u64,
    /// Its directory.
    pub dir: PathBuf,
    /// Committed segments.
    pub view: RwLock<ShardView>,
    /// `fdatasync` calls made by its writer.
    pub syncs: AtomicU64,
    /// Append requests (parts of put_records calls) committed.
    pub appends: AtomicU64,
    /// Group-commit batches written.
    pub batches: AtomicU64,
    /// Write-rate limiter, used when limits are enforced.
    pub throttle: Mutex<Throttle>,
    /// Read-rate limiter, used when limits are enforced.
    pub read_throttle: Mutex<ReadThrottle>,
    /// The log's cache of sealed segments' read handles.
    pub handles: Arc<SealedHandles>,
}

/// What a read returned.
#[derive(Debug)]
pub struct ReadResult {
    /// Frames in offset order.
    pub frames: Vec<Frame>,
    /// Where the next read starts.
    pub next_offset: u64,
    /// Newest committed arrival time in the shard.
    pub shard_last_arrival_ms: Option<i64>,
    /// Whether the read reached the newest committed record.
    pub caught_up: bool,
}

impl Shard {
    /// Shared access to the view (poisoning is ignored: the view is always consistent).
    pub fn read_view(&self) -> RwLockReadGuard<'_, ShardView> {
        self.view.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Exclusive access to the view.
    pub fn write_view(&self) -> RwLockWriteGuard<'_, ShardView> {
        self.view.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Offset of the first record that arrived at or after `ms`; the next offset when none
    /// did; the trim horizon when `ms` is older than every retained record.
    ///
    /// # Errors
    /// Corrupt frames or I/O errors while scanning.
    pub fn offset_at_time(&self, ms: i64) -> Result<u64, LogError> {
        let (reader, pos, fallback) = {
            let view = self.read_view();
            let i = view
                .segments
                .partition_point(|s| s.last_arrival_ms.is_none_or(|a| a < ms));
            let Some(seg) = view.segments.get(i).filter(|s| s.last_arrival_ms.is_some()) else {
                return Ok(view.next_offset());
            };
            let pos = index::seek_time(&seg.index, ms).map_or(0, |e| e.position);
            (seg.reader(&self.handles)?, pos, seg.next_offset)
        };
        let mut found = None;
        reader.walk(pos, segment::MIN_READ_CHUNK, |_, _, head, _, _| {
            if head.arrival_ms >= ms {
                found = Some(head.offset);
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(found.unwrap_or(fallback))
    }

    /// Reads up to `limit` records and about `max_bytes` of data starting at `offset`
    /// (moved up to the trim horizon when older).
    ///
    /// Each segment touched is read from the index entry at or below the wanted offset with
    /// one positional read sized from the segment's average frame length (see
    /// [`read_chunk`]), and every returned frame's `data` is a view of that one buffer. Every
    /// frame read, including those skipped up to `offset`, has its CRC32C verified exactly
    /// once in this call (by [`SegmentReader::walk`](crate::segment::SegmentReader::walk)).
    ///
    /// # Errors
    /// Corrupt frames or I/O errors.
    pub fn read(
        &self,
        offset: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ReadResult, LogError> {
        let mut frames = Vec::new();
        let mut bytes = 0usize;
        let mut next = offset;
        loop {
            let (reader, pos, chunk, last_arrival, shard_next) = {
                let view = self.read_view();
                next = next.max(view.trim_offset());
                let shard_next = view.next_offset();
                let Some(seg) = view.locate(next) else {
                    return Ok(ReadResult {
                        frames,
                        next_offset: next,
                        shard_last_arrival_ms: view.last_arrival_ms(),
                        caught_up: next >= shard_next,
                    });
                };
                let (pos, from) = index::seek_offset(&seg.index, next)
                    .map_or((0, seg.base_offset), |e| (e.position, e.offset));
                let want = limit.saturating_sub(frames.len());
                let records = (next - from).saturating_add(want as u64);
                let chunk = read_chunk(seg, records, max_bytes.saturating_sub(bytes));
                (
                    seg.reader(&self.handles)?,
                    pos,
                    chunk,
                    view.last_arrival_ms(),
                    shard_next,
                )
            };
            if frames.capacity() == 0 {
                frames.reserve_exact(limit.min(INITIAL_FRAMES));
            }
            let start_len = frames.len();
            reader.walk(pos, chunk, |buf, at, head, len, file_pos| {
                if head.offset < next {
                    return Ok(ControlFlow::Continue(()));
                }
                if head.offset != next {
                    return Err(LogError::corrupt(
                        &*reader.path,
                        file_pos,
                        format!("expected offset {next}, found {}", head.offset),
                    ));
                }
                if frames.len() >= limit || (bytes + len > max_bytes && !frames.is_empty()) {
                    return Ok(ControlFlow::Break(()));
                }
                let frame = frame::parse_checked(buf, at, head, len)
                    .map_err(|why| LogError::corrupt(&*reader.path, file_pos, why))?;
                frames.push(frame);
                bytes += len;
                next += 1;
                Ok(ControlFlow::Continue(()))
            })?;
            let full = frames.len() >= limit || bytes >= max_bytes;
            if full || frames.len() == start_len {
                return Ok(ReadResult {
                    frames,
                    next_offset: next,
                    shard_last_arrival_ms: last_arrival,
                    caught_up: next >= shard_next,
                });
            }
        }
    }
}

/// Frames reserved up front by a read (more are added as needed).
const INITIAL_FRAMES: usize = 16 * 1024;

/// Bytes to read at once to reach `records` frames of `seg` (counted from an index entry),
/// but not much more than `budget` bytes of frames: the segment's average frame length times
/// the count, plus one index interval's worth of slack. A wrong estimate costs one more read
/// (too small) or copying unused bytes (too large), never correctness.
fn read_chunk(seg: &SegmentView, records: u64, budget: usize) -> usize {
    let committed = seg.next_offset.saturating_sub(seg.base_offset).max(1);
    let avg = seg.end.div_ceil(committed).max(1);
    let want = records.saturating_mul(avg).saturating_add(CHUNK_SLACK);
    let cap = (budget as u64).saturating_add(CHUNK_SLACK);
    usize::try_from(want.min(cap)).unwrap_or(usize::MAX)
}

/// Extra bytes each estimated read asks for beyond its estimate.
const CHUNK_SLACK: u64 = 64 * 1024;
