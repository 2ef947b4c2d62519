//! [`ItemTable`] on redb (`<data>/local/table.redb`).
//!
//! Layout:
//! - redb table `schemas`: table name → JSON [`TableSchema`], written by `ensure_table`.
//! - one redb table `items/<name>` per item table: key = [`keys`] encoding of
//!   (partition key, sort key) → the item in [`codec`]'s compact binary form (items stored as
//!   JSON, `{"attr": {"S": "…"}}`, by earlier versions still read).
//!
//! Invariants:
//! - A table exists once `ensure_table` committed its schema; a later `ensure_table` with a
//!   different schema fails and changes nothing.
//! - Every stored item carries its key attributes with the schema's types; `batch_put`
//!   validates all items first and writes them in one transaction (all or nothing), a put
//!   replacing the item with the same key, so repeating a batch is idempotent.
//! - Query results are in sort-key order: numeric for `N`, byte order for `S`.
//! - Items are limited to [`MAX_ITEM_BYTES`] as DynamoDB limits them. Unlike DynamoDB's
//!   25-item BatchWriteItem, a whole `batch_put` is one transaction: nothing is left unprocessed.

pub mod codec;
pub mod keys;

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use shardline_core::ports::{Item, ItemQuery, ItemTable, TableSchema};
use shardline_core::{Error, Result};

use crate::db::{Db, open_read};
use crate::error::{TxError, decode_json, encode_json, port};

/// Largest stored item (DynamoDB's 400 KiB item limit, measured on the stored encoding).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

const SCHEMAS: TableDefinition<&str, &[u8]> = TableDefinition::new("schemas");

fn items_table_name(table: &str) -> String {
    format!("items/{table}")
}

/// DynamoDB-style tables in a redb file.
#[derive(Debug, Clone)]
pub struct RedbItemTable {
    db: Db,
}

impl RedbItemTable {
    pub(crate) fn new(db: Db) -> Self {
        RedbItemTable { db }
    }
}

fn read_schema(
    txn: &redb::ReadTransaction,
    path: &std::path::Path,
    table: &str,
) -> Result<TableSchema, TxError> {
    let missing = || {
        port(Error::not_found(format!(
            "table {table:?} (create it with ensure_table first)"
        )))
    };
    let schemas = open_read(txn, SCHEMAS)?.ok_or_else(missing)?;
    let raw = schemas.get(table)?.ok_or_else(missing)?;
    decode_json(path, "table schema", raw.value())
}

/// The encoded (partition, sort) key of an item.
fn item_key(schema: &TableSchema, item: &Item) -> Result<Vec<u8>, Error> {
    let mut key = Vec::new();
    let (pk, pk_ty) = &schema.partition_key;
    let value = item.get(pk).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "item for table {:?} lacks its partition key attribute {pk:?}",
            schema.name
        ))
    })?;
    keys::encode_key(&mut key, pk, *pk_ty, value)?;
    if let Some((sk, sk_ty)) = &schema.sort_key {
        let value = item.get(sk).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "item for table {:?} lacks its sort key attribute {sk:?}",
                schema.name
            ))
        })?;
        keys::encode_key(&mut key, sk, *sk_ty, value)?;
    }
    Ok(key)
}

