//! [`LeaseConfig`]: how `shardline consume` workers share a stream's shards.
//!
//! ```toml
//! [leases]
//! failover_time = "10s"      # a lease whose counter has not moved this long is expired
//! renew_interval = "2s"      # renew, heartbeat, look for work and balance this often
//! workers_namespace = "lease-workers"
//! ```

use serde::{Deserialize, Serialize};
use shardline_core::units;
use std::time::Duration;

use crate::runtime::ConsumerError;

/// Lease timing and where workers announce themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// A lease (or a worker's heartbeat) whose counter has not moved for this long, as one
    /// worker watched it, is expired: that worker may take it (KCL's failoverTimeMillis).
    #[serde(with = "units::duration")]
    pub failover_time: Duration,
    /// How often a worker renews its leases, beats its heartbeat, takes free or expired
    /// leases and balances. A worker stops writing for its leases once it could not renew
    /// them for `failover_time - renew_interval`, before any other worker may take them.
    #[serde(with = "units::duration")]
    pub renew_interval: Duration,
    /// The state-store namespace of the workers' heartbeats (key `<consumer>/<stream>/<worker>`).
    pub workers_namespace: String,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            failover_time: Duration::from_secs(10),
            renew_interval: Duration::from_secs(2),
            workers_namespace: "lease-workers".into(),
        }
    }
}

impl LeaseConfig {
    /// Checks that a worker can renew several times within the failover time.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), ConsumerError> {
        if self.renew_interval.is_zero() || self.renew_interval * 3 > self.failover_time {
            return Err(ConsumerError::Config(format!(
                "leases.renew_interval ({}) must be above 0 and at most a third of \
                 leases.failover_time ({}): a worker renews several times before its leases expire",
                units::format_duration(self.renew_interval),
                units::format_duration(self.failover_time)
            )));
        }
        if self.workers_namespace.trim().is_empty() {
            return Err(ConsumerError::Config(
                "leases.workers_namespace is empty: name the state namespace of worker heartbeats"
                    .into(),
            ));
        }
        Ok(())
    }

    /// How long a worker keeps writing after its last successful renewal: `failover_time`
    /// less one `renew_interval`, so it stops before another worker can see its leases expire.
    pub fn hold_time(&self) -> Duration {
        self.failover_time.saturating_sub(self.renew_interval)
    }
}
