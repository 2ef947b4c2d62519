//! [`Registry`]: workers announce themselves with a heartbeat in the state store, so a worker
//! that holds no lease yet counts in everyone's fair share.
//!
//! Layout: namespace `leases.workers_namespace`, key `<consumer>/<stream>/<worker>`, value
//! JSON `{"worker": ..., "beat": n}` with `n` going up by one per beat.
//!
//! A heartbeat is live while its `beat` keeps moving as this worker watches it (no clocks are
//! compared across machines); one unchanged for the failover time is removed by whoever sees
//! it, and comes back if its worker was only slow.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shardline_core::Result;
use shardline_core::ports::StateStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;

#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    worker: String,
    beat: u64,
}

/// One worker's view of the workers of a consumer on a stream.
pub struct Registry {
    state: Arc<dyn StateStore>,
    namespace: String,
    prefix: String,
    me: String,
    beat: u64,
    seen: HashMap<String, (u64, Instant)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("prefix", &self.prefix)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// The registry of `consumer` on `stream`, for worker `me`.
    pub fn new(
        state: Arc<dyn StateStore>,
        namespace: &str,
        consumer: &str,
        stream: &str,
        me: &str,
    ) -> Self {
        Registry {
            state,
            namespace: namespace.into(),
            prefix: format!("{consumer}/{stream}/"),
            me: me.into(),
            beat: 0,
            seen: HashMap::new(),
        }
    }

    /// Writes this worker's next heartbeat.
    ///
    /// # Errors
    /// The state store's.
    pub async fn beat(&mut self) -> Result<()> {
        self.beat += 1;
        let value = serde_json::to_vec(&Heartbeat {
            worker: self.me.clone(),
            beat: self.beat,
        })
        .map_err(|e| shardline_core::Error::Internal(format!("heartbeat JSON: {e}")))?;
        self.state
            .put_many(
                &self.namespace,
                vec![(format!("{}{}", self.prefix, self.me), Bytes::from(value))],
            )
            .await
    }

    /// How many workers are live at `now`, this one included; removes heartbeats unchanged
    /// for `failover`.
    ///
    /// # Errors
    /// The state store's.
    pub async fn live(&mut self, now: Instant, failover: Duration) -> Result<usize> {
        let entries = self.state.list(&self.namespace, &self.prefix).await?;
        let mut live = 1;
        let mut listed = Vec::new();
        for (key, value) in entries {
            let Some(worker) = key.strip_prefix(&self.prefix) else {
                continue;
            };
            if worker == self.me {
                continue;
            }
            listed.push(worker.to_string());
            let beat = serde_json::from_slice::<Heartbeat>(&value)
                .map(|h| h.beat)
                .unwrap_or(0);
            let since = match self.seen.get(worker) {
                Some((b, since)) if *b == beat => *since,
                _ => {
                    self.seen.insert(worker.to_string(), (beat, now));
                    now
                }
            };
            if now.saturating_duration_since(since) >= failover {
                info!(worker, "heartbeat stopped; removing it");
                self.state.delete(&self.namespace, &key).await?;
                self.seen.remove(worker);
            } else {
                live += 1;
            }
        }
        self.seen.retain(|w, _| listed.contains(w));
        Ok(live)
    }

    /// Removes this worker's heartbeat (on shutdown).
    ///
    /// # Errors
    /// The state store's.
    pub async fn leave(&self) -> Result<()> {
        self.state
            .delete(&self.namespace, &format!("{}{}", self.prefix, self.me))
            .await
    }
}
