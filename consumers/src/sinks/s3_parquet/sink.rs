//! [`S3ParquetSink`]: per-shard buffers flushed to Parquet objects through the manifest's
//! commit protocol (see the module docs of [`super`]).

use async_trait::async_trait;
use shardline_core::ports::ObjectStore;
use shardline_core::{Error, Result, SequenceNumber, ShardId};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use super::config::S3ParquetConfig;
use super::flush::{FlightError, StagedObject, encode_objects, put_objects, stage};
use super::manifest::{ManifestEntry, ShardManifest, is_fenced};
use super::span::Span;
use super::writer;
use crate::sink::records_after;
use crate::sinks::buffer::OVERDUE;
use crate::{Sink, SinkRecord};

/// Counters of what the sink wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct S3SinkStats {
    /// Flushes committed.
    pub flushes: u64,
    /// Objects written (Parquet and JSON Lines).
    pub objects: u64,
    /// Rows written to Parquet.
    pub rows: u64,
    /// Bytes of Parquet written.
    pub parquet_bytes: u64,
    /// Records skipped because a committed range already held them (replays).
    pub skipped_covered: u64,
}

/// One shard's buffer and manifest.
#[derive(Debug)]
pub(super) struct ShardBuffer {
    pub(super) manifest: ShardManifest,
    pub(super) records: Vec<SinkRecord>,
    bytes: u64,
    opened_ms: Option<i64>,
    /// The highest sequence number accepted (buffered or found covered).
    last_seen: Option<SequenceNumber>,
    /// The highest sequence number reported durable to the runtime.
    reported: Option<SequenceNumber>,
    /// Covered records seen while the buffer was empty and no flush was under way: durable
    /// already.
    covered_through: Option<SequenceNumber>,
    /// The last record of the latest committed flush.
    committed: Option<SequenceNumber>,
    /// The flush whose objects are being written, if any (at most one per shard: the
    /// manifest holds one pending entry).
    flight: Option<Flight>,
    /// Set when a flush task died with its records: the shard takes nothing more.
    failed: Option<String>,
}

/// A shard's flush under way: staged in the manifest (step 1), its objects being built,
/// encoded and written in the background (step 2) while the shard's next records fill the
/// buffer.
#[derive(Debug)]
struct Flight {
    /// Start order among the sink's flushes.
    started: u64,
    entry: ManifestEntry,
    state: FlightState,
    /// Parquet bytes put by an earlier attempt whose commit failed (counted when committed).
    written: u64,
}

#[derive(Debug)]
enum FlightState {
    /// Encoding and writing; Parquet bytes written when done.
    Running(JoinHandle<std::result::Result<u64, FlightError>>),
    /// Encoded, and a put failed: the objects are put again (same keys, same bodies) before
    /// anything else of the shard is flushed.
    Unwritten(Vec<StagedObject>),
}

/// Writes metric events as Parquet objects, exactly once per record across replays.
///
/// A due buffer is staged (step 1 of the commit protocol) and its objects are built, encoded
/// and written on other threads (step 2) while the runtime hands on the next records; the
/// flush is committed (step 3) when the shard's next write, flush or due buffer finds it
/// done. A shard has at most one flush under way, so a shard due again waits for its last
/// one; different shards' flushes run at the same time (a forced flush starts them all,
/// then waits for them).
pub struct S3ParquetSink {
    config: S3ParquetConfig,
    store: Arc<dyn ObjectStore>,
    shards: BTreeMap<ShardId, ShardBuffer>,
    /// Per shard, the stretch handed on so far (see [`super::span`]).
    spans: BTreeMap<ShardId, Span>,
    bucket_ready: bool,
    stats: S3SinkStats,
    /// Flushes started so far (orders the flights).
    flights_started: u64,
}

impl std::fmt::Debug for S3ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ParquetSink")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Approximate in-memory size of a record, for the buffer-size threshold.
fn record_bytes(r: &SinkRecord) -> u64 {
    let e = &r.event;
    (e.metric_id.len()
        + e.instance_id.len()
        + e.region.len()
        + e.collected_at.len()
        + r.sequence_number.as_str().len()
        + 64) as u64
}

