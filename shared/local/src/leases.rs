//! [`LeaseStore`] on redb: shard leases in the KCL schema, in the checkpoint store's file.
//!
//! Layout: table `leases` in `<data>/local/checkpoints.redb`, key `(consumer, stream, shard
//! index)` → the JSON [`Lease`].
//!
//! Invariants:
//! - Every change reads the lease, compares its counter (and owner where the operation
//!   requires it) and writes it back in one write transaction: of two changes made with the
//!   same counter exactly one succeeds, the other fails with [`Error::Conflict`] and changes
//!   nothing (see [`shardline_core::lease`] for the counter rules).
//! - A checkpoint to a sequence number is also written to the `checkpoints` table in the same
//!   transaction, so the [`CheckpointStore`](shardline_core::ports::CheckpointStore) view of
//!   the file (`shardline up`, `pipeline-health`) sees the progress of leased consumers, as on
//!   DynamoDB where both views are one item.

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use shardline_core::lease::{Lease, LeaseCheckpoint, LeaseStore, counter_conflict};
use shardline_core::ports::{Checkpoint, CheckpointKey};
use shardline_core::time::{Clock, SystemClock};
use shardline_core::{Error, Result, ShardId};
use std::sync::Arc;

use crate::checkpoint::CHECKPOINTS;
use crate::db::{Db, open_read};
use crate::error::{TxError, decode_json, encode_json, port};

const LEASES: TableDefinition<(&str, &str, u32), &[u8]> = TableDefinition::new("leases");

/// Shard leases in a redb file (`<data>/local/checkpoints.redb`).
#[derive(Debug, Clone)]
pub struct RedbLeaseStore {
    db: Db,
    clock: Arc<dyn Clock>,
}

/// What a change requires of the stored lease besides its counter.
#[derive(Clone, Copy)]
enum Owner<'a> {
    /// Any owner, or none.
    Any,
    /// This worker must hold it.
    Is(&'a str),
}

