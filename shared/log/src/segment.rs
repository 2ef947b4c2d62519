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

use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::LogError;
use crate::frame::{self, Decoded, FrameHead};
use crate::index::IndexEntry;

/// Bytes read at a time when scanning a segment.
const READ_CHUNK: usize = 1024 * 1024;

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
    /// A read-only handle, shared by readers (positional reads, no seeking).
    pub file: Arc<File>,
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
    /// Opens a read handle on a segment file.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn open(path: &Path, base_offset: u64) -> Result<SegmentView, LogError> {
        let file = File::open(path).map_err(|e| LogError::io(path, e))?;
        Ok(SegmentView {
            base_offset,
            path: Arc::from(path),
            file: Arc::new(file),
            index: Vec::new(),
            end: 0,
            next_offset: base_offset,
            last_arrival_ms: None,
        })
    }

    /// A cheap handle for reading outside the shard lock.
    pub fn reader(&self) -> SegmentReader {
        SegmentReader {
            path: self.path.clone(),
            file: self.file.clone(),
            end: self.end,
        }
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
    /// frame's position in it, its head, its length and its position in the file, and says whether to go on; a frame it
    /// breaks on is not consumed. Returns the file position after the last consumed frame.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] naming the file and byte offset of a bad frame; I/O errors.
    pub fn walk(
        &self,
        mut pos: u64,
        mut f: impl FnMut(&Bytes, usize, FrameHead, usize, u64) -> Result<ControlFlow<()>, LogError>,
    ) -> Result<u64, LogError> {
        while pos < self.end {
            let left = self.end - pos;
            let mut want = left.min(READ_CHUNK as u64) as usize;
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
