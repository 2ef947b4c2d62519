//! [`LeaseWorker`]: one consumer run over the shards whose lease this worker holds.
//!
//! Two loops share the worker's [`HeldLeases`]:
//! - the **renewer** renews every held lease and beats the heartbeat each `renew_interval`,
//!   and gives up every lease once renewals failed for `failover_time - renew_interval`;
//! - the **planner** lists the shards and leases each `renew_interval`, creates missing
//!   leases, writes `SHARD_END` for closed shards its consumer finished, and takes or lets go
//!   of leases as [`super::plan`] decides.
//!
//! The consumer runs under a [`Supervisor`] (a "generation"). Taking a lease needs no restart:
//! the consumer adopts the shard at its next listing. Letting go of leases stops the
//! generation gracefully first (final flush and checkpoints), then releases them and starts a
//! new generation. A lost lease stops the consumer at once (see [`super::LeaseSet`]); its
//! supervisor starts it again without the shard.

use serde::Serialize;
use shardline_core::ShardId;
use shardline_core::lease::{LeaseCheckpoint, LeaseStore};
use shardline_core::ports::{CheckpointKey, CheckpointStore, StateStore, Stream};
use shardline_core::stream::ShardDescription;
use shardline_core::{Result as PortResult, StartingPosition};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::config::LeaseConfig;
use super::held::{HeldLeases, LeasedCheckpoints, Outcome};
use super::plan::{Observer, Round, plan};
use super::registry::Registry;
use super::set::LeaseSet;
use crate::runtime::config::ConsumerConfig;
use crate::runtime::consumer::Consumer;
use crate::runtime::error::Result;
use crate::runtime::status::{ConsumerReport, ConsumerStatus};
use crate::runtime::supervise::Supervisor;

/// Builds a fresh consumer (its sink included) that checkpoints through the given store.
pub type LeasedFactory =
    Box<dyn FnMut(Arc<dyn CheckpointStore>) -> Result<Consumer> + Send + 'static>;

/// Receives the worker's ownership events (the ownership log).
pub type EventSink = Arc<dyn Fn(&LeaseEvent) + Send + Sync>;

/// A change of ownership, as this worker made or noticed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseEvent {
    /// The consumer.
    pub consumer: String,
    /// The shard.
    pub shard: ShardId,
    /// This worker.
    pub worker: String,
    /// What happened.
    pub kind: LeaseEventKind,
    /// When, epoch milliseconds (this machine's clock).
    pub at_ms: i64,
    /// The lease counter after the change (0 when unknown).
    pub counter: u64,
}

/// What happened to a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum LeaseEventKind {
    /// This worker took it: free, or from a worker whose lease expired.
    Took {
        /// The previous owner, if any.
        from: Option<String>,
        /// How long this worker saw the lease unchanged before taking it.
        unchanged_ms: u64,
    },
    /// This worker let go of it after its final checkpoint.
    Released,
    /// Another worker has it now, or it could not be renewed in time: this worker stopped
    /// writing for it.
    Lost {
        /// Why.
        why: String,
    },
    /// The shard is closed and fully processed: `SHARD_END`, children recorded.
    Finished,
}

impl std::fmt::Display for LeaseEvent {
    /// `lease <consumer> <shard> <event> by <worker> at <ms> counter <n>[: detail]`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (event, detail) = match &self.kind {
            LeaseEventKind::Took { from, unchanged_ms } => (
                "took",
                match from {
                    Some(from) => format!(": from {from}, unchanged for {unchanged_ms} ms"),
                    None => ": free".to_string(),
                },
            ),
            LeaseEventKind::Released => ("released", String::new()),
            LeaseEventKind::Lost { why } => ("lost", format!(": {why}")),
            LeaseEventKind::Finished => ("finished", String::new()),
        };
        write!(
            f,
            "lease {} {} {event} by {} at {} counter {}{detail}",
            self.consumer, self.shard, self.worker, self.at_ms, self.counter
        )
    }
}

/// What a worker did, when it stops.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    /// The consumer.
    pub consumer: String,
    /// This worker.
    pub worker: String,
    /// The last generation's report (its counters add up every generation's).
    pub report: Option<ConsumerReport>,
    /// Leases taken, released, lost, finished.
    pub taken: u64,
    /// Leases released.
    pub released: u64,
    /// Leases lost.
    pub lost: u64,
    /// Leases finished (`SHARD_END`).
    pub finished: u64,
}

/// The stores and stream a worker uses.
#[derive(Clone)]
pub struct LeaseBackends {
    /// The stream.
    pub stream: Arc<dyn Stream>,
    /// The leases.
    pub leases: Arc<dyn LeaseStore>,
    /// The consumer's checkpoints outside leases (where a new lease starts from).
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// Where heartbeats go.
    pub state: Arc<dyn StateStore>,
}

