//! Checkpoints and shard leases on one DynamoDB table in the KCL lease schema
//! (`resources.lease_table`).
//!
//! One item per (consumer, stream, shard), with KCL's attribute names:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `leaseKey` (partition key) | S | `<consumer>:<stream>:<shardId>` (KCL multi-stream style: stream identifier, then shard) |
//! | `checkpoint` | S | the last processed sequence number, or `TRIM_HORIZON` / `LATEST` / `AT_TIMESTAMP` / `SHARD_END` |
//! | `checkpointSubSequenceNumber` | N | always 0 (Shardline does not aggregate records) |
//! | `leaseCounter` | N | +1 on every change; every change is conditional on it |
//! | `leaseOwner` | S | the worker holding the lease; absent when free |
//! | `ownerSwitchesSinceCheckpoint` | N | takes by another owner since the last checkpoint |
//! | `parentShardId` | SS | the shard's parents; absent when none |
//! | `childShardIds` | SS | its children once it ended; absent until then |
//! | `consumerName`, `streamName`, `shardId`, `updatedMs` | S, S, S, N | Shardline's: the key's parts, last write time |
//!
//! The [`CheckpointStore`] view reads and writes the same items: `put` sets the checkpoint and
//! owner and bumps the counter (conditionally when asked), `get` returns the item when its
//! checkpoint is a sequence number (a sentinel reads as no checkpoint yet). Lists and resets
//! scan the table (a few items per shard and consumer).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue as Av, ReturnValue};
use shardline_core::lease::{Lease, LeaseCheckpoint, LeaseStore};
use shardline_core::ports::{Checkpoint, CheckpointKey, CheckpointStore, KeyType, TableSchema};
use shardline_core::{Error, Result, SequenceNumber, ShardId};
use std::collections::HashMap;

use super::attr::{get_s, get_u64};
use super::{call, tables};
use crate::client::AwsClients;
use crate::error::map_sdk_error;

/// Checkpoints and leases in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoLeaseTable {
    client: aws_sdk_dynamodb::Client,
    region: String,
    table: String,
}

fn lease_key(key: &CheckpointKey) -> String {
    format!("{}:{}:{}", key.consumer, key.stream, key.shard)
}

fn n(v: u64) -> Av {
    Av::N(v.to_string())
}

fn s(v: &str) -> Av {
    Av::S(v.to_string())
}

fn shard_set(shards: &[ShardId]) -> Av {
    Av::Ss(shards.iter().map(ToString::to_string).collect())
}

fn shard_list(item: &HashMap<String, Av>, name: &str) -> Vec<ShardId> {
    let mut out: Vec<ShardId> = item
        .get(name)
        .and_then(|v| v.as_ss().ok())
        .map(|ss| ss.iter().filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// One update: an expression with its names and values.
#[derive(Default)]
struct Update {
    set: Vec<String>,
    add: Vec<String>,
    remove: Vec<String>,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, Av>,
}

impl Update {
    fn name(&mut self, placeholder: &str, attribute: &str) -> &mut Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }
    fn value(&mut self, placeholder: &str, v: Av) -> &mut Self {
        self.values.insert(placeholder.into(), v);
        self
    }
    fn expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        parts.join(" ")
    }
}

impl DynamoLeaseTable {
    /// The table in `resources.lease_table`.
    pub fn new(clients: &AwsClients) -> Self {
        DynamoLeaseTable {
            client: clients.dynamodb.clone(),
            region: clients.region.clone(),
            table: clients.config.resources.lease_table.clone(),
        }
    }

    /// The table's key schema (KCL's: `leaseKey`, a string).
    pub fn schema(&self) -> TableSchema {
        TableSchema {
            name: self.table.clone(),
            partition_key: ("leaseKey".into(), KeyType::S),
            sort_key: None,
        }
    }

    /// Creates the table if missing.
    ///
    /// # Errors
    /// As [`tables::ensure_table`].
    pub async fn ensure_table(&self) -> Result<()> {
        tables::ensure_table(&self.client, &self.region, &self.schema()).await
    }

    fn key_attrs(key: &CheckpointKey) -> HashMap<String, Av> {
        HashMap::from([("leaseKey".to_string(), s(&lease_key(key)))])
    }

