//! [`Supervisor`]: keeps one consumer going through errors and panics.
//!
//! A supervisor builds its consumer (sink included) with a factory, runs it in a task of its
//! own, and when that task ends badly starts a fresh one from the checkpoints:
//!
//! - **An error** (a call that ran out of its `retry.max_attempts` tries in place): under
//!   [`Supervisor::run`] the consumer is started again after a backoff (full jitter, the
//!   ceiling doubling per restart without progress up to `retry.max_backoff`), for as long as
//!   it fails — as a Lambda event-source mapping retries a failing batch by default. The status
//!   says `Retrying` since the first failure, with the last error, until the failing call
//!   succeeds. Under [`Supervisor::drain`] the error ends the drain: a drain is bounded.
//! - **A panic**: the message and the records the sink held ([`InFlight`]) are logged, the
//!   records become the shard's suspect in the [`Quarantine`], and the consumer is started
//!   again (status `Restarting`). The search narrows the suspect down to one record and
//!   dead-letters it after `panic_attempts` panics alone (see [`super::quarantine`]). A panic
//!   with no records in the sink's hands (in a flush) cannot be narrowed: `run` restarts with the
//!   backoff above, `drain` gives up after `retry.max_attempts` of them in a row.
//!
//! Invariants:
//! - one [`ConsumerStatus`] for every start: counters add up, `restarts` and `panics` count;
//! - a restart always resumes from the checkpoints, so a record is never skipped, and the sinks'
//!   idempotence makes the records read again harmless;
//! - nothing restarts once the shutdown signal is set: `run` then returns the last error.

use shardline_core::time::Clock;
use std::any::Any;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, warn};

use super::config::RetryConfig;
use super::consumer::Consumer;
use super::error::{ConsumerError, Result};
use super::quarantine::Quarantine;
use super::retry::{backoff_delay, pause};
use super::status::{ConsumerReport, ConsumerState, ConsumerStatus, InFlight};

/// Builds a fresh consumer, its sink included, for each start.
pub type ConsumerFactory = Box<dyn FnMut() -> Result<Consumer> + Send>;

/// Runs one consumer, restarting it from its checkpoints after errors and panics. See the
/// module docs.
pub struct Supervisor {
    name: String,
    factory: ConsumerFactory,
    /// The first consumer, built by [`Supervisor::new`].
    first: Option<Consumer>,
    status: Arc<ConsumerStatus>,
    quarantine: Arc<Mutex<Quarantine>>,
    retry: RetryConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How a supervised consumer runs.
enum Mode {
    /// Until the shutdown signal; restarts after errors.
    Run(watch::Receiver<bool>),
    /// Until caught up; an error ends it.
    Drain,
}

impl Mode {
    fn stopping(&self) -> bool {
        matches!(self, Mode::Run(rx) if *rx.borrow())
    }

    fn signal(&self) -> Option<&watch::Receiver<bool>> {
        match self {
            Mode::Run(rx) => Some(rx),
            Mode::Drain => None,
        }
    }
}

impl Supervisor {
    /// A supervisor of the consumers `factory` builds. The first is built at once, so a
    /// configuration error shows before anything runs.
    ///
    /// # Errors
    /// The factory's error.
    pub fn new(mut factory: ConsumerFactory) -> Result<Self> {
        let first = factory()?;
        Ok(Self {
            name: first.config().name.clone(),
            retry: first.config().retry.clone(),
            clock: first.clock(),
            status: first.status(),
            quarantine: Arc::default(),
            first: Some(first),
            factory,
        })
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The live status, the same across restarts.
    pub fn status(&self) -> Arc<ConsumerStatus> {
        Arc::clone(&self.status)
    }

    /// Runs the consumer until `shutdown` becomes `true`, restarting it after errors and
    /// panics for as long as they happen (see the module docs).
    ///
    /// # Errors
    /// The error the consumer stopped with after the shutdown signal, if any.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<ConsumerReport> {
        self.supervise(Mode::Run(shutdown)).await
    }

    /// Drains the consumer until every shard is caught up. Panics restart it (a record that
    /// keeps making the sink panic is dead-lettered); an error stops it.
    ///
    /// # Errors
    /// The error that stopped it, or [`ConsumerError::Panicked`] after `retry.max_attempts`
    /// panics in a row at no record that could be set aside.
    pub async fn drain(self) -> Result<ConsumerReport> {
        self.supervise(Mode::Drain).await
    }

