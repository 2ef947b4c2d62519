//! [`ConsumerSet`]: the consumers `shardline up` runs, each stoppable and restartable on its
//! own, so a command can pause one while it moves its checkpoints or replays into its targets.
//!
//! Each consumer runs as a task with its own stop signal; stopping the set (Ctrl-C,
//! `--duration`) stops them all. [`ConsumerSet::pause`] stops one consumer (it flushes its sink
//! and checkpoints what is durable, as at shutdown) and returns a [`Paused`] guard;
//! [`Paused::resume`] starts a fresh consumer of the same configuration, which resumes from its
//! checkpoints. Reports of a consumer's runs are added up for `up`'s final summary.
//!
//! Invariants: a consumer is paused by at most one command at a time; once the set is stopping
//! no consumer is started again.

use anyhow::{Context, Result, anyhow, bail};
use shardline_consumers::runtime::{ConsumerError, ConsumerReport, ConsumerStatus};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::pipeline::Pipeline;

type Run = JoinHandle<Result<ConsumerReport, ConsumerError>>;

struct Slot {
    stop: watch::Sender<bool>,
    run: Option<Run>,
    status: Arc<ConsumerStatus>,
    paused: bool,
    /// Reports of the runs that ended (pauses).
    earlier: Vec<ConsumerReport>,
}

/// The consumers of a running `up`.
pub struct ConsumerSet {
    pipeline: Pipeline,
    stopping: watch::Receiver<bool>,
    slots: Mutex<BTreeMap<String, Slot>>,
}

impl ConsumerSet {
    /// Starts every enabled consumer of `pipeline`; they stop when `stop` becomes true.
    ///
    /// # Errors
    /// When a consumer cannot be built from the configuration.
    pub fn start(pipeline: &Pipeline, stop: watch::Receiver<bool>) -> Result<Arc<ConsumerSet>> {
        let mut slots = BTreeMap::new();
        for consumer in pipeline.consumers()? {
            let name = consumer.config().name.clone();
            let (tx, rx) = watch::channel(false);
            let status = consumer.status();
            slots.insert(
                name,
                Slot {
                    stop: tx,
                    run: Some(tokio::spawn(consumer.run(rx))),
                    status,
                    paused: false,
                    earlier: Vec::new(),
                },
            );
        }
        let set = Arc::new(ConsumerSet {
            pipeline: pipeline.clone(),
            stopping: stop.clone(),
            slots: Mutex::new(slots),
        });
        let weak = Arc::downgrade(&set);
        let mut stop = stop;
        tokio::spawn(async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
            if let Some(set) = weak.upgrade() {
                for slot in set.lock().values() {
                    let _ = slot.stop.send(true);
                }
            }
        });
        Ok(set)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The consumers' names and live statuses (of their current runs).
    pub fn statuses(&self) -> Vec<(String, Arc<ConsumerStatus>)> {
        self.lock()
            .iter()
            .map(|(n, s)| (n.clone(), s.status.clone()))
            .collect()
    }

