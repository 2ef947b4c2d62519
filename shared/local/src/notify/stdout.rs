//! [`StdoutNotifier`]: one readable block per notification on standard output.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use shardline_core::ports::{Notification, Notifier};
use shardline_core::{Error, Result};
use tokio::sync::Mutex;

use super::Envelope;
use super::ledger::{DEFAULT_RETENTION, Ledger};

type Sink = Box<dyn Write + Send>;

/// Prints notifications as blocks:
///
/// ```text
/// ── notification 5f0c…  2026-11-26T11:00:00.000Z
/// topic:   infra-alerts
/// subject: ALARM: cpu_utilization on i-0abc
/// attr:    severity = high
///
/// cpu_utilization averaged 93.2 % over 5 minutes (threshold 90 %)
/// ```
pub struct StdoutNotifier {
    inner: Mutex<(Sink, Ledger)>,
}

impl std::fmt::Debug for StdoutNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutNotifier").finish_non_exhaustive()
    }
}

impl StdoutNotifier {
    /// Prints to standard output; deduplication ids are remembered in `ledger` if given
    /// (a JSON Lines file), else in memory only.
    ///
    /// # Errors
    /// When the ledger file cannot be opened or is damaged.
    pub fn new(ledger: Option<&Path>) -> Result<Self> {
        Self::with_writer(Box::new(std::io::stdout()), ledger)
    }

    /// Prints to `writer` instead of standard output.
    ///
    /// # Errors
    /// When the ledger file cannot be opened or is damaged.
    pub fn with_writer(writer: Box<dyn Write + Send>, ledger: Option<&Path>) -> Result<Self> {
        Self::with_writer_and_retention(writer, ledger, DEFAULT_RETENTION)
    }

    /// Prints to `writer`, remembering deduplication ids for `retention`.
    ///
    /// # Errors
    /// When the ledger file cannot be opened or is damaged.
    pub fn with_writer_and_retention(
        writer: Box<dyn Write + Send>,
        ledger: Option<&Path>,
        retention: Duration,
    ) -> Result<Self> {
        let ledger = match ledger {
            Some(path) => Ledger::open(path, retention)?,
            None => Ledger::in_memory(retention),
        };
        Ok(StdoutNotifier {
            inner: Mutex::new((writer, ledger)),
        })
    }
}

/// The printed block of one notification.
pub fn render_block(envelope: &Envelope) -> String {
    let mut out = format!(
        "── notification {}  {}\ntopic:   {}\nsubject: {}\n",
        envelope.message_id,
        shardline_core::time::format_rfc3339_ms(envelope.published_ms),
        envelope.topic,
        envelope.subject
    );
    for (k, v) in &envelope.attributes {
        out.push_str(&format!("attr:    {k} = {v}\n"));
    }
    if let Some(id) = &envelope.deduplication_id {
        out.push_str(&format!("dedup:   {id}\n"));
    }
    out.push('\n');
    out.push_str(envelope.message.trim_end());
    out.push_str("\n\n");
    out
}

#[async_trait]
impl Notifier for StdoutNotifier {
    async fn publish(&self, notification: &Notification) -> Result<String> {
        let mut guard = self.inner.lock().await;
        let (writer, ledger) = &mut *guard;
        let dedup = notification.deduplication_id.as_deref();
        if let Some(id) = ledger.published(dedup) {
            return Ok(id.to_string());
        }
        let envelope = Envelope::new(notification);
        writer
            .write_all(render_block(&envelope).as_bytes())
            .and_then(|()| writer.flush())
            .map_err(|e| Error::io("<stdout>", e))?;
        ledger.record_sent(dedup, &envelope.message_id, envelope.published_ms)?;
        Ok(envelope.message_id)
    }
}
