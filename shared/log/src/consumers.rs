//! Registered stream consumers (Kinesis enhanced fan-out), kept in the stream metadata so they
//! survive restarts: a change commits a new `stream.json` like any other metadata change.
//!
//! Rules (Kinesis's): at most [`MAX_CONSUMERS`] per stream; names follow the stream-name rule
//! and are unique per stream; a consumer is identified by its name and creation second (its ARN
//! ends in `/consumer/<name>:<creation second>`), so a consumer registered again under the same
//! name is a different consumer.

use serde::{Deserialize, Serialize};

use crate::error::LogError;
use crate::log::Log;
use crate::meta;

/// Most consumers a stream may have registered.
pub const MAX_CONSUMERS: usize = 20;

/// A registered consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerMeta {
    /// Its name, unique in the stream.
    pub name: String,
    /// When it was registered, epoch milliseconds.
    pub created_ms: i64,
}

impl Log {
    /// The stream's registered consumers, by registration time.
    ///
    /// # Errors
    /// Unknown stream.
    pub fn consumers(&self, stream: &str) -> Result<Vec<ConsumerMeta>, LogError> {
        Ok(self.inner.stream(stream)?.meta.consumers.clone())
    }

    /// Registers a consumer; returns it.
    ///
    /// # Errors
    /// Unknown stream; a bad name; [`LogError::StreamExists`]-like refusal when the name is
    /// taken ([`LogError::InvalidArgument`]); [`LogError::LimitExceeded`] past 20 consumers.
    pub async fn register_consumer(
        &self,
        stream: &str,
        name: &str,
    ) -> Result<ConsumerMeta, LogError> {
        meta::validate_name(name)?;
        let _admin = self.inner.admin.lock().await;
        let s = self.inner.stream(stream)?;
        if s.meta.consumers.iter().any(|c| c.name == name) {
            return Err(LogError::InvalidArgument(format!(
                "consumer {name} of stream \"{stream}\" is already registered"
            )));
        }
        if s.meta.consumers.len() >= MAX_CONSUMERS {
            return Err(LogError::LimitExceeded(format!(
                "stream \"{stream}\" already has {MAX_CONSUMERS} registered consumers"
            )));
        }
        let consumer = ConsumerMeta {
            name: name.to_string(),
            created_ms: self.inner.options.clock.now_ms(),
        };
        let mut m = s.meta.clone();
        m.consumers.push(consumer.clone());
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.commit(&s, m, s.shards.clone()))
            .await
            .map_err(|e| LogError::Unavailable(format!("consumer registration failed: {e}")))??;
        Ok(consumer)
    }

    /// Deregisters a consumer; returns whether it was registered.
    ///
    /// # Errors
    /// Unknown stream; I/O errors.
    pub async fn deregister_consumer(&self, stream: &str, name: &str) -> Result<bool, LogError> {
        let _admin = self.inner.admin.lock().await;
        let s = self.inner.stream(stream)?;
        if !s.meta.consumers.iter().any(|c| c.name == name) {
            return Ok(false);
        }
        let mut m = s.meta.clone();
        m.consumers.retain(|c| c.name != name);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.commit(&s, m, s.shards.clone()))
            .await
            .map_err(|e| LogError::Unavailable(format!("consumer deregistration failed: {e}")))??;
        Ok(true)
    }
}
