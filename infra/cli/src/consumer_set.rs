//! [`ConsumerSet`]: the supervised consumers `shardline up` runs, by name, so that a command
//! run through the control API can pause one while it moves its checkpoints or replays into
//! its targets, and the dashboard and status line can read their statuses.
//!
//! Each consumer runs under its [`Supervisor`], which owns every stop and start of it:
//! restarts after errors and panics, and pauses ([`ConsumerSet::pause`] asks the supervisor
//! through its [`Pauser`]; the returned [`PauseGuard`] releases the consumer, which resumes
//! from its checkpoints with a fresh sink and its seat in the shared reads). The set itself
//! starts and stops nothing but the supervisors' tasks.
//!
//! Invariants: the members are fixed when the set starts; a consumer is paused by at most one
//! command at a time; consumers draining under `up --once` are never paused (the command is
//! refused with its next step); a pause waits at most [`PAUSE_WITHIN`] for the consumer to stop.

use anyhow::{Result, anyhow};
use shardline_consumers::runtime::{
    ConsumerError, ConsumerReport, ConsumerStatus, PauseGuard, Pauser, Supervisor,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::pipeline::Pipeline;

/// How long a pause waits for the consumer to flush its sink and checkpoint.
pub const PAUSE_WITHIN: Duration = Duration::from_secs(60);

type Run = JoinHandle<Result<ConsumerReport, ConsumerError>>;

struct Member {
    pauser: Pauser,
    status: Arc<ConsumerStatus>,
}

/// The consumers of a running `up` (or `up --once`).
pub struct ConsumerSet {
    members: BTreeMap<String, Member>,
    runs: Mutex<Vec<(String, Run)>>,
}

/// A supervisor's failure to finish, by consumer name.
pub type Failure = (String, ConsumerError);

impl ConsumerSet {
    /// Runs every enabled consumer of `pipeline` under its supervisor until `stop` becomes
    /// true.
    ///
    /// # Errors
    /// When a consumer cannot be built from the configuration.
    pub fn start(pipeline: &Pipeline, stop: watch::Receiver<bool>) -> Result<Arc<ConsumerSet>> {
        Self::spawn(pipeline, |s| {
            let stop = stop.clone();
            tokio::spawn(s.run(stop))
        })
    }

    /// Drains every enabled consumer of `pipeline` under its supervisor (`up --once`).
    ///
    /// # Errors
    /// When a consumer cannot be built from the configuration.
    pub fn drain(pipeline: &Pipeline) -> Result<Arc<ConsumerSet>> {
        Self::spawn(pipeline, |s| tokio::spawn(s.drain()))
    }

    fn spawn(pipeline: &Pipeline, mut go: impl FnMut(Supervisor) -> Run) -> Result<Arc<Self>> {
        let mut members = BTreeMap::new();
        let mut runs = Vec::new();
        for supervisor in pipeline.supervisors()? {
            let name = supervisor.name().to_string();
            members.insert(
                name.clone(),
                Member {
                    pauser: supervisor.pauser(),
                    status: supervisor.status(),
                },
            );
            runs.push((name, go(supervisor)));
        }
        Ok(Arc::new(ConsumerSet {
            members,
            runs: Mutex::new(runs),
        }))
    }

    /// The consumers' names and live statuses, by name.
    pub fn statuses(&self) -> Vec<(String, Arc<ConsumerStatus>)> {
        self.members
            .iter()
            .map(|(n, m)| (n.clone(), m.status.clone()))
            .collect()
    }

    /// Whether `name` is one of the running set's consumers.
    pub fn contains(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// Stops consumer `name` (its sink flushed, its checkpoints written) until the guard is
    /// resumed or dropped.
    ///
    /// # Errors
    /// When no consumer has that name, another command holds it paused, it drains (`up
    /// --once`), it no longer runs, or it did not stop within [`PAUSE_WITHIN`].
    pub async fn pause(&self, name: &str) -> Result<PauseGuard> {
        let member = self
            .members
            .get(name)
            .ok_or_else(|| anyhow!("the running shardline has no consumer `{name}`"))?;
        Ok(member.pauser.pause(PAUSE_WITHIN).await?)
    }

    /// Waits for every supervisor to return (after the stop signal, or drained): the reports
    /// sorted by consumer name, and the consumers that could not finish.
    pub async fn join(&self) -> (Vec<ConsumerReport>, Vec<Failure>) {
        let runs = std::mem::take(&mut *self.runs.lock().unwrap_or_else(|e| e.into_inner()));
        let mut reports = Vec::new();
        let mut failed = Vec::new();
        for (name, run) in runs {
            match run.await {
                Ok(Ok(r)) => reports.push(r),
                Ok(Err(e)) => failed.push((name, e)),
                Err(e) => failed.push((
                    name.clone(),
                    ConsumerError::Panicked {
                        consumer: name,
                        times: 1,
                        during: "supervision".into(),
                        message: e.to_string(),
                    },
                )),
            }
        }
        reports.sort_by(|a, b| a.consumer.cmp(&b.consumer));
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        (reports, failed)
    }
}