    fn next(&mut self) -> Result<Consumer> {
        let consumer = match self.first.take() {
            Some(c) => c,
            None => (self.factory)()?,
        };
        Ok(consumer.supervised(Arc::clone(&self.status), Arc::clone(&self.quarantine)))
    }

    fn fail(&self, e: ConsumerError) -> Result<ConsumerReport> {
        self.status.set_state(ConsumerState::Failed {
            error: e.to_string(),
        });
        Err(e)
    }

    async fn supervise(mut self, mode: Mode) -> Result<ConsumerReport> {
        let started = Instant::now();
        // Restarts since the consumer last checkpointed: the backoff grows with them.
        let mut stuck = 0u32;
        // Panics in a row at no record that could be set aside.
        let mut blind_panics = 0u64;
        loop {
            let before = self.status.snapshot().checkpoints;
            let task = match self.next() {
                Ok(consumer) => match &mode {
                    Mode::Run(rx) => tokio::spawn(consumer.run(rx.clone())),
                    Mode::Drain => tokio::spawn(consumer.drain()),
                },
                Err(e) => {
                    if matches!(mode, Mode::Drain) || mode.stopping() {
                        return self.fail(e);
                    }
                    self.status
                        .note_failure("consumer start", &e, self.clock.now_ms());
                    warn!(consumer = %self.name, error = %e, "cannot start the consumer again; retrying");
                    if !wait(&self.retry, &mode, stuck).await {
                        return self.fail(e);
                    }
                    stuck += 1;
                    continue;
                }
            };
            let outcome = task.await;
            if self.status.snapshot().checkpoints > before {
                stuck = 0;
                blind_panics = 0;
            }
            match outcome {
                Ok(Ok(mut report)) => {
                    report.status = self.status.snapshot();
                    report.elapsed_ms = started.elapsed().as_millis() as u64;
                    return Ok(report);
                }
                Ok(Err(e)) => {
                    if matches!(mode, Mode::Drain) || mode.stopping() {
                        return self.fail(e);
                    }
                    if !matches!(self.status.state(), ConsumerState::Retrying { .. }) {
                        self.status
                            .note_failure("consumer", &e, self.clock.now_ms());
                    }
                    warn!(consumer = %self.name, error = %e, "consumer stopped; restarting it from its checkpoints");
                    if !wait(&self.retry, &mode, stuck).await {
                        return self.fail(e);
                    }
                    stuck += 1;
                }
                Err(join) => {
                    let message = if join.is_panic() {
                        panic_message(join.into_panic().as_ref())
                    } else {
                        "the consumer task was cancelled".to_string()
                    };
                    let in_flight = self.status.update(|s| {
                        s.panics += 1;
                        s.in_flight.take()
                    });
                    let during = in_flight
                        .as_ref()
                        .map_or_else(|| "reading".to_string(), ToString::to_string);
                    self.status.set_state(ConsumerState::Restarting {
                        reason: format!("panicked during {during}: {message}"),
                    });
                    let attempt = match in_flight {
                        Some(InFlight::Write {
                            shard,
                            first,
                            last,
                            records,
                        }) => {
                            error!(consumer = %self.name, shard = %shard, first = %first, last = %last, records, panic = %message, "sink panicked; restarting from the checkpoint with these records set apart");
                            let suspect = self
                                .quarantine
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .note_panic(shard, first, last, records, message);
                            suspect.alone
                        }
                        _ => {
                            error!(consumer = %self.name, during = %during, panic = %message, "consumer panicked; restarting it from its checkpoints");
                            blind_panics += 1;
                            let give_up = matches!(mode, Mode::Drain)
                                && blind_panics >= u64::from(self.retry.max_attempts);
                            if give_up || mode.stopping() {
                                return self.fail(ConsumerError::Panicked {
                                    consumer: self.name.clone(),
                                    times: blind_panics,
                                    during,
                                    message,
                                });
                            }
                            stuck += 1;
                            stuck - 1
                        }
                    };
                    if !wait(&self.retry, &mode, attempt).await {
                        return self.fail(ConsumerError::Panicked {
                            consumer: self.name.clone(),
                            times: blind_panics.max(1),
                            during,
                            message: "stopped while restarting after a panic".into(),
                        });
                    }
                }
            }
            self.status.update(|s| s.restarts += 1);
        }
    }
}

/// Waits the backoff before restart number `attempt`; `false` when the shutdown came first.
async fn wait(retry: &RetryConfig, mode: &Mode, attempt: u32) -> bool {
    let delay = backoff_delay(retry, attempt);
    pause(delay, mode.signal()).await && !mode.stopping()
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}
