//! The journal of flow executions the dashboard lists: each execution's name, status, times and
//! error, kept in the state store (namespace `flow.executions`, key = stop time and name, so
//! keys sort by time), the newest [`KEEP`] only.

use crate::wiring::Backends;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shardline_core::ports::StateStore;
use shardline_flow::{Execution, ExecutionStatus};

const NAMESPACE: &str = "flow.executions";

/// Executions kept.
pub const KEEP: usize = 200;

/// One execution as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    /// The execution's name.
    pub name: String,
    /// SUCCEEDED, FAILED or TIMED_OUT.
    pub status: String,
    /// Start time (RFC 3339).
    pub start: String,
    /// Stop time (RFC 3339).
    pub stop: String,
    /// States entered.
    pub states: usize,
    /// The error name, when it failed.
    pub error: Option<String>,
    /// The cause, when it failed.
    pub cause: Option<String>,
}

/// Records `execution` in the journal; a failure to record is logged, never fatal (the flow ran).
pub async fn record(backends: &Backends, execution: &Execution) {
    let summary = ExecutionSummary {
        name: execution.name.clone(),
        status: match execution.status {
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
        }
        .to_string(),
        start: execution.start_date.clone(),
        stop: execution.stop_date.clone(),
        states: execution
            .history
            .iter()
            .filter(|e| e.event_type.ends_with("StateEntered"))
            .count(),
        error: execution.error.clone(),
        cause: execution.cause.clone(),
    };
    let key = format!("{}/{}", summary.stop, summary.name);
    let store = backends.state.as_ref();
    let result = async {
        let body = serde_json::to_vec(&summary)
            .map_err(|e| shardline_core::Error::Internal(e.to_string()))?;
        store
            .put_many(NAMESPACE, vec![(key, Bytes::from(body))])
            .await?;
        let all = store.list(NAMESPACE, "").await?;
        if all.len() > KEEP {
            let old: Vec<String> = all[..all.len() - KEEP]
                .iter()
                .map(|(k, _)| k.clone())
                .collect();
            store.delete_many(NAMESPACE, old).await?;
        }
        Ok::<(), shardline_core::Error>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, execution = %summary.name, "flow execution not journaled");
    }
}

/// The newest `n` executions, newest first.
///
/// # Errors
/// When the state store cannot be read.
pub async fn recent(
    store: &dyn StateStore,
    n: usize,
) -> shardline_core::Result<Vec<ExecutionSummary>> {
    let all = store.list(NAMESPACE, "").await?;
    Ok(all
        .iter()
        .rev()
        .take(n)
        .filter_map(|(_, v)| serde_json::from_slice(v).ok())
        .collect())
}
