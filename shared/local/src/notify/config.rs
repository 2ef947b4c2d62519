//! Choosing a notifier from configuration.
//!
//! ```toml
//! [notifier]
//! type = "fanout"
//! targets = [
//!   { type = "stdout" },                       # or "stderr"
//!   { type = "outbox" },                       # <data>/notifications/outbox.jsonl
//!   { type = "webhook", url = "https://hooks.example.com/alerts", timeout = "5s",
//!     connect_timeout = "3s" },                # ca_file = "ca.pem" adds trusted roots
//! ]
//! ```
//!
//! Relative paths (outbox `path`, webhook `ca_file`) are resolved against the data directory.
//! Sent-ledgers of stdout, stderr and webhook targets live in `<data>/local/notify/`; what the
//! outbox and the ledgers remember is kept for the retention given to
//! [`build_notifier_with_retention`] (`[local] notify_retention`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardline_core::ports::Notifier;

use super::ledger::DEFAULT_RETENTION;
use super::{FanoutNotifier, OutboxNotifier, StdoutNotifier, WebhookNotifier, WebhookOptions};
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
    /// POST to an `http://` or `https://` URL.
    Webhook {
        /// The endpoint.
        url: String,
        /// Per-request timeout (connecting included), e.g. `"5s"`.
        #[serde(default = "default_timeout", with = "shardline_core::units::duration")]
        timeout: Duration,
        /// Bound on resolving the host, connecting and the TLS handshake, e.g. `"3s"`.
        #[serde(
            default = "default_connect_timeout",
            with = "shardline_core::units::duration"
        )]
        connect_timeout: Duration,
        /// PEM certificates trusted besides the operating system's roots (`https://` only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<PathBuf>,
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
    WebhookOptions::default().timeout
}

fn default_connect_timeout() -> Duration {
    WebhookOptions::default().connect_timeout
}

/// A file-name-safe rendering of a URL (`http://` and `https://` URLs of the same host and
/// path share their ledger).
fn ledger_name(url: &str) -> String {
    let body: String = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(100)
        .collect();
    format!("webhook-{body}-sent.jsonl")
}

/// Builds the notifier `config` describes, with files under `data_dir` and the default
/// retention (7 days).
///
/// # Errors
/// See [`build_notifier_with_retention`].
pub fn build_notifier(
    config: &NotifierConfig,
    data_dir: &Path,
) -> Result<Arc<dyn Notifier>, LocalError> {
    build_notifier_with_retention(config, data_dir, DEFAULT_RETENTION)
}

/// Builds the notifier `config` describes, with files under `data_dir`; the outbox and the
/// sent-ledgers keep what was published within `retention`.
///
/// # Errors
/// [`LocalError::Config`] for an unusable setting (a bad URL, timeout or `ca_file`, no
/// trusted roots for `https://`, an empty fanout), or an error opening an outbox or ledger
/// file.
pub fn build_notifier_with_retention(
    config: &NotifierConfig,
    data_dir: &Path,
    retention: Duration,
) -> Result<Arc<dyn Notifier>, LocalError> {
    let state_dir = data_dir.join("local").join("notify");
    Ok(match config {
        NotifierConfig::Stdout {} => Arc::new(StdoutNotifier::with_writer_and_retention(
            Box::new(std::io::stdout()),
            Some(&state_dir.join("stdout-sent.jsonl")),
            retention,
        )?),
        NotifierConfig::Stderr {} => Arc::new(StdoutNotifier::with_writer_and_retention(
            Box::new(std::io::stderr()),
            Some(&state_dir.join("stderr-sent.jsonl")),
            retention,
        )?),
        NotifierConfig::Outbox { path } => {
            let path = match path {
                Some(p) => data_dir.join(p),
                None => data_dir.join("notifications").join("outbox.jsonl"),
            };
            Arc::new(OutboxNotifier::open_with_retention(&path, retention)?)
        }
        NotifierConfig::Webhook {
            url,
            timeout,
            connect_timeout,
            ca_file,
        } => {
            let ledger = state_dir.join(ledger_name(url));
            let options = WebhookOptions {
                timeout: *timeout,
                connect_timeout: *connect_timeout,
                ca_file: ca_file.as_ref().map(|f| data_dir.join(f)),
                retention,
            };
            Arc::new(
                WebhookNotifier::with_options(url, options, Some(&ledger)).map_err(
                    |e| match e {
                        shardline_core::Error::InvalidArgument(msg) => LocalError::Config(msg),
                        other => LocalError::Port(other),
                    },
                )?,
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
                .map(|t| build_notifier_with_retention(t, data_dir, retention))
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(FanoutNotifier::new(built))
        }
    })
}
