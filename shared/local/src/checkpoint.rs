//! [`CheckpointStore`] on redb, in the shape of a KCL lease table.
//!
//! Table `checkpoints`: key `(consumer, stream, shard index)` → JSON [`Checkpoint`].
//!
//! Invariants:
//! - `put` reads, compares and writes in one write transaction, so a conditional write
//!   (`expected_counter`) either sees the counter it expected and bumps it by one, or fails
//!   with [`Error::Conflict`] and changes nothing. A missing checkpoint counts as counter 0.
//! - Listing order is the order of [`CheckpointKey`]: consumer, stream, shard.

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use shardline_core::ports::{Checkpoint, CheckpointKey, CheckpointStore};
use shardline_core::time::{Clock, SystemClock};
use shardline_core::{Error, Result, SequenceNumber, ShardId};
use std::sync::Arc;

use crate::db::{Db, open_read};
use crate::error::{decode_json, encode_json, port};

pub(crate) const CHECKPOINTS: TableDefinition<(&str, &str, u32), &[u8]> =
    TableDefinition::new("checkpoints");

/// Checkpoints and leases in a redb file (`<data>/local/checkpoints.redb`).
#[derive(Debug, Clone)]
pub struct RedbCheckpointStore {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl RedbCheckpointStore {
    pub(crate) fn new(db: Db) -> Self {
        RedbCheckpointStore {
            db,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for the `updated_ms` of written checkpoints.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl CheckpointStore for RedbCheckpointStore {
    async fn get(&self, key: &CheckpointKey) -> Result<Option<Checkpoint>> {
        let key = key.clone();
        self.db
            .read(move |txn, path| {
                let Some(table) = open_read(txn, CHECKPOINTS)? else {
                    return Ok(None);
                };
                match table.get((key.consumer.as_str(), key.stream.as_str(), key.shard.0))? {
                    Some(v) => Ok(Some(decode_json(path, "checkpoint", v.value())?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn put(
        &self,
        key: &CheckpointKey,
        sequence_number: &SequenceNumber,
        owner: Option<&str>,
        expected_counter: Option<u64>,
    ) -> Result<Checkpoint> {
        if key.consumer.is_empty() || key.stream.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "checkpoint key needs a consumer and a stream name, got consumer {:?} stream {:?}",
                key.consumer, key.stream
            )));
        }
        let key = key.clone();
        let sequence_number = sequence_number.clone();
        let owner = owner.map(str::to_string);
        let now = self.clock.now_ms();
        self.db
            .write(move |txn, path| {
                let mut table = txn.open_table(CHECKPOINTS)?;
                let k = (key.consumer.as_str(), key.stream.as_str(), key.shard.0);
                let current: Option<Checkpoint> = match table.get(k)? {
                    Some(v) => Some(decode_json(path, "checkpoint", v.value())?),
                    None => None,
                };
                let counter = current.as_ref().map_or(0, |c| c.lease_counter);
                if let Some(expected) = expected_counter
                    && expected != counter
                {
                    return Err(port(Error::Conflict(format!(
                        "checkpoint of consumer {:?} on {}/{} has lease counter {counter}, \
                         expected {expected}: another worker wrote it",
                        key.consumer, key.stream, key.shard
                    ))));
                }
                let next = Checkpoint {
                    sequence_number,
                    lease_owner: owner,
                    lease_counter: counter + 1,
                    updated_ms: now,
                };
                table.insert(k, encode_json("checkpoint", &next)?.as_slice())?;
                Ok(next)
            })
            .await
    }

    async fn list(&self, consumer: Option<&str>) -> Result<Vec<(CheckpointKey, Checkpoint)>> {
        let consumer = consumer.map(str::to_string);
        self.db
            .read(move |txn, path| {
                let Some(table) = open_read(txn, CHECKPOINTS)? else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for entry in table.iter()? {
                    let (k, v) = entry?;
                    let (c, stream, shard) = k.value();
                    if consumer.as_deref().is_some_and(|want| want != c) {
                        continue;
                    }
                    let key = CheckpointKey {
                        consumer: c.to_string(),
                        stream: stream.to_string(),
                        shard: ShardId(shard),
                    };
                    out.push((key, decode_json(path, "checkpoint", v.value())?));
                }
                Ok(out)
            })
            .await
    }

    async fn reset(&self, consumer: &str, stream: &str) -> Result<usize> {
        let consumer = consumer.to_string();
        let stream = stream.to_string();
        self.db
            .write(move |txn, _| {
                let mut table = txn.open_table(CHECKPOINTS)?;
                let mut removed = 0;
                table.retain(|(c, s, _), _| {
                    let hit = c == consumer && s == stream;
                    removed += usize::from(hit);
                    !hit
                })?;
                Ok(removed)
            })
            .await
    }
}
