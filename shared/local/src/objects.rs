//! [`ObjectStore`] as a directory tree: object `key` of `bucket` is the file
//! `<root>/<bucket>/<key>`, `/` in keys being directory separators.
//!
//! Invariants:
//! - A put writes `<root>/.shardline-tmp/.shardline-tmp-<uuid>`, fsyncs it, renames it over the
//!   object and fsyncs the object's directory (and the parent of any directory it had to
//!   create). Readers therefore see the old object or the new one, never part of one, and an
//!   acknowledged put survives a crash.
//! - Temporary files of puts a crash interrupted are removed by [`DirObjectStore::open`]: all of
//!   [`TEMP_DIR`] (one directory, whatever the number of objects). Versions before it kept them
//!   beside the objects; the first open that finds no [`TEMP_DIR`] sweeps the buckets once for
//!   those, before creating it. Open is therefore for the one owner of the data directory,
//!   before its first put.
//! - Temporary files (names starting with [`TEMP_PREFIX`]) are never listed nor readable as
//!   objects; keys may not contain a segment starting with that prefix. [`TEMP_DIR`] cannot be
//!   a bucket (bucket names start with a letter or digit).
//! - Keys are 1..=1024 bytes of `/`-separated segments, none empty, `.` or `..`, no leading `/`,
//!   no NUL or backslash. Bucket names follow S3's rules (3..=63 of `a-z 0-9 . -`).
//! - Listing is sorted by key (byte order), like S3; `last_modified_ms` is the file's mtime.
//! - Content types are not stored (the files are the objects, nothing more).
//! - Writing to or reading from a bucket that `ensure_bucket` did not create is
//!   [`Error::NotFound`], as S3's NoSuchBucket.
//! - Version tags are the MD5 of the bytes, quoted (S3's ETag of a single-part put). A
//!   conditional put (`put_if`) reads the current tag, compares and writes under the store's
//!   lock, so conditional puts of one process are atomic with each other (the data directory
//!   has one owner process).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use shardline_core::ports::objects::compare_and_put;
use shardline_core::ports::{ByteRange, ObjectMeta, ObjectStore, PutCondition, RangedObject};
use shardline_core::{Error, Result};
use std::sync::Arc;
use tracing::{debug, warn};

use crate::db::blocking;

/// Name prefix of in-flight temporary files.
pub const TEMP_PREFIX: &str = ".shardline-tmp-";
/// The directory under the root where puts write their temporary files.
pub const TEMP_DIR: &str = ".shardline-tmp";

/// Objects as files under a root directory (`<data>/s3`).
#[derive(Debug, Clone)]
pub struct DirObjectStore {
    root: PathBuf,
    /// Held by conditional puts from their read of the current version to their write.
    conditional: Arc<tokio::sync::Mutex<()>>,
}

impl DirObjectStore {
    /// A store rooted at `root`, which is created if missing. Removes the temporary files of
    /// puts a crash interrupted (see the module doc).
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created or a leftover not removed.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let temp = root.join(TEMP_DIR);
        let removed = if temp.is_dir() {
            remove_temp_files(&temp, false)?
        } else {
            let swept = remove_temp_files(root, true)?;
            fs::create_dir(&temp).map_err(|e| Error::io(&temp, e))?;
            sync_dir(root)?;
            swept
        };
        if removed > 0 {
            warn!(root = %root.display(), files = removed, "removed temporary files of interrupted object writes");
        }
        Ok(DirObjectStore {
            root: root.to_path_buf(),
            conditional: Arc::default(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf> {
        validate_bucket(bucket)?;
        Ok(self.root.join(bucket))
    }

    fn existing_bucket(&self, bucket: &str) -> Result<PathBuf> {
        let dir = self.bucket_dir(bucket)?;
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(Error::not_found(format!(
                "bucket {bucket:?} (under {}; create it with ensure_bucket)",
                self.root.display()
            )))
        }
    }
}

/// Checks an S3 bucket name.
fn validate_bucket(bucket: &str) -> Result<()> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !bucket.starts_with(['.', '-'])
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "bucket name {bucket:?} is invalid: use 3 to 63 characters of a-z, 0-9, '.' and '-', \
             starting with a letter or digit"
        )))
    }
}

