//! Choosing a notifier from configuration.
//!
//! ```toml
//! [notifier]
//! type = "fanout"
//! targets = [
//!   { type = "stdout" },                       # or "stderr"
//!   { type = "outbox" },                       # <data>/notifications/outbox.jsonl
//!   { type = "webhook", url = "http://127.0.0.1:9000/alerts", timeout = "5s" },
//! ]
//! ```
//!
//! Relative paths are resolved against the data directory. Sent-ledgers of stdout, stderr and
//! webhook targets live in `<data>/local/notify/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardline_core::ports::Notifier;

use super::{FanoutNotifier, OutboxNotifier, StdoutNotifier, WebhookNotifier};
use crate::error::LocalError;

/// Which notifier to run, and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifierConfig {
    /// Print to standard output. (A struct variant, so unknown keys are rejected.)
    Stdout {},
    /// Print to standard error, in the same blocks (for commands whose standard output is
    /// data, e.g. `flow run`'s JSON).
    Stderr {},
    /// Append to a JSON Lines outbox.
    Outbox {
        /// The outbox file (default `notifications/outbox.jsonl` in the data directory).
        #[serde(default)]
        path: Option<PathBuf>,
    },
    /// POST to an `http://` URL.
    Webhook {
        /// The endpoint.
        url: String,
        /// Per-request timeout, e.g. `"5s"`.
        #[serde(default = "default_timeout", with = "shardline_core::units::duration")]
        timeout: Duration,
    },
    /// Several targets.
    Fanout {
        /// The targets, published to in order.
        targets: Vec<NotifierConfig>,
    },
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig::Stdout {}
    }
}

impl NotifierConfig {
    /// The same targets with standard output replaced by standard error (in fanouts too).
    pub fn stdout_to_stderr(&self) -> NotifierConfig {
        match self {
            NotifierConfig::Stdout {} => NotifierConfig::Stderr {},
            NotifierConfig::Fanout { targets } => NotifierConfig::Fanout {
                targets: targets
                    .iter()
                    .map(NotifierConfig::stdout_to_stderr)
                    .collect(),
            },
            other => other.clone(),
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// A file-name-safe rendering of a URL.
fn ledger_name(url: &str) -> String {
    let body: String = url
        .trim_start_matches("http://")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(100)
        .collect();
    format!("webhook-{body}-sent.jsonl")
}

/// Builds the notifier `config` describes, with files under `data_dir`.
///
/// # Errors
/// [`LocalError::Config`] for an unusable setting (an `https://` URL, an empty fanout), or
/// an error opening an outbox or ledger file.
pub fn build_notifier(
    config: &NotifierConfig,
    data_dir: &Path,
) -> Result<Arc<dyn Notifier>, LocalError> {
    let state_dir = data_dir.join("local").join("notify");
    Ok(match config {
        NotifierConfig::Stdout {} => Arc::new(StdoutNotifier::new(Some(
            &state_dir.join("stdout-sent.jsonl"),
        ))?),
        NotifierConfig::Stderr {} => Arc::new(StdoutNotifier::with_writer(
            Box::new(std::io::stderr()),
            Some(&state_dir.join("stderr-sent.jsonl")),
        )?),
        NotifierConfig::Outbox { path } => {
            let path = match path {
                Some(p) => data_dir.join(p),
                None => data_dir.join("notifications").join("outbox.jsonl"),
            };
            Arc::new(OutboxNotifier::open(&path)?)
        }
        NotifierConfig::Webhook { url, timeout } => {
            let ledger = state_dir.join(ledger_name(url));
            Arc::new(
                WebhookNotifier::new(url, *timeout, Some(&ledger)).map_err(|e| match e {
                    shardline_core::Error::InvalidArgument(msg) => LocalError::Config(msg),
                    other => LocalError::Port(other),
                })?,
            )
        }
        NotifierConfig::Fanout { targets } => {
            if targets.is_empty() {
                return Err(LocalError::Config(
                    "notifier type \"fanout\" needs at least one entry in `targets`".into(),
                ));
            }
            let built = targets
                .iter()
                .map(|t| build_notifier(t, data_dir))
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(FanoutNotifier::new(built))
        }
    })
}
