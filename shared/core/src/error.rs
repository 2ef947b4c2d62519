//! The error every port returns.
//!
//! Each variant says what went wrong in words a user can act on, and [`Error::retry_class`]
//! tells the consumer runtime whether trying again can help.

use std::path::PathBuf;

/// Result alias for port operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether an operation that failed may succeed when tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Transient: throttling, a busy backend, a network blip. Retry with backoff.
    Retryable,
    /// The request itself is wrong, or the data is damaged: retrying gives the same answer.
    Permanent,
}

/// An error from a port (stream, stores, tables, publishers, notifiers).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A named thing (stream, shard, bucket, table, key) does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `stream "metrics"`.
        what: String,
    },
    /// A named thing already exists.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What was being created.
        what: String,
    },
    /// The request breaks a rule (a limit, a format). The message names the rule.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backend asks the caller to slow down.
    #[error("throughput exceeded: {0}")]
    Throttled(String),
    /// A conditional write lost a race (e.g. a lease counter moved on).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend could not be reached or is not ready; worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Stored data failed an integrity check.
    #[error("corrupt data in {file} at byte {offset}: {detail}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first bad byte or frame.
        offset: u64,
        /// What check failed.
        detail: String,
    },
    /// An I/O error on a named path.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else; the message says what.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Whether retrying the same request may succeed.
    pub fn retry_class(&self) -> RetryClass {
        match self {
            Error::Throttled(_) | Error::Unavailable(_) | Error::Conflict(_) => {
                RetryClass::Retryable
            }
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::Interrupted
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted => RetryClass::Retryable,
                _ => RetryClass::Permanent,
            },
            _ => RetryClass::Permanent,
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }
}
