//! Value types of the [`super::ObjectStore`] port's conditional writes, ranged reads and
//! one-level listings, and the defaults every backend gets for them.
//!
//! - A [`PutCondition`] makes a put conditional, as S3's `If-None-Match: *` (create only) and
//!   `If-Match: <ETag>` (replace only the version read): a put whose condition does not hold
//!   changes nothing and fails with [`Error::Conflict`].
//! - A version tag is opaque text that changes whenever the object's bytes change (S3's ETag;
//!   [`content_tag`] for stores without one of their own).
//! - A [`ByteRange`] is an HTTP byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
//! - An [`ObjectLevel`] is one level of a listing by `/` (S3's ListObjectsV2 with a
//!   delimiter): the objects directly under a prefix and the "directories" below it.

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::ObjectMeta;
use crate::error::{Error, Result};

/// When a conditional put may write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutCondition {
    /// Only if no object exists under the key (S3: `If-None-Match: *`).
    IfAbsent,
    /// Only if the object's current version tag is this one (S3: `If-Match`); a missing
    /// object does not match.
    IfMatch(String),
}

impl std::fmt::Display for PutCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PutCondition::IfAbsent => f.write_str("if absent"),
            PutCondition::IfMatch(tag) => write!(f, "if its version is {tag}"),
        }
    }
}

/// A byte range of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ByteRange {
    /// Bytes `start..end` (end exclusive; cut at the object's end).
    Bounded {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// From `start` to the end.
    From(u64),
    /// The last `n` bytes (all of them when the object is smaller).
    Last(u64),
}

impl ByteRange {
    /// The byte offsets this range selects in an object of `size` bytes (`start..end`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the range starts at or past the end of a non-empty
    /// object, or is empty (as S3's `InvalidRange`).
    pub fn resolve(&self, size: u64) -> Result<std::ops::Range<u64>> {
        let range = match *self {
            ByteRange::Bounded { start, end } => start..end.min(size),
            ByteRange::From(start) => start..size,
            ByteRange::Last(n) => size.saturating_sub(n)..size,
        };
        let empty_suffix = matches!(self, ByteRange::Last(_)) && size == 0;
        if (range.start >= range.end || range.start >= size) && !empty_suffix {
            return Err(Error::InvalidArgument(format!(
                "byte range {self} is not satisfiable for an object of {size} bytes"
            )));
        }
        Ok(range)
    }

    /// The HTTP `Range` header value (`bytes=0-99`, `bytes=100-`, `bytes=-8`).
    pub fn header(&self) -> String {
        match *self {
            ByteRange::Bounded { start, end } => {
                format!("bytes={start}-{}", end.saturating_sub(1))
            }
            ByteRange::From(start) => format!("bytes={start}-"),
            ByteRange::Last(n) => format!("bytes=-{n}"),
        }
    }
}

impl std::fmt::Display for ByteRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.header())
    }
}

/// Part of an object, with where it lies in the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangedObject {
    /// The bytes read.
    pub bytes: Bytes,
    /// Offset of the first byte read.
    pub start: u64,
    /// Size of the whole object.
    pub size: u64,
    /// Last modification of the object, epoch milliseconds (0 when unknown).
    pub last_modified_ms: i64,
}

/// One level of a listing by `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectLevel {
    /// Objects whose key continues the prefix without another `/`, sorted by key.
    pub objects: Vec<ObjectMeta>,
    /// The distinct `prefix + segment + "/"` of keys continuing deeper, sorted.
    pub prefixes: Vec<String>,
}

impl ObjectLevel {
    /// Splits a recursive listing under `prefix` (sorted by key) into one level.
    pub fn from_listing(prefix: &str, listed: Vec<ObjectMeta>) -> Self {
        let mut level = ObjectLevel::default();
        for meta in listed {
            let Some(rest) = meta.key.strip_prefix(prefix) else {
                continue;
            };
            match rest.find('/') {
                Some(i) => {
                    let dir = format!("{prefix}{}", &rest[..=i]);
                    if level.prefixes.last() != Some(&dir) {
                        level.prefixes.push(dir);
                    }
                }
                None => level.objects.push(meta),
            }
        }
        level.prefixes.dedup();
        level
    }
}

