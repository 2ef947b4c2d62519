//! The per-shard manifest of committed sequence ranges.
//!
//! Stored as JSON at `_manifests/<prefix>/<shard>.json` in the sink's bucket, outside the data
//! prefix so query engines scanning `<prefix>/` never read it:
//!
//! ```json
//! {"shard": "shardId-000000000000",
//!  "entries": [{"first": "4963…", "last": "4963…", "rows": 1200,
//!               "objects": ["metrics/year=2026/month=02/day=19/shardId-…-4963…-4963….parquet"]}],
//!  "pending": null}
//! ```
//!
//! Invariant: every valid record of the shard whose sequence number lies in an entry's
//! `[first, last]` is in exactly one committed object. `pending` is a flush whose objects may
//! be partly written; it is never counted as coverage until reconciled.
//!
//! # Fencing
//! The protocol needs one writer per shard. Every save is a conditional put on the version
//! read or written last (S3's `If-Match` on the ETag; `If-None-Match: *` for a shard's first
//! manifest), so a writer that lost its shard to another (its lease expired while it was
//! paused) cannot overwrite the new owner's manifest: its save fails with
//! [`ManifestError::Fenced`] and the sink takes nothing more for that shard. Objects it wrote
//! for a flush it could then not commit are deleted unless the current manifest names them.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shardline_core::ports::{ObjectStore, PutCondition};
use shardline_core::{Error, SequenceNumber, ShardId};
use tracing::{info, warn};

/// One flush: the sequence range it covers and the objects holding its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// First sequence number of the flushed batch.
    pub first: SequenceNumber,
    /// Last sequence number of the flushed batch.
    pub last: SequenceNumber,
    /// Rows written (records of the range not covered by earlier entries).
    pub rows: u64,
    /// Keys of the objects written (Parquet, and JSON Lines when archived).
    pub objects: Vec<String>,
}

/// A shard's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardManifest {
    /// The shard.
    pub shard: ShardId,
    /// Committed flushes, in the order written.
    pub entries: Vec<ManifestEntry>,
    /// A flush that started and has not been committed.
    pub pending: Option<ManifestEntry>,
    /// Committed ranges merged and sorted, for coverage checks.
    #[serde(skip)]
    coverage: Vec<(SequenceNumber, SequenceNumber)>,
    /// The stored manifest's version tag as read or written last (`None`: none stored).
    #[serde(skip)]
    version: Option<String>,
}

/// The message of a save refused because another writer changed the manifest.
pub fn fenced_message(bucket: &str, key: &str) -> String {
    format!(
        "manifest {bucket}/{key} was changed by another writer: this worker no longer owns \
         the shard (fenced; its lease was taken over), so it writes nothing more for it"
    )
}

/// Whether `e` is a save refused by the manifest's fencing.
pub fn is_fenced(e: &Error) -> bool {
    matches!(e, Error::Conflict(m) if m.contains("(fenced;"))
}

impl ShardManifest {
    /// An empty manifest.
    pub fn new(shard: ShardId) -> Self {
        Self {
            shard,
            entries: Vec::new(),
            pending: None,
            coverage: Vec::new(),
            version: None,
        }
    }

    /// The manifest's key for `prefix` (the sink's data prefix).
    pub fn key(prefix: &str, shard: ShardId) -> String {
        format!("_manifests/{prefix}/{shard}.json")
    }

    fn rebuild_coverage(&mut self) {
        let mut ranges: Vec<(SequenceNumber, SequenceNumber)> = self
            .entries
            .iter()
            .map(|e| (e.first.clone(), e.last.clone()))
            .collect();
        ranges.sort();
        let mut merged: Vec<(SequenceNumber, SequenceNumber)> = Vec::with_capacity(ranges.len());
        for (first, last) in ranges {
            match merged.last_mut() {
                Some((_, end)) if first <= *end => {
                    if last > *end {
                        *end = last;
                    }
                }
                _ => merged.push((first, last)),
            }
        }
        self.coverage = merged;
    }

    /// Whether a committed entry's range holds `seq`.
    pub fn covers(&self, seq: &SequenceNumber) -> bool {
        let i = self.coverage.partition_point(|(first, _)| first <= seq);
        i > 0 && self.coverage[i - 1].1 >= *seq
    }

    /// The highest sequence number a committed entry's range holds: every record after it
    /// is not covered.
    pub fn covered_to(&self) -> Option<&SequenceNumber> {
        self.coverage.last().map(|(_, last)| last)
    }

    /// Rows in committed objects.
    pub fn rows(&self) -> u64 {
        self.entries.iter().map(|e| e.rows).sum()
    }

