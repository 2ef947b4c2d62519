//! Segment files: naming, listing, and reading committed frames.
//!
//! A shard directory holds `<base offset, 20 digits>.seg` files, each with a sparse index
//! `<base offset>.idx` beside it (see [`crate::index`]). A segment holds the frames
//! ([`crate::frame`]) of consecutive offsets starting at its base offset; the next segment's
//! base offset is one past the last offset of the previous one. Only the newest segment of a
//! shard is *active* (appended to, by its writer alone); every older one is *sealed* and never
//! changes until retention deletes it whole.
//!
//! Readers only read below a segment's committed end ([`SegmentView::end`]), which the writer
//! moves forward after a batch is durable, so a reader never sees an unacknowledged record.
//! The active segment's handle is shared by its writer and readers; sealed segments are
//! opened on demand through the log's bounded [`SealedHandles`] cache.
//!
//! Integrity on read: a walk copies a region of the file into memory with one positional read
//! and checks every frame in it (length, CRC32C of the body, flags, key bounds) before handing
//! it on; records returned are views of that same immutable buffer, so their bytes are exactly
//! the bytes whose CRC matched. Nothing is remembered between reads: each read verifies every
//! frame it touches again, so damage that appears on disk after open is reported (naming file
//! and byte offset) by the first read that reaches it.

use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::LogError;
use crate::frame::{self, Decoded, FrameHead};
use crate::handles::SealedHandles;
use crate::index::IndexEntry;

/// Smallest read a walk makes (unless the committed end is nearer).
pub const MIN_READ_CHUNK: usize = 64 * 1024;
/// Largest read a walk makes at once (a single frame longer than this is still read whole).
pub const MAX_READ_CHUNK: usize = 16 * 1024 * 1024;

/// Path of the segment with `base` offset in `dir`.
pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// Path of the index of the segment with `base` offset in `dir`.
pub fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.idx"))
}

/// Base offsets of the segments in `dir`, ascending.
///
/// # Errors
/// I/O errors naming the directory.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if let Ok(base) = stem.parse::<u64>() {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// A segment as readers see it: committed bytes only.
#[derive(Debug)]
pub struct SegmentView {
    /// Offset of its first record.
    pub base_offset: u64,
    /// Its file.
    pub path: Arc<Path>,
    /// The active segment's handle, shared with its writer (positional reads only). `None`
    /// for a sealed segment: readers take its handle from the log's [`SealedHandles`].
    pub file: Option<Arc<File>>,
    /// Sparse index of committed frames.
    pub index: Vec<IndexEntry>,
    /// Committed bytes: every frame below this is acknowledged.
    pub end: u64,
    /// One past the last committed offset.
    pub next_offset: u64,
    /// Arrival time of the last committed record.
    pub last_arrival_ms: Option<i64>,
}

impl SegmentView {
    /// A view of the segment at `path`, with nothing committed yet and no handle (sealed).
    pub fn new(path: &Path, base_offset: u64) -> SegmentView {
        SegmentView {
            base_offset,
            path: Arc::from(path),
            file: None,
            index: Vec::new(),
            end: 0,
            next_offset: base_offset,
            last_arrival_ms: None,
        }
    }

    /// A cheap handle for reading outside the shard lock. Take it while holding the lock: a
    /// sealed segment's file is opened (or found in `handles`) here, while it surely exists.
    ///
    /// # Errors
    /// I/O errors naming the file when a sealed segment cannot be opened.
    pub fn reader(&self, handles: &SealedHandles) -> Result<SegmentReader, LogError> {
        let file = match &self.file {
            Some(f) => f.clone(),
            None => handles.get(&self.path)?,
        };
        Ok(SegmentReader {
            path: self.path.clone(),
            file,
            end: self.end,
        })
    }
}

/// What a reader needs to read one segment without holding the shard lock.
#[derive(Debug, Clone)]
pub struct SegmentReader {
    /// The file.
    pub path: Arc<Path>,
    /// Read handle.
    pub file: Arc<File>,
    /// Committed end when the handle was taken.
    pub end: u64,
}