/// The version tag of `body` for stores without one of their own: its MD5 in hex, quoted,
/// which is S3's ETag of an object put in one request.
pub fn content_tag(body: &[u8]) -> String {
    format!("\"{:x}\"", Md5::digest(body))
}

/// Whether `condition` holds for an object whose current version tag is `current` (`None`:
/// no object).
pub fn condition_holds(condition: &PutCondition, current: Option<&str>) -> bool {
    match (condition, current) {
        (PutCondition::IfAbsent, current) => current.is_none(),
        (PutCondition::IfMatch(want), Some(have)) => same_tag(want, have),
        (PutCondition::IfMatch(_), None) => false,
    }
}

/// Version tags compared as S3 compares ETags: quotes do not matter.
pub fn same_tag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// The error of a conditional put whose condition did not hold.
pub fn condition_failed(bucket: &str, key: &str, condition: &PutCondition) -> Error {
    Error::Conflict(format!(
        "object {bucket}/{key} was not written: the put was conditional ({condition}) and \
         another writer changed the object; re-read it"
    ))
}

/// A conditional put by reading, comparing and writing: atomic only while nothing else writes
/// the key (the caller holds a lock, or is alone). Returns the new version tag.
///
/// # Errors
/// [`Error::Conflict`] when `condition` does not hold; the store's own errors.
pub async fn compare_and_put<S: super::ObjectStore + ?Sized>(
    store: &S,
    bucket: &str,
    key: &str,
    body: Bytes,
    content_type: &str,
    condition: &PutCondition,
) -> Result<String> {
    let current = store.get_versioned(bucket, key).await?.map(|(_, tag)| tag);
    if !condition_holds(condition, current.as_deref()) {
        return Err(condition_failed(bucket, key, condition));
    }
    let tag = content_tag(&body);
    store.put(bucket, key, body, content_type).await?;
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 1,
            last_modified_ms: 0,
        }
    }

    #[test]
    fn ranges_resolve_like_http_ranges() {
        assert_eq!(
            ByteRange::Bounded { start: 2, end: 5 }.resolve(10).ok(),
            Some(2..5)
        );
        assert_eq!(
            ByteRange::Bounded { start: 8, end: 50 }.resolve(10).ok(),
            Some(8..10)
        );
        assert_eq!(ByteRange::From(4).resolve(10).ok(), Some(4..10));
        assert_eq!(ByteRange::Last(3).resolve(10).ok(), Some(7..10));
        assert_eq!(ByteRange::Last(30).resolve(10).ok(), Some(0..10));
        assert!(ByteRange::From(10).resolve(10).is_err());
        assert!(ByteRange::Bounded { start: 3, end: 3 }.resolve(10).is_err());
        assert_eq!(
            ByteRange::Bounded { start: 0, end: 100 }.header(),
            "bytes=0-99"
        );
        assert_eq!(ByteRange::Last(8).header(), "bytes=-8");
    }

    #[test]
    fn a_level_holds_direct_objects_and_one_prefix_per_directory() {
        let listed = vec![
            meta("m/a.parquet"),
            meta("m/year=2025/month=01/x"),
            meta("m/year=2026/month=01/x"),
            meta("m/year=2026/month=02/y"),
        ];
        let level = ObjectLevel::from_listing("m/", listed);
        assert_eq!(
            level
                .objects
                .iter()
                .map(|m| m.key.as_str())
                .collect::<Vec<_>>(),
            ["m/a.parquet"]
        );
        assert_eq!(level.prefixes, ["m/year=2025/", "m/year=2026/"]);
    }

    #[test]
    fn conditions_compare_tags_without_quotes() {
        assert!(condition_holds(&PutCondition::IfAbsent, None));
        assert!(!condition_holds(&PutCondition::IfAbsent, Some("\"a\"")));
        assert!(condition_holds(
            &PutCondition::IfMatch("a".into()),
            Some("\"a\"")
        ));
        assert!(!condition_holds(&PutCondition::IfMatch("a".into()), None));
        assert_ne!(content_tag(b"x"), content_tag(b"y"));
    }
}
