//! Execution history, shaped like Step Functions' `GetExecutionHistory`.
//!
//! Events are numbered from 1 in the order they are recorded; `previous_event_id` is the
//! event that led to this one within the same branch (0 for the first). State events carry
//! the state type in their name (`TaskStateEntered`, `WaitStateExited`, ...). AWS records no
//! event for a retry; this history adds `<Type>RetryScheduled` (`TaskRetryScheduled`,
//! `ParallelRetryScheduled`, `MapRetryScheduled`; details: the error and cause, the attempt
//! number and the backoff in milliseconds), recorded when the backoff wait begins, so the
//! next attempt's `TaskScheduled` is `wait_ms` later on the execution's clock.

use serde::Serialize;
use serde_json::Value;
use std::sync::Mutex;

/// One history event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// 1-based position in the history.
    pub id: u64,
    /// The event this one follows in its branch (0 for none).
    pub previous_event_id: u64,
    /// When, as AWS formats it.
    pub timestamp: String,
    /// Epoch milliseconds of `timestamp`.
    #[serde(skip)]
    pub timestamp_ms: i64,
    /// The AWS event type name, e.g. `TaskStateEntered`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The details.
    pub details: EventDetails,
}

/// Event details; absent fields are omitted from JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetails {
    /// The state's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Input of the state, task or execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Output of the state, task or execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Task resource ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Error name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Error cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Map iteration index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// Retry attempt (1-based) for `TaskRetryScheduled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u64>,
    /// Backoff or wait length in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// Collects events from concurrently running branches.
#[derive(Debug, Default)]
pub struct HistoryRecorder {
    events: Mutex<Vec<HistoryEvent>>,
}

impl HistoryRecorder {
    /// Records an event after `*prev` and moves `*prev` to it.
    pub fn record(
        &self,
        prev: &mut u64,
        now_ms: i64,
        event_type: impl Into<String>,
        details: EventDetails,
    ) {
        let Ok(mut events) = self.events.lock() else {
            return;
        };
        let id = events.len() as u64 + 1;
        events.push(HistoryEvent {
            id,
            previous_event_id: *prev,
            timestamp: crate::clock::format_ms(now_ms),
            timestamp_ms: now_ms,
            event_type: event_type.into(),
            details,
        });
        *prev = id;
    }

    /// The events so far.
    pub fn events(&self) -> Vec<HistoryEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}
