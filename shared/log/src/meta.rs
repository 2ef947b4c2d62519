//! Stream metadata (`<dir>/<stream>/stream.json`) and stream-name rules.
//!
//! The file is JSON, written atomically: a temporary file in the same directory
//! (`stream.json.tmp`) is written, `fdatasync`ed and renamed over the old one, then the
//! directory is synced. A temporary file left by a crash is removed when the log opens. A stream exists
//! exactly when its `stream.json` does.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use shardline_core::stream::{HashKeyRange, ShardId};

use crate::error::LogError;
use crate::fault::{self, Point};

/// The metadata file's name inside a stream directory.
pub const META_FILE: &str = "stream.json";
/// The temporary file a metadata write renames over [`META_FILE`].
pub const META_TEMP: &str = "stream.json.tmp";

/// A stream's persisted description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamMeta {
    /// The stream's name.
    pub name: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// Retention period, hours.
    pub retention_hours: u32,
    /// The shards, open and closed, by id (ids are never reused).
    pub shards: Vec<ShardMeta>,
    /// The stream's tags (AddTagsToStream), key to value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// One past the highest id of a shard retention has dropped (ids are never reused).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retired_ids: u32,
    /// Registered enhanced fan-out consumers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<crate::consumers::ConsumerMeta>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl StreamMeta {
    /// The shard with this id.
    pub fn shard(&self, id: ShardId) -> Option<&ShardMeta> {
        self.shards.iter().find(|s| s.shard_id == id)
    }

    /// The id the next new shard gets: one past the highest id ever used.
    pub fn next_shard_id(&self) -> ShardId {
        ShardId(
            self.shards
                .iter()
                .map(|s| s.shard_id.0 + 1)
                .max()
                .unwrap_or(0)
                .max(self.retired_ids),
        )
    }
}

/// A shard's persisted description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardMeta {
    /// Its id.
    pub shard_id: ShardId,
    /// Hash keys it owns, inclusive.
    pub hash_key_range: HashKeyRange,
    /// Creation time, epoch seconds (part of every sequence number).
    pub created_secs: u64,
    /// The shard this one was split from, or the first of the two it was merged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<ShardId>,
    /// The second shard of a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_parent_shard_id: Option<ShardId>,
    /// Set once the shard is closed by a split or merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<ShardClosed>,
}

impl ShardMeta {
    /// An open shard with no parents.
    pub fn new(shard_id: ShardId, hash_key_range: HashKeyRange, created_secs: u64) -> Self {
        ShardMeta {
            shard_id,
            hash_key_range,
            created_secs,
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            closed: None,
        }
    }

    /// Whether it still takes records.
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }
}

/// How a shard was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardClosed {
    /// One past the offset of its last record: it holds offsets below this, and no more.
    pub end_offset: u64,
    /// When it closed, epoch milliseconds.
    pub closed_ms: i64,
}

/// Checks a stream name against Kinesis's rule.
///
/// # Errors
/// [`LogError::InvalidArgument`] naming the rule.
pub fn validate_name(name: &str) -> Result<(), LogError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if name.is_empty() || name.len() > 128 || !ok_chars {
        return Err(LogError::InvalidArgument(format!(
            "stream name `{name}` must be 1 to 128 characters of a-z, A-Z, 0-9, `_`, `.` and `-`"
        )));
    }
    if name == "." || name == ".." {
        return Err(LogError::InvalidArgument(format!(
            "stream name `{name}` is reserved; choose another name"
        )));
    }
    Ok(())
}

/// Writes `meta` to `<stream_dir>/stream.json` atomically (through [`META_TEMP`], removed on
/// failure; one left by a crash is removed when the log opens).
///
/// # Errors
/// I/O errors naming the file.
pub fn store(stream_dir: &Path, meta: &StreamMeta) -> Result<(), LogError> {
    let path = stream_dir.join(META_FILE);
    let tmp = stream_dir.join(META_TEMP);
    let json = serde_json::to_vec_pretty(meta)
        .map_err(|e| LogError::InvalidArgument(format!("stream metadata: {e}")))?;
    let write = || -> Result<(), LogError> {
        let mut f = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        fault::hit(Point::MetaWrite, &tmp).map_err(|e| LogError::io(&tmp, e))?;
        f.write_all(&json).map_err(|e| LogError::io(&tmp, e))?;
        f.sync_data().map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r?;
    sync_dir(stream_dir)
}

/// Removes a [`META_TEMP`] file an interrupted [`store`] left in `stream_dir`.
///
/// # Errors
/// I/O errors naming the file.
pub fn remove_temp(stream_dir: &Path) -> Result<(), LogError> {
    let tmp = stream_dir.join(META_TEMP);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {
            tracing::warn!(file = %tmp.display(), "removed stream metadata an interrupted write left");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(&tmp, e)),
    }
}

/// Reads `<stream_dir>/stream.json`; `Ok(None)` when there is none.
///
/// # Errors
/// I/O errors, or [`LogError::Corrupt`] when the file is not valid metadata.
pub fn load(stream_dir: &Path) -> Result<Option<StreamMeta>, LogError> {
    let path = stream_dir.join(META_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(&path, e)),
    };
    let meta: StreamMeta = serde_json::from_slice(&bytes).map_err(|e| {
        LogError::corrupt(
            &path,
            e.column() as u64,
            format!("not valid stream metadata: {e}"),
        )
    })?;
    Ok(Some(meta))
}

/// `fsync`s a directory so renames and new files in it are durable.
///
/// # Errors
/// I/O errors naming the directory.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    fault::hit(Point::DirSync, dir).map_err(|e| LogError::io(dir, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kinesis_rules() {
        assert!(validate_name("metrics").is_ok());
        assert!(validate_name("a.b-c_D9").is_ok());
        assert!(validate_name(&"x".repeat(128)).is_ok());
        let err = validate_name(&"x".repeat(129))
            .expect_err("too long")
            .to_string();
        assert!(err.contains("1 to 128"), "{err}");
        assert!(validate_name("").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("..").is_err());
    }

    #[test]
    fn metadata_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = StreamMeta {
            name: "m".into(),
            created_ms: 5,
            retention_hours: 24,
            shards: vec![ShardMeta::new(
                ShardId(0),
                HashKeyRange::split_even(1)[0],
                1,
            )],
            tags: BTreeMap::new(),
            retired_ids: 0,
            consumers: Vec::new(),
        };
        store(dir.path(), &meta).expect("store");
        assert_eq!(load(dir.path()).expect("load"), Some(meta));
        let text = std::fs::read_to_string(dir.path().join(META_FILE)).expect("read");
        assert!(
            !text.contains("closed") && !text.contains("tags"),
            "optional fields stay out of files that do not need them: {text}"
        );
        std::fs::write(dir.path().join(META_FILE), b"{").expect("write");
        assert!(matches!(load(dir.path()), Err(LogError::Corrupt { .. })));
    }
}
