//! One shard's shared state and its read path.
//!
//! Invariants: `segments` is never empty and is ordered by base offset; every segment but the
//! last is sealed; the last is the active one its writer appends to. The trim horizon is the
//! first segment's base offset. Offsets are dense: segment `i + 1` starts at segment `i`'s
//! `next_offset`. Arrival times never decrease along a shard (the writer clamps them), so
//! "first record at or after time t" is a binary search over segments and index entries.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use shardline_core::stream::{HashKeyRange, ShardId};

use crate::error::LogError;
use crate::frame::{self, Decoded, Frame};
use crate::index;
use crate::segment::SegmentView;
use crate::throttle::Throttle;

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
            (seg.reader(), pos, seg.next_offset)
        };
        let mut found = None;
        reader.walk(pos, |_, _, head, _, _| {
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
            let (reader, pos, last_arrival, shard_next) = {
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
                let pos = index::seek_offset(&seg.index, next).map_or(0, |e| e.position);
                (seg.reader(), pos, view.last_arrival_ms(), shard_next)
            };
            let start_len = frames.len();
            reader.walk(pos, |buf, at, head, len, file_pos| {
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
                match frame::decode(buf, at) {
                    Decoded::Frame(f, _) => frames.push(f),
                    _ => {
                        return Err(LogError::corrupt(
                            &*reader.path,
                            file_pos,
                            "frame changed while read",
                        ));
                    }
                }
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