    /// An update that also stamps the key's parts and the write time, and bumps the counter.
    fn base_update(key: &CheckpointKey) -> Update {
        let mut u = Update::default();
        u.name("#lc", "leaseCounter")
            .name("#cn", "consumerName")
            .name("#sn", "streamName")
            .name("#sh", "shardId")
            .name("#up", "updatedMs")
            .value(":one", n(1))
            .value(":cn", s(&key.consumer))
            .value(":sn", s(&key.stream))
            .value(":sh", s(&key.shard.to_string()))
            .value(":up", Av::N(shardline_core::time::now_ms().to_string()));
        u.set
            .extend(["#cn = :cn", "#sn = :sn", "#sh = :sh", "#up = :up"].map(String::from));
        u.add.push("#lc :one".into());
        u
    }

    async fn update(
        &self,
        key: &CheckpointKey,
        u: Update,
        action_detail: &str,
    ) -> Result<HashMap<String, Av>> {
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attrs(key)))
            .update_expression(u.expression())
            .set_condition_expression(u.condition.clone())
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out.attributes().cloned().unwrap_or_default()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(format!(
                    "lease {}/{}/{}: {action_detail} lost: another worker changed the lease; re-read it",
                    key.consumer, key.stream, key.shard
                )))
            }
            Err(e) => Err(map_sdk_error(
                &call(&self.region, "UpdateItem", &self.table),
                e,
            )),
        }
    }

    async fn get_item(&self, key: &CheckpointKey) -> Result<Option<HashMap<String, Av>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk_error(&call(&self.region, "GetItem", &self.table), e))?;
        Ok(out.item().cloned())
    }

    /// Every item, optionally of one consumer (and stream).
    async fn scan(
        &self,
        consumer: Option<&str>,
        stream: Option<&str>,
    ) -> Result<Vec<HashMap<String, Av>>> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut filters = Vec::new();
        if let Some(c) = consumer {
            names.insert("#cn".to_string(), "consumerName".to_string());
            values.insert(":cn".to_string(), s(c));
            filters.push("#cn = :cn");
        }
        if let Some(st) = stream {
            names.insert("#sn".to_string(), "streamName".to_string());
            values.insert(":sn".to_string(), s(st));
            filters.push("#sn = :sn");
        }
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, Av>> = None;
        loop {
            let mut request = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if !filters.is_empty() {
                request = request
                    .filter_expression(filters.join(" AND "))
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()));
            }
            let page = request
                .send()
                .await
                .map_err(|e| map_sdk_error(&call(&self.region, "Scan", &self.table), e))?;
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(out)
    }

    fn parse_key(&self, item: &HashMap<String, Av>) -> Result<CheckpointKey> {
        let bad = || {
            Error::Internal(format!(
                "lease table \"{}\": item {:?} lacks consumerName, streamName or shardId; it was not written by Shardline",
                self.table,
                get_s(item, "leaseKey").unwrap_or("?")
            ))
        };
        Ok(CheckpointKey {
            consumer: get_s(item, "consumerName").ok_or_else(bad)?.to_string(),
            stream: get_s(item, "streamName").ok_or_else(bad)?.to_string(),
            shard: get_s(item, "shardId")
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?,
        })
    }

    fn parse_lease(&self, item: &HashMap<String, Av>) -> Result<Lease> {
        let key = self.parse_key(item)?;
        let checkpoint =
            LeaseCheckpoint::from_kcl(get_s(item, "checkpoint").unwrap_or("TRIM_HORIZON"))?;
        Ok(Lease {
            key,
            checkpoint,
            lease_counter: get_u64(item, "leaseCounter").unwrap_or(0),
            lease_owner: get_s(item, "leaseOwner").map(str::to_string),
            owner_switches_since_checkpoint: get_u64(item, "ownerSwitchesSinceCheckpoint")
                .unwrap_or(0),
            parent_shard_ids: shard_list(item, "parentShardId"),
            child_shard_ids: shard_list(item, "childShardIds"),
        })
    }

    fn parse_checkpoint(
        &self,
        item: &HashMap<String, Av>,
    ) -> Result<Option<(CheckpointKey, Checkpoint)>> {
        let lease = self.parse_lease(item)?;
        let Some(seq) = lease.checkpoint.sequence_number().cloned() else {
            return Ok(None);
        };
        let updated_ms = item
            .get("updatedMs")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(Some((
            lease.key,
            Checkpoint {
                sequence_number: seq,
                lease_owner: lease.lease_owner,
                lease_counter: lease.lease_counter,
                updated_ms,
            },
        )))
    }

    fn expect_counter(u: &mut Update, expected: u64) {
        u.value(":expected", n(expected));
        u.condition = Some("#lc = :expected".into());
    }

    fn expect_owner(u: &mut Update, owner: &str) {
        u.name("#o", "leaseOwner").value(":o", s(owner));
        let counter = u
            .condition
            .take()
            .unwrap_or_else(|| "attribute_exists(#lc)".into());
        u.condition = Some(format!("{counter} AND #o = :o"));
    }
}

