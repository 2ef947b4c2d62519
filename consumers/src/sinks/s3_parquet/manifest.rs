//! The per-shard manifest: the sequence ranges whose rows are committed, merged.
//!
//! Stored as JSON at `_manifests/<prefix>/<shard>.json` in the sink's bucket, outside the data
//! prefix so query engines scanning `<prefix>/` never read it:
//!
//! ```json
//! {"shard": "shardId-000000000000",
//!  "ranges": [{"first": "4963…", "last": "4963…"}, {"after": "4963…", "last": "4963…"}],
//!  "rows": 1200,
//!  "pending": {"first": "4963…", "last": "4963…", "rows": 300,
//!              "objects": ["metrics/year=2026/month=02/day=19/shardId-…-4963…-4963….parquet"]}}
//! ```
//!
//! # Invariants
//! - **Coverage.** Every valid record of the shard whose sequence number lies in a range is in
//!   exactly one committed object, and every row of a committed object lies in a range. A range
//!   starts at `first` (inclusive) or just after `after` (exclusive) and ends at `last`
//!   (inclusive).
//! - **Bounded size.** Ranges are kept merged: two ranges that overlap or touch are one. A range
//!   touches the one before when it starts `after` a sequence number that range holds, or (for
//!   Shardline's own sequence numbers) at the offset right after that range's last. The sink
//!   extends its ranges over the stretches the runtime reports handed on contiguously
//!   ([`crate::Sink::handed`]), dead letters included, so a shard read from start to end keeps
//!   one range, whatever its history; the manifest grows only with stretches that were really
//!   never read (a consumer started at LATEST, then a replay of older records).
//! - `pending` is a flush whose objects may be partly written; it is never counted as coverage
//!   until reconciled.
//!
//! Manifests of earlier versions list one entry per flush (`entries`, with its objects); they
//! are read, and folded into ranges when next saved.
//!
//! # Fencing
//! The protocol needs one writer per shard. Every save is a conditional put on the version
//! read or written last (S3's `If-Match` on the ETag; `If-None-Match: *` for a shard's first
//! manifest), so a writer that lost its shard to another (its lease expired while it was
//! paused) cannot overwrite the new owner's manifest: its save fails as fenced ([`is_fenced`])
//! and the sink takes nothing more for that shard. The objects of a flush whose commit was
//! refused are deleted unless the manifest as stored now names them as pending or covers
//! their range (the new owner adopted them).

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

/// Where a range starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At this sequence number.
    At(SequenceNumber),
    /// Just after this sequence number.
    After(SequenceNumber),
}

impl Start {
    fn seq(&self) -> &SequenceNumber {
        match self {
            Start::At(s) | Start::After(s) => s,
        }
    }

    /// Whether a record at `seq` is at or after this start.
    fn admits(&self, seq: &SequenceNumber) -> bool {
        match self {
            Start::At(s) => s <= seq,
            Start::After(s) => s < seq,
        }
    }
}

/// A committed range: every valid record in it is in exactly one committed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RangeWire", into = "RangeWire")]
pub struct Range {
    /// Where it starts.
    pub start: Start,
    /// Its last sequence number.
    pub last: SequenceNumber,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first: Option<SequenceNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<SequenceNumber>,
    last: SequenceNumber,
}

impl From<Range> for RangeWire {
    fn from(r: Range) -> Self {
        let (first, after) = match r.start {
            Start::At(s) => (Some(s), None),
            Start::After(s) => (None, Some(s)),
        };
        RangeWire {
            first,
            after,
            last: r.last,
        }
    }
}

impl TryFrom<RangeWire> for Range {
    type Error = String;
    fn try_from(w: RangeWire) -> Result<Self, String> {
        let start = match (w.first, w.after) {
            (Some(f), None) => Start::At(f),
            (None, Some(a)) => Start::After(a),
            _ => return Err("a range has exactly one of `first` and `after`".into()),
        };
        Ok(Range {
            start,
            last: w.last,
        })
    }
}

/// Whether the range ending at `last` and the next one starting at `next` are one range.
fn touches(last: &SequenceNumber, next: &Start) -> bool {
    if next.seq() <= last {
        return true;
    }
    // Shardline's sequence numbers name consecutive offsets: nothing lies in between.
    match (next, last.parts(), next.seq().parts()) {
        (Start::At(_), Ok(l), Ok(n)) => {
            l.shard_index == n.shard_index && l.offset.checked_add(1) == Some(n.offset)
        }
        _ => false,
    }
}

