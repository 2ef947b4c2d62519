//! [`FanoutNotifier`]: one notification to several targets.

use std::sync::Arc;

use async_trait::async_trait;
use shardline_core::ports::{Notification, Notifier};
use shardline_core::{Error, Result};
use tracing::warn;

/// Publishes to every target in order. Each target is tried even if an earlier one failed;
/// the first failure is then returned. Since targets deduplicate by `deduplication_id`,
/// retrying a partly failed publish delivers only to the targets that missed it.
#[derive(Clone)]
pub struct FanoutNotifier {
    targets: Vec<Arc<dyn Notifier>>,
}

impl std::fmt::Debug for FanoutNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutNotifier")
            .field("targets", &self.targets.len())
            .finish()
    }
}

impl FanoutNotifier {
    /// Publishes to `targets`.
    pub fn new(targets: Vec<Arc<dyn Notifier>>) -> Self {
        FanoutNotifier { targets }
    }
}

#[async_trait]
impl Notifier for FanoutNotifier {
    /// Returns the first target's message id.
    async fn publish(&self, notification: &Notification) -> Result<String> {
        let mut first_id = None;
        let mut first_err = None;
        for (index, target) in self.targets.iter().enumerate() {
            match target.publish(notification).await {
                Ok(id) => {
                    first_id.get_or_insert(id);
                }
                Err(e) => {
                    warn!(target = index, error = %e, "notification target failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        first_id.ok_or_else(|| {
            Error::InvalidArgument("fanout notifier has no targets; configure at least one".into())
        })
    }
}