/// Runs one consumer over the shards it holds leases on. See the module docs.
pub struct LeaseWorker {
    config: LeaseConfig,
    consumer: ConsumerConfig,
    backends: LeaseBackends,
    me: String,
    set: Arc<LeaseSet>,
    held: Arc<HeldLeases>,
    factory: Arc<std::sync::Mutex<LeasedFactory>>,
    status: Arc<ConsumerStatus>,
    events: Option<EventSink>,
    report: Arc<std::sync::Mutex<WorkerReport>>,
}

impl std::fmt::Debug for LeaseWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseWorker")
            .field("consumer", &self.consumer.name)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// A worker id: this host, this process and a random part, e.g. `box1-4242-9f3a1c07`.
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

struct Generation {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<ConsumerReport>>,
}

impl LeaseWorker {
    /// A worker `me` (see [`worker_id`]) for the consumer `consumer` describes, whose
    /// consumers `factory` builds.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] for lease settings that cannot work.
    pub fn new(
        config: LeaseConfig,
        consumer: ConsumerConfig,
        backends: LeaseBackends,
        me: String,
        factory: LeasedFactory,
    ) -> Result<Self> {
        config.validate()?;
        consumer.validate()?;
        let set = Arc::new(LeaseSet::new());
        let held = Arc::new(HeldLeases::new(
            &me,
            &consumer.name,
            &consumer.stream,
            Arc::clone(&backends.leases),
            Arc::clone(&set),
        ));
        let report = WorkerReport {
            consumer: consumer.name.clone(),
            worker: me.clone(),
            ..WorkerReport::default()
        };
        Ok(LeaseWorker {
            config,
            consumer,
            backends,
            me,
            set,
            held,
            factory: Arc::new(std::sync::Mutex::new(factory)),
            status: Arc::new(ConsumerStatus::default()),
            events: None,
            report: Arc::new(std::sync::Mutex::new(report)),
        })
    }

