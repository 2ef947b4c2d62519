//! [`OutboxNotifier`]: a durable JSON Lines outbox file, one [`Envelope`] per line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use shardline_core::ports::{Notification, Notifier};
use shardline_core::{Error, Result};
use tokio::sync::Mutex;

use super::Envelope;
use super::ledger::{DEFAULT_RETENTION, Ledger};

/// Appends each notification to a file as one JSON line, fsync'd before `publish` returns.
/// The deduplication ids already in the file are loaded on open. Notifications older than the
/// retention (7 days unless given) are dropped from the file (see [`super::ledger`]).
#[derive(Debug)]
pub struct OutboxNotifier {
    path: PathBuf,
    ledger: Mutex<Ledger>,
}

impl OutboxNotifier {
    /// Opens (creating) the outbox at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened, or holds a line that is not an envelope
    /// ([`Error::Corrupt`] with its byte offset).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_retention(path, DEFAULT_RETENTION)
    }

    /// Opens (creating) the outbox at `path`, keeping the notifications of `retention`.
    ///
    /// # Errors
    /// As [`OutboxNotifier::open`].
    pub fn open_with_retention(path: &Path, retention: Duration) -> Result<Self> {
        Ok(OutboxNotifier {
            path: path.to_path_buf(),
            ledger: Mutex::new(Ledger::open(path, retention)?),
        })
    }

    /// The outbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every envelope in an outbox file, in publish order.
    ///
    /// # Errors
    /// When the file cannot be read or a complete line is not an envelope.
    pub fn read_all(path: &Path) -> Result<Vec<Envelope>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut out = Vec::new();
        let mut offset = 0u64;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if line.ends_with(b"\n") && !line.iter().all(u8::is_ascii_whitespace) {
                out.push(serde_json::from_slice(line).map_err(|e| Error::Corrupt {
                    file: path.to_path_buf(),
                    offset,
                    detail: format!("line is not a notification envelope: {e}"),
                })?);
            }
            offset += line.len() as u64;
        }
        Ok(out)
    }
}

#[async_trait]
impl Notifier for OutboxNotifier {
    async fn publish(&self, notification: &Notification) -> Result<String> {
        let mut ledger = self.ledger.lock().await;
        let dedup = notification.deduplication_id.as_deref();
        if let Some(id) = ledger.published(dedup) {
            return Ok(id.to_string());
        }
        let envelope = Envelope::new(notification);
        let line = serde_json::to_vec(&envelope)
            .map_err(|e| Error::Internal(format!("cannot encode notification: {e}")))?;
        ledger.record(&line, dedup, &envelope.message_id, envelope.published_ms)?;
        Ok(envelope.message_id)
    }
}
