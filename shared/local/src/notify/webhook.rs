//! [`WebhookNotifier`]: POSTs each notification's [`Envelope`] as JSON to an `http://` URL.
//!
//! Status handling: 2xx is delivered; 429 is [`Error::Throttled`] and 5xx
//! [`Error::Unavailable`] (both retryable); any other status is a permanent
//! [`Error::InvalidArgument`] naming the URL, the status and the start of the body.
//! Each request carries `X-Shardline-Message-Id` and, when set,
//! `X-Shardline-Deduplication-Id`, so receivers can deduplicate too.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use shardline_core::ports::{Notification, Notifier};
use shardline_core::{Error, Result};
use tokio::sync::Mutex;

use super::Envelope;
use super::http::{HttpUrl, post_json};
use super::ledger::Ledger;

/// Sends notifications to a webhook.
#[derive(Debug)]
pub struct WebhookNotifier {
    url: HttpUrl,
    url_text: String,
    timeout: Duration,
    ledger: Mutex<Ledger>,
}

impl WebhookNotifier {
    /// Posts to `url` (must be `http://`), each request bounded by `timeout`; deduplication
    /// ids are remembered in `ledger` if given, else in memory.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable URL (including `https://`), or when the
    /// ledger cannot be opened.
    pub fn new(url: &str, timeout: Duration, ledger: Option<&Path>) -> Result<Self> {
        let parsed = HttpUrl::parse(url)?;
        if timeout.is_zero() {
            return Err(Error::InvalidArgument(format!(
                "webhook {url}: timeout must be positive, e.g. \"5s\""
            )));
        }
        let ledger = match ledger {
            Some(path) => Ledger::open(path)?,
            None => Ledger::in_memory(),
        };
        Ok(WebhookNotifier {
            url: parsed,
            url_text: url.to_string(),
            timeout,
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
        let response = post_json(&self.url, &headers, &body, self.timeout).await?;
        let snippet: String = response.body.chars().take(200).collect();
        let what = format!(
            "webhook {} answered {}: {snippet:?}",
            self.url_text, response.status
        );
        match response.status {
            200..=299 => {
                ledger.record_sent(dedup, &envelope.message_id)?;
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