/// Checks an object key; see the module doc for the rules.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "object key {key:?} is invalid: {why}"
        )))
    };
    if key.is_empty() || key.len() > 1024 {
        return bad("it must be 1 to 1024 bytes long");
    }
    if key.starts_with('/') {
        return bad("it must not start with '/' (keys are relative to the bucket)");
    }
    if key.contains('\0') || key.contains('\\') {
        return bad("it must not contain NUL or backslash characters");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return bad("it has an empty path segment ('//' or a trailing '/')");
        }
        if segment == "." || segment == ".." {
            return bad("'.' and '..' segments are not allowed");
        }
        if segment.starts_with(TEMP_PREFIX) {
            return bad("segments starting with '.shardline-tmp-' are reserved");
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Removes files named [`TEMP_PREFIX`]`*` in `dir` (and, when `deep`, in every directory
/// under it, skipping [`TEMP_DIR`]); returns how many.
fn remove_temp_files(dir: &Path, deep: bool) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let file_type = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if file_type.is_dir() {
            if deep && name != TEMP_DIR {
                removed += remove_temp_files(&path, true)?;
            }
        } else if name.to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn write_atomically(root: &Path, bucket_dir: &Path, path: &Path, body: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Internal(format!("{} has no parent", path.display())))?;
    // Directories this put creates must be made durable too, up to the bucket.
    let mut created = Vec::new();
    let mut probe = dir;
    while !probe.is_dir() && probe != bucket_dir {
        created.push(probe.to_path_buf());
        probe = match probe.parent() {
            Some(p) => p,
            None => break,
        };
    }
    let tmp = root
        .join(TEMP_DIR)
        .join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = match File::create(&tmp) {
            Ok(f) => f,
            // The temporary directory was removed behind our back: make it again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let temp = root.join(TEMP_DIR);
                fs::create_dir_all(&temp).map_err(|e| Error::io(&temp, e))?;
                File::create(&tmp).map_err(|e| Error::io(&tmp, e))?
            }
            Err(e) => return Err(Error::io(&tmp, e)),
        };
        file.write_all(body).map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        // A concurrent delete may prune the directory between its creation and the rename;
        // try again a bounded number of times.
        let mut attempts = 0;
        loop {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            match fs::rename(&tmp, path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => {
                    attempts += 1;
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)?;
    for created_dir in &created {
        if let Some(parent) = created_dir.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Collects every object file under `dir` whose key starts with `prefix`.
fn walk(dir: &Path, key_prefix: &str, prefix: &str, out: &mut Vec<ObjectMeta>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let key = format!("{key_prefix}{name}");
        let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if file_type.is_dir() {
            let sub = format!("{key}/");
            // Descend only where keys can still match the prefix.
            if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                walk(&entry.path(), &sub, prefix, out)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) {
            let meta = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
            let last_modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            out.push(ObjectMeta {
                key,
                size: meta.len(),
                last_modified_ms,
            });
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for DirObjectStore {
    async fn ensure_bucket(&self, bucket: &str) -> Result<()> {
        let dir = self.bucket_dir(bucket)?;
        let root = self.root.clone();
        blocking(move || {
            if !dir.is_dir() {
                fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                sync_dir(&root)?;
            }
            Ok(())
        })
        .await
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes, _content_type: &str) -> Result<()> {
        let bucket_dir = self.existing_bucket(bucket)?;
        validate_key(key)?;
        let path = bucket_dir.join(key);
        debug!(bucket, key, bytes = body.len(), "put object");
        let root = self.root.clone();
        blocking(move || write_atomically(&root, &bucket_dir, &path, &body)).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>> {
        let path = self.existing_bucket(bucket)?.join(key);
        validate_key(key)?;
        blocking(move || match fs::read(&path) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            // A directory is a key prefix, not an object.
            Err(_) if path.is_dir() => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        })
        .await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let bucket_dir = self.existing_bucket(bucket)?;
        let prefix = prefix.to_string();
        blocking(move || {
            // Start at the deepest directory the prefix names completely.
            let (start_key, start_dir) = match prefix.rfind('/') {
                Some(i) if validate_key(&prefix[..i]).is_ok() => {
                    (prefix[..=i].to_string(), bucket_dir.join(&prefix[..i]))
                }
                _ => (String::new(), bucket_dir.clone()),
            };
            let mut out = Vec::new();
            walk(&start_dir, &start_key, &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let bucket_dir = self.existing_bucket(bucket)?;
        validate_key(key)?;
        let path = bucket_dir.join(key);
        blocking(move || {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(_) if path.is_dir() => return Ok(()),
                Err(e) => return Err(Error::io(&path, e)),
            }
            let parent = path.parent().unwrap_or(&bucket_dir).to_path_buf();
            sync_dir(&parent)?;
            // Prune directories the delete left empty, up to the bucket.
            let mut dir = parent;
            while dir != bucket_dir && fs::remove_dir(&dir).is_ok() {
                match dir.parent() {
                    Some(p) => dir = p.to_path_buf(),
                    None => break,
                }
            }
            Ok(())
        })
        .await
    }

    fn local_path(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        validate_bucket(bucket).ok()?;
        validate_key(key).ok()?;
        Some(self.root.join(bucket).join(key))
    }

    async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<String> {
        let _writer = self.conditional.lock().await;
        compare_and_put(self, bucket, key, body, content_type, &condition).await
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: ByteRange,
    ) -> Result<Option<RangedObject>> {
        let path = self.existing_bucket(bucket)?.join(key);
        validate_key(key)?;
        blocking(move || read_range(&path, range)).await
    }
}

/// Reads `range` of the file at `path`; `None` when there is no such file.
fn read_range(path: &Path, range: ByteRange) -> Result<Option<RangedObject>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match File::open(path) {
        Ok(f) if path.is_file() => f,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let size = meta.len();
    let r = range.resolve(size)?;
    file.seek(SeekFrom::Start(r.start))
        .map_err(|e| Error::io(path, e))?;
    let mut bytes = vec![0; usize::try_from(r.end - r.start).unwrap_or(0)];
    file.read_exact(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    let last_modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ok(Some(RangedObject {
        bytes: Bytes::from(bytes),
        start: r.start,
        size,
        last_modified_ms,
    }))
}
