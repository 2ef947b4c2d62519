//! One-time import of item tables written by earlier versions into a redb file
//! (`<data>/local/table.redb`).
//!
//! On open, if that file exists, every schema and item in it is copied into the LSM table
//! (stored item bytes unchanged: [`super::codec`] reads both forms), the copy is made durable,
//! and only then is the file renamed to `table.redb.imported`. A crash during the import
//! leaves the file in place, so the next open imports again; puts replace items with the
//! same key, so importing twice changes nothing.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use shardline_core::Error;
use shardline_core::ports::TableSchema;

use super::LsmItemTable;
use crate::error::LocalError;

const SCHEMAS: TableDefinition<&str, &[u8]> = TableDefinition::new("schemas");

/// Items copied per write batch.
const CHUNK: usize = 10_000;

/// The name the imported file is renamed to.
fn imported_path(redb_path: &Path) -> PathBuf {
    let mut name = redb_path.as_os_str().to_owned();
    name.push(".imported");
    PathBuf::from(name)
}

fn db_error(path: &Path, e: impl std::fmt::Display) -> LocalError {
    LocalError::Database {
        path: path.to_path_buf(),
        detail: format!("importing item tables written by an earlier version: {e}"),
    }
}

/// Imports `redb_path` into `table` if it exists; returns how many items were copied.
///
/// # Errors
/// [`LocalError::Database`] naming the file when it cannot be read (move it aside to start
/// without its items); the LSM table's errors.
pub fn import_redb(redb_path: &Path, table: &LsmItemTable) -> Result<u64, LocalError> {
    if !redb_path.exists() {
        return Ok(0);
    }
    let db = redb::Database::open(redb_path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => LocalError::InUse {
            path: redb_path.to_path_buf(),
        },
        other => db_error(redb_path, other),
    })?;
    let txn = db.begin_read().map_err(|e| db_error(redb_path, e))?;
    let mut schemas = Vec::new();
    match txn.open_table(SCHEMAS) {
        Ok(t) => {
            for entry in t.iter().map_err(|e| db_error(redb_path, e))? {
                let (_, raw) = entry.map_err(|e| db_error(redb_path, e))?;
                let schema: TableSchema = serde_json::from_slice(raw.value())
                    .map_err(|e| db_error(redb_path, format!("a table schema: {e}")))?;
                schemas.push(schema);
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(db_error(redb_path, e)),
    }
    let inner = &table.inner;
    // Into the open run, as any write (nothing else writes while the table is being opened).
    let items = inner
        .runs
        .read()
        .map_err(LocalError::Port)?
        .open()
        .keyspace
        .clone();
    let mut copied = 0u64;
    for schema in schemas {
        let raw = serde_json::to_vec(&schema)
            .map_err(|e| LocalError::Port(Error::Internal(format!("encoding a schema: {e}"))))?;
        let name = format!("items/{}", schema.name);
        let prefix = super::encode::table_prefix(&schema.name);
        let mut batch = inner.db.batch();
        batch.insert(&inner.schemas, schema.name.as_bytes(), raw);
        let rows = match txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&name)) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(db_error(redb_path, e)),
        };
        if let Some(rows) = rows {
            tracing::info!(table = %rows.name(), "importing items from {}", redb_path.display());
            for entry in rows.iter().map_err(|e| db_error(redb_path, e))? {
                let (k, v) = entry.map_err(|e| db_error(redb_path, e))?;
                let mut key = prefix.clone();
                key.extend_from_slice(k.value());
                batch.insert(&items, key, v.value().to_vec());
                copied += 1;
                if batch.len() >= CHUNK {
                    let full = std::mem::replace(&mut batch, inner.db.batch());
                    full.commit()
                        .map_err(|e| LocalError::Port(inner.error(e)))?;
                }
            }
        }
        batch
            .commit()
            .map_err(|e| LocalError::Port(inner.error(e)))?;
        inner
            .known
            .write()
            .map_err(|_| LocalError::Port(super::poisoned_lock()))?
            .insert(schema.name.clone(), schema);
    }
    inner
        .db
        .persist(fjall::PersistMode::SyncAll)
        .map_err(|e| LocalError::Port(inner.error(e)))?;
    drop(txn);
    drop(db);
    let to = imported_path(redb_path);
    std::fs::rename(redb_path, &to).map_err(|e| LocalError::io(redb_path, e))?;
    tracing::info!(
        items = copied,
        "imported {} (kept as {})",
        redb_path.display(),
        to.display()
    );
    Ok(copied)
}