    /// Sends every ownership event to `sink` too (they are logged with tracing anyway).
    pub fn with_events(mut self, sink: EventSink) -> Self {
        self.events = Some(sink);
        self
    }

    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.me
    }

    /// The consumer's live status, the same across generations.
    pub fn status(&self) -> Arc<ConsumerStatus> {
        Arc::clone(&self.status)
    }

    /// The shards held now.
    pub fn owned(&self) -> BTreeSet<ShardId> {
        self.set.owned()
    }

    fn emit(&self, shard: ShardId, kind: LeaseEventKind, counter: u64) {
        emit(
            &self.events,
            &self.report,
            LeaseEvent {
                consumer: self.consumer.name.clone(),
                shard,
                worker: self.me.clone(),
                kind,
                at_ms: shardline_core::time::now_ms(),
                counter,
            },
        );
    }

    /// Runs until `shutdown` becomes `true`, then stops the consumer (final flush and
    /// checkpoints) and releases every lease.
    ///
    /// # Errors
    /// Only when the consumer cannot be built at all; store and stream failures of a round
    /// are logged and the round tried again.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<WorkerReport> {
        info!(consumer = %self.consumer.name, worker = %self.me, "lease worker starting");
        let registry = Arc::new(Mutex::new(Registry::new(
            Arc::clone(&self.backends.state),
            &self.config.workers_namespace,
            &self.consumer.name,
            &self.consumer.stream,
            &self.me,
        )));
        if let Err(e) = registry.lock().await.beat().await {
            warn!(worker = %self.me, error = %e, "heartbeat not written");
        }
        let (renewer_stop, renewer_rx) = watch::channel(false);
        let renewer = tokio::spawn(renew_loop(
            Arc::clone(&self.held),
            Arc::clone(&registry),
            self.config.clone(),
            self.consumer.name.clone(),
            self.events.clone(),
            Arc::clone(&self.report),
            renewer_rx,
        ));
        let mut observer = Observer::default();
        let mut generation: Option<Generation> = None;
        while !*shutdown.borrow() {
            if let Err(e) = self.round(&mut observer, &registry, &mut generation).await {
                warn!(consumer = %self.consumer.name, worker = %self.me, error = %e, "lease round failed; trying again");
            }
            if generation.is_none() && !self.set.owned().is_empty() {
                generation = Some(self.start_generation()?);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.renew_interval) => {}
                changed = shutdown.changed() => if changed.is_err() { break },
            }
        }
        // Final checkpoints first, then let go of the leases.
        if let Some(g) = generation.take() {
            self.stop_generation(g).await;
        }
        for shard in self.held.shards().await {
            self.release(shard).await;
        }
        let _ = renewer_stop.send(true);
        let _ = renewer.await;
        if let Err(e) = registry.lock().await.leave().await {
            warn!(worker = %self.me, error = %e, "heartbeat not removed; it expires by itself");
        }
        let report = self.report.lock().map(|r| r.clone()).unwrap_or_default();
        info!(consumer = %self.consumer.name, worker = %self.me, "lease worker stopped");
        Ok(report)
    }

    /// One planning round (see the module docs).
    async fn round(
        &self,
        observer: &mut Observer,
        registry: &Mutex<Registry>,
        generation: &mut Option<Generation>,
    ) -> PortResult<()> {
        let stream = &self.consumer.stream;
        let shards = self.backends.stream.list_shards(stream).await?;
        self.create_missing(&shards).await?;
        let leases = self
            .backends
            .leases
            .list_leases(&self.consumer.name, stream)
            .await?;
        self.finish_ended(&shards, &leases).await;
        let now = Instant::now();
        observer.observe(&leases, now);
        let live = registry
            .lock()
            .await
            .live(now, self.config.failover_time)
            .await?;
        let blocked: BTreeSet<ShardId> = leases
            .iter()
            .map(|l| l.key.shard)
            .filter(|s| self.set.is_lost(*s))
            .collect();
        let decided = plan(&Round {
            me: &self.me,
            leases: &leases,
            live_workers: live,
            blocked: &blocked,
            failover: self.config.failover_time,
            observer,
            now,
        });
        if !decided.shed.is_empty() {
            info!(consumer = %self.consumer.name, worker = %self.me, target = decided.target, workers = decided.workers, shed = ?decided.shed, "letting go of leases above the fair share");
            if let Some(g) = generation.take() {
                self.stop_generation(g).await;
            }
            for shard in &decided.shed {
                self.release(*shard).await;
            }
        }
        for (lease, idle) in decided.take {
            match self.held.take(&lease).await {
                Ok(Some(taken)) => self.emit(
                    lease.key.shard,
                    LeaseEventKind::Took {
                        from: lease.lease_owner.clone(),
                        unchanged_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
                    },
                    taken.lease_counter,
                ),
                Ok(None) => {}
                Err(e) => warn!(shard = %lease.key.shard, error = %e, "lease not taken"),
            }
        }
        Ok(())
    }

    /// Creates a lease for every listed shard without one: from the consumer's checkpoint
    /// when it has one, else its starting position, with the shard's parents.
    async fn create_missing(&self, shards: &[ShardDescription]) -> PortResult<()> {
        let leases = self
            .backends
            .leases
            .list_leases(&self.consumer.name, &self.consumer.stream)
            .await?;
        let known: BTreeSet<ShardId> = leases.iter().map(|l| l.key.shard).collect();
        for desc in shards.iter().filter(|d| !known.contains(&d.shard_id)) {
            let key = CheckpointKey {
                consumer: self.consumer.name.clone(),
                stream: self.consumer.stream.clone(),
                shard: desc.shard_id,
            };
            let start = match self.backends.checkpoints.get(&key).await? {
                Some(c) => LeaseCheckpoint::Sequence(c.sequence_number),
                None => match self.consumer.starting_position {
                    StartingPosition::Latest => LeaseCheckpoint::Latest,
                    StartingPosition::AtTimestamp(_) => LeaseCheckpoint::AtTimestamp,
                    _ => LeaseCheckpoint::TrimHorizon,
                },
            };
            let parents = desc
                .parent_shard_id
                .into_iter()
                .chain(desc.adjacent_parent_shard_id)
                .collect();
            if self
                .backends
                .leases
                .create_lease_if_absent(&key, start.clone(), parents)
                .await?
            {
                info!(consumer = %self.consumer.name, shard = %desc.shard_id, checkpoint = %start, "lease created");
            }
        }
        Ok(())
    }

    /// Writes `SHARD_END` (with the children) on held leases of closed shards the consumer
    /// finished, and lets go of them.
    async fn finish_ended(
        &self,
        shards: &[ShardDescription],
        leases: &[shardline_core::lease::Lease],
    ) {
        let done: Vec<ShardId> = {
            let status = self.status.snapshot();
            leases
                .iter()
                .filter(|l| l.lease_owner.as_deref() == Some(self.me.as_str()))
                .filter(|l| l.checkpoint != LeaseCheckpoint::ShardEnd)
                .map(|l| l.key.shard)
                .filter(|s| status.shards.get(s).is_some_and(|p| p.finished))
                .collect()
        };
        for shard in done {
            let children: Vec<ShardId> = shards
                .iter()
                .filter(|d| {
                    d.parent_shard_id == Some(shard) || d.adjacent_parent_shard_id == Some(shard)
                })
                .map(|d| d.shard_id)
                .collect();
            let steps = async {
                self.held
                    .checkpoint(shard, LeaseCheckpoint::ShardEnd)
                    .await?;
                self.held.set_children(shard, children).await?;
                self.held.release(shard).await
            };
            match steps.await {
                Ok(Outcome::Done(lease)) => {
                    self.emit(shard, LeaseEventKind::Finished, lease.lease_counter)
                }
                Ok(Outcome::Lost(why)) => self.emit(shard, LeaseEventKind::Lost { why }, 0),
                Err(e) => warn!(shard = %shard, error = %e, "SHARD_END not written; trying again"),
            }
        }
    }

    async fn release(&self, shard: ShardId) {
        match self.held.release(shard).await {
            Ok(Outcome::Done(lease)) => {
                self.emit(shard, LeaseEventKind::Released, lease.lease_counter)
            }
            Ok(Outcome::Lost(why)) => self.emit(shard, LeaseEventKind::Lost { why }, 0),
            Err(e) => {
                warn!(shard = %shard, error = %e, "lease not released; it expires after the failover time")
            }
        }
    }

    /// Starts a consumer under a supervisor over the owned shards.
    fn start_generation(&self) -> Result<Generation> {
        let (factory, set, status) = (
            Arc::clone(&self.factory),
            Arc::clone(&self.set),
            Arc::clone(&self.status),
        );
        let checkpoints: Arc<dyn CheckpointStore> =
            Arc::new(LeasedCheckpoints::new(Arc::clone(&self.held)));
        let supervisor = Supervisor::new(Box::new(move || {
            // A fresh consumer holds no state of a lost shard.
            set.restarted();
            let mut build = factory.lock().unwrap_or_else(|e| e.into_inner());
            let mut consumer = (build)(Arc::clone(&checkpoints))?.with_leases(Arc::clone(&set));
            consumer.status = Arc::clone(&status);
            Ok(consumer)
        }))?;
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(supervisor.run(rx));
        Ok(Generation { stop, task })
    }

    /// Stops a generation: its consumer flushes and checkpoints, then returns.
    async fn stop_generation(&self, g: Generation) {
        let _ = g.stop.send(true);
        match g.task.await {
            Ok(Ok(report)) => {
                if let Ok(mut r) = self.report.lock() {
                    r.report = Some(report);
                }
            }
            Ok(Err(e)) => {
                warn!(consumer = %self.consumer.name, error = %e, "consumer stopped with an error; its shards resume from their checkpoints")
            }
            Err(e) => warn!(consumer = %self.consumer.name, error = %e, "consumer task failed"),
        }
    }
}

