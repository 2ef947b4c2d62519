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
//! - After an I/O error (a full disk, a failed fsync) redb refuses every later call until the
//!   file is reopened. The handle is then dropped and the next call reopens the file (redb
//!   repairs it to its last commit), so the store takes writes again once the disk does,
//!   without a restart. Such errors are retryable ([`Error::Unavailable`]) and name the file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use serde::{Deserialize, Serialize};
use shardline_core::{Error, Result};
use tracing::{info, warn};

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
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    durability: Durability,
    cache_bytes: usize,
    /// The open database; `None` after an I/O error until the next call reopens it.
    db: RwLock<Option<Arc<Database>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Opens (creating if missing) the database file at `path`.
fn open_file(path: &Path, cache_bytes: usize) -> Result<Database, LocalError> {
    redb::Builder::new()
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
        })
}

/// Whether redb refuses every later call after this error until the file is reopened.
fn poisons(e: &TxError) -> bool {
    matches!(
        e,
        TxError::Redb(redb::Error::Io(_) | redb::Error::PreviousIo)
    )
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
        let db = open_file(path, cache_bytes)?;
        Ok(Db::with(path, durability, cache_bytes, db))
    }

    fn with(path: &Path, durability: Durability, cache_bytes: usize, db: Database) -> Db {
        Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                durability,
                cache_bytes,
                db: RwLock::new(Some(Arc::new(db))),
            }),
        }
    }

    /// Opens the database at `path` over `backend` (a test's I/O shim over the file); a
    /// reopen after an I/O error opens the file itself.
    #[cfg(test)]
    pub(crate) fn open_with_backend(
        path: &Path,
        backend: impl redb::StorageBackend,
        durability: Durability,
    ) -> Result<Self, LocalError> {
        let db = redb::Builder::new()
            .create_with_backend(backend)
            .map_err(|e| LocalError::Database {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        Ok(Db::with(path, durability, 1 << 20, db))
    }

    /// The open database, reopening the file if an I/O error closed it.
    fn database(&self) -> Result<Arc<Database>> {
        let slot = &self.inner.db;
        if let Some(db) = slot.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(db.clone());
        }
        let mut w = slot.write().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = w.as_ref() {
            return Ok(db.clone());
        }
        let path = &self.inner.path;
        let db = open_file(path, self.inner.cache_bytes).map_err(|e| {
            Error::Unavailable(format!(
                "{} is being reopened after an I/O error and could not be yet ({e}); retry",
                path.display()
            ))
        })?;
        info!(file = %path.display(), "database reopened after an I/O error");
        let db = Arc::new(db);
        *w = Some(db.clone());
        Ok(db)
    }

    /// After `e` from `db`: if redb now refuses every call, drop our handle so the next call
    /// reopens the file (once calls still holding it have ended and redb released its lock).
    fn after_error(&self, db: &Arc<Database>, e: &TxError) {
        if !poisons(e) {
            return;
        }
        let mut w = self.inner.db.write().unwrap_or_else(|p| p.into_inner());
        if w.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, db)) {
            warn!(file = %self.inner.path.display(), "database closed after an I/O error; the next call reopens it");
            *w = None;
        }
    }

    /// Runs `f` in one write transaction and commits it if `f` succeeds.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, &Path) -> Result<T, TxError> + Send + 'static,
    {
        let this = self.clone();
        blocking(move || {
            let db = this.database()?;
            let path = &this.inner.path;
            let run = || -> Result<T, TxError> {
                let mut txn = db.begin_write()?;
                if this.inner.durability == Durability::Buffered {
                    txn.set_durability(redb::Durability::None)?;
                }
                let out = f(&txn, path)?;
                txn.commit()?;
                Ok(out)
            };
            run().map_err(|e| {
                this.after_error(&db, &e);
                e.into_port(path)
            })
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
            let db = this.database()?;
            let path = &this.inner.path;
            let run = || -> Result<T, TxError> {
                let txn = db.begin_read()?;
                f(&txn, path)
            };
            run().map_err(|e| {
                this.after_error(&db, &e);
                e.into_port(path)
            })
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