impl RedbLeaseStore {
    pub(crate) fn new(db: Db) -> Self {
        RedbLeaseStore {
            db,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for the `updated_ms` of checkpoints written through leases.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Applies `f` to the lease under `key` if its counter is `expected` (and `owner` holds),
    /// bumps the counter and stores it, in one transaction. Returns the stored lease.
    async fn change(
        &self,
        key: &CheckpointKey,
        expected: u64,
        owner: Owner<'_>,
        f: impl FnOnce(&mut Lease) + Send + 'static,
    ) -> Result<Lease> {
        let key = key.clone();
        let owner = match owner {
            Owner::Any => None,
            Owner::Is(o) => Some(o.to_string()),
        };
        let now = self.clock.now_ms();
        self.db
            .write(move |txn, path| {
                let mut table = txn.open_table(LEASES)?;
                let k = (key.consumer.as_str(), key.stream.as_str(), key.shard.0);
                let current: Option<Lease> = match table.get(k)? {
                    Some(v) => Some(decode_json(path, "lease", v.value())?),
                    None => None,
                };
                let Some(mut lease) = current else {
                    return Err(port(counter_conflict(&key, expected, None)));
                };
                if lease.lease_counter != expected {
                    return Err(port(counter_conflict(
                        &key,
                        expected,
                        Some(lease.lease_counter),
                    )));
                }
                if let Some(owner) = &owner
                    && lease.lease_owner.as_deref() != Some(owner.as_str())
                {
                    return Err(port(Error::Conflict(format!(
                        "lease {}/{}/{} is owned by {:?}, not {owner}",
                        key.consumer, key.stream, key.shard, lease.lease_owner
                    ))));
                }
                f(&mut lease);
                lease.lease_counter += 1;
                table.insert(k, encode_json("lease", &lease)?.as_slice())?;
                if let LeaseCheckpoint::Sequence(seq) = &lease.checkpoint {
                    mirror_checkpoint(txn, &key, &lease, seq, now)?;
                }
                Ok(lease)
            })
            .await
    }
}

/// Writes the checkpoint view of a lease whose checkpoint is a sequence number, unless the
/// checkpoints table already holds that position.
fn mirror_checkpoint(
    txn: &redb::WriteTransaction,
    key: &CheckpointKey,
    lease: &Lease,
    seq: &shardline_core::SequenceNumber,
    now: i64,
) -> Result<(), TxError> {
    let mut table = txn.open_table(CHECKPOINTS)?;
    let k = (key.consumer.as_str(), key.stream.as_str(), key.shard.0);
    let same = match table.get(k)? {
        Some(v) => serde_json::from_slice::<Checkpoint>(v.value())
            .map(|c| c.sequence_number == *seq)
            .unwrap_or(false),
        None => false,
    };
    if !same {
        let checkpoint = Checkpoint {
            sequence_number: seq.clone(),
            lease_owner: lease.lease_owner.clone(),
            lease_counter: lease.lease_counter,
            updated_ms: now,
        };
        table.insert(k, encode_json("checkpoint", &checkpoint)?.as_slice())?;
    }
    Ok(())
}

#[async_trait]
impl LeaseStore for RedbLeaseStore {
    async fn create_lease_if_absent(
        &self,
        key: &CheckpointKey,
        checkpoint: LeaseCheckpoint,
        parents: Vec<ShardId>,
    ) -> Result<bool> {
        if key.consumer.is_empty() || key.stream.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "lease key needs a consumer and a stream name, got consumer {:?} stream {:?}",
                key.consumer, key.stream
            )));
        }
        let key = key.clone();
        self.db
            .write(move |txn, _| {
                let mut table = txn.open_table(LEASES)?;
                let k = (key.consumer.as_str(), key.stream.as_str(), key.shard.0);
                if table.get(k)?.is_some() {
                    return Ok(false);
                }
                let lease = Lease::new(key.clone(), checkpoint, parents);
                table.insert(k, encode_json("lease", &lease)?.as_slice())?;
                Ok(true)
            })
            .await
    }

    async fn get_lease(&self, key: &CheckpointKey) -> Result<Option<Lease>> {
        let key = key.clone();
        self.db
            .read(move |txn, path| {
                let Some(table) = open_read(txn, LEASES)? else {
                    return Ok(None);
                };
                match table.get((key.consumer.as_str(), key.stream.as_str(), key.shard.0))? {
                    Some(v) => Ok(Some(decode_json(path, "lease", v.value())?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn list_leases(&self, consumer: &str, stream: &str) -> Result<Vec<Lease>> {
        let (consumer, stream) = (consumer.to_string(), stream.to_string());
        self.db
            .read(move |txn, path| {
                let Some(table) = open_read(txn, LEASES)? else {
                    return Ok(Vec::new());
                };
                let from = (consumer.as_str(), stream.as_str(), 0u32);
                let to = (consumer.as_str(), stream.as_str(), u32::MAX);
                let mut out = Vec::new();
                for entry in table.range(from..=to)? {
                    let (_, v) = entry?;
                    out.push(decode_json(path, "lease", v.value())?);
                }
                Ok(out)
            })
            .await
    }

    async fn take_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
    ) -> Result<Lease> {
        let owner = owner.to_string();
        self.change(key, expected_counter, Owner::Any, move |l| {
            if l.lease_owner.as_deref() != Some(owner.as_str()) {
                l.owner_switches_since_checkpoint += 1;
            }
            l.lease_owner = Some(owner);
        })
        .await
    }

    async fn renew_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
    ) -> Result<Lease> {
        self.change(key, expected_counter, Owner::Is(owner), |_| {})
            .await
    }

    async fn checkpoint_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
        checkpoint: LeaseCheckpoint,
    ) -> Result<Lease> {
        self.change(key, expected_counter, Owner::Is(owner), move |l| {
            l.checkpoint = checkpoint;
            l.owner_switches_since_checkpoint = 0;
        })
        .await
    }

    async fn evict_lease(&self, key: &CheckpointKey, expected_counter: u64) -> Result<Lease> {
        self.change(key, expected_counter, Owner::Any, |l| l.lease_owner = None)
            .await
    }

    async fn set_child_shards(
        &self,
        key: &CheckpointKey,
        expected_counter: u64,
        children: Vec<ShardId>,
    ) -> Result<Lease> {
        self.change(key, expected_counter, Owner::Any, move |l| {
            l.child_shard_ids = children
        })
        .await
    }

    async fn delete_lease(&self, key: &CheckpointKey, expected_counter: u64) -> Result<()> {
        let key = key.clone();
        self.db
            .write(move |txn, path| {
                let mut table = txn.open_table(LEASES)?;
                let k = (key.consumer.as_str(), key.stream.as_str(), key.shard.0);
                let found: Option<Lease> = match table.get(k)? {
                    Some(v) => Some(decode_json(path, "lease", v.value())?),
                    None => None,
                };
                match found {
                    Some(l) if l.lease_counter == expected_counter => {
                        table.remove(k)?;
                        Ok(())
                    }
                    found => Err(port(counter_conflict(
                        &key,
                        expected_counter,
                        found.map(|l| l.lease_counter),
                    ))),
                }
            })
            .await
    }
}
