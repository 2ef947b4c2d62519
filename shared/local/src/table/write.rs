//! The item table's write path: an encoded batch goes to the open run, through the journal
//! and a memtable when small, as a sorted table of its own when large (see
//! [`INGEST_MIN_ITEMS`]); the buffers of written batches are kept for later ones.

use std::time::{Duration, Instant};

use fjall::{Keyspace, PersistMode};
use shardline_core::Result;

use super::encode::Encoded;
use super::{
    INGEST_MIN_ITEMS, Inner, SPARE_BATCH_BYTES, SPARE_BATCHES, WRITE_BUFFER_WAIT, poisoned_lock,
};
use crate::db::Durability;

impl Inner {
    /// Waits (blocking) while the memtables hold more than the bound, see the module docs.
    fn wait_for_write_buffer(&self) {
        let started = Instant::now();
        while self.db.write_buffer_size() > self.memory.write_buffer_bytes {
            if started.elapsed() >= WRITE_BUFFER_WAIT {
                tracing::warn!(
                    table = %self.path.display(),
                    memtable_bytes = self.db.write_buffer_size(),
                    "memtables still over their bound after {WRITE_BUFFER_WAIT:?}; writing anyway"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Writes an encoded batch: as a sorted table of its own when large (see
    /// [`INGEST_MIN_ITEMS`]), else through the journal.
    pub(super) fn write(&self, mut batch: Encoded) -> Result<()> {
        let written = self.write_entries(&mut batch);
        self.recycle(batch);
        written
    }

    /// Writes `batch` to the open run, then counts it towards the run's size (which may
    /// close the run, see [`runs`]).
    fn write_entries(&self, batch: &mut Encoded) -> Result<()> {
        if batch.entries.is_empty() {
            return Ok(());
        }
        let run = {
            // Held while writing: the run cannot be closed (and merged) under the write.
            let runs = self.runs.read()?;
            let run = runs.open().clone();
            if batch.entries.len() >= INGEST_MIN_ITEMS {
                self.ingest(&run.keyspace, batch)?;
            } else {
                self.put_entries(&run.keyspace, batch)?;
            }
            run
        };
        if let Err(e) = self.runs.written(&run, batch.bytes.len() as u64) {
            // The batch is written; the run stays open and the next write tries again.
            tracing::warn!(table = %self.path.display(), error = %e, "cannot open a new item run");
        }
        Ok(())
    }

    /// Writes a small batch through the journal and the memtable.
    fn put_entries(&self, items: &Keyspace, batch: &Encoded) -> Result<()> {
        let durability = match self.durability {
            Durability::Fsync => Some(PersistMode::SyncData),
            Durability::Buffered => None,
        };
        self.wait_for_write_buffer();
        let mut writes = self.db.batch().durability(durability);
        // Within one batch the later of two puts with the same key wins, as in a sequence of
        // single puts.
        for entry in &batch.entries {
            writes.insert(items, batch.key(entry), batch.value(entry));
        }
        writes.commit().map_err(|e| self.error(e))
    }

    /// Writes a large batch straight into a new sorted table (see [`INGEST_MIN_ITEMS`]).
    fn ingest(&self, items: &Keyspace, batch: &mut Encoded) -> Result<()> {
        // Sorted by key, of equal keys the later put last (it wins below). Every key starts
        // with the table's name; the next 32 bytes (an InfraMetrics key is about that long),
        // compared as two numbers, order and tell apart most pairs without a byte-wise
        // comparison.
        let skip = batch.prefix_len;
        let mut order = std::mem::take(&mut batch.order);
        order.clear();
        order.extend(batch.entries.iter().enumerate().map(|(i, e)| {
            let key = &batch.key(e)[skip..];
            let mut head = [0u8; 32];
            let n = key.len().min(32);
            head[..n].copy_from_slice(&key[..n]);
            let (hi, lo) = head.split_at(16);
            let word = |b: &[u8]| u128::from_be_bytes(b.try_into().unwrap_or([0; 16]));
            ([word(hi), word(lo)], i)
        }));
        let key = |i: usize| &batch.key(&batch.entries[i])[skip..];
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| key(a.1).cmp(key(b.1)))
                .then(a.1.cmp(&b.1))
        });
        let written = self.ingest_sorted(items, batch, &order);
        batch.order = order;
        written
    }

    /// Writes `batch`'s entries in `order` (sorted by key, equal keys adjacent with the one
    /// to keep last) as a new table.
    fn ingest_sorted(
        &self,
        items: &Keyspace,
        batch: &Encoded,
        order: &[([u128; 2], usize)],
    ) -> Result<()> {
        let _one = self.ingesting.lock().map_err(|_| poisoned_lock())?;
        let mut ingestion = items.start_ingestion().map_err(|e| self.error(e))?;
        let mut sorted = order.iter().peekable();
        while let Some((head, i)) = sorted.next() {
            let entry = &batch.entries[*i];
            let key = batch.key(entry);
            if sorted.peek().is_some_and(|(next_head, next)| {
                next_head == head && batch.key(&batch.entries[*next]) == key
            }) {
                continue;
            }
            ingestion
                .write(key, batch.value(entry))
                .map_err(|e| self.error(e))?;
        }
        ingestion.finish().map_err(|e| self.error(e))
    }

    /// An empty batch to encode into: the buffers of an earlier batch when one is spare.
    pub(super) fn batch_buffers(&self) -> Encoded {
        self.spare
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_default()
    }

    /// Keeps a written batch's buffers for a later batch (see [`SPARE_BATCHES`]).
    fn recycle(&self, batch: Encoded) {
        if batch.bytes.capacity() > SPARE_BATCH_BYTES {
            return;
        }
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < SPARE_BATCHES
        {
            spare.push(batch.cleared());
        }
    }
}
