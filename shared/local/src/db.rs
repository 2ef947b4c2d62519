//! One redb database file and the way every store uses it.
//!
//! Invariants:
//! - Each port call runs in exactly one transaction, opened and committed inside the call on a
//!   blocking thread: no write transaction outlives a call, so writers never starve each other
//!   for longer than one operation.
//! - Write transactions commit with the configured [`Durability`]; with the default
//!   ([`Durability::Fsync`]) a call that returned `Ok` survives a crash.
//! - redb holds an exclusive lock on the file; a second process opening it gets
//!   [`LocalError::InUse`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use serde::{Deserialize, Serialize};
use shardline_core::{Error, Result};

use crate::error::{LocalError, TxError};

/// When a committed write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every commit is fsync'd before the call returns (crash-safe).
    #[default]
    Fsync,
    /// Commits are not fsync'd; a crash may lose recent writes. For benchmarks only.
    Buffered,
}

/// A redb database shared by one store.
#[derive(Clone)]
pub(crate) struct Db {
    db: Arc<Database>,
    path: Arc<PathBuf>,
    durability: Durability,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens (creating if missing) the database at `path`.
    pub(crate) fn open(
        path: &Path,
        durability: Durability,
        cache_bytes: usize,
    ) -> Result<Self, LocalError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| LocalError::io(parent, e))?;
        }
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => LocalError::InUse {
                    path: path.to_path_buf(),
                },
                redb::DatabaseError::Storage(redb::StorageError::Io(source)) => {
                    LocalError::io(path, source)
                }
                other => LocalError::Database {
                    path: path.to_path_buf(),
                    detail: other.to_string(),
                },
            })?;
        Ok(Db {
            db: Arc::new(db),
            path: Arc::new(path.to_path_buf()),
            durability,
        })
    }

    /// Runs `f` in one write transaction and commits it if `f` succeeds.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, &Path) -> Result<T, TxError> + Send + 'static,
    {
        let this = self.clone();
        blocking(move || {
            let run = || -> Result<T, TxError> {
                let mut txn = this.db.begin_write()?;
                if this.durability == Durability::Buffered {
                    txn.set_durability(redb::Durability::None)?;
                }
                let out = f(&txn, &this.path)?;
                txn.commit()?;
                Ok(out)
            };
            run().map_err(|e| e.into_port(&this.path))
        })
        .await
    }

    /// Runs `f` in one read transaction (a consistent snapshot).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction, &Path) -> Result<T, TxError> + Send + 'static,
    {
        let this = self.clone();
        blocking(move || {
            let run = || -> Result<T, TxError> {
                let txn = this.db.begin_read()?;
                f(&txn, &this.path)
            };
            run().map_err(|e| e.into_port(&this.path))
        })
        .await
    }
}

/// Runs blocking work off the async runtime's worker threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("storage task failed: {e}")))?
}

/// Opens a table for reading; a table never written reads as absent (`None`).
pub(crate) fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, TxError> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
