//! Group commit: one writer thread per shard owns the active segment.
//!
//! Callers send [`AppendRequest`]s (the part of a put_records call that goes to this shard)
//! over a bounded queue. The writer takes one request and everything else already queued,
//! encodes their frames into one buffer and writes it with one positional write; requests that
//! queued meanwhile are encoded and written the same way, until the queue is empty (or
//! [`MAX_BATCH_RECORDS`] is reached). Then it calls `fdatasync` once (in [`Durability::Fsync`]),
//! publishes the new committed end to readers, and only then acknowledges every request of the
//! batch. So concurrent callers share one `fdatasync`, and no reader sees a record before it
//! is acknowledged. The first frame of a batch written while the segment was fully synced
//! carries [`frame::SYNCED_BEFORE`], which recovery relies on.
//!
//! Arrival times are the clock's reading for the batch, clamped so they never decrease.
//! When the active segment has reached `segment_bytes`, the writer seals it before the next
//! batch (a segment may exceed the size by one batch): the segment is synced (if a batch left
//! it unsynced), the next segment file created and the directory synced, then the sealed
//! segment's index written. A roll that fails (out of descriptors, disk full) changes nothing:
//! the writer keeps appending to the same segment and tries again before the next batch.
//!
//! A write or `fdatasync` that fails refuses the whole batch with [`LogError::AppendRefused`]
//! (naming the file, the log directory and the remedy) and acknowledges none of it; the
//! segment is cut back to its committed length (see [`ActiveSegment::repair`]) before anything
//! else is written. Nothing else stops: once the disk has room again, the next batch succeeds.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use shardline_core::stream::PutRecordsEntry;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info};

use crate::active::ActiveSegment;
use crate::error::LogError;
use crate::frame;
use crate::index::IndexEntry;
use crate::options::{Durability, LogOptions};
use crate::segment::SegmentView;
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

/// Runs a shard's writer until every sender of `rx` is dropped. `log_dir` is named in the
/// errors producers get when the disk refuses a write.
pub fn run(
    shard: Arc<Shard>,
    mut active: ActiveSegment,
    mut rx: mpsc::Receiver<AppendRequest>,
    options: LogOptions,
    log_dir: PathBuf,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024 * 1024);
    let mut batch: Vec<AppendRequest> = Vec::new();
    let mut acks: Vec<AppendAck> = Vec::new();
    let mut new_index: Vec<IndexEntry> = Vec::new();
    let mut roll_failures = 0u64;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        if let Err(e) = active.repair() {
            refuse(&shard, &mut batch, &e, &active, &log_dir);
            continue;
        }
        if active.size >= options.segment_bytes && active.next_offset > active.base_offset {
            match roll(&shard, &mut active) {
                Ok(()) if roll_failures > 0 => {
                    info!(stream = %shard.stream, shard = %shard.id, failed_attempts = roll_failures, "segment rolled after failed attempts");
                    roll_failures = 0;
                }
                Ok(()) => {}
                Err(e) => {
                    if roll_failures == 0 {
                        error!(stream = %shard.stream, shard = %shard.id, error = %e, "segment roll failed; appending to the current segment and retrying before each batch");
                    } else {
                        debug!(stream = %shard.stream, shard = %shard.id, error = %e, "segment roll failed again");
                    }
                    roll_failures += 1;
                }
            }
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
        let mut synced_before = active.synced;
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
                        std::mem::take(&mut synced_before),
                    );
                    offset += 1;
                }
            }
            outcome = active.write(&buf[start..], start as u64);
            while records < MAX_BATCH_RECORDS {
                let Ok(next) = rx.try_recv() else { break };
                records += next.entries.len();
                batch.push(next);
            }
        }
        if outcome.is_ok() && options.durability == Durability::Fsync {
            outcome = active.sync();
            shard.syncs.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = outcome {
            // Cut what was written now, so the refused records leave nothing behind even if
            // no other request comes; if the cut fails, the next batch tries it first.
            if let Err(cut) = active.repair() {
                error!(file = %active.path.display(), error = %cut, "could not cut back a failed write; retrying before the next batch");
            }
            refuse(&shard, &mut batch, &e, &active, &log_dir);
            continue;
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
    if !active.dirty
        && let Err(e) = active.sync()
    {
        error!(stream = %shard.stream, shard = %shard.id, error = %e, "final sync failed");
    }
    active.store_index();
}

/// Answers every request of `batch` with [`LogError::AppendRefused`] for `e`.
fn refuse(
    shard: &Shard,
    batch: &mut Vec<AppendRequest>,
    e: &std::io::Error,
    active: &ActiveSegment,
    log_dir: &std::path::Path,
) {
    let detail = LogError::refusal_detail(e, &active.path, log_dir);
    error!(stream = %shard.stream, shard = %shard.id, requests = batch.len(), error = %detail, "append batch refused");
    for req in batch.drain(..) {
        let _ = req.ack.send(Err(LogError::AppendRefused {
            stream: shard.stream.clone(),
            shard: shard.id.to_string(),
            detail: detail.clone(),
        }));
    }
}

/// Seals the active segment and starts the next one in its place. On failure nothing has
/// changed: the same segment stays active.
fn roll(shard: &Shard, active: &mut ActiveSegment) -> Result<(), LogError> {
    let base = active.next_offset;
    if !active.synced {
        active.sync().map_err(|e| LogError::io(&active.path, e))?;
        shard.syncs.fetch_add(1, Ordering::Relaxed);
    }
    let next = ActiveSegment::create(&shard.dir, base)?;
    active.store_index();
    {
        let mut view = shard.write_view();
        if let Some(sealed) = view.segments.last_mut() {
            sealed.file = None;
        }
        let mut seg = SegmentView::new(&next.path, base);
        seg.file = Some(next.file.clone());
        view.segments.push(seg);
    }
    *active = next;
    debug!(stream = %shard.stream, shard = %shard.id, base, "segment rolled");
    Ok(())
}