    /// Moves the pending entry to the committed list.
    pub fn commit_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.entries.push(p);
            self.rebuild_coverage();
        }
    }

    /// Moves the last committed entry back to pending: its commit could not be saved, so it
    /// is settled by the next [`ShardManifest::reconcile`].
    pub fn uncommit_last(&mut self) {
        if let Some(last) = self.entries.pop() {
            self.pending = Some(last);
            self.rebuild_coverage();
        }
    }

    /// Reads the manifest of `shard`, or an empty one if there is none.
    ///
    /// # Errors
    /// The store's error, or [`Error::Corrupt`] when the manifest is not valid JSON.
    pub async fn load(
        store: &dyn ObjectStore,
        bucket: &str,
        prefix: &str,
        shard: ShardId,
    ) -> Result<Self, Error> {
        let key = Self::key(prefix, shard);
        let Some((body, version)) = store.get_versioned(bucket, &key).await? else {
            return Ok(Self::new(shard));
        };
        let mut m: ShardManifest = serde_json::from_slice(&body).map_err(|e| Error::Corrupt {
            file: format!("{bucket}/{key}").into(),
            offset: e.column() as u64,
            detail: format!(
                "manifest is not valid JSON ({e}); restore it, or delete it together with \
                 the shard's objects under {prefix}/ and replay the shard"
            ),
        })?;
        if m.shard != shard {
            return Err(Error::Corrupt {
                file: format!("{bucket}/{key}").into(),
                offset: 0,
                detail: format!("manifest names {} but is stored for {shard}", m.shard),
            });
        }
        m.rebuild_coverage();
        m.version = Some(version);
        Ok(m)
    }

    /// Writes the manifest (one atomic put), only over the version this writer read or wrote
    /// last (see Fencing in the module docs).
    ///
    /// # Errors
    /// The store's error; a [`Error::Conflict`] for which [`is_fenced`] holds when another
    /// writer changed the manifest.
    pub async fn save(
        &mut self,
        store: &dyn ObjectStore,
        bucket: &str,
        prefix: &str,
    ) -> Result<(), Error> {
        let body =
            serde_json::to_vec(self).map_err(|e| Error::Internal(format!("manifest JSON: {e}")))?;
        let key = Self::key(prefix, self.shard);
        let condition = match &self.version {
            Some(tag) => PutCondition::IfMatch(tag.clone()),
            None => PutCondition::IfAbsent,
        };
        match store
            .put_if(
                bucket,
                &key,
                Bytes::from(body),
                "application/json",
                condition,
            )
            .await
        {
            Ok(tag) => {
                self.version = Some(tag);
                Ok(())
            }
            Err(Error::Conflict(_)) => Err(Error::Conflict(fenced_message(bucket, &key))),
            Err(e) => Err(e),
        }
    }

    /// After a refused commit: deletes the objects of `entry` that the manifest as stored now
    /// does not name (the new owner writes those records again). Best effort: errors are
    /// logged.
    pub async fn discard_fenced(
        store: &dyn ObjectStore,
        bucket: &str,
        prefix: &str,
        shard: ShardId,
        entry: &ManifestEntry,
    ) {
        let current = match Self::load(store, bucket, prefix, shard).await {
            Ok(m) => m,
            Err(e) => {
                warn!(shard = %shard, error = %e, "cannot re-read the manifest; objects of the fenced flush are left");
                return;
            }
        };
        let named = |key: &String| {
            current
                .entries
                .iter()
                .chain(current.pending.as_ref())
                .any(|e| e.objects.contains(key))
        };
        for key in entry.objects.iter().filter(|k| !named(k)) {
            match store.delete(bucket, key).await {
                Ok(()) => warn!(shard = %shard, key = %key, "deleted an object of a fenced flush"),
                Err(e) => {
                    warn!(shard = %shard, key = %key, error = %e, "cannot delete an object of a fenced flush")
                }
            }
        }
    }

    /// Settles a pending entry left by an interrupted flush: adopts it when all its objects
    /// exist, else deletes those that exist and drops it. Saves the manifest if it changed.
    ///
    /// # Errors
    /// The store's error.
    pub async fn reconcile(
        &mut self,
        store: &dyn ObjectStore,
        bucket: &str,
        prefix: &str,
    ) -> Result<(), Error> {
        let Some(pending) = self.pending.clone() else {
            return Ok(());
        };
        let mut present = Vec::new();
        for key in &pending.objects {
            if store.list(bucket, key).await?.iter().any(|m| m.key == *key) {
                present.push(key.clone());
            }
        }
        if present.len() == pending.objects.len() {
            info!(shard = %self.shard, first = %pending.first, last = %pending.last, objects = present.len(), "adopting objects of an interrupted flush");
            self.commit_pending();
        } else {
            warn!(shard = %self.shard, first = %pending.first, last = %pending.last, deleted = present.len(), "removing objects of an interrupted flush; its records will be written again");
            for key in &present {
                store.delete(bucket, key).await?;
            }
            self.pending = None;
        }
        self.save(store, bucket, prefix).await
    }
}