fn emit(events: &Option<EventSink>, report: &std::sync::Mutex<WorkerReport>, e: LeaseEvent) {
    info!(consumer = %e.consumer, shard = %e.shard, worker = %e.worker, counter = e.counter, event = ?e.kind, "lease ownership");
    if let Ok(mut r) = report.lock() {
        match e.kind {
            LeaseEventKind::Took { .. } => r.taken += 1,
            LeaseEventKind::Released => r.released += 1,
            LeaseEventKind::Lost { .. } => r.lost += 1,
            LeaseEventKind::Finished => r.finished += 1,
        }
    }
    if let Some(sink) = events {
        sink(&e);
    }
}

/// Renews every held lease and beats the heartbeat each `renew_interval`, until told to stop.
async fn renew_loop(
    held: Arc<HeldLeases>,
    registry: Arc<Mutex<Registry>>,
    config: LeaseConfig,
    consumer: String,
    events: Option<EventSink>,
    report: Arc<std::sync::Mutex<WorkerReport>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_ok = Instant::now();
    let event = |shard: ShardId, kind: LeaseEventKind, counter: u64| LeaseEvent {
        consumer: consumer.clone(),
        shard,
        worker: held.me().to_string(),
        kind,
        at_ms: shardline_core::time::now_ms(),
        counter,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(config.renew_interval) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
        let mut failed = None;
        for shard in held.shards().await {
            match held.renew(shard).await {
                Ok(Outcome::Done(_)) => {}
                Ok(Outcome::Lost(why)) => emit(
                    &events,
                    &report,
                    event(shard, LeaseEventKind::Lost { why }, 0),
                ),
                Err(e) => failed = Some(e),
            }
        }
        let now = Instant::now();
        match failed {
            None => last_ok = now,
            Some(e) => {
                let since = now.saturating_duration_since(last_ok);
                warn!(worker = %held.me(), error = %e, failing_for_ms = since.as_millis() as u64, "lease renewal failed");
                if since >= config.hold_time() {
                    let why = format!("not renewed for {} ms (last error: {e})", since.as_millis());
                    for shard in held.drop_all().await {
                        emit(
                            &events,
                            &report,
                            event(shard, LeaseEventKind::Lost { why: why.clone() }, 0),
                        );
                    }
                    last_ok = now;
                }
            }
        }
        if let Err(e) = registry.lock().await.beat().await {
            warn!(worker = %held.me(), error = %e, "heartbeat not written");
        }
    }
}
