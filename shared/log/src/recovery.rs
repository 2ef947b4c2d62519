//! Recovery: bringing a shard directory back to a consistent state on open.
//!
//! Rules, per shard:
//! 1. Temporary files of interrupted index writes (`*.idx.tmp`) are removed.
//! 2. Segments are listed by base offset. An empty segment file holds no record: one that is
//!    not the newest is a leftover of a roll that failed after creating it, and is removed
//!    (with its index). The newest, when empty, is the active segment if the one before it
//!    ends exactly at its base; if the one before holds records at or past that base, the
//!    roll failed and the writer went on appending there: the empty file is removed and the
//!    one before is the tail.
//! 3. Each segment must start where the previous one ended (dense offsets); a gap is
//!    mid-log damage.
//! 4. Sealed segments (all but the tail) are scanned whole: every frame must be valid
//!    (complete, CRC matching) and carry the next offset, up to the exact end of the file. Any
//!    bad frame in a sealed segment is mid-log damage: sealed segments were synced before the
//!    next one was created, so no crash can leave them torn. (Open therefore reads every
//!    retained byte once, sequentially.) The index is loaded and compared with the one the
//!    scan builds; a missing, damaged or disagreeing index is rewritten from the scan.
//! 5. The tail segment is scanned frame by frame from the start. At the first position `p`
//!    where a frame is incomplete, fails its CRC, or does not carry the next offset, the rest
//!    of the file is searched for a valid frame flagged *synced before*
//!    ([`frame::SYNCED_BEFORE`]) with a later offset:
//!    - None found: `p..EOF` is the **unsynced suffix**: bytes written after the last
//!      `fdatasync` that the disk kept only in part (zeroed or missing pages, frames cut
//!      short, bytes of a write that failed). Nothing in it was acknowledged in `Fsync`
//!      mode, since a batch is acknowledged only after its sync. The file is cut at `p` (the
//!      end of the last whole record), synced, and a warning names the bytes cut.
//!    - One found at `q`: the writer had synced every byte before `q`, so the damage at `p` is
//!      in data that was durable (and acknowledged): **mid-log damage**. Open fails with
//!      [`LogError::Corrupt`] naming the file and `p`; nothing is changed on disk.
//!
//!    A segment whose first frame lacks the flag was written before the flag existed; for it
//!    any valid frame with a later offset after `p` counts as proof (the older, stricter rule:
//!    only damage in its final frame is cut).
//! 6. The tail is synced (so the writer may flag its next frame *synced before*) and its index
//!    rebuilt from the scan and written (a failure to write it is only a warning: the index is
//!    a cache).
//!
//! What this cannot tell apart: damage in the synced bytes of the *last* batch (after its
//! first frame) looks like a torn unsynced suffix and is cut; only a frame written after a
//! later sync proves data synced. In `Buffered` mode no batch after a segment's first is
//! flagged, so damage anywhere in the active segment is cut: that mode promises nothing across
//! a power loss. `crate::verify` checks every frame of every segment without changing anything.

use std::path::Path;

use tracing::warn;

use crate::active::{ActiveSegment, open_rw};
use crate::error::LogError;
use crate::index;
use crate::meta;
use crate::scan::{Scan, scan, synced_frame_after, valid_frame_after};
use crate::segment::{self, SegmentView};
use std::sync::Arc;

/// A recovered shard: its read view's segments and the writer's active segment.
pub struct Recovered {
    /// Segments, oldest first; the last is active (and shares the writer's handle).
    pub segments: Vec<SegmentView>,
    /// The active segment for the writer.
    pub active: ActiveSegment,
}

/// Which shard is being recovered, for messages.
struct Names<'a> {
    stream: &'a str,
    shard: &'a str,
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
    let names = Names { stream, shard };
    std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
    remove_temp_files(dir)?;
    let mut bases = drop_empty_leftovers(dir, segment::list_segments(dir)?, &names)?;
    let Some(&newest) = bases.last() else {
        let active = ActiveSegment::create(dir, 0)?;
        return Ok(Recovered {
            segments: vec![active_view(&active)],
            active,
        });
    };
    if bases.len() > 1 && file_len(dir, newest)? == 0 {
        let before = bases[bases.len() - 2];
        let path = segment::segment_path(dir, before);
        let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
        let s = scan(&bytes, before, index_interval);
        let clean_end = s.damage.is_none() && s.next_offset == newest;
        if !clean_end && s.next_offset >= newest {
            warn!(stream, shard, file = %segment::segment_path(dir, newest).display(), "removing an empty segment left by a failed roll");
            remove_segment(dir, newest)?;
            bases.pop();
        }
    }
    let (tail_base, sealed) = bases.split_last().unwrap_or((&0, &[]));
    let mut segments = Vec::with_capacity(bases.len());
    for &base in sealed {
        let view = recover_sealed(dir, base, index_interval)?;
        if let Some(prev) = segments.last() {
            check_dense(prev, &view.path, base)?;
        }
        segments.push(view);
    }
    let tail_path = segment::segment_path(dir, *tail_base);
    if let Some(prev) = segments.last() {
        check_dense(prev, &tail_path, *tail_base)?;
    }
    let active = recover_tail(dir, *tail_base, index_interval, &names)?;
    meta::sync_dir(dir)?;
    segments.push(active_view(&active));
    Ok(Recovered { segments, active })
}