    /// Whether `name` is one of the running set's consumers.
    pub fn contains(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// Stops consumer `name` (its sink flushed, its checkpoints written) until
    /// [`Paused::resume`].
    ///
    /// # Errors
    /// When no consumer has that name, it is paused already, or it stopped with an error.
    pub async fn pause(self: &Arc<Self>, name: &str) -> Result<Paused> {
        let run = {
            let mut slots = self.lock();
            let slot = slots
                .get_mut(name)
                .ok_or_else(|| anyhow!("the running shardline has no consumer `{name}`"))?;
            if slot.paused {
                bail!("consumer `{name}` is paused by another command; try again when it is done");
            }
            slot.paused = true;
            let _ = slot.stop.send(true);
            slot.run.take()
        };
        let mut paused = Paused {
            set: Some(self.clone()),
            name: name.to_string(),
        };
        if let Some(run) = run {
            let report = run
                .await
                .map_err(|e| anyhow!("consumer `{name}` panicked: {e}"))
                .and_then(|r| {
                    r.with_context(|| format!("consumer `{name}` stopped with an error"))
                });
            match report {
                Ok(r) => {
                    if let Some(slot) = self.lock().get_mut(name) {
                        slot.earlier.push(r);
                    }
                }
                Err(e) => {
                    paused.resume().await?;
                    return Err(e);
                }
            }
        }
        Ok(paused)
    }

    fn restart(&self, name: &str) -> Result<()> {
        let mut slots = self.lock();
        let slot = slots
            .get_mut(name)
            .ok_or_else(|| anyhow!("no consumer `{name}`"))?;
        slot.paused = false;
        if *self.stopping.borrow() {
            return Ok(());
        }
        let consumer = self
            .pipeline
            .consumers()?
            .into_iter()
            .find(|c| c.config().name == name)
            .ok_or_else(|| anyhow!("consumer `{name}` is no longer configured"))?;
        let (tx, rx) = watch::channel(false);
        slot.status = consumer.status();
        slot.stop = tx;
        slot.run = Some(tokio::spawn(consumer.run(rx)));
        tracing::info!(consumer = name, "consumer resumed from its checkpoints");
        Ok(())
    }

    /// Waits for every consumer to stop (after the stop signal); reports sorted by name, with
    /// the counts of earlier runs added, and whether any failed (each failure printed).
    pub async fn join(&self) -> (Vec<ConsumerReport>, bool) {
        let runs: Vec<(String, Option<Run>, Vec<ConsumerReport>)> = self
            .lock()
            .iter_mut()
            .map(|(n, s)| (n.clone(), s.run.take(), std::mem::take(&mut s.earlier)))
            .collect();
        let mut reports = Vec::new();
        let mut failed = false;
        for (name, run, earlier) in runs {
            let last = match run {
                Some(run) => match run.await {
                    Ok(Ok(r)) => Some(r),
                    Ok(Err(e)) => {
                        failed = true;
                        eprintln!("error: consumer stopped: {e}");
                        None
                    }
                    Err(e) => {
                        failed = true;
                        eprintln!("error: consumer `{name}` panicked: {e}");
                        None
                    }
                },
                None => None,
            };
            if let Some(r) = merge(earlier.into_iter().chain(last)) {
                reports.push(r);
            }
        }
        (reports, failed)
    }
}

/// Adds up the counters of several runs of one consumer.
fn merge(runs: impl Iterator<Item = ConsumerReport>) -> Option<ConsumerReport> {
    runs.reduce(|mut a, b| {
        let (s, t) = (&mut a.status, &b.status);
        s.records_in += t.records_in;
        s.records_shared += t.records_shared;
        s.records_delivered += t.records_delivered;
        s.dead_letters += t.dead_letters;
        s.retries += t.retries;
        s.errors += t.errors;
        s.checkpoints += t.checkpoints;
        s.last_checkpoint_ms = s.last_checkpoint_ms.max(t.last_checkpoint_ms);
        s.shards = b.status.shards.clone();
        a.elapsed_ms += b.elapsed_ms;
        a
    })
}

/// A paused consumer; [`Paused::resume`] starts it again (so does dropping the guard).
pub struct Paused {
    set: Option<Arc<ConsumerSet>>,
    name: String,
}

impl Paused {
    /// Starts the consumer again from its checkpoints.
    ///
    /// # Errors
    /// When it cannot be built from the configuration.
    pub async fn resume(&mut self) -> Result<()> {
        match self.set.take() {
            Some(set) => set.restart(&self.name),
            None => Ok(()),
        }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some(set) = self.set.take()
            && let Err(e) = set.restart(&self.name)
        {
            tracing::error!(consumer = %self.name, error = %format!("{e:#}"), "consumer not restarted");
        }
    }
}
