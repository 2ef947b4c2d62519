//! Group commit: one writer thread per shard owns the active segment.
//!
//! Callers send [`AppendRequest`]s (the part of a put_records call that goes to this shard)
//! over a bounded queue. The writer takes one request and everything else already queued,
//! encodes their frames into one buffer and writes it with one `write`; requests that queued
//! meanwhile are encoded and written the same way, until the queue is empty (or
//! [`MAX_BATCH_RECORDS`] is reached). Then it calls `fdatasync` once (in [`Durability::Fsync`]),
//! publishes the new committed end to readers, and only then acknowledges every request of the
//! batch. So concurrent callers share one `fdatasync`, and no reader sees a record before it
//! is acknowledged.
//!
//! Arrival times are the clock's reading for the batch, clamped so they never decrease.
//! When the active segment has reached `segment_bytes`, the writer seals it before the next
//! batch (a segment may exceed the size by one batch): the segment is synced, its full index
//! written atomically, a new segment file created and the directory synced.
//! After a failed write the file is cut back to its committed length and the batch refused.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use shardline_core::stream::PutRecordsEntry;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

use crate::error::LogError;
use crate::frame;
use crate::index::{self, IndexEntry};
use crate::meta;
use crate::options::{Durability, LogOptions};
use crate::segment::{self, SegmentView};
use crate::shard::Shard;

/// Most records one group-commit batch takes from the queue.
pub const MAX_BATCH_RECORDS: usize = 50_000;
/// Requests that may wait in a shard's queue before callers wait.
pub const QUEUE_DEPTH: usize = 1024;

/// Records for one shard, with where to send the outcome.
#[derive(Debug)]
pub struct AppendRequest {
    /// The records, in order.
    pub entries: Vec<PutRecordsEntry>,
    /// Receives the offset of the first record and the arrival time of all of them.
    pub ack: oneshot::Sender<Result<AppendAck, LogError>>,
}

/// Where an acknowledged request's records landed: consecutive offsets from `first_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    /// Offset of the request's first record.
    pub first_offset: u64,
    /// Arrival time of its records, epoch milliseconds.
    pub arrival_ms: i64,
}

/// The segment being appended to: owned by the writer thread alone.
#[derive(Debug)]
pub struct ActiveSegment {
    /// Offset of its first record.
    pub base_offset: u64,
    /// Its file.
    pub path: PathBuf,
    /// Append handle.
    pub file: File,
    /// Append handle of its index file (entries are a cache; rebuilt on recovery).
    pub index_file: File,
    /// Every index entry written so far.
    pub index: Vec<IndexEntry>,
    /// Bytes written and committed.
    pub size: u64,
    /// One past the last committed offset.
    pub next_offset: u64,
    /// Arrival time of the last committed record.
    pub last_arrival_ms: Option<i64>,
}

impl ActiveSegment {
    /// Creates a new, empty segment file (and index) at `base_offset` in `dir`.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn create(dir: &std::path::Path, base_offset: u64) -> Result<ActiveSegment, LogError> {
        let path = segment::segment_path(dir, base_offset);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        let idx = segment::index_path(dir, base_offset);
        let index_file = File::create(&idx).map_err(|e| LogError::io(&idx, e))?;
        meta::sync_dir(dir)?;
        Ok(ActiveSegment {
            base_offset,
            path,
            file,
            index_file,
            index: Vec::new(),
            size: 0,
            next_offset: base_offset,
            last_arrival_ms: None,
        })
    }
}

