//! Retention: deleting whole sealed segments whose newest record is older than the stream's
//! retention period, and closed shards (see `reshard`) that closed longer ago than it.
//!
//! Invariants: the active (newest) segment of a shard is never deleted; segments go oldest
//! first, and only while every record in them is older than `now - retention` on the log's
//! clock; the trim horizon is then the base offset of the oldest remaining segment. Segments
//! leave the shard's view under its lock before their files are removed, so a reader either
//! finds a segment whole (an unlinked file stays readable through an open handle) or moves on
//! to the trim horizon. A deleted segment's cached read handle is closed before its file is
//! unlinked, so its disk space is given back once reads in progress end. Each pass also closes
//! cached read handles left unused past [`crate::LogOptions::sealed_handle_idle`].

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::{info, warn};

use crate::error::LogError;
use crate::log::Inner;

/// How often the background task enforces retention.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// What a retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Sealed segment files deleted.
    pub segments_deleted: usize,
    /// Records in them.
    pub records_deleted: u64,
    /// Bytes in them.
    pub bytes_deleted: u64,
    /// Closed shards (split or merged) dropped whole: they closed longer ago than the
    /// retention period, so every record in them is past it.
    pub shards_dropped: usize,
}

pub(crate) fn enforce(inner: &Inner) -> Result<RetentionReport, LogError> {
    let now = inner.options.clock.now_ms();
    let streams: Vec<_> = inner
        .streams
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    let mut report = RetentionReport::default();
    for s in streams {
        let cutoff = now - i64::from(s.retention_hours.load(Ordering::Acquire)) * 3_600_000;
        for h in &s.shards {
            let removed: Vec<_> = {
                let mut view = h.shard.write_view();
                let n = view
                    .segments
                    .iter()
                    .take(view.segments.len().saturating_sub(1))
                    .take_while(|seg| seg.last_arrival_ms.is_some_and(|a| a < cutoff))
                    .count();
                view.segments.drain(..n).collect()
            };
            for seg in removed {
                report.segments_deleted += 1;
                report.records_deleted += seg.next_offset - seg.base_offset;
                report.bytes_deleted += seg.end;
                let idx = seg.path.with_extension("idx");
                h.shard.handles.forget(&seg.path);
                std::fs::remove_file(&*seg.path).map_err(|e| LogError::io(&*seg.path, e))?;
                if let Err(e) = std::fs::remove_file(&idx) {
                    warn!(file = %idx.display(), error = %e, "could not remove index of a deleted segment");
                }
                info!(stream = %s.meta.name, shard = %h.shard.id, base = seg.base_offset, "segment deleted by retention");
            }
        }
    }
    inner.handles.close_idle();
    Ok(report)
}

pub(crate) async fn run_every_interval(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(RETENTION_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = crate::reshard::drop_expired(&inner).await {
            warn!(error = %e, "dropping closed shards past retention failed");
        }
        let result = tokio::task::spawn_blocking(move || enforce(&inner)).await;
        if let Ok(Err(e)) = result {
            warn!(error = %e, "retention pass failed");
        }
    }
}
