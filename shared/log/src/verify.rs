//! Offline verification of a log directory: every CRC of every frame, without opening the log
//! (so it also works when [`crate::Log::open`] refuses mid-log damage) and without changing
//! anything.
//!
//! Per segment it checks that frames are valid and carry consecutive offsets from the segment's
//! base, that the segment starts where the previous one ended, and that the index (when
//! present) has valid entries that point at frames with the offsets and arrival times they
//! claim. Every problem is reported with its file and byte offset.

use std::path::{Path, PathBuf};

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
    let dir = dir.as_ref();
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
            verify_shard(&sd.join(s.shard_id.to_string()), &mut report)?;
        }
    }
    Ok(report)
}

fn verify_shard(dir: &Path, report: &mut VerifyReport) -> Result<(), LogError> {
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
        let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
        report.bytes += bytes.len() as u64;
        let mut pos = 0usize;
        let mut next = base;
        while pos < bytes.len() {
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
        verify_index(dir, base, &bytes, report);
    }
    Ok(())
}

fn verify_index(dir: &Path, base: u64, segment: &[u8], report: &mut VerifyReport) {
    let idx = segment::index_path(dir, base);
    let Ok(raw) = std::fs::read(&idx) else { return };
    if raw.is_empty() {
        return;
    }
    match index::load(&idx, base) {
        Ok(Some(entries)) => {
            for (i, e) in entries.iter().enumerate() {
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
