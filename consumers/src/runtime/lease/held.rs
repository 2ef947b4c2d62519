//! [`HeldLeases`]: the leases one worker holds, with the counter of each, and every write the
//! worker makes to them; [`LeasedCheckpoints`]: the consumer's checkpoints through them.
//!
//! Invariants:
//! - Writes to this worker's leases (takes, renewals, checkpoints, releases) are made one at a
//!   time, each conditional on the counter this worker last stored, so a renewal and a
//!   checkpoint never race each other into a conflict.
//! - A conflicting write re-reads the lease: if this worker still owns it the new counter is
//!   adopted and the write made again; otherwise the lease is lost: it leaves the held map and
//!   the [`LeaseSet`] marks it lost, and the write fails.
//! - A checkpoint is written only for a shard held at that moment: a consumer whose lease was
//!   lost cannot move the checkpoint of a shard another worker now reads.

use async_trait::async_trait;
use shardline_core::lease::{Lease, LeaseCheckpoint, LeaseStore};
use shardline_core::ports::{Checkpoint, CheckpointKey, CheckpointStore};
use shardline_core::{Error, Result, SequenceNumber, ShardId};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;

use super::set::LeaseSet;

/// What happened to one held lease in a write.
#[derive(Debug)]
pub enum Outcome {
    /// Written; the lease as stored.
    Done(Lease),
    /// Another worker owns it now (or it is gone): it is no longer held.
    Lost(String),
}

/// The leases one worker holds.
pub struct HeldLeases {
    me: String,
    consumer: String,
    stream: String,
    store: Arc<dyn LeaseStore>,
    set: Arc<LeaseSet>,
    /// Shard → the counter this worker last stored.
    counters: Mutex<BTreeMap<ShardId, u64>>,
}

