//! The log's error type and its mapping onto the port error [`shardline_core::Error`].
//!
//! Every variant names the input it is about (stream, shard, file and byte offset) so the
//! message alone tells an operator what failed and where.

use std::path::PathBuf;

/// An error from the embedded log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The request breaks a rule; the message names the rule and the offending input.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No stream of this name exists.
    #[error("stream \"{0}\" not found; create it first (list streams to see what exists)")]
    StreamNotFound(String),
    /// The stream exists but has no shard with this id.
    #[error("shard {shard} not found in stream \"{stream}\"")]
    ShardNotFound {
        /// The stream.
        stream: String,
        /// The shard id as given.
        shard: String,
    },
    /// A stream of this name already exists.
    #[error("stream \"{0}\" already exists")]
    StreamExists(String),
    /// A shard iterator that this log did not issue, or one for a stream that has since been
    /// deleted or re-created.
    #[error("invalid shard iterator: {0}; get a new one with get_shard_iterator")]
    BadIterator(String),
    /// A shard iterator older than five minutes (as on Kinesis).
    #[error("{0}; get a new one with get_shard_iterator")]
    ExpiredIterator(String),
    /// The opt-in limits mode refused a read: the shard's read rate is exceeded.
    #[error("{0}; slow down and retry")]
    Throttled(String),
    /// The request would exceed a limit of the log (e.g. open shards per stream).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// Stored data failed an integrity check.
    #[error("corrupt data in {file} at byte {offset}: {detail}; run `verify` on the log directory")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first bad byte or frame.
        offset: u64,
        /// Which check failed.
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
    /// The log was closed, or another process holds its directory.
    #[error("log unavailable: {0}")]
    Unavailable(String),
}

impl LogError {
    /// Shorthand for [`LogError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`LogError::Corrupt`].
    pub fn corrupt(file: impl Into<PathBuf>, offset: u64, detail: impl Into<String>) -> Self {
        LogError::Corrupt {
            file: file.into(),
            offset,
            detail: detail.into(),
        }
    }
}

impl From<LogError> for shardline_core::Error {
    fn from(e: LogError) -> Self {
        use shardline_core::Error;
        match e {
            LogError::InvalidArgument(m) => Error::InvalidArgument(m),
            LogError::BadIterator(_) | LogError::ExpiredIterator(_) => {
                Error::InvalidArgument(e.to_string())
            }
            LogError::Throttled(_) => Error::Throttled(e.to_string()),
            LogError::LimitExceeded(_) => Error::InvalidArgument(e.to_string()),
            LogError::StreamNotFound(name) => Error::not_found(format!("stream \"{name}\"")),
            LogError::ShardNotFound { stream, shard } => {
                Error::not_found(format!("shard {shard} of stream \"{stream}\""))
            }
            LogError::StreamExists(name) => Error::AlreadyExists {
                what: format!("stream \"{name}\""),
            },
            LogError::Corrupt {
                file,
                offset,
                detail,
            } => Error::Corrupt {
                file,
                offset,
                detail,
            },
            LogError::Io { path, source } => Error::Io { path, source },
            LogError::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_onto_port_errors() {
        let e: shardline_core::Error = LogError::StreamNotFound("m".into()).into();
        assert!(matches!(e, shardline_core::Error::NotFound { .. }));
        let e: shardline_core::Error = LogError::corrupt("/x/1.seg", 42, "bad crc").into();
        match e {
            shardline_core::Error::Corrupt { file, offset, .. } => {
                assert_eq!(file, PathBuf::from("/x/1.seg"));
                assert_eq!(offset, 42);
            }
            other => panic!("unexpected {other:?}"),
        }
        let e: shardline_core::Error = LogError::InvalidArgument("too many".into()).into();
        assert!(matches!(e, shardline_core::Error::InvalidArgument(_)));
    }
}