#[async_trait]
impl ItemTable for RedbItemTable {
    async fn ensure_table(&self, schema: &TableSchema) -> Result<()> {
        if schema.name.is_empty() || schema.name.len() > 255 {
            return Err(Error::InvalidArgument(format!(
                "table name {:?} must be 1 to 255 characters",
                schema.name
            )));
        }
        let schema = schema.clone();
        self.db
            .write(move |txn, path| {
                let mut schemas = txn.open_table(SCHEMAS)?;
                let existing: Option<TableSchema> = match schemas.get(schema.name.as_str())? {
                    Some(raw) => Some(decode_json(path, "table schema", raw.value())?),
                    None => None,
                };
                match existing {
                    Some(existing) if existing == schema => Ok(()),
                    Some(existing) => Err(port(Error::InvalidArgument(format!(
                        "table {:?} already exists with key schema {:?}/{:?}, not {:?}/{:?}; \
                         use another table name or remove {}",
                        schema.name,
                        existing.partition_key,
                        existing.sort_key,
                        schema.partition_key,
                        schema.sort_key,
                        path.display()
                    )))),
                    None => {
                        schemas.insert(
                            schema.name.as_str(),
                            encode_json("table schema", &schema)?.as_slice(),
                        )?;
                        let name = items_table_name(&schema.name);
                        txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&name))?;
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
        let table = table.to_string();
        self.db
            .write(move |txn, path| {
                let schema = {
                    let schemas = txn.open_table(SCHEMAS)?;
                    let raw = schemas.get(table.as_str())?.ok_or_else(|| {
                        port(Error::not_found(format!(
                            "table {table:?} (create it with ensure_table first)"
                        )))
                    })?;
                    decode_json::<TableSchema>(path, "table schema", raw.value())?
                };
                let mut encoded = Vec::with_capacity(items.len());
                for item in &items {
                    let key = item_key(&schema, item).map_err(port)?;
                    let value = codec::encode(item);
                    if value.len() > MAX_ITEM_BYTES {
                        return Err(port(Error::InvalidArgument(format!(
                            "an item for table {table:?} encodes to {} bytes; DynamoDB items \
                             are limited to 400 KiB, so split or shorten it",
                            value.len()
                        ))));
                    }
                    encoded.push((key, value));
                }
                // In key order the inserts walk the B-tree once, left to right, instead of
                // jumping between leaves; the stable sort keeps the later of two puts with the
                // same key last, so it still wins.
                encoded.sort_by(|a, b| a.0.cmp(&b.0));
                let name = items_table_name(&table);
                let mut rows = txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&name))?;
                for (key, value) in &encoded {
                    rows.insert(key.as_slice(), value.as_slice())?;
                }
                Ok(())
            })
            .await
    }

    async fn query(&self, query: &ItemQuery) -> Result<Vec<Item>> {
        let query = query.clone();
        self.db
            .read(move |txn, path| {
                let schema = read_schema(txn, path, &query.table)?;
                let (pk, pk_ty) = &schema.partition_key;
                let mut prefix = Vec::new();
                keys::encode_key(&mut prefix, pk, *pk_ty, &query.partition).map_err(port)?;
                let bound = |value: &Option<shardline_core::ports::AttributeValue>| {
                    let (Some(v), Some((sk, sk_ty))) = (value, &schema.sort_key) else {
                        return Ok(None);
                    };
                    let mut key = prefix.clone();
                    keys::encode_key(&mut key, sk, *sk_ty, v).map_err(port)?;
                    Ok::<_, TxError>(Some(key))
                };
                let lower = bound(&query.sort_from)?.unwrap_or_else(|| prefix.clone());
                let upper = bound(&query.sort_to)?;
                let name = items_table_name(&query.table);
                let Some(rows) = open_read(txn, TableDefinition::<&[u8], &[u8]>::new(&name))?
                else {
                    return Ok(Vec::new());
                };
                let limit = query.limit.unwrap_or(usize::MAX);
                let mut out = Vec::new();
                for entry in rows.range(lower.as_slice()..)? {
                    if out.len() >= limit {
                        break;
                    }
                    let (k, v) = entry?;
                    let k = k.value();
                    if !k.starts_with(&prefix) || upper.as_deref().is_some_and(|u| k > u) {
                        break;
                    }
                    out.push(codec::decode(v.value()).map_err(|detail| {
                        port(Error::Corrupt {
                            file: path.to_path_buf(),
                            offset: 0,
                            detail: format!("stored item: {detail}"),
                        })
                    })?);
                }
                Ok(out)
            })
            .await
    }

    async fn count(&self, table: &str) -> Result<u64> {
        let table = table.to_string();
        self.db
            .read(move |txn, path| {
                read_schema(txn, path, &table)?;
                let name = items_table_name(&table);
                match open_read(txn, TableDefinition::<&[u8], &[u8]>::new(&name))? {
                    Some(rows) => Ok(rows.len()?),
                    None => Ok(0),
                }
            })
            .await
    }
}