/// The read view of the active segment, sharing its handle.
fn active_view(active: &ActiveSegment) -> SegmentView {
    let mut view = SegmentView::new(&active.path, active.base_offset);
    view.file = Some(Arc::clone(&active.file));
    view.index = active.index.clone();
    view.end = active.size;
    view.next_offset = active.next_offset;
    view.last_arrival_ms = active.last_arrival_ms;
    view
}

fn check_dense(prev: &SegmentView, path: &Path, base: u64) -> Result<(), LogError> {
    if prev.next_offset == base {
        return Ok(());
    }
    Err(LogError::corrupt(
        path,
        0,
        format!(
            "segment starts at offset {base} but the previous one ends before {}",
            prev.next_offset
        ),
    ))
}

fn file_len(dir: &Path, base: u64) -> Result<u64, LogError> {
    let path = segment::segment_path(dir, base);
    Ok(std::fs::metadata(&path)
        .map_err(|e| LogError::io(&path, e))?
        .len())
}

fn remove_segment(dir: &Path, base: u64) -> Result<(), LogError> {
    let path = segment::segment_path(dir, base);
    std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
    let idx = segment::index_path(dir, base);
    match std::fs::remove_file(&idx) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io(&idx, e)),
        _ => Ok(()),
    }
}

/// Removes `*.idx.tmp` files left by index writes a crash interrupted.
fn remove_temp_files(dir: &Path) -> Result<(), LogError> {
    let suffix = format!(".{}", index::TEMP_EXTENSION);
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let path = entry.map_err(|e| LogError::io(dir, e))?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(&suffix))
        {
            warn!(file = %path.display(), "removing the temporary file of an interrupted index write");
            std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Removes empty segment files other than the newest (rule 2); returns the bases left.
fn drop_empty_leftovers(dir: &Path, bases: Vec<u64>, names: &Names) -> Result<Vec<u64>, LogError> {
    let newest = bases.last().copied();
    let mut kept = Vec::with_capacity(bases.len());
    for base in bases {
        if Some(base) != newest && file_len(dir, base)? == 0 {
            warn!(stream = names.stream, shard = names.shard, file = %segment::segment_path(dir, base).display(), "removing an empty segment left by a failed roll");
            remove_segment(dir, base)?;
        } else {
            kept.push(base);
        }
    }
    Ok(kept)
}

/// Recovers the tail segment (rules 5 and 6) and opens it for the writer.
fn recover_tail(
    dir: &Path,
    base: u64,
    index_interval: u64,
    names: &Names,
) -> Result<ActiveSegment, LogError> {
    let path = segment::segment_path(dir, base);
    let file = open_rw(&path, false).map_err(|e| LogError::io(&path, e))?;
    let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
    let s: Scan = scan(&bytes, base, index_interval);
    if let Some((at, why)) = s.damage {
        let legacy = s.first_synced_before == Some(false);
        let later = if legacy {
            valid_frame_after(&bytes, at as usize, s.next_offset)
        } else {
            synced_frame_after(&bytes, at as usize, s.next_offset)
        };
        if let Some(q) = later {
            let what = if legacy {
                "a valid frame"
            } else {
                "a frame written after a sync"
            };
            return Err(LogError::corrupt(
                &path,
                at,
                format!("{why}, followed by {what} at byte {q}: damage in the middle of the log"),
            ));
        }
        file.set_len(at).map_err(|e| LogError::io(&path, e))?;
        warn!(
            stream = names.stream, shard = names.shard, file = %path.display(), offset = at,
            bytes_cut = bytes.len() as u64 - at, next_offset = s.next_offset, reason = why,
            "unsynced tail cut back to the last whole record"
        );
    }
    file.sync_data().map_err(|e| LogError::io(&path, e))?;
    let idx = segment::index_path(dir, base);
    if let Err(e) = index::store(&idx, &s.index) {
        warn!(file = %idx.display(), error = %e, "could not write the tail segment's index; the next open rebuilds it");
    }
    Ok(ActiveSegment {
        base_offset: base,
        path,
        file: Arc::new(file),
        index: s.index,
        size: s.valid_len,
        next_offset: s.next_offset,
        last_arrival_ms: s.last_arrival_ms,
        synced: true,
        dirty: false,
    })
}

/// Recovers a sealed segment: every frame verified, index loaded or rebuilt. Holds no handle.
fn recover_sealed(dir: &Path, base: u64, index_interval: u64) -> Result<SegmentView, LogError> {
    let path = segment::segment_path(dir, base);
    let idx = segment::index_path(dir, base);
    let mut view = SegmentView::new(&path, base);
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
            if let Err(e) = index::store(&idx, &s.index) {
                warn!(file = %idx.display(), error = %e, "could not write a rebuilt index; the next open rebuilds it");
            }
            s.index
        }
    };
    view.end = s.valid_len;
    view.next_offset = s.next_offset;
    view.last_arrival_ms = s.last_arrival_ms;
    Ok(view)
}
