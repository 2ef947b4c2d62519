//! [`EsmStats`]: what a mapping did, readable while it runs.

use serde::Serialize;
use std::sync::Mutex;

use super::on_failure::Condition;

/// Counters of a mapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EsmCounts {
    /// Invocations made.
    pub invocations: u64,
    /// Records sent in those invocations (a retried record counts again).
    pub records_invoked: u64,
    /// Records done by the function.
    pub records_done: u64,
    /// Batches retried (whole or from a failed record).
    pub retries: u64,
    /// Batches split in two.
    pub bisections: u64,
    /// Records given up on after the retries.
    pub records_retries_exhausted: u64,
    /// Records given up on for their age.
    pub records_expired: u64,
    /// Tumbling windows closed with a final invocation.
    pub windows_closed: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
}

/// Live counters.
#[derive(Debug, Default)]
pub struct EsmStats {
    counts: Mutex<EsmCounts>,
}

impl EsmStats {
    fn update(&self, f: impl FnOnce(&mut EsmCounts)) {
        if let Ok(mut c) = self.counts.lock() {
            f(&mut c);
        }
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> EsmCounts {
        self.counts.lock().map(|c| *c).unwrap_or_default()
    }

    pub(super) fn invocation(&self, records: usize) {
        self.update(|c| {
            c.invocations += 1;
            c.records_invoked += records as u64;
        });
    }

    pub(super) fn done(&self, records: usize) {
        self.update(|c| c.records_done += records as u64);
    }

    pub(super) fn retry(&self) {
        self.update(|c| c.retries += 1);
    }

    pub(super) fn bisect(&self) {
        self.update(|c| c.bisections += 1);
    }

    pub(super) fn given_up(&self, records: usize, condition: Condition) {
        self.update(|c| match condition {
            Condition::RetryAttemptsExhausted => c.records_retries_exhausted += records as u64,
            Condition::RecordAgeExceeded => c.records_expired += records as u64,
        });
    }

    pub(super) fn window_closed(&self) {
        self.update(|c| c.windows_closed += 1);
    }

    pub(super) fn checkpoint(&self) {
        self.update(|c| c.checkpoints += 1);
    }
}
