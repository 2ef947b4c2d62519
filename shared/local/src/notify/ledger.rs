//! Deduplication of notifications by `deduplication_id`, optionally persisted, with retention.
//!
//! File format (JSON Lines, one object per published notification, appended and fsync'd
//! before `publish` returns): every line has at least `message_id`, `deduplication_id`
//! (string or null) and `published_ms`. The outbox's lines are whole [`super::Envelope`]s;
//! the sent-ledgers of stdout and webhook targets hold just those three fields. (Lines written
//! before `published_ms` existed are stamped with the time the ledger is opened.)
//!
//! Appends are a few hundred bytes and fsync'd inline by the publishing task; notifications
//! are rare enough (alarm transitions) that this does not hold up the runtime.
//!
//! Recovery on open: every complete line must parse (else [`Error::Corrupt`] with its byte
//! offset); a final line without its newline is a torn append from a crash and is cut off; a
//! compaction's temporary file left by a crash is removed.
//!
//! Retention: lines published longer than the retention ago are dropped, with their
//! deduplication ids (a notification repeated after that is delivered again). The file is
//! compacted on open and, while in use, at most once per [`CHECK_EVERY`] when it holds such
//! lines: the kept lines are written to `<file>.compact.tmp`, fsync'd and renamed over the
//! file (then the directory is fsync'd), so a crash leaves the old file or the new one, whole.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use shardline_core::time::now_ms;
use shardline_core::{Error, Result};
use tracing::{info, warn};

/// How often a ledger in use looks for lines past their retention.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(3600);

/// The default retention, when none is configured.
pub(crate) const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);

#[derive(Deserialize)]
struct LedgerLine {
    message_id: String,
    deduplication_id: Option<String>,
    published_ms: Option<i64>,
}

/// Deduplication ids already published, with the message id each got.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// Deduplication id → (message id, published at).
    seen: HashMap<String, (String, i64)>,
    file: Option<(PathBuf, File)>,
    retention: Duration,
    /// The oldest kept line's (or entry's) publication time.
    oldest_ms: Option<i64>,
    /// When lines past retention were last looked for.
    checked_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".compact.tmp");
    path.with_file_name(name)
}

impl Ledger {
    /// An in-memory ledger (forgotten on restart).
    pub(crate) fn in_memory(retention: Duration) -> Self {
        Ledger {
            seen: HashMap::new(),
            file: None,
            retention,
            oldest_ms: None,
            checked_ms: now_ms(),
        }
    }

