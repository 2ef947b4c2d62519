//! Pausing a supervised consumer: [`Pauser`] and [`PauseGuard`].
//!
//! A command that moves a consumer's checkpoints, or replays into its targets, needs the
//! consumer stopped meanwhile and started again afterwards from the (new) checkpoints. The
//! consumer's [`Supervisor`](super::Supervisor) does both, as it does for restarts:
//! [`Pauser::pause`] asks it to stop the consumer (the sink flushed and what became durable
//! checkpointed, as at shutdown) and returns once it has; the supervisor then starts nothing
//! until the [`PauseGuard`] is resumed or dropped, and then builds a fresh consumer (a fresh
//! sink, the same shared reads) that reads on from the checkpoints.
//!
//! Invariants:
//! - at most one pause of a consumer at a time: a second is refused ([`PauseError::Busy`]);
//! - while a pause is held no consumer of that supervisor runs, so the checkpoints are the
//!   holder's to move;
//! - a drain (`up --once`) is never paused ([`PauseError::Draining`]), nor a supervisor that has
//!   ended ([`PauseError::Ended`]);
//! - a pause not acknowledged within its bound is withdrawn and the consumer goes on
//!   ([`PauseError::Timeout`]); every wait here has a bound or ends with the supervisor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// What a supervisor is doing, as far as pausing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Runs (or restarts) its consumer until the shutdown signal.
    Running,
    /// Drains its consumer; cannot be paused.
    Draining,
    /// Holds its consumer stopped for the pause with this id.
    Paused(u64),
    /// Has returned.
    Ended,
}

/// The pause request and the supervisor's answer, shared by a supervisor and its pausers.
///
/// A request carries an id, and the supervisor acknowledges that id: a pauser never mistakes
/// the acknowledgement of an earlier pause, just released, for its own.
#[derive(Debug)]
pub(crate) struct PauseControl {
    /// The pause requested or held, if any.
    requested: watch::Sender<Option<u64>>,
    phase: watch::Sender<Phase>,
    next_id: AtomicU64,
}

impl PauseControl {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            requested: watch::Sender::new(None),
            phase: watch::Sender::new(Phase::Running),
            next_id: AtomicU64::new(1),
        })
    }

    /// Follows the pause request.
    pub(crate) fn requests(&self) -> watch::Receiver<Option<u64>> {
        self.requested.subscribe()
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// Withdraws pause `id` (a later pause is left alone).
    fn release(&self, id: u64) {
        self.requested.send_if_modified(|r| {
            let mine = *r == Some(id);
            if mine {
                *r = None;
            }
            mine
        });
    }
}

/// Why a consumer could not be paused.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    /// Another command holds it paused.
    #[error("consumer {0} is paused by another command; try again when that command is done")]
    Busy(String),
    /// It drains (`shardline up --once`), which cannot be interrupted.
    #[error(
        "consumer {0} is draining (`shardline up --once`) and cannot be paused; run this again \
         once that has finished"
    )]
    Draining(String),
    /// Its supervisor has returned (shutdown, or it gave up).
    #[error("consumer {0} is no longer running (the pipeline is stopping, or it gave up)")]
    Ended(String),
    /// It did not stop within the bound; the pause was withdrawn.
    #[error(
        "consumer {consumer} did not stop within {within:?} (its sink may be retrying a failing \
         call; see `shardline up`'s status line), so it was left running; try again"
    )]
    Timeout {
        /// The consumer.
        consumer: String,
        /// The bound.
        within: Duration,
    },
}

/// Pauses one supervised consumer (from [`Supervisor::pauser`](super::Supervisor::pauser)).
#[derive(Debug, Clone)]
pub struct Pauser {
    pub(crate) name: String,
    pub(crate) control: Arc<PauseControl>,
}

impl Pauser {
    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the consumer (its sink flushed, its checkpoints written) and keeps it stopped
    /// until the returned guard is resumed or dropped. Waits at most `within` for the consumer
    /// to stop.
    ///
    /// # Errors
    /// See [`PauseError`]: busy, draining, ended, or not stopped within `within`.
    pub async fn pause(&self, within: Duration) -> Result<PauseGuard, PauseError> {
        let mut phase = self.control.phase.subscribe();
        match *phase.borrow_and_update() {
            Phase::Draining => return Err(PauseError::Draining(self.name.clone())),
            Phase::Ended => return Err(PauseError::Ended(self.name.clone())),
            Phase::Running | Phase::Paused(_) => {}
        }
        let id = self.control.next_id.fetch_add(1, Ordering::Relaxed);
        let claimed = self.control.requested.send_if_modified(|r| {
            let free = r.is_none();
            if free {
                *r = Some(id);
            }
            free
        });
        if !claimed {
            return Err(PauseError::Busy(self.name.clone()));
        }
        // From here, dropping the guard withdraws the request.
        let guard = PauseGuard {
            name: self.name.clone(),
            id,
            control: Some(Arc::clone(&self.control)),
        };
        let settled = phase
            .wait_for(|p| matches!(p, Phase::Draining | Phase::Ended) || *p == Phase::Paused(id));
        let answer = match tokio::time::timeout(within, settled).await {
            Ok(Ok(p)) => *p,
            // The supervisor (and its sender) is gone.
            Ok(Err(_)) => Phase::Ended,
            Err(_) => {
                return Err(PauseError::Timeout {
                    consumer: self.name.clone(),
                    within,
                });
            }
        };
        match answer {
            Phase::Paused(_) => Ok(guard),
            Phase::Draining => Err(PauseError::Draining(self.name.clone())),
            Phase::Ended | Phase::Running => Err(PauseError::Ended(self.name.clone())),
        }
    }
}

/// A paused consumer: [`PauseGuard::resume`] (or dropping the guard) lets its supervisor start
/// it again from its checkpoints.
#[derive(Debug)]
pub struct PauseGuard {
    name: String,
    id: u64,
    control: Option<Arc<PauseControl>>,
}

impl PauseGuard {
    /// The paused consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lets the supervisor start the consumer again (it reads on from its checkpoints).
    pub fn resume(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if let Some(control) = self.control.take() {
            control.release(self.id);
        }
    }
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        self.release();
    }
}
