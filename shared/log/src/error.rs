//! The log's error type and its mapping onto the port error [`shardline_core::Error`].
//!
//! Every variant names the input it is about (stream, shard, file and byte offset) so the
//! message alone tells an operator what failed and where.

use std::path::{Path, PathBuf};

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
    /// The disk refused an append (full, over quota or a file size limit, out of descriptors,
    /// or failing): nothing of the request was stored or acknowledged. The writer cuts what it
    /// wrote back and keeps taking requests, so the same put succeeds once the cause is gone.
    #[error("append to {shard} of stream \"{stream}\" not stored: {detail}")]
    AppendRefused {
        /// The stream.
        stream: String,
        /// The shard id.
        shard: String,
        /// What failed, on which file, and what to do (see [`LogError::refusal_detail`]).
        detail: String,
    },
}

impl LogError {
    /// Shorthand for [`LogError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }

    /// What an [`LogError::AppendRefused`] says about `e`, met writing `path` of the log in
    /// `log_dir`: the cause, the file, and the remedy for the usual causes.
    pub fn refusal_detail(e: &std::io::Error, path: &Path, log_dir: &Path) -> String {
        use std::io::ErrorKind;
        let (path, dir) = (path.display(), log_dir.display());
        match (e.kind(), e.raw_os_error()) {
            (ErrorKind::StorageFull | ErrorKind::QuotaExceeded, _) => format!(
                "the disk is full ({e}) writing {path}; free disk space on the file system of \
                 the log directory {dir}: appends resume by themselves once there is room"
            ),
            (ErrorKind::FileTooLarge, _) => format!(
                "the file size limit was reached ({e}) writing {path}; raise it (ulimit -f) or \
                 lower the segment size, and free disk space under {dir} if it is short: \
                 appends resume by themselves once a write fits"
            ),
            // EMFILE, ENFILE.
            (_, Some(24 | 23)) => format!(
                "too many open files ({e}) writing {path}; raise the descriptor limit \
                 (ulimit -n) or lower open_sealed_segments: appends resume by themselves"
            ),
            _ => format!(
                "{e} writing {path}; check the disk holding the log directory {dir} (free disk \
                 space, errors in the kernel log): appends resume by themselves once writes \
                 succeed"
            ),
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
            LogError::AppendRefused { .. } => Error::Unavailable(e.to_string()),
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

    #[test]
    fn refusals_name_the_file_the_log_directory_and_the_remedy() {
        let (file, dir) = (
            Path::new("/d/log/s/shardId-000000000000/1.seg"),
            Path::new("/d/log"),
        );
        let detail =
            |code| LogError::refusal_detail(&std::io::Error::from_raw_os_error(code), file, dir);
        let full = detail(28);
        assert!(
            full.contains("free disk space")
                && full.contains("log directory /d/log")
                && full.contains("1.seg"),
            "{full}"
        );
        assert!(detail(27).contains("ulimit -f"), "EFBIG");
        assert!(detail(24).contains("ulimit -n"), "EMFILE");
        assert!(detail(5).contains("check the disk"), "EIO");
        let e: shardline_core::Error = LogError::AppendRefused {
            stream: "m".into(),
            shard: "shardId-000000000000".into(),
            detail: full,
        }
        .into();
        assert_eq!(
            e.retry_class(),
            shardline_core::error::RetryClass::Retryable,
            "{e}"
        );
    }
}