    /// Opens (creating) the JSON Lines file at `path`, drops the lines past `retention` and
    /// loads the ids of the rest.
    pub(crate) fn open(path: &Path, retention: Duration) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let temp = temp_path(path);
        match std::fs::remove_file(&temp) {
            Ok(()) => warn!(path = %temp.display(), "unfinished ledger compaction removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&temp, e)),
        }
        let file = OpenOptions::new()
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
        let now = now_ms();
        let mut ledger = Ledger {
            seen: HashMap::new(),
            file: Some((path.to_path_buf(), file)),
            retention,
            oldest_ms: None,
            checked_ms: now,
        };
        let mut unstamped = false;
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
                unstamped |= parsed.published_ms.is_none();
                ledger.remember(
                    parsed.deduplication_id,
                    parsed.message_id,
                    parsed.published_ms.unwrap_or(now),
                );
            }
            offset += len;
        }
        let cutoff = now.saturating_sub(millis(retention));
        if unstamped || ledger.oldest_ms.is_some_and(|o| o < cutoff) {
            ledger.compact(now)?;
        }
        Ok(ledger)
    }

    fn remember(&mut self, dedup: Option<String>, message_id: String, published_ms: i64) {
        if let Some(id) = dedup {
            self.seen.insert(id, (message_id, published_ms));
        }
        self.oldest_ms = Some(self.oldest_ms.map_or(published_ms, |o| o.min(published_ms)));
    }

    /// The message id a deduplication id was published under, if it was.
    pub(crate) fn published(&self, deduplication_id: Option<&str>) -> Option<&str> {
        deduplication_id.and_then(|id| self.seen.get(id).map(|(m, _)| m.as_str()))
    }

    /// How many deduplication ids are remembered.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Appends `line` (one JSON object with `published_ms`, no newline) durably and
    /// remembers the id.
    pub(crate) fn record(
        &mut self,
        line: &[u8],
        deduplication_id: Option<&str>,
        message_id: &str,
        published_ms: i64,
    ) -> Result<()> {
        if let Some((path, file)) = &mut self.file {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line);
            buf.push(b'\n');
            file.write_all(&buf)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io(path.as_path(), e))?;
        }
        self.remember(
            deduplication_id.map(str::to_string),
            message_id.to_string(),
            published_ms,
        );
        self.maybe_compact()
    }

    /// Appends the minimal ledger line for a published notification (only a notification
    /// with a deduplication id needs one).
    pub(crate) fn record_sent(
        &mut self,
        deduplication_id: Option<&str>,
        message_id: &str,
        published_ms: i64,
    ) -> Result<()> {
        if self.file.is_none() || deduplication_id.is_none() {
            self.remember(
                deduplication_id.map(str::to_string),
                message_id.to_string(),
                published_ms,
            );
            return self.maybe_compact();
        }
        let line = serde_json::json!({
            "message_id": message_id,
            "deduplication_id": deduplication_id,
            "published_ms": published_ms,
        });
        self.record(
            line.to_string().as_bytes(),
            deduplication_id,
            message_id,
            published_ms,
        )
    }

    /// Compacts when the last look is [`CHECK_EVERY`] old and something is past retention.
    fn maybe_compact(&mut self) -> Result<()> {
        let now = now_ms();
        if now.saturating_sub(self.checked_ms) < millis(CHECK_EVERY) {
            return Ok(());
        }
        self.checked_ms = now;
        let cutoff = now.saturating_sub(millis(self.retention));
        if self.oldest_ms.is_some_and(|o| o < cutoff) {
            self.compact(now)?;
        }
        Ok(())
    }

    /// Drops what was published before `now - retention`: from memory, and from the file
    /// (rewritten whole, see the module docs). Lines without `published_ms` get `now`.
    fn compact(&mut self, now: i64) -> Result<()> {
        let cutoff = now.saturating_sub(millis(self.retention));
        self.seen.retain(|_, (_, at)| *at >= cutoff);
        let Some((path, _)) = &self.file else {
            self.oldest_ms = self.seen.values().map(|(_, at)| *at).min();
            return Ok(());
        };
        let path = path.clone();
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let mut kept = Vec::with_capacity(bytes.len());
        let (mut dropped, mut oldest) = (0u64, None::<i64>);
        for line in bytes.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(line).map_err(|e| Error::Corrupt {
                    file: path.clone(),
                    offset: 0,
                    detail: format!("line is not a notification record: {e}"),
                })?;
            let at = match value
                .get("published_ms")
                .and_then(serde_json::Value::as_i64)
            {
                Some(at) => at,
                None => {
                    value.insert("published_ms".into(), now.into());
                    now
                }
            };
            if at < cutoff {
                dropped += 1;
                continue;
            }
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
            serde_json::to_writer(&mut kept, &value)
                .map_err(|e| Error::Internal(format!("cannot re-encode a ledger line: {e}")))?;
            kept.push(b'\n');
        }
        let temp = temp_path(&path);
        let write = || -> std::io::Result<File> {
            let mut out = File::create(&temp)?;
            out.write_all(&kept)?;
            out.sync_all()?;
            std::fs::rename(&temp, &path)?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
            OpenOptions::new().read(true).append(true).open(&path)
        };
        let file = write().map_err(|e| Error::io(&path, e))?;
        self.file = Some((path.clone(), file));
        self.oldest_ms = oldest;
        if dropped > 0 {
            info!(
                path = %path.display(),
                lines = dropped,
                retention = %shardline_core::units::format_duration(self.retention),
                "notifications past their retention dropped"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_retention_are_dropped_on_open_and_unstamped_ones_are_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sent.jsonl");
        let now = now_ms();
        let day = 86_400_000;
        let text = format!(
            "{{\"message_id\":\"m1\",\"deduplication_id\":\"old\",\"published_ms\":{}}}\n\
             {{\"message_id\":\"m2\",\"deduplication_id\":\"recent\",\"published_ms\":{}}}\n\
             {{\"message_id\":\"m3\",\"deduplication_id\":\"unstamped\"}}\n",
            now - 30 * day,
            now - day
        );
        std::fs::write(&path, text).unwrap();
        std::fs::write(temp_path(&path), "half a compaction").unwrap();
        let ledger = Ledger::open(&path, Duration::from_secs(7 * 86_400)).unwrap();
        assert_eq!(ledger.published(Some("old")), None, "forgotten");
        assert_eq!(ledger.published(Some("recent")), Some("m2"));
        assert_eq!(ledger.published(Some("unstamped")), Some("m3"));
        assert_eq!(ledger.remembered(), 2);
        assert!(!temp_path(&path).exists());
        let rewritten = std::fs::read_to_string(&path).unwrap();
        assert_eq!(rewritten.lines().count(), 2, "{rewritten}");
        assert!(!rewritten.contains("\"old\""), "{rewritten}");
        for line in rewritten.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["published_ms"].as_i64().unwrap() >= now - day, "{line}");
        }
        drop(ledger);
        // Reopened, the stamped line keeps its stamp and nothing else changes.
        let again = Ledger::open(&path, Duration::from_secs(7 * 86_400)).unwrap();
        assert_eq!(again.remembered(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), rewritten);
    }

    #[test]
    fn in_memory_ledgers_forget_too() {
        let mut ledger = Ledger::in_memory(Duration::from_secs(60));
        let now = now_ms();
        ledger
            .record_sent(Some("a"), "m1", now - 3_600_000)
            .unwrap();
        ledger.record_sent(Some("b"), "m2", now).unwrap();
        ledger.compact(now).unwrap();
        assert_eq!(ledger.published(Some("a")), None);
        assert_eq!(ledger.published(Some("b")), Some("m2"));
    }
}
