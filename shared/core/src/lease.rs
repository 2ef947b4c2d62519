//! Shard leases in the KCL lease schema: which worker owns which shard of a consumer, and
//! where it got to.
//!
//! A lease coordinator (several `shardline consume` processes on one stream) works only through
//! [`LeaseStore`]: it lists the leases, takes expired or free ones, renews its own, checkpoints,
//! and lets go on shutdown. Every change is a conditional write on the lease counter the caller
//! last saw, so of two workers acting on one lease exactly one wins and the other gets
//! [`Error::Conflict`] and re-reads.
//!
//! # Layout
//! - [`Lease`], [`LeaseCheckpoint`]: one shard's lease, as KCL stores it (leaseKey, checkpoint,
//!   leaseCounter, leaseOwner, ownerSwitchesSinceCheckpoint, parentShardId, childShardIds).
//! - [`LeaseStore`]: the operations a coordinator needs.
//! - [`MemoryLeaseStore`]: an in-process implementation for tests and single-process runs.
//!
//! # Invariants
//! - A lease's counter starts at 1 when it is created and goes up by exactly one on every
//!   successful change; a failed (conflicting) change leaves the lease as it was.
//! - `owner_switches_since_checkpoint` counts the takes by a different owner since the last
//!   checkpoint and is reset to 0 by a checkpoint.
//! - Expiry is the coordinator's judgement, not the store's: a lease whose counter has not moved
//!   for the failover time (KCL: 10 s by default) is expired for the worker that watched it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::ports::CheckpointKey;
use crate::stream::{SequenceNumber, ShardId};

/// Where a lease's consumer got to: a sequence number, or one of KCL's sentinels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseCheckpoint {
    /// Nothing processed yet; start at the oldest record (`TRIM_HORIZON`).
    TrimHorizon,
    /// Nothing processed yet; start at the newest record (`LATEST`).
    Latest,
    /// Nothing processed yet; start at the configured time (`AT_TIMESTAMP`).
    AtTimestamp,
    /// Every record up to and including this one is processed.
    Sequence(SequenceNumber),
    /// The shard is closed and fully processed (`SHARD_END`): its children may start.
    ShardEnd,
}

impl LeaseCheckpoint {
    /// The text KCL stores in the `checkpoint` attribute.
    pub fn as_kcl(&self) -> &str {
        match self {
            LeaseCheckpoint::TrimHorizon => "TRIM_HORIZON",
            LeaseCheckpoint::Latest => "LATEST",
            LeaseCheckpoint::AtTimestamp => "AT_TIMESTAMP",
            LeaseCheckpoint::ShardEnd => "SHARD_END",
            LeaseCheckpoint::Sequence(s) => s.as_str(),
        }
    }

    /// Parses the `checkpoint` attribute as KCL writes it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for text that is neither a sentinel nor a sequence number.
    pub fn from_kcl(text: &str) -> Result<Self> {
        Ok(match text {
            "TRIM_HORIZON" => LeaseCheckpoint::TrimHorizon,
            "LATEST" => LeaseCheckpoint::Latest,
            "AT_TIMESTAMP" => LeaseCheckpoint::AtTimestamp,
            "SHARD_END" => LeaseCheckpoint::ShardEnd,
            other => LeaseCheckpoint::Sequence(other.parse()?),
        })
    }

    /// The sequence number, when the checkpoint is one.
    pub fn sequence_number(&self) -> Option<&SequenceNumber> {
        match self {
            LeaseCheckpoint::Sequence(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for LeaseCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_kcl())
    }
}

/// One shard's lease for one consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Whose lease on which shard.
    pub key: CheckpointKey,
    /// Where the consumer got to.
    pub checkpoint: LeaseCheckpoint,
    /// Bumped by one on every change; conditional writes compare it.
    pub lease_counter: u64,
    /// The worker holding the lease; `None` when it is free.
    pub lease_owner: Option<String>,
    /// Takes by a different owner since the last checkpoint.
    pub owner_switches_since_checkpoint: u64,
    /// The shard's parents (one after a split, two after a merge): the shard starts only once
    /// their leases are at [`LeaseCheckpoint::ShardEnd`] (or gone).
    pub parent_shard_ids: Vec<ShardId>,
    /// The shard's children, recorded when it ends.
    pub child_shard_ids: Vec<ShardId>,
}

impl Lease {
    /// A new lease as [`LeaseStore::create_lease_if_absent`] stores it.
    pub fn new(key: CheckpointKey, checkpoint: LeaseCheckpoint, parents: Vec<ShardId>) -> Self {
        Lease {
            key,
            checkpoint,
            lease_counter: 1,
            lease_owner: None,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: parents,
            child_shard_ids: Vec::new(),
        }
    }
}

