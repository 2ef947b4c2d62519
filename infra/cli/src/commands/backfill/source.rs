//! What a backfill reads: local files (a file or every JSON Lines file under a directory, in
//! path order) or objects under an `s3://BUCKET/PREFIX` of the configured object store.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use shardline_core::ports::ObjectStore;
use std::path::{Path, PathBuf};

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local file (absolute path).
    File(PathBuf),
    /// An object.
    Object {
        /// Its bucket.
        bucket: String,
        /// Its key.
        key: String,
    },
}

impl Source {
    /// The name under which its progress is remembered and its dead letters are reported.
    pub fn id(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Object { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// Its whole content.
    ///
    /// # Errors
    /// When it cannot be read.
    pub async fn read(&self, objects: &dyn ObjectStore) -> Result<Bytes> {
        match self {
            Source::File(p) => Ok(Bytes::from(
                tokio::fs::read(p)
                    .await
                    .with_context(|| format!("cannot read {}", p.display()))?,
            )),
            Source::Object { bucket, key } => objects
                .get(bucket, key)
                .await
                .with_context(|| format!("cannot read s3://{bucket}/{key}"))?
                .with_context(|| format!("s3://{bucket}/{key} no longer exists")),
        }
    }
}

/// Whether a file name looks like JSON Lines (the seed's raw-metrics files are `.json`).
fn is_json_lines(name: &str) -> bool {
    [".json", ".jsonl", ".ndjson"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The files `from` names: `s3://BUCKET/PREFIX`, a file, or a directory walked recursively.
///
/// # Errors
/// When `from` does not exist or holds no JSON Lines file.
pub async fn list(from: &str, cwd: &Path, objects: &dyn ObjectStore) -> Result<Vec<Source>> {
    let sources = if let Some(rest) = from.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("--from {from}: name a bucket, as s3://BUCKET/PREFIX");
        }
        objects
            .list(bucket, prefix)
            .await
            .with_context(|| format!("cannot list {from}"))?
            .into_iter()
            .filter(|o| is_json_lines(&o.key))
            .map(|o| Source::Object {
                bucket: bucket.to_string(),
                key: o.key,
            })
            .collect()
    } else {
        let path = cwd.join(from);
        let meta = std::fs::metadata(&path).with_context(|| {
            format!(
                "--from {from}: no such file or directory ({})",
                path.display()
            )
        })?;
        let path = path.canonicalize().unwrap_or(path);
        if meta.is_file() {
            vec![Source::File(path)]
        } else {
            let mut files = Vec::new();
            walk(&path, &mut files)?;
            files.sort();
            files.into_iter().map(Source::File).collect()
        }
    };
    if sources.is_empty() {
        bail!("--from {from}: no .json, .jsonl or .ndjson files there");
    }
    Ok(sources)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() && is_json_lines(&entry.file_name().to_string_lossy()) {
            out.push(path);
        }
    }
    Ok(())
}