impl S3ParquetSink {
    /// A sink writing to `store` as configured.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a bad setting.
    pub fn new(config: S3ParquetConfig, store: Arc<dyn ObjectStore>) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            store,
            shards: BTreeMap::new(),
            spans: BTreeMap::new(),
            bucket_ready: false,
            stats: S3SinkStats::default(),
            flights_started: 0,
        })
    }

    /// What the sink has written so far.
    pub fn stats(&self) -> S3SinkStats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &S3ParquetConfig {
        &self.config
    }

    /// Loads (and reconciles) a shard's manifest the first time the shard is seen.
    async fn shard(&mut self, shard: ShardId) -> Result<&mut ShardBuffer> {
        if !self.bucket_ready {
            self.store.ensure_bucket(&self.config.bucket).await?;
            self.bucket_ready = true;
        }
        if !self.shards.contains_key(&shard) {
            let (bucket, prefix) = (&self.config.bucket, &self.config.prefix);
            let mut manifest =
                ShardManifest::load(self.store.as_ref(), bucket, prefix, shard).await?;
            manifest
                .reconcile(self.store.as_ref(), bucket, prefix)
                .await?;
            debug!(shard = %shard, ranges = manifest.ranges().len(), rows = manifest.rows(), "manifest loaded");
            self.shards.insert(
                shard,
                ShardBuffer {
                    manifest,
                    records: Vec::new(),
                    bytes: 0,
                    opened_ms: None,
                    last_seen: None,
                    reported: None,
                    covered_through: None,
                    committed: None,
                    flight: None,
                    failed: None,
                },
            );
        }
        let buf = self
            .shards
            .get_mut(&shard)
            .ok_or_else(|| Error::Internal(format!("{shard} buffer missing")))?;
        if let Some(failed) = &buf.failed {
            return Err(Error::Internal(format!(
                "{failed}; restart the consumer to read on from its checkpoint"
            )));
        }
        Ok(buf)
    }

    fn due(&self, buf: &ShardBuffer, now_ms: i64) -> bool {
        buf.bytes >= self.config.buffer_size
            || buf.opened_ms.is_some_and(|t| {
                now_ms.saturating_sub(t) >= self.config.buffer_interval.as_millis() as i64
            })
    }

    /// The durable mark to report for a shard, if it moved: everything taken in when nothing
    /// is buffered or under way, else the last committed flush or covered record.
    fn advance_reported(buf: &mut ShardBuffer) -> Option<SequenceNumber> {
        let durable = if buf.records.is_empty() && buf.flight.is_none() {
            buf.last_seen.clone()
        } else {
            buf.covered_through.clone().max(buf.committed.clone())
        }?;
        if buf.reported.as_ref() >= Some(&durable) {
            return None;
        }
        buf.reported = Some(durable.clone());
        Some(durable)
    }

    /// Stages a shard's buffer and starts writing its objects in the background, after
    /// finishing the shard's flush under way, if any, and the oldest others while `limit` or
    /// more are under way.
    async fn start_flush(&mut self, shard: ShardId, limit: usize) -> Result<()> {
        self.finish_flight(shard, false).await?;
        loop {
            let flights = self
                .shards
                .iter()
                .filter_map(|(id, b)| b.flight.as_ref().map(|f| (f.started, *id)));
            let count = flights.clone().count();
            if count < limit {
                break;
            }
            let Some((_, oldest)) = flights.min() else {
                break;
            };
            self.finish_flight(oldest, false).await?;
        }
        let cfg = self.config.clone();
        let store = Arc::clone(&self.store);
        self.flights_started += 1;
        let started = self.flights_started;
        let buf = self.shard(shard).await?;
        if buf.records.is_empty() {
            return Ok(());
        }
        let staged = match stage(&cfg, store.as_ref(), shard, buf).await {
            Ok(staged) => staged,
            Err(e) => {
                if is_fenced(&e) {
                    buf.failed = Some(e.to_string());
                }
                return Err(e);
            }
        };
        buf.bytes = 0;
        buf.opened_ms = None;
        buf.covered_through = None;
        let Some((entry, days)) = staged else {
            return Ok(());
        };
        let records = std::mem::take(&mut buf.records);
        let task = tokio::spawn(async move {
            // The records are released once encoded: a failed put is retried with the objects.
            let objects = encode_objects(&cfg, records, days, shard).await?;
            put_objects(store.as_ref(), &cfg.bucket, objects).await
        });
        buf.flight = Some(Flight {
            started,
            entry,
            state: FlightState::Running(task),
            written: 0,
        });
        Ok(())
    }

    /// Commits a shard's flush under way once its objects are written (`only_done`: only if
    /// that is done already, without waiting); puts again the objects of one whose put
    /// failed. On failure the error is returned and the entry stays pending: objects not
    /// written are kept and put again by the next call; records not encoded go back to the
    /// front of the buffer, due at once (the next flush reconciles the entry and stages them
    /// again).
    async fn finish_flight(&mut self, shard: ShardId, only_done: bool) -> Result<()> {
        let (store, bucket, prefix) = (
            Arc::clone(&self.store),
            &self.config.bucket,
            &self.config.prefix,
        );
        let Some(buf) = self.shards.get_mut(&shard) else {
            return Ok(());
        };
        let Some(flight) = buf.flight.take_if(|f| match &f.state {
            FlightState::Running(task) => !only_done || task.is_finished(),
            FlightState::Unwritten(_) => true,
        }) else {
            return Ok(());
        };
        let outcome = match flight.state {
            FlightState::Running(task) => match task.await {
                Ok(outcome) => outcome,
                Err(e) => {
                    // Neither records nor objects came back: the shard cannot go on without
                    // losing them. Its entry stays pending; a restart reads it again from the
                    // checkpoint, which never passed them.
                    let failed = format!("parquet flush task of {shard} failed: {e}");
                    let err = Error::Internal(format!(
                        "{failed}; restart the consumer to read on from its checkpoint"
                    ));
                    buf.failed = Some(failed);
                    return Err(err);
                }
            },
            FlightState::Unwritten(objects) => put_objects(store.as_ref(), bucket, objects).await,
        };
        let written = match outcome {
            Ok(bytes) => flight.written + bytes,
            Err(FlightError::Put(e, objects)) => {
                buf.flight = Some(Flight {
                    state: FlightState::Unwritten(objects),
                    ..flight
                });
                return Err(e);
            }
            Err(FlightError::Encode(e, mut records)) => {
                buf.bytes += records.iter().map(record_bytes).sum::<u64>();
                records.append(&mut buf.records);
                buf.records = records;
                buf.opened_ms = Some(OVERDUE);
                return Err(e);
            }
        };
        let before = buf.manifest.clone();
        let span = self.spans.get(&shard);
        buf.manifest
            .commit_pending(span.and_then(|s| s.claim(&flight.entry.first)));
        if buf.records.is_empty()
            && let Some((start, through)) = span.and_then(Span::open)
        {
            // Nothing else handed is waiting: the stretch is committed through its end.
            buf.manifest.add_range(start, through);
        }
        if let Err(e) = buf.manifest.save(store.as_ref(), bucket, prefix).await {
            if is_fenced(&e) {
                // Another writer owns the shard now: it writes these records again.
                buf.failed = Some(e.to_string());
                ShardManifest::discard_fenced(store.as_ref(), bucket, prefix, shard, &flight.entry)
                    .await;
                return Err(e);
            }
            // Not committed after all: the next flush reconciles the entry (its objects all
            // exist, so it is adopted).
            buf.manifest = before;
            buf.flight = Some(Flight {
                state: FlightState::Unwritten(Vec::new()),
                written,
                ..flight
            });
            return Err(e);
        }
        let entry = flight.entry;
        info!(shard = %shard, first = %entry.first, last = %entry.last, rows = entry.rows, objects = entry.objects.len(), "flushed");
        buf.committed = Some(entry.last);
        self.stats.flushes += 1;
        self.stats.objects += entry.objects.len() as u64;
        self.stats.rows += entry.rows;
        self.stats.parquet_bytes += written;
        Ok(())
    }
}

