//! [`ItemTable`] for [`LsmItemTable`]: tables, batch puts and range reads over every run.

use std::sync::Arc;

use async_trait::async_trait;
use fjall::PersistMode;
use shardline_core::ports::{
    AttributeValue, Item, ItemIter, ItemQuery, ItemSource, ItemTable, TableSchema,
};
use shardline_core::{Error, Result};

use super::encode::table_prefix;
use super::merge::merged;
use super::{LsmItemTable, codec, keys, poisoned_lock};
use crate::db::blocking;

#[async_trait]
impl ItemTable for LsmItemTable {
    async fn ensure_table(&self, schema: &TableSchema) -> Result<()> {
        if schema.name.is_empty() || schema.name.len() > 255 {
            return Err(Error::InvalidArgument(format!(
                "table name {:?} must be 1 to 255 characters",
                schema.name
            )));
        }
        let schema = schema.clone();
        let inner = self.inner.clone();
        blocking(move || {
            let _create = inner.create.lock().map_err(|_| poisoned_lock())?;
            let existing = inner
                .known
                .read()
                .map_err(|_| poisoned_lock())?
                .get(&schema.name)
                .cloned();
            match existing {
                Some(existing) if existing == schema => Ok(()),
                Some(existing) => Err(Error::InvalidArgument(format!(
                    "table {:?} already exists with key schema {:?}/{:?}, not {:?}/{:?}; \
                     use another table name or remove {}",
                    schema.name,
                    existing.partition_key,
                    existing.sort_key,
                    schema.partition_key,
                    schema.sort_key,
                    inner.path.display()
                ))),
                None => {
                    let raw = serde_json::to_vec(&schema).map_err(|e| {
                        Error::Internal(format!("cannot encode table schema as JSON: {e}"))
                    })?;
                    let mut batch = inner.db.batch().durability(Some(PersistMode::SyncAll));
                    batch.insert(&inner.schemas, schema.name.as_bytes(), raw);
                    batch.commit().map_err(|e| inner.error(e))?;
                    inner
                        .known
                        .write()
                        .map_err(|_| poisoned_lock())?
                        .insert(schema.name.clone(), schema);
                    Ok(())
                }
            }
        })
        .await
    }

    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.batch_put_iter(table, Box::new(items.into_iter()))
            .await
    }

    async fn batch_put_iter(&self, table: &str, items: ItemIter) -> Result<()> {
        let schema = self.inner.schema(table)?;
        let inner = self.inner.clone();
        blocking(move || {
            let batch = inner.batch_buffers().encode(&schema, items)?;
            inner.write(batch)
        })
        .await
    }

    async fn batch_put_source(&self, table: &str, items: Arc<dyn ItemSource>) -> Result<()> {
        let schema = self.inner.schema(table)?;
        let inner = self.inner.clone();
        blocking(move || {
            let batch = inner.batch_buffers().encode_source(&schema, &*items)?;
            drop(items);
            inner.write(batch)
        })
        .await
    }

    async fn query(&self, query: &ItemQuery) -> Result<Vec<Item>> {
        let schema = self.inner.schema(&query.table)?;
        let query = query.clone();
        let inner = self.inner.clone();
        blocking(move || {
            let (pk, pk_ty) = &schema.partition_key;
            let mut prefix = table_prefix(&schema.name);
            keys::encode_key(&mut prefix, pk, *pk_ty, &query.partition)?;
            let bound = |value: &Option<AttributeValue>| -> Result<Option<Vec<u8>>> {
                let (Some(v), Some((sk, sk_ty))) = (value, &schema.sort_key) else {
                    return Ok(None);
                };
                let mut key = prefix.clone();
                keys::encode_key(&mut key, sk, *sk_ty, v)?;
                Ok(Some(key))
            };
            let lower = bound(&query.sort_from)?.unwrap_or_else(|| prefix.clone());
            let upper = bound(&query.sort_to)?;
            let limit = query.limit.unwrap_or(usize::MAX);
            let mut out = Vec::new();
            let mut failed = None;
            merged(
                inner.runs.iters(|k| k.range(lower.as_slice()..))?,
                &mut |k, v| {
                    if out.len() >= limit
                        || !k.starts_with(&prefix)
                        || upper.as_deref().is_some_and(|u| &*k > u)
                    {
                        return false;
                    }
                    match codec::decode(&v) {
                        Ok(item) => out.push(item),
                        Err(detail) => {
                            failed = Some(inner.corrupt(format!("stored item: {detail}")));
                            return false;
                        }
                    }
                    true
                },
            )
            .map_err(|e| inner.error(e))?;
            match failed {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
        .await
    }

    async fn count(&self, table: &str) -> Result<u64> {
        let schema = self.inner.schema(table)?;
        let inner = self.inner.clone();
        blocking(move || {
            let prefix = table_prefix(&schema.name);
            let mut n = 0u64;
            merged(inner.runs.iters(|k| k.prefix(&prefix))?, &mut |_, _| {
                n += 1;
                true
            })
            .map_err(|e| inner.error(e))?;
            Ok(n)
        })
        .await
    }
}
