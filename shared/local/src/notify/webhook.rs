//! [`WebhookNotifier`]: POSTs each notification's [`Envelope`] as JSON to an `http://` or
//! `https://` URL (see [`super::http`] for TLS, timeouts and header escaping).
//!
//! Status handling: 2xx is delivered; 429 is [`Error::Throttled`] and 5xx
//! [`Error::Unavailable`] (both retryable); any other status is a permanent
//! [`Error::InvalidArgument`] naming the URL, the status and the start of the body.
//! Each request carries `X-Shardline-Message-Id` and, when set,
//! `X-Shardline-Deduplication-Id` (escaped with [`super::http::header_value`]: the id holds
//! record fields), so receivers can deduplicate too. The body is JSON, where every field is
//! escaped by the encoder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use shardline_core::ports::{Notification, Notifier};
use shardline_core::{Error, Result};
use tokio::sync::Mutex;

use super::Envelope;
use super::http::{ClientOptions, HttpClient, HttpUrl};
use super::ledger::{DEFAULT_RETENTION, Ledger};

/// How a [`WebhookNotifier`] connects and what it remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    /// Bound on each request, connecting included.
    pub timeout: Duration,
    /// Bound on resolving, connecting and the TLS handshake.
    pub connect_timeout: Duration,
    /// PEM certificates trusted besides the operating system's roots (`https://` only).
    pub ca_file: Option<PathBuf>,
    /// How long deduplication ids are remembered.
    pub retention: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            ca_file: None,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// Sends notifications to a webhook.
#[derive(Debug)]
pub struct WebhookNotifier {
    client: HttpClient,
    ledger: Mutex<Ledger>,
}

impl WebhookNotifier {
    /// Posts to `url`, each request bounded by `timeout` (other options at their defaults);
    /// deduplication ids are remembered in `ledger` if given, else in memory.
    ///
    /// # Errors
    /// As [`WebhookNotifier::with_options`].
    pub fn new(url: &str, timeout: Duration, ledger: Option<&Path>) -> Result<Self> {
        Self::with_options(
            url,
            WebhookOptions {
                timeout,
                ..WebhookOptions::default()
            },
            ledger,
        )
    }

    /// Posts to `url` as `options` say; deduplication ids are remembered in `ledger` if
    /// given, else in memory.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable URL, timeout or `ca_file`, or no trusted
    /// roots for an `https://` URL; an error opening the ledger.
    pub fn with_options(url: &str, options: WebhookOptions, ledger: Option<&Path>) -> Result<Self> {
        let client = HttpClient::new(
            HttpUrl::parse(url)?,
            ClientOptions {
                timeout: options.timeout,
                connect_timeout: options.connect_timeout,
                ca_file: options.ca_file.clone(),
            },
        )?;
        let ledger = match ledger {
            Some(path) => Ledger::open(path, options.retention)?,
            None => Ledger::in_memory(options.retention),
        };
        Ok(WebhookNotifier {
            client,
            ledger: Mutex::new(ledger),
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn publish(&self, notification: &Notification) -> Result<String> {
        let mut ledger = self.ledger.lock().await;
        let dedup = notification.deduplication_id.as_deref();
        if let Some(id) = ledger.published(dedup) {
            return Ok(id.to_string());
        }
        let envelope = Envelope::new(notification);
        let body = serde_json::to_vec(&envelope)
            .map_err(|e| Error::Internal(format!("cannot encode notification: {e}")))?;
        let mut headers = vec![("X-Shardline-Message-Id", envelope.message_id.as_str())];
        if let Some(id) = dedup {
            headers.push(("X-Shardline-Deduplication-Id", id));
        }
        let response = self.client.post_json(&headers, &body).await?;
        let snippet: String = response.body.chars().take(200).collect();
        let what = format!(
            "webhook {} answered {}: {snippet:?}",
            self.client.url().endpoint(),
            response.status
        );
        match response.status {
            200..=299 => {
                ledger.record_sent(dedup, &envelope.message_id, envelope.published_ms)?;
                Ok(envelope.message_id)
            }
            429 => Err(Error::Throttled(what)),
            500..=599 => Err(Error::Unavailable(what)),
            _ => Err(Error::InvalidArgument(format!(
                "{what}; check the URL and what the receiver expects"
            ))),
        }
    }
}