/// Runs a shard's writer until every sender of `rx` is dropped.
pub fn run(
    shard: Arc<Shard>,
    mut active: ActiveSegment,
    mut rx: mpsc::Receiver<AppendRequest>,
    options: LogOptions,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024 * 1024);
    let mut batch: Vec<AppendRequest> = Vec::new();
    let mut acks: Vec<AppendAck> = Vec::new();
    let mut new_index: Vec<IndexEntry> = Vec::new();
    let mut index_buf: Vec<u8> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        if active.size >= options.segment_bytes
            && active.next_offset > active.base_offset
            && let Err(e) = roll(&shard, &mut active)
        {
            error!(stream = %shard.stream, shard = %shard.id, error = %e, "segment roll failed");
        }
        let arrival_ms = options
            .clock
            .now_ms()
            .max(active.last_arrival_ms.unwrap_or(i64::MIN));
        buf.clear();
        acks.clear();
        new_index.clear();
        let mut offset = active.next_offset;
        let mut last_index_pos = active.index.last().map(|e| e.position);
        let mut records = 0usize;
        let mut outcome = Ok(());
        // Write what is queued; while that write ran more may have queued: write that too.
        // One fdatasync then covers every request written.
        while outcome.is_ok() && acks.len() < batch.len() {
            let start = buf.len();
            for req in &batch[acks.len()..] {
                acks.push(AppendAck {
                    first_offset: offset,
                    arrival_ms,
                });
                records += req.entries.len();
                for e in &req.entries {
                    let pos = active.size + buf.len() as u64;
                    if last_index_pos.is_none_or(|p| pos - p >= options.index_interval_bytes) {
                        new_index.push(IndexEntry {
                            offset,
                            arrival_ms,
                            position: pos,
                        });
                        last_index_pos = Some(pos);
                    }
                    frame::encode(
                        &mut buf,
                        offset,
                        arrival_ms,
                        &e.partition_key,
                        e.explicit_hash_key,
                        &e.data,
                    );
                    offset += 1;
                }
            }
            outcome = active
                .file
                .write_all(&buf[start..])
                .map_err(|e| LogError::io(&active.path, e));
            while records < MAX_BATCH_RECORDS {
                let Ok(next) = rx.try_recv() else { break };
                records += next.entries.len();
                batch.push(next);
            }
        }
        if outcome.is_ok() && options.durability == Durability::Fsync {
            outcome = active
                .file
                .sync_data()
                .map_err(|e| LogError::io(&active.path, e));
            shard.syncs.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.is_err()
            && let Err(cut) = active.file.set_len(active.size)
        {
            error!(file = %active.path.display(), error = %cut, "could not cut back a failed write");
        }
        match outcome {
            Ok(()) => {
                index_buf.clear();
                for e in &new_index {
                    e.encode(&mut index_buf);
                }
                if let Err(e) = active.index_file.write_all(&index_buf) {
                    debug!(stream = %shard.stream, shard = %shard.id, error = %e, "index append failed; recovery rebuilds it");
                }
                active.index.extend_from_slice(&new_index);
                active.size += buf.len() as u64;
                active.next_offset = offset;
                if offset > active.base_offset && !batch.is_empty() {
                    active.last_arrival_ms = Some(arrival_ms);
                }
                {
                    let mut view = shard.write_view();
                    if let Some(seg) = view.segments.last_mut() {
                        seg.index.extend_from_slice(&new_index);
                        seg.end = active.size;
                        seg.next_offset = offset;
                        seg.last_arrival_ms = active.last_arrival_ms;
                    }
                }
                shard
                    .appends
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                shard.batches.fetch_add(1, Ordering::Relaxed);
                for (req, ack) in batch.drain(..).zip(acks.iter()) {
                    let _ = req.ack.send(Ok(*ack));
                }
            }
            Err(e) => {
                error!(stream = %shard.stream, shard = %shard.id, error = %e, "append batch failed");
                for req in batch.drain(..) {
                    let _ = req.ack.send(Err(LogError::Unavailable(format!(
                        "append to {} of stream \"{}\" failed: {e}",
                        shard.id, shard.stream
                    ))));
                }
            }
        }
    }
    if let Err(e) = active.file.sync_data() {
        error!(stream = %shard.stream, shard = %shard.id, error = %e, "final sync failed");
    }
}

/// Seals the active segment and starts the next one in its place.
fn roll(shard: &Shard, active: &mut ActiveSegment) -> Result<(), LogError> {
    let base = active.next_offset;
    active
        .file
        .sync_data()
        .map_err(|e| LogError::io(&active.path, e))?;
    index::store(&active.path.with_extension("idx"), &active.index)?;
    let next = ActiveSegment::create(&shard.dir, base)?;
    let view_seg = SegmentView::open(&next.path, base)?;
    shard.write_view().segments.push(view_seg);
    *active = next;
    debug!(stream = %shard.stream, shard = %shard.id, base, "segment rolled");
    Ok(())
}