#[async_trait]
impl CheckpointStore for DynamoLeaseTable {
    async fn get(&self, key: &CheckpointKey) -> Result<Option<Checkpoint>> {
        match self.get_item(key).await? {
            Some(item) => Ok(self.parse_checkpoint(&item)?.map(|(_, c)| c)),
            None => Ok(None),
        }
    }

    async fn put(
        &self,
        key: &CheckpointKey,
        sequence_number: &SequenceNumber,
        owner: Option<&str>,
        expected_counter: Option<u64>,
    ) -> Result<Checkpoint> {
        let mut u = Self::base_update(key);
        u.name("#cp", "checkpoint")
            .name("#sub", "checkpointSubSequenceNumber")
            .name("#sw", "ownerSwitchesSinceCheckpoint")
            .name("#o", "leaseOwner")
            .value(":cp", s(sequence_number.as_str()))
            .value(":zero", n(0));
        u.set
            .extend(["#cp = :cp", "#sub = :zero", "#sw = :zero"].map(String::from));
        match owner {
            Some(o) => {
                u.value(":o", s(o));
                u.set.push("#o = :o".into());
            }
            None => u.remove.push("#o".into()),
        }
        match expected_counter {
            None => {}
            Some(0) => {
                u.name("#lk", "leaseKey");
                u.condition = Some("attribute_not_exists(#lk) OR #lc = :zero".into());
            }
            Some(expected) => Self::expect_counter(&mut u, expected),
        }
        let item = self.update(key, u, "checkpoint").await?;
        self.parse_checkpoint(&item)?
            .map(|(_, c)| c)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "lease table \"{}\": UpdateItem returned no checkpoint",
                    self.table
                ))
            })
    }

    async fn list(&self, consumer: Option<&str>) -> Result<Vec<(CheckpointKey, Checkpoint)>> {
        let mut out = Vec::new();
        for item in self.scan(consumer, None).await? {
            if let Some(entry) = self.parse_checkpoint(&item)? {
                out.push(entry);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn reset(&self, consumer: &str, stream: &str) -> Result<usize> {
        let items = self.scan(Some(consumer), Some(stream)).await?;
        for item in &items {
            let key = self.parse_key(item)?;
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key_attrs(&key)))
                .send()
                .await
                .map_err(|e| map_sdk_error(&call(&self.region, "DeleteItem", &self.table), e))?;
        }
        Ok(items.len())
    }
}

