//! [`StateStore`] on redb (`<data>/local/state.redb`).
//!
//! Layout: one redb table `state`, key `(namespace, key)` → the value's bytes.
//!
//! Invariants: `put_many` writes all its entries in one transaction (all or none survive a
//! crash); listing is by key byte order within one namespace.

use async_trait::async_trait;
use bytes::Bytes;
use redb::TableDefinition;
use shardline_core::ports::StateStore;
use shardline_core::{Error, Result};

use crate::db::{Db, open_read};

const STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("state");

/// Namespaced key-value state in a redb file.
#[derive(Debug, Clone)]
pub struct RedbStateStore {
    db: Db,
}

impl RedbStateStore {
    pub(crate) fn new(db: Db) -> Self {
        RedbStateStore { db }
    }
}

fn check_namespace(namespace: &str) -> Result<()> {
    if namespace.is_empty() {
        return Err(Error::InvalidArgument(
            "state namespace must not be empty; name the component owning the state".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl StateStore for RedbStateStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Bytes>> {
        check_namespace(namespace)?;
        let (ns, key) = (namespace.to_string(), key.to_string());
        self.db
            .read(move |txn, _| {
                let Some(table) = open_read(txn, STATE)? else {
                    return Ok(None);
                };
                Ok(table
                    .get((ns.as_str(), key.as_str()))?
                    .map(|v| Bytes::copy_from_slice(v.value())))
            })
            .await
    }

    async fn put_many(&self, namespace: &str, entries: Vec<(String, Bytes)>) -> Result<()> {
        check_namespace(namespace)?;
        if entries.is_empty() {
            return Ok(());
        }
        let ns = namespace.to_string();
        self.db
            .write(move |txn, _| {
                let mut table = txn.open_table(STATE)?;
                for (key, value) in &entries {
                    table.insert((ns.as_str(), key.as_str()), value.as_ref())?;
                }
                Ok(())
            })
            .await
    }

    async fn list(&self, namespace: &str, prefix: &str) -> Result<Vec<(String, Bytes)>> {
        check_namespace(namespace)?;
        let (ns, prefix) = (namespace.to_string(), prefix.to_string());
        self.db
            .read(move |txn, _| {
                let Some(table) = open_read(txn, STATE)? else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for entry in table.range((ns.as_str(), prefix.as_str())..)? {
                    let (k, v) = entry?;
                    let (entry_ns, key) = k.value();
                    if entry_ns != ns || !key.starts_with(prefix.as_str()) {
                        break;
                    }
                    out.push((key.to_string(), Bytes::copy_from_slice(v.value())));
                }
                Ok(out)
            })
            .await
    }

    async fn delete_many(&self, namespace: &str, keys: Vec<String>) -> Result<()> {
        check_namespace(namespace)?;
        if keys.is_empty() {
            return Ok(());
        }
        let ns = namespace.to_string();
        self.db
            .write(move |txn, _| {
                let mut table = txn.open_table(STATE)?;
                for key in &keys {
                    table.remove((ns.as_str(), key.as_str()))?;
                }
                Ok(())
            })
            .await
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        check_namespace(namespace)?;
        let (ns, key) = (namespace.to_string(), key.to_string());
        self.db
            .write(move |txn, _| {
                let mut table = txn.open_table(STATE)?;
                table.remove((ns.as_str(), key.as_str()))?;
                Ok(())
            })
            .await
    }
}