impl Drop for S3ParquetSink {
    /// Flushes under way stop at their next step; their entries stay pending and are
    /// reconciled when the shard is next opened.
    fn drop(&mut self) {
        for buf in self.shards.values() {
            if let Some(Flight {
                state: FlightState::Running(task),
                ..
            }) = &buf.flight
            {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
impl S3ParquetSink {
    /// Runs steps 1 and 2 of the commit protocol and stops, as a crash before the manifest
    /// commit would.
    pub(super) async fn flush_without_commit(&mut self, shard: ShardId) -> Result<()> {
        let cfg = self.config.clone();
        let store = Arc::clone(&self.store);
        let buf = self.shard(shard).await?;
        if let Some((_, days)) = stage(&cfg, store.as_ref(), shard, buf).await? {
            let objects = encode_objects(&cfg, buf.records.clone(), days, shard)
                .await
                .map_err(FlightError::into_error)?;
            put_objects(store.as_ref(), &cfg.bucket, objects)
                .await
                .map_err(FlightError::into_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for S3ParquetSink {
    fn name(&self) -> &str {
        "s3"
    }

    async fn write(
        &mut self,
        shard: ShardId,
        records: &[SinkRecord],
        now_ms: i64,
    ) -> Result<Option<SequenceNumber>> {
        let buf = self.shard(shard).await?;
        // Records come in sequence order. Those up to the last one taken were handed before
        // (a retry): already buffered or covered.
        let new = records_after(records, buf.last_seen.as_ref());
        if let Some(last) = new.last() {
            buf.last_seen = Some(last.sequence_number.clone());
        }
        // Records after every committed object's range are not covered (the usual case).
        let uncovered = records_after(new, buf.manifest.covered_to());
        let maybe_covered = &new[..new.len() - uncovered.len()];
        let mut skipped = 0;
        for r in maybe_covered {
            if buf.manifest.covers(&r.sequence_number) {
                skipped += 1;
                if buf.records.is_empty() && buf.flight.is_none() {
                    buf.covered_through = Some(r.sequence_number.clone());
                }
                continue;
            }
            buf.bytes += record_bytes(r);
            buf.opened_ms.get_or_insert(now_ms);
            buf.records.push(r.clone());
        }
        if !uncovered.is_empty() {
            buf.bytes += uncovered.iter().map(record_bytes).sum::<u64>();
            buf.opened_ms.get_or_insert(now_ms);
            buf.records.extend_from_slice(uncovered);
        }
        self.stats.skipped_covered += skipped;
        let due = self.shards.get(&shard).is_some_and(|b| self.due(b, now_ms));
        if due {
            self.start_flush(shard, self.config.flushes_in_flight)
                .await?;
        } else {
            self.finish_flight(shard, true).await?;
        }
        let buf = self.shard(shard).await?;
        Ok(Self::advance_reported(buf))
    }

    async fn flush(&mut self, now_ms: i64, force: bool) -> Result<Vec<(ShardId, SequenceNumber)>> {
        let due: Vec<ShardId> = self
            .shards
            .iter()
            .filter(|(_, b)| !b.records.is_empty() && (force || self.due(b, now_ms)))
            .map(|(id, _)| *id)
            .collect();
        let shards: Vec<ShardId> = self.shards.keys().copied().collect();
        for &shard in &shards {
            self.finish_flight(shard, true).await?;
        }
        // A forced flush (a drain, a shutdown) writes the buffers of up to one shard per core
        // at once: nothing else is left to use the cores.
        let limit = if force {
            self.config.flushes_in_flight.max(writer::encode_threads())
        } else {
            self.config.flushes_in_flight
        };
        for shard in due {
            self.start_flush(shard, limit).await?;
        }
        if force {
            for &shard in &shards {
                self.finish_flight(shard, false).await?;
            }
            self.commit_spans().await?;
        }
        Ok(self
            .shards
            .iter_mut()
            .filter_map(|(id, b)| Self::advance_reported(b).map(|s| (*id, s)))
            .collect())
    }

    fn handed(
        &mut self,
        shard: ShardId,
        after: Option<&SequenceNumber>,
        first: &SequenceNumber,
        last: &SequenceNumber,
    ) {
        let quiet = self
            .shards
            .get(&shard)
            .is_none_or(|b| b.records.is_empty() && b.flight.is_none());
        let mut span = self.spans.remove(&shard);
        Span::handed(&mut span, after, first, last, quiet);
        if let Some(span) = span {
            self.spans.insert(shard, span);
        }
    }
}

impl S3ParquetSink {
    /// For each shard with nothing buffered or under way, records its whole handed stretch
    /// (dead letters after the last flush included) in the manifest, when that adds to it.
    async fn commit_spans(&mut self) -> Result<()> {
        let (store, bucket, prefix) = (
            Arc::clone(&self.store),
            &self.config.bucket,
            &self.config.prefix,
        );
        for (shard, span) in &self.spans {
            let Some((start, through)) = span.open() else {
                continue;
            };
            let Some(buf) = self.shards.get_mut(shard) else {
                continue;
            };
            if !buf.records.is_empty() || buf.flight.is_some() || buf.manifest.pending.is_some() {
                continue;
            }
            let mut extended = buf.manifest.clone();
            extended.add_range(start, through);
            if extended != buf.manifest {
                extended.save(store.as_ref(), bucket, prefix).await?;
                buf.manifest = extended;
            }
        }
        Ok(())
    }
}
