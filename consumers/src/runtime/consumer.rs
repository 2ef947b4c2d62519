//! [`Consumer`]: the loop that drives reading, flushing and checkpointing.

use shardline_core::ports::{CheckpointKey, CheckpointStore, DeadLetterStore, Stream};
use shardline_core::time::{Clock, SystemClock};
use shardline_core::{SequenceNumber, ShardId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info};

use super::config::ConsumerConfig;
use super::error::{ConsumerError, Result};
use super::lease::LeaseSet;
use super::quarantine::Quarantine;
use super::retry::{self, Track, with_retry};
use super::shard::ShardState;
use super::share::{Seat, SharedReads};
use super::status::{ConsumerReport, ConsumerState, ConsumerStatus, InFlight};
use crate::Sink;

/// Reads one stream into one sink, checkpointing what the sink made durable.
pub struct Consumer {
    pub(super) config: ConsumerConfig,
    pub(super) stream: Arc<dyn Stream>,
    pub(super) checkpoints: Arc<dyn CheckpointStore>,
    pub(super) dead_letters: Arc<dyn DeadLetterStore>,
    pub(super) sink: Box<dyn Sink>,
    pub(super) status: Arc<ConsumerStatus>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) shards: BTreeMap<ShardId, ShardState>,
    pub(super) worker_id: String,
    /// The shutdown signal while [`Consumer::run`] runs: failed calls are not retried once
    /// it is set.
    pub(super) stop: Option<watch::Receiver<bool>>,
    /// Its place among the consumers sharing reads, if it shares.
    pub(super) seat: Option<Seat>,
    /// Records that made the sink panic, kept by the supervisor across restarts.
    pub(super) quarantine: Arc<Mutex<Quarantine>>,
    /// The shards this consumer may read when a lease worker runs it (all shards when `None`).
    pub(super) leases: Option<Arc<LeaseSet>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.config.name)
            .field("stream", &self.config.stream)
            .field("sink", &self.sink.name())
            .field("shares_reads", &self.seat.is_some())
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer of `config.stream` feeding `sink`.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] when the configuration cannot run (the message names the
    /// setting).
    pub fn new(
        config: ConsumerConfig,
        stream: Arc<dyn Stream>,
        checkpoints: Arc<dyn CheckpointStore>,
        dead_letters: Arc<dyn DeadLetterStore>,
        sink: Box<dyn Sink>,
    ) -> Result<Self> {
        config.validate()?;
        let worker_id = format!("{}@{}", config.name, std::process::id());
        Ok(Self {
            config,
            stream,
            checkpoints,
            dead_letters,
            sink,
            status: Arc::new(ConsumerStatus::default()),
            clock: Arc::new(SystemClock),
            shards: BTreeMap::new(),
            worker_id,
            stop: None,
            seat: None,
            quarantine: Arc::default(),
            leases: None,
        })
    }

    /// Reads only the shards `leases` owns, and stops with [`ConsumerError::LeaseLost`] as
    /// soon as a shard it reads is lost (see [`super::lease`]).
    pub fn with_leases(mut self, leases: Arc<LeaseSet>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Fails with [`ConsumerError::LeaseLost`] when a shard this consumer holds state for was
    /// lost: nothing more is written for it.
    pub(super) fn check_leases(&self) -> Result<()> {
        let Some(set) = &self.leases else {
            return Ok(());
        };
        match set.lost_among(self.shards.keys()) {
            Some(shard) => Err(ConsumerError::LeaseLost {
                consumer: self.config.name.clone(),
                shard,
            }),
            None => Ok(()),
        }
    }

    /// The version of the lease set, when leased: shards are listed again when it moves.
    fn lease_version(&self) -> Option<u64> {
        self.leases.as_ref().map(|l| l.version())
    }

    /// Reports into `status` instead of a status of its own: consumers given the same status
    /// add their counters up in it (a replay's consumers of separate shard lineages).
    pub fn with_status(mut self, status: Arc<ConsumerStatus>) -> Self {
        self.status = status;
        self
    }

    /// Reports into `status` and isolates panics with `quarantine`: both outlive this
    /// consumer, so a [`Supervisor`](super::Supervisor)'s restarts carry them on.
    pub(super) fn supervised(
        mut self,
        status: Arc<ConsumerStatus>,
        quarantine: Arc<Mutex<Quarantine>>,
    ) -> Self {
        self.status = status;
        self.quarantine = quarantine;
        self
    }

    pub(super) fn quarantine(&self) -> MutexGuard<'_, Quarantine> {
        // Every critical section leaves the quarantine consistent; a panic elsewhere does not.
        self.quarantine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where a retried call to `call` reports its failures and success.
    pub(super) fn track(&self, call: &'static str) -> Track<'_> {
        Track {
            status: &self.status,
            clock: self.clock.as_ref(),
            call,
        }
    }

    /// Shares reads with the other consumers of `share` (see [`SharedReads`]), unless the
    /// configuration says `share_reads = false`.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] when `share` is for another stream or batch size, or already
    /// has 64 consumers.
    pub fn share_reads(mut self, share: &Arc<SharedReads>) -> Result<Self> {
        if !self.config.share_reads {
            return Ok(self);
        }
        if share.stream() != self.config.stream || share.batch_size() != self.config.batch_size {
            return Err(ConsumerError::Config(format!(
                "consumer {}: reads of stream `{}` with batch_size {} cannot be shared with \
                 consumers of stream `{}` with batch_size {}",
                self.config.name,
                self.config.stream,
                self.config.batch_size,
                share.stream(),
                share.batch_size()
            )));
        }
        if share.event_time() != self.config.event_time_limits() {
            return Err(ConsumerError::Config(format!(
                "consumer {}: its event_time window differs from that of the consumers it \
                 would share reads with; give them the same window or set share_reads = false",
                self.config.name
            )));
        }
        self.seat = Some(share.seat()?);
        Ok(self)
    }

    /// Whether this consumer shares its reads.
    pub fn shares_reads(&self) -> bool {
        self.seat.is_some()
    }

    /// Uses `clock` for the `now_ms` handed to the sink (buffer deadlines) and for timestamps.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The live status, readable while the consumer runs.
    pub fn status(&self) -> Arc<ConsumerStatus> {
        Arc::clone(&self.status)
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The clock handing `now_ms` to the sink.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// Runs until `shutdown` becomes `true` (or its sender is dropped), then flushes the sink
    /// (forced) and checkpoints what became durable. Once `shutdown` is set a failing call
    /// (sink, stream, checkpoint store) is not retried: the consumer stops with that error at
    /// its last checkpoint, and a restart reads on from there (at-least-once, nothing lost).
    ///
    /// # Errors
    /// The error that stopped the consumer; checkpoints written before it stay.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<ConsumerReport> {
        let started = Instant::now();
        self.stop = Some(shutdown.clone());
        info!(consumer = %self.config.name, stream = %self.config.stream, sink = self.sink.name(), "consumer starting");
        let mut last_refresh = Instant::now();
        let mut last_flush = Instant::now();
        let mut lease_version = self.lease_version();
        {
            let r = self.refresh_shards().await;
            self.count(r)?
        };
        while !*shutdown.borrow() {
            let leases_moved = self.lease_version() != lease_version;
            if leases_moved || last_refresh.elapsed() >= self.config.shard_refresh_interval {
                lease_version = self.lease_version();
                {
                    let r = self.refresh_shards().await;
                    self.count(r)?
                };
                last_refresh = Instant::now();
            }
            let pass = {
                let r = self.pass().await;
                self.count(r)?
            };
            if last_flush.elapsed() >= self.config.flush_interval {
                {
                    let r = self.flush(false).await;
                    self.count(r)?
                }
                last_flush = Instant::now();
            }
            if pass.records == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        self.finish(started).await
    }

    /// Processes until every shard is caught up (its last read returned no records and no lag,
    /// or it is closed and fully read), then flushes the sink (forced), checkpoints and returns.
    ///
    /// # Errors
    /// As [`Consumer::run`].
    pub async fn drain(mut self) -> Result<ConsumerReport> {
        let started = Instant::now();
        let mut last_refresh = Instant::now();
        let mut last_flush = Instant::now();
        {
            let r = self.refresh_shards().await;
            self.count(r)?
        };
        loop {
            if last_refresh.elapsed() >= self.config.shard_refresh_interval {
                {
                    let r = self.refresh_shards().await;
                    self.count(r)?
                };
                last_refresh = Instant::now();
            }
            let pass = {
                let r = self.pass().await;
                self.count(r)?
            };
            if last_flush.elapsed() >= self.config.flush_interval {
                {
                    let r = self.flush(false).await;
                    self.count(r)?
                }
                last_flush = Instant::now();
            }
            if pass.records == 0 && pass.all_caught_up {
                break;
            }
            if pass.records == 0 {
                // Lagging but nothing returned (e.g. a gap after retention): wait a little.
                tokio::time::sleep(self.config.poll_interval).await;
            }
        }
        self.finish(started).await
    }

    async fn finish(mut self, started: Instant) -> Result<ConsumerReport> {
        {
            let r = self.flush(true).await;
            self.count(r)?
        }
        self.status.set_state(ConsumerState::Stopped);
        let status = self.status.snapshot();
        info!(
            consumer = %self.config.name,
            records_in = status.records_in,
            dead_letters = status.dead_letters,
            checkpoints = status.checkpoints,
            "consumer stopped"
        );
        Ok(ConsumerReport {
            consumer: self.config.name.clone(),
            sink: self.sink.name().to_string(),
            status,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Counts an error that stops the consumer.
    fn count<T>(&self, out: Result<T>) -> Result<T> {
        if out.is_err() {
            self.status.update(|s| s.errors += 1);
        }
        out
    }

    /// Asks the sink to write out due buffers (all when `force`) and checkpoints what advanced.
    /// A failing flush is retried in place (any error) up to `retry.max_attempts` tries.
    async fn flush(&mut self, force: bool) -> Result<()> {
        self.check_leases()?;
        let now = self.clock.now_ms();
        let name = self.sink.name().to_string();
        let what = format!("flush of sink {name}");
        // The sink is borrowed mutably, so retries run in a loop here rather than a closure.
        let mut attempt = 0;
        let attempt_result = loop {
            self.status.update(|s| s.in_flight = Some(InFlight::Flush));
            let out = self.sink.flush(now, force).await;
            self.status.update(|s| s.in_flight = None);
            let track = Track {
                status: &self.status,
                clock: self.clock.as_ref(),
                call: "sink",
            };
            match out {
                Ok(advanced) => {
                    if attempt > 0 || !advanced.is_empty() {
                        track.succeeded();
                    }
                    break Ok(advanced);
                }
                Err(e) => {
                    track.failed(&e);
                    self.check_leases()?;
                    if !retry::retry_after(
                        &self.config.retry,
                        self.stop.as_ref(),
                        attempt,
                        &e,
                        true,
                        &what,
                    )
                    .await
                    {
                        break Err(e);
                    }
                    track.retried();
                    attempt += 1;
                }
            }
        };
        let advanced =
            attempt_result.map_err(|source| ConsumerError::SinkFlush { sink: name, source })?;
        for (shard, durable) in &advanced {
            if let Some(state) = self.shards.get_mut(shard) {
                state.note_durable(durable);
            }
        }
        let ids: Vec<ShardId> = self.shards.keys().copied().collect();
        for id in ids {
            self.checkpoint(id).await?;
        }
        Ok(())
    }

    /// Writes the shard's checkpoint if the durable mark moved past the last one, and marks a
    /// closed shard finished once everything read from it is checkpointed.
    pub(super) async fn checkpoint(&mut self, id: ShardId) -> Result<()> {
        let target = self.shards.get(&id).and_then(|s| s.checkpoint_target());
        if let Some(target) = target {
            self.write_checkpoint(id, target).await?;
        }
        if let Some(state) = self.shards.get_mut(&id)
            && !state.finished
            && state.end_reached
            && state.all_durable()
            && state.checkpoint_target().is_none()
        {
            state.finished = true;
            info!(shard = %id, "closed shard fully consumed");
            self.status.shard(id, |p| p.finished = true);
        }
        Ok(())
    }

    async fn write_checkpoint(&mut self, id: ShardId, target: SequenceNumber) -> Result<()> {
        let key = CheckpointKey {
            consumer: self.config.name.clone(),
            stream: self.config.stream.clone(),
            shard: id,
        };
        let store = Arc::clone(&self.checkpoints);
        let owner = self.worker_id.clone();
        let written = with_retry(
            &self.config.retry,
            self.stop.as_ref(),
            self.track("checkpoint store"),
            "checkpoint",
            || {
                let (store, key, target, owner) = (
                    Arc::clone(&store),
                    key.clone(),
                    target.clone(),
                    owner.clone(),
                );
                async move { store.put(&key, &target, Some(&owner), None).await }
            },
        )
        .await
        .map_err(|source| ConsumerError::Checkpoint { shard: id, source })?;
        if let Some(state) = self.shards.get_mut(&id) {
            state.checkpointed = Some(written.sequence_number.clone());
        }
        debug!(shard = %id, sequence_number = %target, "checkpointed");
        self.status.update(|s| {
            s.checkpoints += 1;
            s.last_checkpoint_ms = Some(written.updated_ms);
            s.shards.entry(id).or_default().checkpointed = Some(target);
        });
        Ok(())
    }

    /// The sequence number checkpointed for `shard`, as this consumer knows it.
    pub fn checkpointed(&self, shard: ShardId) -> Option<&SequenceNumber> {
        self.shards
            .get(&shard)
            .and_then(|s| s.checkpointed.as_ref())
    }
}