/// A shard's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardManifest {
    /// The shard.
    pub shard: ShardId,
    /// Committed ranges, merged and sorted.
    ranges: Vec<Range>,
    /// Rows in committed objects.
    rows: u64,
    /// A flush that started and has not been committed.
    pub pending: Option<ManifestEntry>,
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

/// The stored form, of this version or an earlier one (one entry per flush).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredManifest {
    shard: ShardId,
    #[serde(default)]
    ranges: Vec<Range>,
    #[serde(default)]
    rows: Option<u64>,
    #[serde(default)]
    entries: Vec<ManifestEntry>,
    pending: Option<ManifestEntry>,
}

impl ShardManifest {
    /// An empty manifest.
    pub fn new(shard: ShardId) -> Self {
        Self {
            shard,
            ranges: Vec::new(),
            rows: 0,
            pending: None,
            version: None,
        }
    }

    /// The manifest's key for `prefix` (the sink's data prefix).
    pub fn key(prefix: &str, shard: ShardId) -> String {
        format!("_manifests/{prefix}/{shard}.json")
    }

    /// The committed ranges, merged and sorted.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Adds a committed range and merges.
    pub fn add_range(&mut self, start: Start, last: SequenceNumber) {
        if !start.admits(&last) {
            return;
        }
        self.ranges.push(Range { start, last });
        self.merge();
    }

    fn merge(&mut self) {
        // By start; at equal sequence numbers the inclusive start first (it holds more).
        self.ranges.sort_by(|a, b| {
            (a.start.seq(), matches!(a.start, Start::After(_)))
                .cmp(&(b.start.seq(), matches!(b.start, Start::After(_))))
        });
        let mut merged: Vec<Range> = Vec::with_capacity(self.ranges.len());
        for r in self.ranges.drain(..) {
            match merged.last_mut() {
                Some(prev) if touches(&prev.last, &r.start) => {
                    if r.last > prev.last {
                        prev.last = r.last;
                    }
                }
                _ => merged.push(r),
            }
        }
        self.ranges = merged;
    }

    /// Whether a committed range holds `seq`.
    pub fn covers(&self, seq: &SequenceNumber) -> bool {
        let i = self.ranges.partition_point(|r| r.start.seq() <= seq);
        // The range starting at or before `seq` (an exclusive start equal to `seq` does not
        // hold it, but the range before it may).
        self.ranges[..i]
            .iter()
            .rev()
            .take(2)
            .any(|r| r.start.admits(seq) && *seq <= r.last)
    }

    /// The highest sequence number a committed range holds: every record after it is not
    /// covered.
    pub fn covered_to(&self) -> Option<&SequenceNumber> {
        self.ranges.iter().map(|r| &r.last).max()
    }

