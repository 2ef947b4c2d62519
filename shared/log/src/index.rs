//! The sparse index kept beside each segment (`<base offset>.idx`).
//!
//! On disk: a sequence of 28-byte entries, little-endian, no header:
//! `offset u64 · arrival_ms i64 · position u64 · CRC32C of the previous 24 bytes (u32)`.
//!
//! Invariants: the first entry points at position 0 (the segment's first frame); offsets,
//! arrival times and positions never decrease; a new entry is added for the first frame
//! that starts at least `index_interval_bytes` after the previous entry's frame.
//! An index is a cache of the segment: when it is missing, damaged or disagrees with the
//! segment, recovery rebuilds it by scanning the segment.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::LogError;
use crate::fault::{self, Point};

/// Extension of an index being written (`<base>.idx.tmp`).
pub const TEMP_EXTENSION: &str = "idx.tmp";

/// Bytes per index entry on disk.
pub const ENTRY_BYTES: usize = 28;

/// One index entry: the frame at `position` holds `offset`, which arrived at `arrival_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Record offset.
    pub offset: u64,
    /// Arrival time of that record.
    pub arrival_ms: i64,
    /// Byte position of its frame in the segment.
    pub position: u64,
}

impl IndexEntry {
    /// Appends the on-disk form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.arrival_ms.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<IndexEntry> {
        let word = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let mut c = [0u8; 4];
        c.copy_from_slice(&b[24..28]);
        (crc32c::crc32c(&b[..24]) == u32::from_le_bytes(c)).then(|| IndexEntry {
            offset: word(0),
            arrival_ms: word(8) as i64,
            position: word(16),
        })
    }
}

/// Reads an index file. `Ok(None)` when it is missing or damaged (so it must be rebuilt).
///
/// # Errors
/// I/O errors other than "not found".
pub fn load(path: &Path, base_offset: u64) -> Result<Option<Vec<IndexEntry>>, LogError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(path, e)),
    };
    if bytes.is_empty() || bytes.len() % ENTRY_BYTES != 0 {
        return Ok(None);
    }
    let mut entries = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    for chunk in bytes.chunks_exact(ENTRY_BYTES) {
        let Some(e) = IndexEntry::decode(chunk) else {
            return Ok(None);
        };
        if let Some(prev) = entries.last() {
            let prev: &IndexEntry = prev;
            if e.offset <= prev.offset
                || e.position <= prev.position
                || e.arrival_ms < prev.arrival_ms
            {
                return Ok(None);
            }
        }
        entries.push(e);
    }
    if entries[0].position != 0 || entries[0].offset != base_offset {
        return Ok(None);
    }
    Ok(Some(entries))
}

/// Writes a whole index file atomically (temporary file `<base>.idx.tmp`, then rename). On
/// failure the temporary file is removed; one left by a crash is removed when the log opens.
///
/// # Errors
/// I/O errors naming the file.
pub fn store(path: &Path, entries: &[IndexEntry]) -> Result<(), LogError> {
    let mut buf = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for e in entries {
        e.encode(&mut buf);
    }
    let tmp = path.with_extension(TEMP_EXTENSION);
    let write = || -> Result<(), LogError> {
        let mut f = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        fault::hit(Point::IndexWrite, &tmp).map_err(|e| LogError::io(&tmp, e))?;
        f.write_all(&buf).map_err(|e| LogError::io(&tmp, e))?;
        f.sync_data().map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The entry to start a scan from when looking for `offset`: the last one at or below it.
pub fn seek_offset(entries: &[IndexEntry], offset: u64) -> Option<&IndexEntry> {
    let i = entries.partition_point(|e| e.offset <= offset);
    i.checked_sub(1).map(|i| &entries[i])
}

/// The entry to start a scan from when looking for the first arrival at or after `ms`:
/// the last one that arrived strictly before it (or the first entry).
pub fn seek_time(entries: &[IndexEntry], ms: i64) -> Option<&IndexEntry> {
    let i = entries.partition_point(|e| e.arrival_ms < ms);
    entries.get(i.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<IndexEntry> {
        (0..10)
            .map(|i| IndexEntry {
                offset: 100 + i * 10,
                arrival_ms: 1000 + (i as i64) * 5,
                position: i * 4096,
            })
            .collect()
    }

    #[test]
    fn stores_loads_and_detects_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.idx");
        store(&path, &entries()).expect("store");
        assert_eq!(load(&path, 100).expect("load"), Some(entries()));
        assert_eq!(
            load(&path, 99).expect("load"),
            None,
            "base offset must match"
        );
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[40] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(load(&path, 100).expect("load"), None);
        assert_eq!(
            load(&dir.path().join("missing.idx"), 0).expect("load"),
            None
        );
    }

    #[test]
    fn seeks_by_offset_and_time() {
        let e = entries();
        assert_eq!(seek_offset(&e, 99), None);
        assert_eq!(seek_offset(&e, 100).map(|e| e.offset), Some(100));
        assert_eq!(seek_offset(&e, 125).map(|e| e.offset), Some(120));
        assert_eq!(seek_time(&e, 0).map(|e| e.offset), Some(100));
        assert_eq!(seek_time(&e, 1012).map(|e| e.offset), Some(120));
        assert_eq!(seek_time(&e, 1010).map(|e| e.offset), Some(110));
    }
}
