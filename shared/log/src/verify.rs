//! Offline verification of a log directory: every CRC of every frame, without opening the log
//! (so it also works when [`crate::Log::open`] refuses mid-log damage) and without changing
//! anything.
//!
//! Per segment it checks that frames are valid and carry consecutive offsets from the segment's
//! base, that the segment starts where the previous one ended, and that the index (when
//! present) has valid entries that point at frames with the offsets and arrival times they
//! claim. Every problem is reported with its file and byte offset.
//!
//! [`verify_committed`] checks the directory of a log that is open and being written: each
//! shard only up to the record count it had committed when the caller took its
//! [`Log::shard_stats`](crate::Log::shard_stats), so the tail being appended meanwhile (a frame
//! half-written, an index entry ahead of the bytes read) is not reported as damage, and a
//! segment that retention deletes meanwhile is skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use shardline_core::ShardId;

use crate::error::LogError;
use crate::frame::{self, Decoded};
use crate::index;
use crate::meta;
use crate::scan;
use crate::segment;

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The damaged file.
    pub path: PathBuf,
    /// Byte offset of the damage in it.
    pub offset: u64,
    /// What is wrong.
    pub detail: String,
}

impl std::fmt::Display for VerifyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.path.display(),
            self.offset,
            self.detail
        )
    }
}

/// What [`verify`] checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Streams checked.
    pub streams: usize,
    /// Shards checked.
    pub shards: usize,
    /// Segment files checked.
    pub segments: usize,
    /// Valid records found.
    pub records: u64,
    /// Bytes of segment files read.
    pub bytes: u64,
    /// Every problem found.
    pub problems: Vec<VerifyProblem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every CRC in every segment of the log in `dir` (or of one stream).
///
/// # Errors
/// [`LogError::StreamNotFound`] when `stream` names no stream; I/O errors reading the tree.
pub fn verify(dir: impl AsRef<Path>, stream: Option<&str>) -> Result<VerifyReport, LogError> {
    verify_up_to(dir.as_ref(), stream, None)
}

/// The committed record count (next offset) of each shard of a running log, by stream name
/// and shard, taken from [`Log::shard_stats`](crate::Log::shard_stats) before verifying.
pub type Committed = HashMap<(String, ShardId), u64>;

/// Like [`verify`], for the directory of a log open in this or another process: each shard is
/// checked up to its offset in `committed` (what follows is being written); a shard missing
/// from `committed` (a stream created since) is checked whole, and a segment deleted by
/// retention meanwhile is skipped.
///
/// # Errors
/// As [`verify`].
pub fn verify_committed(
    dir: impl AsRef<Path>,
    stream: Option<&str>,
    committed: &Committed,
) -> Result<VerifyReport, LogError> {
    verify_up_to(dir.as_ref(), stream, Some(committed))
}