    /// Rows in committed objects.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Moves the pending entry to the committed ranges, with `claim`, when given, as the
    /// start of its range instead of its first record: the caller knows that every valid
    /// record from `claim` to the entry's first is covered already (or was never valid).
    pub fn commit_pending(&mut self, claim: Option<Start>) {
        if let Some(p) = self.pending.take() {
            self.rows += p.rows;
            let start = match claim {
                Some(c) if c.admits(&p.first) => c,
                _ => Start::At(p.first),
            };
            self.add_range(start, p.last);
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
        let stored: StoredManifest = serde_json::from_slice(&body).map_err(|e| Error::Corrupt {
            file: format!("{bucket}/{key}").into(),
            offset: e.column() as u64,
            detail: format!(
                "manifest is not valid JSON ({e}); restore it, or delete it together with \
                 the shard's objects under {prefix}/ and replay the shard"
            ),
        })?;
        if stored.shard != shard {
            return Err(Error::Corrupt {
                file: format!("{bucket}/{key}").into(),
                offset: 0,
                detail: format!("manifest names {} but is stored for {shard}", stored.shard),
            });
        }
        let rows = stored
            .rows
            .unwrap_or_else(|| stored.entries.iter().map(|e| e.rows).sum());
        let mut m = ShardManifest {
            shard,
            ranges: stored.ranges,
            rows,
            pending: stored.pending,
            version: Some(version),
        };
        for e in stored.entries {
            m.ranges.push(Range {
                start: Start::At(e.first),
                last: e.last,
            });
        }
        m.merge();
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
    /// neither names as pending nor covers (the new owner writes those records again). Best
    /// effort: errors are logged.
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
        if current.covers(&entry.first) && current.covers(&entry.last) {
            return;
        }
        let pending = current.pending.as_ref().map(|p| p.objects.as_slice());
        for key in &entry.objects {
            if pending.is_some_and(|p| p.contains(key)) {
                continue;
            }
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
            self.commit_pending(None);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shardline_core::SequenceParts;

    fn seq(offset: u64) -> SequenceNumber {
        SequenceParts {
            shard_index: 0,
            offset,
            shard_created_secs: 1_771_000_000,
            arrival_secs: 1_771_000_100 + offset,
        }
        .encode()
    }

    fn raw(n: u64) -> SequenceNumber {
        SequenceNumber::try_from(n.to_string()).unwrap_or_else(|_| seq(n))
    }

    fn spans(m: &ShardManifest) -> Vec<(String, u64)> {
        m.ranges()
            .iter()
            .map(|r| {
                let kind = match &r.start {
                    Start::At(s) => format!("[{}", s.parts().map(|p| p.offset).unwrap_or(0)),
                    Start::After(s) => format!("({}", s.parts().map(|p| p.offset).unwrap_or(0)),
                };
                (kind, r.last.parts().map(|p| p.offset).unwrap_or(0))
            })
            .collect()
    }

    #[test]
    fn ranges_merge_when_they_overlap_or_touch() {
        let mut m = ShardManifest::new(ShardId(0));
        m.add_range(Start::At(seq(10)), seq(20));
        m.add_range(Start::At(seq(21)), seq(30)); // the next offset: touches
        m.add_range(Start::At(seq(40)), seq(50)); // a gap of unknown records
        assert_eq!(spans(&m), [("[10".into(), 30), ("[40".into(), 50)]);
        m.add_range(Start::After(seq(35)), seq(45)); // (35, 45]: 31..=35 still unknown
        assert_eq!(spans(&m), [("[10".into(), 30), ("(35".into(), 50)]);
        m.add_range(Start::After(seq(30)), seq(36)); // after a record range 1 holds: touches
        assert_eq!(spans(&m), [("[10".into(), 50)]);
        assert!(m.covers(&seq(10)) && m.covers(&seq(33)) && m.covers(&seq(50)));
        assert!(!m.covers(&seq(9)) && !m.covers(&seq(51)));
        assert_eq!(m.covered_to(), Some(&seq(50)));
    }

    #[test]
    fn an_exclusive_start_does_not_cover_itself() {
        let mut m = ShardManifest::new(ShardId(0));
        m.add_range(Start::After(seq(5)), seq(9));
        assert!(!m.covers(&seq(5)));
        assert!(m.covers(&seq(6)));
        // Opaque sequence numbers (not Shardline's) only merge when they overlap.
        let mut o = ShardManifest::new(ShardId(0));
        o.add_range(Start::At(raw(100)), raw(200));
        o.add_range(Start::At(raw(201)), raw(300));
        assert_eq!(o.ranges().len(), 2);
        o.add_range(Start::After(raw(200)), raw(250));
        assert_eq!(o.ranges().len(), 1);
    }

    #[test]
    fn earlier_manifests_with_one_entry_per_flush_are_folded() {
        let entry = |f: u64, l: u64| serde_json::json!({"first": seq(f), "last": seq(l), "rows": l - f + 1, "objects": ["x"]});
        let old = serde_json::json!({
            "shard": "shardId-000000000000",
            "entries": [entry(0, 99), entry(100, 199), entry(300, 399)],
            "pending": null,
        });
        let stored: StoredManifest = serde_json::from_value(old).unwrap();
        assert_eq!(stored.entries.len(), 3);
        let body = serde_json::to_vec(&serde_json::json!({
            "shard": "shardId-000000000000",
            "entries": [entry(0, 99), entry(100, 199), entry(300, 399)],
            "pending": null,
        }))
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = shardline_local::DirObjectStore::open(dir.path()).unwrap();
        rt.block_on(async {
            store.ensure_bucket("bkt").await.unwrap();
            store
                .put(
                    "bkt",
                    &ShardManifest::key("metrics", ShardId(0)),
                    Bytes::from(body),
                    "x",
                )
                .await
                .unwrap();
            let mut m = ShardManifest::load(&store, "bkt", "metrics", ShardId(0))
                .await
                .unwrap();
            assert_eq!(spans(&m), [("[0".into(), 199), ("[300".into(), 399)]);
            assert_eq!(m.rows(), 300);
            m.save(&store, "bkt", "metrics").await.unwrap();
            let saved = store
                .get("bkt", &ShardManifest::key("metrics", ShardId(0)))
                .await
                .unwrap()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&saved).unwrap();
            assert!(v.get("entries").is_none(), "{v}");
            assert_eq!(v["ranges"].as_array().unwrap().len(), 2, "{v}");
            assert_eq!(v["rows"], 300);
        });
    }
}
