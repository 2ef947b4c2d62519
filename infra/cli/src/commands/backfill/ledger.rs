//! The backfill ledger: how far each input file has been appended, in the sink state store
//! (namespace `backfill.<stream>`, key = the file's id).
//!
//! An entry holds the lines done, the byte length they span and the SHA-256 of those bytes,
//! so a re-run resumes after them, and a file whose already-appended part changed is noticed
//! instead of appended twice. Before a batch is appended the entry records it as `pending`
//! (its first and last line, and the time); after the append the entry moves past it. A run
//! that finds a pending batch (the previous run was killed in between) looks in the stream for
//! the batch's records, which carry `"backfill":"<file id>#<line>"`, and appends only the
//! lines it does not find.

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shardline_core::ports::StateStore;

/// A batch being appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Its first line (1-based).
    pub first_line: u64,
    /// Its last line.
    pub last_line: u64,
    /// When the append started, epoch milliseconds.
    pub since_ms: i64,
}

/// One file's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Lines done (appended, dead-lettered or blank).
    pub lines: u64,
    /// Bytes those lines span, newlines included.
    pub bytes: u64,
    /// SHA-256 (hex) of those bytes.
    pub sha256: String,
    /// A batch whose append may or may not have happened.
    pub pending: Option<Pending>,
}

/// The ledger of one stream's backfills.
pub struct Ledger<'a> {
    store: &'a dyn StateStore,
    namespace: String,
}

impl<'a> Ledger<'a> {
    /// The ledger of backfills into `stream`.
    pub fn new(store: &'a dyn StateStore, stream: &str) -> Self {
        Self {
            store,
            namespace: format!("backfill.{stream}"),
        }
    }

    /// The entry of file `id`, if it was backfilled before.
    ///
    /// # Errors
    /// When the store cannot be read or the entry is not valid JSON.
    pub async fn get(&self, id: &str) -> Result<Option<Entry>> {
        let Some(bytes) = self.store.get(&self.namespace, id).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("the backfill ledger entry of {id} is damaged"))
    }

    /// Writes the entry of file `id`.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub async fn put(&self, id: &str, entry: &Entry) -> Result<()> {
        let body = serde_json::to_vec(entry).context("ledger entry as JSON")?;
        self.store
            .put_many(&self.namespace, vec![(id.to_string(), Bytes::from(body))])
            .await
            .with_context(|| format!("cannot record the backfill progress of {id}"))
    }
}