fn verify_up_to(
    dir: &Path,
    stream: Option<&str>,
    committed: Option<&Committed>,
) -> Result<VerifyReport, LogError> {
    let mut report = VerifyReport::default();
    let mut streams = Vec::new();
    match stream {
        Some(name) => {
            let sd = dir.join(name);
            let m = meta::load(&sd)?.ok_or_else(|| LogError::StreamNotFound(name.to_string()))?;
            streams.push((sd, m));
        }
        None => {
            let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
            for e in entries {
                let p = e.map_err(|e| LogError::io(dir, e))?.path();
                if p.is_dir()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('~'))
                {
                    match meta::load(&p) {
                        Ok(Some(m)) => streams.push((p, m)),
                        Ok(None) => {}
                        Err(LogError::Corrupt {
                            file,
                            offset,
                            detail,
                        }) => report.problems.push(VerifyProblem {
                            path: file,
                            offset,
                            detail,
                        }),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    streams.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    for (sd, m) in streams {
        report.streams += 1;
        for s in &m.shards {
            report.shards += 1;
            let live = committed.map(|c| c.get(&(m.name.clone(), s.shard_id)).copied());
            verify_shard(&sd.join(s.shard_id.to_string()), live, &mut report)?;
        }
    }
    Ok(report)
}

/// `live`: `None` for a closed log; `Some(limit)` for an open one, where `limit` (if known)
/// is the shard's committed next offset.
fn verify_shard(
    dir: &Path,
    live: Option<Option<u64>>,
    report: &mut VerifyReport,
) -> Result<(), LogError> {
    let limit = live.flatten();
    if !dir.is_dir() {
        report.problems.push(VerifyProblem {
            path: dir.to_path_buf(),
            offset: 0,
            detail: "shard directory missing".into(),
        });
        return Ok(());
    }
    let mut expected_base: Option<u64> = None;
    for base in segment::list_segments(dir)? {
        report.segments += 1;
        let path = segment::segment_path(dir, base);
        if let Some(exp) = expected_base.filter(|&e| e != base) {
            report.problems.push(VerifyProblem {
                path: path.clone(),
                offset: 0,
                detail: format!("segment starts at offset {base}, expected {exp}"),
            });
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            // Deleted by retention since it was listed.
            Err(e) if live.is_some() && e.kind() == std::io::ErrorKind::NotFound => {
                report.segments -= 1;
                continue;
            }
            Err(e) => return Err(LogError::io(&path, e)),
        };
        report.bytes += bytes.len() as u64;
        let mut pos = 0usize;
        let mut next = base;
        while pos < bytes.len() && limit.is_none_or(|l| next < l) {
            match frame::check(&bytes[pos..]) {
                Decoded::Frame(h, len) if h.offset == next => {
                    report.records += 1;
                    next += 1;
                    pos += len;
                }
                other => {
                    let detail = match other {
                        Decoded::Frame(h, _) => {
                            format!("frame carries offset {}, expected {next}", h.offset)
                        }
                        Decoded::Incomplete { .. } => {
                            "incomplete frame at the end of the file".to_string()
                        }
                        Decoded::Bad(why) => why.to_string(),
                    };
                    report.problems.push(VerifyProblem {
                        path: path.clone(),
                        offset: pos as u64,
                        detail,
                    });
                    match scan::valid_frame_after(&bytes, pos, next) {
                        Some(q) => {
                            let h = match frame::check(&bytes[q..]) {
                                Decoded::Frame(h, _) => h.offset,
                                _ => next,
                            };
                            next = h;
                            pos = q;
                        }
                        None => break,
                    }
                }
            }
        }
        expected_base = Some(next);
        verify_index(dir, base, &bytes, live, report);
    }
    Ok(())
}

fn verify_index(
    dir: &Path,
    base: u64,
    segment: &[u8],
    live: Option<Option<u64>>,
    report: &mut VerifyReport,
) {
    let limit = live.flatten();
    let idx = segment::index_path(dir, base);
    let Ok(raw) = std::fs::read(&idx) else { return };
    if raw.is_empty() || (live.is_some() && raw.len() % index::ENTRY_BYTES != 0) {
        // Empty, or (open log) an entry being appended.
        return;
    }
    match index::load(&idx, base) {
        Ok(Some(entries)) => {
            for (i, e) in entries.iter().enumerate() {
                if limit.is_some_and(|l| e.offset >= l) {
                    // Written after the committed count was taken.
                    break;
                }
                let at = usize::try_from(e.position)
                    .ok()
                    .and_then(|p| segment.get(p..));
                let ok = match at.map(frame::check) {
                    Some(Decoded::Frame(h, _)) => {
                        h.offset == e.offset && h.arrival_ms == e.arrival_ms
                    }
                    // A damaged frame there is reported with the segment.
                    Some(Decoded::Bad(_)) => true,
                    _ => false,
                };
                if !ok {
                    report.problems.push(VerifyProblem {
                        path: idx.clone(),
                        offset: (i * index::ENTRY_BYTES) as u64,
                        detail: format!("index entry for offset {} does not match the segment (rebuilt on open)", e.offset),
                    });
                }
            }
        }
        _ => report.problems.push(VerifyProblem {
            path: idx,
            offset: 0,
            detail: "index damaged (rebuilt on open)".into(),
        }),
    }
}
