//! The [`StateStore`] port on DynamoDB (`resources.state_table`).
//!
//! One item per entry: partition key `namespace` (S), sort key `key` (S), the value in `value`
//! (B). DynamoDB orders sort keys by their UTF-8 bytes, so a Query on the namespace with
//! `begins_with(key, prefix)` lists a prefix sorted, as the port promises. Reads are consistent.
//!
//! # Atomicity
//! `put_many` and `delete_many` of up to 100 entries are one TransactWriteItems (DynamoDB's
//! limit per transaction): all or nothing. Larger calls are written as consecutive
//! transactions of 100 in the caller's order, each atomic, so a crash between two of them
//! leaves a prefix of the entries written. A caller whose entries must land together keeps
//! them to 100 per call, or puts the entry that commits the others (e.g. a shard's progress)
//! last.
//!
//! Why DynamoDB and not S3: entries are small (alarm states, watermarks, ledger ids) and read
//! and written by key, DynamoDB writes several keys atomically, and it needs no listing to
//! read one key.

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Delete, Put, TransactWriteItem};
use bytes::Bytes;
use shardline_core::ports::{KeyType, StateStore, TableSchema};
use shardline_core::{Error, Result};
use std::collections::HashMap;

use super::{call, tables};
use crate::client::AwsClients;
use crate::error::map_sdk_error;

/// Entries per TransactWriteItems (DynamoDB's limit).
const TRANSACTION_MAX: usize = 100;

/// DynamoDB as a [`StateStore`].
#[derive(Debug, Clone)]
pub struct DynamoStateStore {
    client: aws_sdk_dynamodb::Client,
    region: String,
    table: String,
}

impl DynamoStateStore {
    /// The store in `resources.state_table`.
    pub fn new(clients: &AwsClients) -> Self {
        DynamoStateStore {
            client: clients.dynamodb.clone(),
            region: clients.region.clone(),
            table: clients.config.resources.state_table.clone(),
        }
    }

    /// The table's key schema.
    pub fn schema(&self) -> TableSchema {
        TableSchema {
            name: self.table.clone(),
            partition_key: ("namespace".into(), KeyType::S),
            sort_key: Some(("key".into(), KeyType::S)),
        }
    }

    /// Creates the table if missing.
    ///
    /// # Errors
    /// As [`tables::ensure_table`].
    pub async fn ensure_table(&self) -> Result<()> {
        tables::ensure_table(&self.client, &self.region, &self.schema()).await
    }

    fn key(namespace: &str, key: &str) -> Result<HashMap<String, Av>> {
        if namespace.is_empty() || key.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "state store: namespace {namespace:?} and key {key:?} must not be empty (DynamoDB keys cannot be)"
            )));
        }
        Ok(HashMap::from([
            ("namespace".to_string(), Av::S(namespace.to_string())),
            ("key".to_string(), Av::S(key.to_string())),
        ]))
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<()> {
        for chunk in items.chunks(TRANSACTION_MAX) {
            self.client
                .transact_write_items()
                .set_transact_items(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    map_sdk_error(&call(&self.region, "TransactWriteItems", &self.table), e)
                })?;
        }
        Ok(())
    }
}

/// The last of each key, in the order of their last occurrence.
fn last_of_each<T>(entries: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, (k, _)) in entries.iter().enumerate() {
        last.insert(k.clone(), i);
    }
    entries
        .into_iter()
        .enumerate()
        .filter(|(i, (k, _))| last.get(k) == Some(i))
        .map(|(_, e)| e)
        .collect()
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Bytes>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(namespace, key)?))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk_error(&call(&self.region, "GetItem", &self.table), e))?;
        Ok(out.item().map(|item| match item.get("value") {
            Some(Av::B(b)) => Bytes::copy_from_slice(b.as_ref()),
            _ => Bytes::new(),
        }))
    }

    async fn put_many(&self, namespace: &str, entries: Vec<(String, Bytes)>) -> Result<()> {
        let mut items = Vec::with_capacity(entries.len());
        for (key, value) in last_of_each(entries) {
            let mut item = Self::key(namespace, &key)?;
            item.insert("value".into(), Av::B(Blob::new(value.to_vec())));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(|e| Error::InvalidArgument(format!("state store put: {e}")))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        self.transact(items).await
    }

    async fn list(&self, namespace: &str, prefix: &str) -> Result<Vec<(String, Bytes)>> {
        let mut values = HashMap::from([(":ns".to_string(), Av::S(namespace.to_string()))]);
        let mut condition = "#ns = :ns".to_string();
        let mut names = HashMap::from([("#ns".to_string(), "namespace".to_string())]);
        if !prefix.is_empty() {
            values.insert(":prefix".into(), Av::S(prefix.to_string()));
            names.insert("#k".into(), "key".into());
            condition.push_str(" AND begins_with(#k, :prefix)");
        }
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, Av>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk_error(&call(&self.region, "Query", &self.table), e))?;
            for item in page.items() {
                let Some(Av::S(key)) = item.get("key") else {
                    continue;
                };
                let value = match item.get("value") {
                    Some(Av::B(b)) => Bytes::copy_from_slice(b.as_ref()),
                    _ => Bytes::new(),
                };
                out.push((key.clone(), value));
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(namespace, key)?))
            .send()
            .await
            .map_err(|e| map_sdk_error(&call(&self.region, "DeleteItem", &self.table), e))?;
        Ok(())
    }

    async fn delete_many(&self, namespace: &str, keys: Vec<String>) -> Result<()> {
        let mut items = Vec::with_capacity(keys.len());
        for (key, ()) in last_of_each(keys.into_iter().map(|k| (k, ())).collect()) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(namespace, &key)?))
                .build()
                .map_err(|e| Error::InvalidArgument(format!("state store delete: {e}")))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        self.transact(items).await
    }
}