impl SegmentReader {
    fn read(&self, pos: u64, len: usize) -> Result<Bytes, LogError> {
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| LogError::io(&*self.path, e))?;
        Ok(Bytes::from(buf))
    }

    /// Walks the committed frames from `pos`, verifying each CRC. `f` gets the buffer, the
    /// frame's position in it, its head, its length and its position in the file, and says
    /// whether to go on; a frame it breaks on is not consumed. Returns the file position after
    /// the last consumed frame.
    ///
    /// The file is read with one positional read of `chunk` bytes at a time (clamped to
    /// [`MIN_READ_CHUNK`]..=[`MAX_READ_CHUNK`] and to the committed end) into a fresh buffer
    /// that `f` may keep views of; every frame handed to `f` has passed [`frame::check`]
    /// (length, CRC32C, flags, key bounds) on exactly the bytes in that buffer.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] naming the file and byte offset of a bad frame; I/O errors.
    pub fn walk(
        &self,
        mut pos: u64,
        chunk: usize,
        mut f: impl FnMut(&Bytes, usize, FrameHead, usize, u64) -> Result<ControlFlow<()>, LogError>,
    ) -> Result<u64, LogError> {
        let chunk = chunk.clamp(MIN_READ_CHUNK, MAX_READ_CHUNK) as u64;
        while pos < self.end {
            let left = self.end - pos;
            let mut want = left.min(chunk) as usize;
            let mut buf = self.read(pos, want)?;
            let mut at = 0usize;
            loop {
                if at == buf.len() {
                    break;
                }
                match frame::check(&buf[at..]) {
                    Decoded::Frame(head, len) => {
                        if f(&buf, at, head, len, pos + at as u64)?.is_break() {
                            return Ok(pos + at as u64);
                        }
                        at += len;
                    }
                    Decoded::Incomplete { need } if at == 0 => {
                        if need == 0 || need as u64 > left || need <= want {
                            return Err(LogError::corrupt(
                                &*self.path,
                                pos,
                                "frame runs past the committed end of the segment",
                            ));
                        }
                        want = need;
                        buf = self.read(pos, want)?;
                    }
                    Decoded::Incomplete { .. } => break,
                    Decoded::Bad(why) => {
                        return Err(LogError::corrupt(&*self.path, pos + at as u64, why));
                    }
                }
            }
            pos += at as u64;
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `n` frames (offsets from 0, one 200 KiB record at offset 7) and returns the
    /// segment's path, its frame positions and payloads.
    fn write_segment(dir: &Path, n: u64) -> (PathBuf, Vec<u64>, Vec<Vec<u8>>) {
        let path = segment_path(dir, 0);
        let (mut out, mut positions, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let len = if i == 7 {
                200 * 1024
            } else {
                100 + (i % 300) as usize
            };
            let data: Vec<u8> = (0..len).map(|b| (b as u64 ^ i) as u8).collect();
            positions.push(out.len() as u64);
            frame::encode(
                &mut out,
                i,
                1_000 + i as i64,
                &format!("key-{i}"),
                None,
                &data,
                i == 0,
            );
            payloads.push(data);
        }
        std::fs::write(&path, &out).expect("write segment");
        (path, positions, payloads)
    }

    fn reader(path: &Path) -> SegmentReader {
        let mut view = SegmentView::new(path, 0);
        view.end = std::fs::metadata(path).expect("stat").len();
        view.reader(&SealedHandles::new(
            1,
            std::time::Duration::ZERO,
            std::sync::Arc::new(shardline_core::time::SystemClock),
        ))
        .expect("reader")
    }

    /// Walks everything with `chunk`, collecting each frame as parsed from its buffer.
    fn collect(r: &SegmentReader, chunk: usize) -> Result<Vec<frame::Frame>, LogError> {
        let mut frames = Vec::new();
        r.walk(0, chunk, |buf, at, head, len, pos| {
            let f = frame::parse_checked(buf, at, head, len)
                .map_err(|why| LogError::corrupt(&*r.path, pos, why))?;
            frames.push(f);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(frames)
    }

    #[test]
    fn walks_every_frame_whatever_the_chunk_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _, payloads) = write_segment(dir.path(), 3_000);
        let r = reader(&path);
        assert!(
            r.end > 4 * MIN_READ_CHUNK as u64,
            "several chunks: {}",
            r.end
        );
        for chunk in [0, MIN_READ_CHUNK, 1 << 20, usize::MAX] {
            let frames = collect(&r, chunk).expect("walk");
            assert_eq!(frames.len(), payloads.len(), "chunk {chunk}");
            for (i, (f, p)) in frames.iter().zip(&payloads).enumerate() {
                assert_eq!(f.offset, i as u64);
                assert_eq!(f.partition_key, format!("key-{i}"));
                assert_eq!(&f.data[..], &p[..], "data of offset {i}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn a_byte_flipped_after_open_fails_the_walk_at_that_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, positions, _) = write_segment(dir.path(), 3_000);
        let r = reader(&path);
        let mut bytes = std::fs::read(&path).expect("read");
        let victim = 2_500;
        bytes[positions[victim] as usize + 40] ^= 0x10;
        std::fs::write(&path, &bytes).expect("damage");
        let mut seen = 0u64;
        let err = r
            .walk(0, MIN_READ_CHUNK, |_, _, _, _, _| {
                seen += 1;
                Ok(ControlFlow::Continue(()))
            })
            .expect_err("damage must be found");
        match err {
            LogError::Corrupt { offset, detail, .. } => {
                assert_eq!(offset, positions[victim], "{detail}");
                assert_eq!(detail, "CRC mismatch");
            }
            other => panic!("not Corrupt: {other:?}"),
        }
        assert_eq!(
            seen, victim as u64,
            "every frame before the damage was delivered"
        );
    }
}
