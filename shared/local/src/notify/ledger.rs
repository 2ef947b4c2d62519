//! Deduplication of notifications by `deduplication_id`, optionally persisted.
//!
//! File format (JSON Lines, one object per published notification, appended and fsync'd
//! before `publish` returns): every line has at least `message_id` and
//! `deduplication_id` (string or null). The outbox's lines are whole
//! [`super::Envelope`]s; the sent-ledgers of stdout and webhook targets hold just those two
//! fields.
//!
//! Appends are a few hundred bytes and fsync'd inline by the publishing task; notifications
//! are rare enough (alarm transitions) that this does not hold up the runtime.
//!
//! Recovery on open: every complete line must parse (else [`Error::Corrupt`] with its byte
//! offset); a final line without its newline is a torn append from a crash and is cut off.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shardline_core::{Error, Result};
use tracing::warn;

#[derive(Deserialize)]
struct LedgerLine {
    message_id: String,
    deduplication_id: Option<String>,
}

/// Deduplication ids already published, with the message id each got.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    seen: HashMap<String, String>,
    file: Option<(PathBuf, File)>,
}

impl Ledger {
    /// An in-memory ledger (forgotten on restart).
    pub(crate) fn in_memory() -> Self {
        Ledger::default()
    }

    /// Opens (creating) the JSON Lines file at `path` and loads the ids it holds.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            warn!(
                path = %path.display(),
                bytes = bytes.len() - complete,
                "torn final line cut off"
            );
            file.set_len(complete as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(path, e))?;
        }
        let mut seen = HashMap::new();
        let mut offset = 0u64;
        for line in bytes[..complete].split(|&b| b == b'\n') {
            let len = line.len() as u64 + 1;
            if !line.iter().all(u8::is_ascii_whitespace) {
                let parsed: LedgerLine =
                    serde_json::from_slice(line).map_err(|e| Error::Corrupt {
                        file: path.to_path_buf(),
                        offset,
                        detail: format!("line is not a notification record: {e}"),
                    })?;
                if let Some(id) = parsed.deduplication_id {
                    seen.insert(id, parsed.message_id);
                }
            }
            offset += len;
        }
        file.flush().map_err(|e| Error::io(path, e))?;
        Ok(Ledger {
            seen,
            file: Some((path.to_path_buf(), file)),
        })
    }

    /// The message id a deduplication id was published under, if it was.
    pub(crate) fn published(&self, deduplication_id: Option<&str>) -> Option<&str> {
        deduplication_id.and_then(|id| self.seen.get(id).map(String::as_str))
    }

    /// Appends `line` (one JSON object, no newline) durably and remembers the id.
    pub(crate) fn record(
        &mut self,
        line: &[u8],
        deduplication_id: Option<&str>,
        message_id: &str,
    ) -> Result<()> {
        if let Some((path, file)) = &mut self.file {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line);
            buf.push(b'\n');
            file.write_all(&buf)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io(path.as_path(), e))?;
        }
        if let Some(id) = deduplication_id {
            self.seen.insert(id.to_string(), message_id.to_string());
        }
        Ok(())
    }

    /// Appends the minimal ledger line for a published notification.
    pub(crate) fn record_sent(
        &mut self,
        deduplication_id: Option<&str>,
        message_id: &str,
    ) -> Result<()> {
        if self.file.is_none() {
            if let Some(id) = deduplication_id {
                self.seen.insert(id.to_string(), message_id.to_string());
            }
            return Ok(());
        }
        if deduplication_id.is_none() {
            return Ok(());
        }
        let line = serde_json::json!({
            "message_id": message_id,
            "deduplication_id": deduplication_id,
        });
        self.record(line.to_string().as_bytes(), deduplication_id, message_id)
    }
}
