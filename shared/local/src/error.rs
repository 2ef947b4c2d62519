//! Errors of opening the embedded backends, and the mapping of storage errors onto the
//! ports' [`shardline_core::Error`].
//!
//! Port methods return the core error so callers see one type whatever the backend; only
//! [`crate::LocalBackends::open`] and the notifier constructors return [`LocalError`].

use std::path::{Path, PathBuf};

use shardline_core::Error;

/// Why the embedded backends could not be opened or configured.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Another process holds the database file's lock.
    #[error(
        "{} is in use by another shardline process; stop it or use another --data-dir",
        path.display()
    )]
    InUse {
        /// The locked database file.
        path: PathBuf,
    },
    /// A file or directory could not be created, opened or read.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened (damaged, or written by an incompatible version).
    #[error("cannot open database {}: {detail}; move it aside to start empty", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        detail: String,
    },
    /// A configuration value is wrong; the message names it and what is accepted.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A port-level error while opening (e.g. rebuilding state from a file).
    #[error(transparent)]
    Port(#[from] Error),
}

impl LocalError {
    /// Shorthand for [`LocalError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LocalError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<LocalError> for Error {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::Port(e) => e,
            LocalError::Io { path, source } => Error::Io { path, source },
            LocalError::Config(msg) => Error::InvalidArgument(msg),
            other => Error::Unavailable(other.to_string()),
        }
    }
}

/// An error inside a database transaction: either from redb or a port-level decision
/// (a conflict, a validation failure) that aborts the transaction.
#[derive(Debug)]
pub(crate) enum TxError {
    /// redb failed.
    Redb(redb::Error),
    /// The operation decided to fail.
    Port(Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for TxError {
            fn from(e: $t) -> Self {
                TxError::Redb(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl TxError {
    /// Converts into a port error naming the database file.
    pub(crate) fn into_port(self, path: &Path) -> Error {
        match self {
            TxError::Port(e) => e,
            // The database reopens itself after these (see `crate::db`): retrying may succeed.
            TxError::Redb(redb::Error::Io(source)) => Error::Unavailable(format!(
                "I/O error on {}: {source}; free disk space or check the disk: the store \
                 reopens and retries by itself",
                path.display()
            )),
            TxError::Redb(redb::Error::PreviousIo) => Error::Unavailable(format!(
                "{} had an I/O error and is being reopened; retry",
                path.display()
            )),
            TxError::Redb(redb::Error::Corrupted(detail)) => Error::Corrupt {
                file: path.to_path_buf(),
                offset: 0,
                detail,
            },
            TxError::Redb(e) => Error::Internal(format!("database {}: {e}", path.display())),
        }
    }
}

/// Builds a [`TxError`] from a port error (`Err(port(Error::Conflict(..)))?`).
pub(crate) fn port(e: Error) -> TxError {
    TxError::Port(e)
}

/// Decodes a JSON value stored in a database, reporting damage as [`Error::Corrupt`].
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    bytes: &[u8],
) -> Result<T, TxError> {
    serde_json::from_slice(bytes).map_err(|e| {
        port(Error::Corrupt {
            file: path.to_path_buf(),
            offset: 0,
            detail: format!("stored {what} is not valid JSON: {e}"),
        })
    })
}

/// Encodes a value as JSON for storage.
pub(crate) fn encode_json<T: serde::Serialize>(what: &str, value: &T) -> Result<Vec<u8>, TxError> {
    serde_json::to_vec(value).map_err(|e| {
        port(Error::Internal(format!(
            "cannot encode {what} as JSON: {e}"
        )))
    })
}
