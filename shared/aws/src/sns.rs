//! The [`Notifier`] port on SNS.
//!
//! - The topic is an ARN, or a name resolved to its ARN once (ListTopics, all pages).
//! - The subject is made acceptable to SNS rather than refused (it is a summary; the message
//!   keeps everything): line breaks and control characters become spaces, non-ASCII
//!   characters `?`, and it is cut to 100 characters.
//! - The message, plus its attributes, is checked against SNS's 256 KiB (262,144 bytes)
//!   before anything is sent; too large is one clear error.
//! - Attributes go as `String` message attributes (at most 10, names as SNS allows).
//! - On a FIFO topic (`*.fifo`) each message carries `sns.message_group_id` and a
//!   MessageDeduplicationId: the notification's deduplication id (hashed to SNS's 128
//!   characters when longer or not plain ASCII), or a fresh one when it has none.
//!
//! # Deduplication
//! SNS deduplicates only on FIFO topics and only for 5 minutes, while the port promises that a
//! deduplication id published once is never delivered again (replays, restarts). So
//! published ids are kept in the state store (namespace `sns-published`, key
//! `<topic ARN>/<id>`, value the message id): an id found there is not published again and its
//! message id is returned. The ledger is written right after a successful Publish, so a crash
//! between the two can deliver a notification twice (at-least-once); on FIFO topics SNS's own
//! deduplication covers that within its 5 minutes.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use bytes::Bytes;
use md5::{Digest, Md5};
use shardline_core::ports::{Notification, Notifier, StateStore};
use shardline_core::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::debug;

use crate::client::AwsClients;
use crate::error::{Call, Service, map_sdk_error};

/// SNS's largest message, attributes included.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// SNS's longest subject.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// SNS's most message attributes.
const MAX_ATTRIBUTES: usize = 10;
/// State namespace of published deduplication ids.
pub const LEDGER_NAMESPACE: &str = "sns-published";

/// SNS as a [`Notifier`].
#[derive(Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    region: String,
    group_id: String,
    ledger: Arc<dyn StateStore>,
    arns: Arc<Mutex<HashMap<String, String>>>,
}

impl std::fmt::Debug for SnsNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsNotifier")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The subject as SNS takes it.
pub fn sns_subject(subject: &str) -> String {
    let cleaned: String = subject
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            c if !c.is_ascii() => '?',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.chars().count() <= MAX_SUBJECT_CHARS {
        return trimmed.to_string();
    }
    let mut cut: String = trimmed.chars().take(MAX_SUBJECT_CHARS - 3).collect();
    cut.push_str("...");
    cut
}

/// A MessageDeduplicationId SNS accepts (1-128 characters of `!` to `~`).
fn dedup_id(id: &str) -> String {
    if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        id.to_string()
    } else {
        format!("{:x}", Md5::digest(id.as_bytes()))
    }
}

fn check_attribute_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

/// The message's size as SNS counts it (body plus attribute names, types and values).
fn message_size(n: &Notification) -> usize {
    n.message.len()
        + n.attributes
            .iter()
            .map(|(k, v)| k.len() + "String".len() + v.len())
            .sum::<usize>()
}

fn check(n: &Notification) -> Result<()> {
    let what = |why: String| {
        Error::InvalidArgument(format!("SNS Publish to topic \"{}\": {why}", n.topic))
    };
    if n.message.is_empty() {
        return Err(what("the message is empty; SNS needs a body".into()));
    }
    let size = message_size(n);
    if size > MAX_MESSAGE_BYTES {
        return Err(what(format!(
            "message of {size} bytes (with its attributes) exceeds SNS's {MAX_MESSAGE_BYTES}-byte limit; shorten the message or its attributes"
        )));
    }
    if n.attributes.len() > MAX_ATTRIBUTES {
        return Err(what(format!(
            "{} message attributes, SNS takes at most {MAX_ATTRIBUTES}",
            n.attributes.len()
        )));
    }
    if let Some(bad) = n.attributes.keys().find(|k| !check_attribute_name(k)) {
        return Err(what(format!(
            "attribute name {bad:?} is not allowed (letters, digits, _ - . ; not starting with AWS. or Amazon.)"
        )));
    }
    if n.attributes.values().any(String::is_empty) {
        return Err(what("attribute values must not be empty".into()));
    }
    Ok(())
}

impl SnsNotifier {
    /// The adapter, keeping published deduplication ids in `ledger`.
    pub fn new(clients: &AwsClients, ledger: Arc<dyn StateStore>) -> Self {
        SnsNotifier {
            client: clients.sns.clone(),
            region: clients.region.clone(),
            group_id: clients.config.sns.message_group_id.clone(),
            ledger,
            arns: Arc::default(),
        }
    }

