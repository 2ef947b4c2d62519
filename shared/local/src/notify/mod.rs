//! [`Notifier`] targets for running without SNS.
//!
//! - [`StdoutNotifier`]: prints one readable block per notification.
//! - [`OutboxNotifier`]: appends one JSON line ([`Envelope`]) per notification to a file.
//! - [`WebhookNotifier`]: POSTs the [`Envelope`] as JSON to an `http://` or `https://` URL
//!   (rustls; see `http`).
//! - [`FanoutNotifier`]: publishes to several targets.
//!
//! Invariants shared by every target:
//! - A notification whose `deduplication_id` was already published is not delivered again;
//!   `publish` returns the message id of the first delivery. The outbox remembers ids in the
//!   outbox file itself; stdout and webhook targets remember them in memory, and in a
//!   sent-ledger file when given one (see [`ledger`]), so restarts do not notify twice.
//! - A target records an id only after delivery succeeded, so a failed publish can be retried.
//! - What a target remembers (the outbox's lines, the ledgers' ids) is kept for a retention
//!   period (7 days by default), then dropped.
//! - Publishes to one target are serialized (check, deliver, record under one lock).
//! - Message ids are random UUID v4 strings.

mod config;
mod fanout;
pub mod http;
pub(crate) mod ledger;
mod outbox;
mod stdout;
mod webhook;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shardline_core::ports::Notification;

pub use config::{NotifierConfig, build_notifier, build_notifier_with_retention};
pub use fanout::FanoutNotifier;
pub use outbox::OutboxNotifier;
pub use stdout::StdoutNotifier;
pub use webhook::{WebhookNotifier, WebhookOptions};

/// A published notification as written to the outbox and sent to webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The id `publish` returned.
    pub message_id: String,
    /// The topic.
    pub topic: String,
    /// Subject line.
    pub subject: String,
    /// Message body.
    pub message: String,
    /// Message attributes.
    pub attributes: BTreeMap<String, String>,
    /// The deduplication id, if the notification had one.
    pub deduplication_id: Option<String>,
    /// When it was published, epoch milliseconds.
    pub published_ms: i64,
}

impl Envelope {
    /// Wraps a notification with a fresh message id, published now.
    pub fn new(notification: &Notification) -> Self {
        Envelope {
            message_id: new_message_id(),
            topic: notification.topic.clone(),
            subject: notification.subject.clone(),
            message: notification.message.clone(),
            attributes: notification.attributes.clone(),
            deduplication_id: notification.deduplication_id.clone(),
            published_ms: shardline_core::time::now_ms(),
        }
    }

    /// The notification it carries.
    pub fn notification(&self) -> Notification {
        Notification {
            topic: self.topic.clone(),
            subject: self.subject.clone(),
            message: self.message.clone(),
            attributes: self.attributes.clone(),
            deduplication_id: self.deduplication_id.clone(),
        }
    }
}

/// A new random message id.
pub fn new_message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