impl std::fmt::Debug for HeldLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLeases")
            .field("me", &self.me)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl HeldLeases {
    /// No leases yet, of worker `me` for `consumer` on `stream`.
    pub fn new(
        me: &str,
        consumer: &str,
        stream: &str,
        store: Arc<dyn LeaseStore>,
        set: Arc<LeaseSet>,
    ) -> Self {
        HeldLeases {
            me: me.into(),
            consumer: consumer.into(),
            stream: stream.into(),
            store,
            set,
            counters: Mutex::default(),
        }
    }

    /// This worker's id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The key of `shard`'s lease.
    pub fn key(&self, shard: ShardId) -> CheckpointKey {
        CheckpointKey {
            consumer: self.consumer.clone(),
            stream: self.stream.clone(),
            shard,
        }
    }

    /// The shards held now.
    pub async fn shards(&self) -> Vec<ShardId> {
        self.counters.lock().await.keys().copied().collect()
    }

    /// Takes `lease` (as listed): `Ok(None)` when another worker changed it first.
    ///
    /// # Errors
    /// The store's error other than a conflict.
    pub async fn take(&self, lease: &Lease) -> Result<Option<Lease>> {
        let shard = lease.key.shard;
        let mut counters = self.counters.lock().await;
        match self
            .store
            .take_lease(&lease.key, &self.me, lease.lease_counter)
            .await
        {
            Ok(taken) => {
                counters.insert(shard, taken.lease_counter);
                self.set.gain(shard);
                Ok(Some(taken))
            }
            Err(Error::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes `write` with the counter held for `shard`, re-reading on a conflict (see the
    /// module docs). `write` gets the key and the expected counter.
    async fn held_write<F, Fut>(&self, shard: ShardId, write: F) -> Result<Outcome>
    where
        F: Fn(CheckpointKey, u64) -> Fut,
        Fut: std::future::Future<Output = Result<Lease>>,
    {
        let mut counters = self.counters.lock().await;
        let Some(&counter) = counters.get(&shard) else {
            return Ok(Outcome::Lost(format!("{shard} is not held by {}", self.me)));
        };
        let key = self.key(shard);
        let mut expected = counter;
        for _ in 0..3 {
            match write(key.clone(), expected).await {
                Ok(lease) => {
                    counters.insert(shard, lease.lease_counter);
                    return Ok(Outcome::Done(lease));
                }
                Err(Error::Conflict(_)) => {
                    let now = self.store.get_lease(&key).await?;
                    match now {
                        Some(l) if l.lease_owner.as_deref() == Some(self.me.as_str()) => {
                            expected = l.lease_counter;
                        }
                        other => {
                            counters.remove(&shard);
                            self.set.lose(shard);
                            let why = match other.and_then(|l| l.lease_owner) {
                                Some(owner) => format!("taken by {owner}"),
                                None => "released or deleted by another worker".into(),
                            };
                            return Ok(Outcome::Lost(why));
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!(
            "lease of {shard} kept changing while {} wrote it",
            self.me
        )))
    }

    /// Renews `shard`'s lease.
    ///
    /// # Errors
    /// The store's error other than a conflict (the lease may still be held).
    pub async fn renew(&self, shard: ShardId) -> Result<Outcome> {
        let (store, me) = (&self.store, self.me.as_str());
        self.held_write(shard, |key, expected| async move {
            store.renew_lease(&key, me, expected).await
        })
        .await
    }

    /// Records `checkpoint` on `shard`'s lease.
    ///
    /// # Errors
    /// As [`HeldLeases::renew`].
    pub async fn checkpoint(&self, shard: ShardId, checkpoint: LeaseCheckpoint) -> Result<Outcome> {
        let (store, me) = (&self.store, self.me.as_str());
        self.held_write(shard, |key, expected| {
            let checkpoint = checkpoint.clone();
            async move { store.checkpoint_lease(&key, me, expected, checkpoint).await }
        })
        .await
    }

    /// Records the children of `shard` (at its end).
    ///
    /// # Errors
    /// As [`HeldLeases::renew`].
    pub async fn set_children(&self, shard: ShardId, children: Vec<ShardId>) -> Result<Outcome> {
        let store = &self.store;
        self.held_write(shard, |key, expected| {
            let children = children.clone();
            async move { store.set_child_shards(&key, expected, children).await }
        })
        .await
    }

    /// Lets go of `shard`'s lease (no owner): it leaves the held map and the owned set.
    ///
    /// # Errors
    /// As [`HeldLeases::renew`].
    pub async fn release(&self, shard: ShardId) -> Result<Outcome> {
        let store = &self.store;
        let out = self
            .held_write(shard, |key, expected| async move {
                store.evict_lease(&key, expected).await
            })
            .await?;
        if let Outcome::Done(_) = &out {
            self.counters.lock().await.remove(&shard);
            self.set.release(shard);
        }
        Ok(out)
    }

    /// Forgets every held lease without writing (they could not be renewed in time): the
    /// consumer stops writing for them, and another worker takes them once they expire.
    pub async fn drop_all(&self) -> Vec<ShardId> {
        let mut counters = self.counters.lock().await;
        let shards: Vec<ShardId> = counters.keys().copied().collect();
        for &s in &shards {
            self.set.lose(s);
        }
        counters.clear();
        shards
    }
}

/// The consumer's [`CheckpointStore`] when it reads leased shards: checkpoints are lease
/// checkpoints, written only while the lease is held.
#[derive(Debug, Clone)]
pub struct LeasedCheckpoints {
    held: Arc<HeldLeases>,
}

impl LeasedCheckpoints {
    /// Checkpoints through `held`.
    pub fn new(held: Arc<HeldLeases>) -> Self {
        LeasedCheckpoints { held }
    }

    fn checkpoint_of(lease: &Lease, updated_ms: i64) -> Option<Checkpoint> {
        lease.checkpoint.sequence_number().map(|seq| Checkpoint {
            sequence_number: seq.clone(),
            lease_owner: lease.lease_owner.clone(),
            lease_counter: lease.lease_counter,
            updated_ms,
        })
    }
}

#[async_trait]
impl CheckpointStore for LeasedCheckpoints {
    async fn get(&self, key: &CheckpointKey) -> Result<Option<Checkpoint>> {
        let lease = self.held.store.get_lease(key).await?;
        Ok(lease.and_then(|l| Self::checkpoint_of(&l, shardline_core::time::now_ms())))
    }

    async fn put(
        &self,
        key: &CheckpointKey,
        sequence_number: &SequenceNumber,
        _owner: Option<&str>,
        _expected_counter: Option<u64>,
    ) -> Result<Checkpoint> {
        let position = LeaseCheckpoint::Sequence(sequence_number.clone());
        match self.held.checkpoint(key.shard, position).await? {
            Outcome::Done(lease) => Self::checkpoint_of(&lease, shardline_core::time::now_ms())
                .ok_or_else(|| {
                    Error::Internal(format!(
                        "lease of {} holds no sequence number after a checkpoint",
                        key.shard
                    ))
                }),
            // Not retryable: the consumer must stop writing for the shard, not try again.
            Outcome::Lost(why) => Err(Error::Internal(format!(
                "lease of {} lost ({why}): {} stops writing for it",
                key.shard, self.held.me
            ))),
        }
    }

    async fn list(&self, consumer: Option<&str>) -> Result<Vec<(CheckpointKey, Checkpoint)>> {
        if consumer.is_some_and(|c| c != self.held.consumer) {
            return Ok(Vec::new());
        }
        let now = shardline_core::time::now_ms();
        Ok(self
            .held
            .store
            .list_leases(&self.held.consumer, &self.held.stream)
            .await?
            .iter()
            .filter_map(|l| Self::checkpoint_of(l, now).map(|c| (l.key.clone(), c)))
            .collect())
    }

    async fn reset(&self, consumer: &str, stream: &str) -> Result<usize> {
        Err(Error::InvalidArgument(format!(
            "checkpoints of consumer {consumer} on {stream} are held in leases while workers \
             run: stop the `shardline consume` workers first"
        )))
    }
}