    fn call(&self, action: &'static str, topic: &str) -> Call<'_> {
        Call {
            service: Service::Sns,
            action,
            target: format!("topic \"{topic}\""),
            region: &self.region,
        }
    }

    /// Creates the topic if missing (FIFO when the name ends in `.fifo`) and returns its ARN.
    ///
    /// # Errors
    /// The SDK's, mapped.
    pub async fn ensure_topic(&self, name: &str) -> Result<String> {
        let mut request = self.client.create_topic().name(name);
        if name.ends_with(".fifo") {
            request = request.attributes("FifoTopic", "true");
        }
        let out = request
            .send()
            .await
            .map_err(|e| map_sdk_error(&self.call("CreateTopic", name), e))?;
        let arn = out.topic_arn().unwrap_or_default().to_string();
        if let Ok(mut arns) = self.arns.lock() {
            arns.insert(name.to_string(), arn.clone());
        }
        Ok(arn)
    }

    /// The ARN of the topic named `name` in this account and region, if there is one
    /// (ListTopics, every page).
    ///
    /// # Errors
    /// The SDK's, mapped.
    pub async fn find_topic(&self, name: &str) -> Result<Option<String>> {
        if let Some(arn) = self.arns.lock().ok().and_then(|a| a.get(name).cloned()) {
            return Ok(Some(arn));
        }
        let mut token: Option<String> = None;
        let suffix = format!(":{name}");
        loop {
            let out = self
                .client
                .list_topics()
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| map_sdk_error(&self.call("ListTopics", name), e))?;
            if let Some(arn) = out
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .find(|a| a.ends_with(&suffix))
            {
                if let Ok(mut arns) = self.arns.lock() {
                    arns.insert(name.to_string(), arn.to_string());
                }
                return Ok(Some(arn.to_string()));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }

    /// The ARN of `topic` (an ARN already, or a topic name).
    async fn arn(&self, topic: &str) -> Result<String> {
        if topic.starts_with("arn:") {
            return Ok(topic.to_string());
        }
        if let Some(arn) = self.find_topic(topic).await? {
            return Ok(arn);
        }
        Err(Error::NotFound {
            what: format!(
                "SNS topic \"{topic}\" in region {} (Publish; run `shardline infra bootstrap` to create it, or check the region)",
                self.region
            ),
        })
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, n: &Notification) -> Result<String> {
        check(n)?;
        let arn = self.arn(&n.topic).await?;
        let ledger_key = n.deduplication_id.as_ref().map(|id| format!("{arn}/{id}"));
        if let Some(key) = &ledger_key
            && let Some(id) = self.ledger.get(LEDGER_NAMESPACE, key).await?
        {
            debug!(topic = %arn, key, "notification already published; not sent again");
            return Ok(String::from_utf8_lossy(&id).into_owned());
        }
        let mut request = self
            .client
            .publish()
            .topic_arn(&arn)
            .message(&n.message)
            .subject(sns_subject(&n.subject));
        for (k, v) in &n.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| Error::InvalidArgument(format!("SNS attribute {k}: {e}")))?;
            request = request.message_attributes(k, value);
        }
        if arn.ends_with(".fifo") {
            let dedup = match &n.deduplication_id {
                Some(id) => dedup_id(id),
                None => uuid::Uuid::new_v4().simple().to_string(),
            };
            request = request
                .message_group_id(&self.group_id)
                .message_deduplication_id(dedup);
        }
        let out = request
            .send()
            .await
            .map_err(|e| map_sdk_error(&self.call("Publish", &n.topic), e))?;
        let message_id = out.message_id().unwrap_or_default().to_string();
        if let Some(key) = ledger_key {
            self.ledger
                .put_many(
                    LEDGER_NAMESPACE,
                    vec![(key, Bytes::from(message_id.clone()))],
                )
                .await?;
        }
        Ok(message_id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn note(message: &str) -> Notification {
        Notification {
            topic: "alerts".into(),
            subject: "s".into(),
            message: message.into(),
            attributes: BTreeMap::from([("severity".into(), "high".into())]),
            deduplication_id: None,
        }
    }

    #[test]
    fn subjects_fit_sns() {
        assert_eq!(sns_subject("ALARM: cpu on i-1"), "ALARM: cpu on i-1");
        assert_eq!(sns_subject("a\nb\tc"), "a b c");
        assert_eq!(sns_subject("é"), "?");
        let long = sns_subject(&"x".repeat(150));
        assert_eq!(long.chars().count(), 100);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn size_is_checked_with_attributes() {
        assert!(check(&note(&"m".repeat(MAX_MESSAGE_BYTES - 20))).is_ok());
        let err = check(&note(&"m".repeat(MAX_MESSAGE_BYTES)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("262144-byte limit") && err.contains("\"alerts\""),
            "{err}"
        );
        assert!(check(&note("")).is_err());
        let mut bad = note("m");
        bad.attributes.insert("AWS.x".into(), "v".into());
        assert!(check(&bad).is_err());
    }

    #[test]
    fn deduplication_ids_fit_sns() {
        assert_eq!(
            dedup_id("alarm-i-1-cpu-1700000000"),
            "alarm-i-1-cpu-1700000000"
        );
        assert_eq!(dedup_id(&"x".repeat(200)).len(), 32);
        assert_eq!(dedup_id("with space").len(), 32);
    }
}
