//! [`ActiveSegment`]: the one segment file of a shard that its writer appends to.
//!
//! Invariants:
//! - Frames are written with positional writes at [`ActiveSegment::size`] (the committed
//!   length), never with `O_APPEND`: bytes a failed write left past `size` are cut or
//!   overwritten, never skipped over, so they can never end up between committed frames.
//! - `dirty` is set when a write or sync failed: bytes may lie past `size`. Before anything
//!   else is written, [`ActiveSegment::repair`] cuts the file back to `size` and syncs the cut;
//!   until that succeeds every batch is refused. So a refused batch leaves nothing behind that
//!   a later batch or a reader could see.
//! - `synced` is true when every byte below `size` is known durable: after an `fdatasync`
//!   (a batch in `Fsync` mode, a roll, a repair, recovery) and for a new, empty segment. The
//!   first frame written while it is true carries [`crate::frame::SYNCED_BEFORE`].
//! - The handle is shared (`Arc`) with the segment's read view: readers read below the
//!   committed end with positional reads of the same descriptor, so a shard holds one
//!   descriptor for its active segment.
//! - The sparse index of the active segment lives in memory; it is written whole (atomically)
//!   when the segment is sealed and when the writer stops. Recovery rebuilds the tail's index
//!   from a scan in any case, so nothing is written to the index per batch.
//! - Creating the next segment either succeeds (file created, directory synced) or leaves no
//!   new file behind (what it created is removed); should even that removal fail, recovery
//!   removes the empty file (see `crate::recovery`).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::error::LogError;
use crate::fault::{self, Point};
use crate::index::{self, IndexEntry};
use crate::meta;
use crate::segment;

/// The segment being appended to: owned by the writer thread alone.
#[derive(Debug)]
pub struct ActiveSegment {
    /// Offset of its first record.
    pub base_offset: u64,
    /// Its file.
    pub path: PathBuf,
    /// Read-write handle (no `O_APPEND`), shared with readers.
    pub file: Arc<File>,
    /// Every index entry of its committed frames.
    pub index: Vec<IndexEntry>,
    /// Bytes committed (written, and synced in `Fsync` mode).
    pub size: u64,
    /// One past the last committed offset.
    pub next_offset: u64,
    /// Arrival time of the last committed record.
    pub last_arrival_ms: Option<i64>,
    /// Every byte below `size` is durable.
    pub synced: bool,
    /// A write or sync failed: bytes may lie past `size` until [`Self::repair`] succeeds.
    pub dirty: bool,
}

/// Opens a segment file for reading and positional writing.
pub fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
}

impl ActiveSegment {
    /// Creates a new, empty segment file at `base_offset` in `dir` and syncs the directory.
    /// On failure no new file is left behind (best effort; recovery removes empty leftovers).
    ///
    /// # Errors
    /// I/O errors naming the file or directory; [`LogError::Corrupt`] when a file of that name
    /// already holds data.
    pub fn create(dir: &Path, base_offset: u64) -> Result<ActiveSegment, LogError> {
        let path = segment::segment_path(dir, base_offset);
        fault::hit(Point::SegmentCreate, &path).map_err(|e| LogError::io(&path, e))?;
        let existed = path.exists();
        let file = open_rw(&path, true).map_err(|e| LogError::io(&path, e))?;
        let undo = |e: LogError| {
            if !existed && let Err(rm) = std::fs::remove_file(&path) {
                warn!(file = %path.display(), error = %rm, "could not remove a segment file whose creation failed; the next open removes it");
            }
            e
        };
        let len = file
            .metadata()
            .map_err(|e| undo(LogError::io(&path, e)))?
            .len();
        if len != 0 {
            return Err(LogError::corrupt(
                &path,
                0,
                "the next segment's file already exists and holds data; move it aside",
            ));
        }
        meta::sync_dir(dir).map_err(undo)?;
        Ok(ActiveSegment {
            base_offset,
            path,
            file: Arc::new(file),
            index: Vec::new(),
            size: 0,
            next_offset: base_offset,
            last_arrival_ms: None,
            synced: true,
            dirty: false,
        })
    }

    /// Writes `buf` at `size + at` (`at`: bytes of this batch already written).
    ///
    /// # Errors
    /// The I/O error; the segment is then `dirty`.
    pub fn write(&mut self, buf: &[u8], at: u64) -> io::Result<()> {
        self.synced = false;
        let r = fault::write_all_at(
            Point::SegmentWrite,
            &self.path,
            &self.file,
            buf,
            self.size + at,
        );
        self.dirty |= r.is_err();
        r
    }

    /// `fdatasync`: everything written so far becomes durable.
    ///
    /// # Errors
    /// The I/O error; the segment is then `dirty` (what the failed sync covered is cut).
    pub fn sync(&mut self) -> io::Result<()> {
        let r = fault::sync_data(Point::SegmentSync, &self.path, &self.file);
        match r {
            Ok(()) => self.synced = !self.dirty,
            Err(_) => self.dirty = true,
        }
        r
    }

    /// When `dirty`: cuts the file back to `size` and syncs the cut. A no-op otherwise.
    ///
    /// # Errors
    /// The I/O error; the segment stays `dirty` and nothing may be written.
    pub fn repair(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        fault::set_len(Point::SegmentTruncate, &self.path, &self.file, self.size)?;
        fault::sync_data(Point::SegmentSync, &self.path, &self.file)?;
        self.dirty = false;
        self.synced = true;
        Ok(())
    }

    /// Writes the whole index of the segment (atomically). The index is a cache that recovery
    /// rebuilds, so a failure is logged, not returned.
    pub fn store_index(&self) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let idx = segment::index_path(dir, self.base_offset);
        if let Err(e) = index::store(&idx, &self.index) {
            warn!(file = %idx.display(), error = %e, "could not write a segment index; the next open rebuilds it");
        }
    }
}