/// The lease operations a coordinator needs. Every change names the counter the caller last
/// saw and fails with [`Error::Conflict`] when the stored counter differs (or the lease is
/// gone); a change returns the lease as stored, with its new counter.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Creates the lease (counter 1, no owner) unless one exists; returns whether it did.
    async fn create_lease_if_absent(
        &self,
        key: &CheckpointKey,
        checkpoint: LeaseCheckpoint,
        parents: Vec<ShardId>,
    ) -> Result<bool>;
    /// One lease, read consistently.
    async fn get_lease(&self, key: &CheckpointKey) -> Result<Option<Lease>>;
    /// Every lease of a consumer on a stream, sorted by shard.
    async fn list_leases(&self, consumer: &str, stream: &str) -> Result<Vec<Lease>>;
    /// Makes `owner` the owner (a free lease, an expired one, or a steal). Counts an owner
    /// switch when the owner changes.
    async fn take_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
    ) -> Result<Lease>;
    /// Renews `owner`'s lease (a heartbeat: only the counter moves). Also conflicts when the
    /// lease has another owner.
    async fn renew_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
    ) -> Result<Lease>;
    /// Records `owner`'s progress and resets the owner-switch count. Also conflicts when the
    /// lease has another owner, so a worker that lost its lease cannot move the checkpoint.
    async fn checkpoint_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
        checkpoint: LeaseCheckpoint,
    ) -> Result<Lease>;
    /// Frees the lease (no owner), e.g. on shutdown after the final checkpoint.
    async fn evict_lease(&self, key: &CheckpointKey, expected_counter: u64) -> Result<Lease>;
    /// Records the shard's children (when it ends).
    async fn set_child_shards(
        &self,
        key: &CheckpointKey,
        expected_counter: u64,
        children: Vec<ShardId>,
    ) -> Result<Lease>;
    /// Deletes the lease (a finished shard past retention).
    async fn delete_lease(&self, key: &CheckpointKey, expected_counter: u64) -> Result<()>;
}

/// The conflict every implementation reports when a counter moved on.
pub fn counter_conflict(key: &CheckpointKey, expected: u64, found: Option<u64>) -> Error {
    match found {
        Some(found) => Error::Conflict(format!(
            "lease {}/{}/{} is at counter {found}, not {expected}: another worker changed it; re-read the lease",
            key.consumer, key.stream, key.shard
        )),
        None => Error::Conflict(format!(
            "lease {}/{}/{} does not exist (expected counter {expected}); re-read the leases",
            key.consumer, key.stream, key.shard
        )),
    }
}

/// Leases in memory, for tests and single-process runs.
#[derive(Debug, Default)]
pub struct MemoryLeaseStore {
    leases: Mutex<BTreeMap<CheckpointKey, Lease>>,
}

impl MemoryLeaseStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn change(
        &self,
        key: &CheckpointKey,
        expected: u64,
        owner: Option<&str>,
        f: impl FnOnce(&mut Lease),
    ) -> Result<Lease> {
        let mut leases = self
            .leases
            .lock()
            .map_err(|_| Error::Internal("lease store lock poisoned".into()))?;
        let lease = leases
            .get_mut(key)
            .ok_or_else(|| counter_conflict(key, expected, None))?;
        if lease.lease_counter != expected {
            return Err(counter_conflict(key, expected, Some(lease.lease_counter)));
        }
        if let Some(owner) = owner
            && lease.lease_owner.as_deref() != Some(owner)
        {
            return Err(Error::Conflict(format!(
                "lease {}/{}/{} is owned by {:?}, not {owner}",
                key.consumer, key.stream, key.shard, lease.lease_owner
            )));
        }
        f(lease);
        lease.lease_counter += 1;
        Ok(lease.clone())
    }
}

#[async_trait]
impl LeaseStore for MemoryLeaseStore {
    async fn create_lease_if_absent(
        &self,
        key: &CheckpointKey,
        checkpoint: LeaseCheckpoint,
        parents: Vec<ShardId>,
    ) -> Result<bool> {
        let mut leases = self
            .leases
            .lock()
            .map_err(|_| Error::Internal("lease store lock poisoned".into()))?;
        if leases.contains_key(key) {
            return Ok(false);
        }
        leases.insert(key.clone(), Lease::new(key.clone(), checkpoint, parents));
        Ok(true)
    }

    async fn get_lease(&self, key: &CheckpointKey) -> Result<Option<Lease>> {
        let leases = self
            .leases
            .lock()
            .map_err(|_| Error::Internal("lease store lock poisoned".into()))?;
        Ok(leases.get(key).cloned())
    }

    async fn list_leases(&self, consumer: &str, stream: &str) -> Result<Vec<Lease>> {
        let leases = self
            .leases
            .lock()
            .map_err(|_| Error::Internal("lease store lock poisoned".into()))?;
        Ok(leases
            .values()
            .filter(|l| l.key.consumer == consumer && l.key.stream == stream)
            .cloned()
            .collect())
    }

    async fn take_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
    ) -> Result<Lease> {
        self.change(key, expected_counter, None, |l| {
            if l.lease_owner.as_deref() != Some(owner) {
                l.owner_switches_since_checkpoint += 1;
            }
            l.lease_owner = Some(owner.to_string());
        })
    }

    async fn renew_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
    ) -> Result<Lease> {
        self.change(key, expected_counter, Some(owner), |_| {})
    }

    async fn checkpoint_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
        checkpoint: LeaseCheckpoint,
    ) -> Result<Lease> {
        self.change(key, expected_counter, Some(owner), |l| {
            l.checkpoint = checkpoint;
            l.owner_switches_since_checkpoint = 0;
        })
    }

    async fn evict_lease(&self, key: &CheckpointKey, expected_counter: u64) -> Result<Lease> {
        self.change(key, expected_counter, None, |l| l.lease_owner = None)
    }

    async fn set_child_shards(
        &self,
        key: &CheckpointKey,
        expected_counter: u64,
        children: Vec<ShardId>,
    ) -> Result<Lease> {
        self.change(key, expected_counter, None, |l| {
            l.child_shard_ids = children
        })
    }

    async fn delete_lease(&self, key: &CheckpointKey, expected_counter: u64) -> Result<()> {
        let mut leases = self
            .leases
            .lock()
            .map_err(|_| Error::Internal("lease store lock poisoned".into()))?;
        match leases.get(key) {
            Some(l) if l.lease_counter == expected_counter => {
                leases.remove(key);
                Ok(())
            }
            found => Err(counter_conflict(
                key,
                expected_counter,
                found.map(|l| l.lease_counter),
            )),
        }
    }
}