#[async_trait]
impl LeaseStore for DynamoLeaseTable {
    async fn create_lease_if_absent(
        &self,
        key: &CheckpointKey,
        checkpoint: LeaseCheckpoint,
        parents: Vec<ShardId>,
    ) -> Result<bool> {
        let mut item = Self::key_attrs(key);
        item.insert("consumerName".into(), s(&key.consumer));
        item.insert("streamName".into(), s(&key.stream));
        item.insert("shardId".into(), s(&key.shard.to_string()));
        item.insert("checkpoint".into(), s(checkpoint.as_kcl()));
        item.insert("checkpointSubSequenceNumber".into(), n(0));
        item.insert("leaseCounter".into(), n(1));
        item.insert("ownerSwitchesSinceCheckpoint".into(), n(0));
        item.insert(
            "updatedMs".into(),
            Av::N(shardline_core::time::now_ms().to_string()),
        );
        if !parents.is_empty() {
            item.insert("parentShardId".into(), shard_set(&parents));
        }
        let answer = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(leaseKey)")
            .send()
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(map_sdk_error(
                &call(&self.region, "PutItem", &self.table),
                e,
            )),
        }
    }

    async fn get_lease(&self, key: &CheckpointKey) -> Result<Option<Lease>> {
        self.get_item(key)
            .await?
            .map(|i| self.parse_lease(&i))
            .transpose()
    }

    async fn list_leases(&self, consumer: &str, stream: &str) -> Result<Vec<Lease>> {
        let mut out = self
            .scan(Some(consumer), Some(stream))
            .await?
            .iter()
            .map(|i| self.parse_lease(i))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn take_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
    ) -> Result<Lease> {
        // Another owner (or none): the usual take; counts an owner switch.
        let mut switch = Self::base_update(key);
        Self::expect_counter(&mut switch, expected_counter);
        switch
            .name("#o", "leaseOwner")
            .name("#sw", "ownerSwitchesSinceCheckpoint")
            .value(":o", s(owner));
        switch.set.push("#o = :o".into());
        switch.add.push("#sw :one".into());
        switch.condition =
            Some("#lc = :expected AND (attribute_not_exists(#o) OR #o <> :o)".into());
        match self.update(key, switch, "take").await {
            Ok(item) => return self.parse_lease(&item),
            Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        // Already ours: only the counter moves.
        let mut same = Self::base_update(key);
        Self::expect_counter(&mut same, expected_counter);
        Self::expect_owner(&mut same, owner);
        let item = self.update(key, same, "take").await?;
        self.parse_lease(&item)
    }

    async fn renew_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
    ) -> Result<Lease> {
        let mut u = Self::base_update(key);
        Self::expect_counter(&mut u, expected_counter);
        Self::expect_owner(&mut u, owner);
        let item = self.update(key, u, "renewal").await?;
        self.parse_lease(&item)
    }

    async fn checkpoint_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        expected_counter: u64,
        checkpoint: LeaseCheckpoint,
    ) -> Result<Lease> {
        let mut u = Self::base_update(key);
        Self::expect_counter(&mut u, expected_counter);
        Self::expect_owner(&mut u, owner);
        u.name("#cp", "checkpoint")
            .name("#sub", "checkpointSubSequenceNumber")
            .name("#sw", "ownerSwitchesSinceCheckpoint")
            .value(":cp", s(checkpoint.as_kcl()))
            .value(":zero", n(0));
        u.set
            .extend(["#cp = :cp", "#sub = :zero", "#sw = :zero"].map(String::from));
        let item = self.update(key, u, "checkpoint").await?;
        self.parse_lease(&item)
    }

    async fn evict_lease(&self, key: &CheckpointKey, expected_counter: u64) -> Result<Lease> {
        let mut u = Self::base_update(key);
        Self::expect_counter(&mut u, expected_counter);
        u.name("#o", "leaseOwner");
        u.remove.push("#o".into());
        let item = self.update(key, u, "eviction").await?;
        self.parse_lease(&item)
    }

    async fn set_child_shards(
        &self,
        key: &CheckpointKey,
        expected_counter: u64,
        children: Vec<ShardId>,
    ) -> Result<Lease> {
        let mut u = Self::base_update(key);
        Self::expect_counter(&mut u, expected_counter);
        u.name("#ch", "childShardIds");
        if children.is_empty() {
            u.remove.push("#ch".into());
        } else {
            u.value(":ch", shard_set(&children));
            u.set.push("#ch = :ch".into());
        }
        let item = self.update(key, u, "child shards update").await?;
        self.parse_lease(&item)
    }

    async fn delete_lease(&self, key: &CheckpointKey, expected_counter: u64) -> Result<()> {
        let answer = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_attrs(key)))
            .condition_expression("leaseCounter = :expected")
            .expression_attribute_values(":expected", n(expected_counter))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(format!(
                    "lease {}/{}/{}: delete lost: the lease changed or is gone; re-read it",
                    key.consumer, key.stream, key.shard
                )))
            }
            Err(e) => Err(map_sdk_error(
                &call(&self.region, "DeleteItem", &self.table),
                e,
            )),
        }
    }
}
