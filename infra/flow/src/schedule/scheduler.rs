//! Runs a callback at each firing of a [`Schedule`], on a real or virtual clock.
//!
//! Invariants: at most `max_firings` callbacks per [`Scheduler::run`]; firings are strictly
//! increasing; a [`StopHandle::stop`] ends the run before the next firing (a callback in
//! progress finishes first); a schedule with no more firings (a past `at()`) ends the run.

use super::Schedule;
use crate::clock::FlowClock;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::info;

/// Stops a running [`Scheduler`].
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    /// Asks the scheduler to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// Fires a schedule's callbacks.
pub struct Scheduler {
    schedule: Schedule,
    clock: Arc<dyn FlowClock>,
    stop: Arc<watch::Sender<bool>>,
}

impl Scheduler {
    /// A scheduler for `schedule` on `clock`.
    pub fn new(schedule: Schedule, clock: Arc<dyn FlowClock>) -> Self {
        Self {
            schedule,
            clock,
            stop: Arc::new(watch::channel(false).0),
        }
    }

    /// A handle that stops [`Scheduler::run`].
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Waits for each firing and calls `on_fire(time, scheduled_event)`; returns the firing
    /// times, at most `max_firings` of them.
    pub async fn run<F, Fut>(&self, max_firings: usize, mut on_fire: F) -> Vec<DateTime<Utc>>
    where
        F: FnMut(DateTime<Utc>, Value) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut stop = self.stop.subscribe();
        let mut fired = Vec::new();
        let Some(mut cursor) = DateTime::from_timestamp_millis(self.clock.now_ms()) else {
            return fired;
        };
        while fired.len() < max_firings && !*stop.borrow() {
            let Some(next) = self.schedule.next_firings(cursor, 1).into_iter().next() else {
                break;
            };
            let wait = (next.timestamp_millis() - self.clock.now_ms()).max(0) as u64;
            tokio::select! {
                _ = self.clock.sleep_ms(wait) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            info!(schedule = %self.schedule.text(), time = %next, "schedule fired");
            on_fire(next, self.schedule.event(next)).await;
            fired.push(next);
            cursor = next;
        }
        fired
    }
}
