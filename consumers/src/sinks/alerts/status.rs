//! Alarm states for status lines and `shardline alarms list`.

use serde::{Deserialize, Serialize};
use shardline_core::ports::StateStore;
use shardline_core::time::format_rfc3339_ms;
use shardline_core::{Error, MetricType, Result};
use std::fmt;

use super::alarm::{AlarmRecord, AlarmState};

/// Key prefix of alarm records in the state store.
pub const ALARM_PREFIX: &str = "alarm/";

/// One alarm's state, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmStatus {
    /// The alarm name, e.g. `cpu_utilization > 80`.
    pub name: String,
    /// The metric watched.
    pub metric: MetricType,
    /// The instance.
    pub instance_id: String,
    /// Its region.
    pub region: String,
    /// The current state.
    pub state: AlarmState,
    /// When the state was entered, epoch milliseconds (`None`: initial state).
    pub since_ms: Option<i64>,
    /// The statistic of the last period with data.
    pub last_value: Option<f64>,
    /// End of that period, epoch milliseconds.
    pub last_datapoint_ms: Option<i64>,
}

impl From<&AlarmRecord> for AlarmStatus {
    fn from(a: &AlarmRecord) -> Self {
        Self {
            name: a.rule.clone(),
            metric: a.metric,
            instance_id: a.instance_id.clone(),
            region: a.region.clone(),
            state: a.state,
            since_ms: a.since_ms,
            last_value: a.last_value,
            last_datapoint_ms: a.last_datapoint_ms,
        }
    }
}

impl fmt::Display for AlarmStatus {
    /// `ALARM              cpu_utilization > 80  i-123456  since 2026-…Z  last 91.5`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self
            .since_ms
            .map_or_else(|| "-".to_string(), format_rfc3339_ms);
        let last = self
            .last_value
            .map_or_else(|| "-".to_string(), |v| v.to_string());
        write!(
            f,
            "{:<17} {:<24} {:<12} since {since}  last {last}",
            self.state, self.name, self.instance_id
        )
    }
}

/// The key of an alarm record: `alarm/<instance>/<alarm name>`.
pub fn alarm_key(instance_id: &str, rule: &str) -> String {
    let mut key = String::new();
    write_alarm_key(&mut key, instance_id, rule);
    key
}

/// Appends [`alarm_key`]`(instance_id, rule)` to `out`.
pub fn write_alarm_key(out: &mut String, instance_id: &str, rule: &str) {
    out.reserve(ALARM_PREFIX.len() + instance_id.len() + 1 + rule.len());
    out.push_str(ALARM_PREFIX);
    out.push_str(instance_id);
    out.push('/');
    out.push_str(rule);
}

/// Every alarm record stored in `namespace`, sorted by instance then alarm name.
///
/// # Errors
/// As [`StateStore::list`]; [`Error::Corrupt`]-like [`Error::Internal`] when a record does
/// not parse (naming the key).
pub async fn load_alarms(store: &dyn StateStore, namespace: &str) -> Result<Vec<AlarmRecord>> {
    let entries = store.list(namespace, ALARM_PREFIX).await?;
    entries
        .into_iter()
        .map(|(key, bytes)| {
            serde_json::from_slice::<AlarmRecord>(&bytes).map_err(|e| {
                Error::Internal(format!(
                    "alarm record `{key}` in state namespace `{namespace}` does not parse ({e}); \
                     delete it to start that alarm afresh"
                ))
            })
        })
        .collect()
}

/// The alarm states stored in `namespace` (see `AlertsConfig::state_namespace`).
///
/// # Errors
/// As [`load_alarms`].
pub async fn read_alarm_states(
    store: &dyn StateStore,
    namespace: &str,
) -> Result<Vec<AlarmStatus>> {
    Ok(load_alarms(store, namespace)
        .await?
        .iter()
        .map(AlarmStatus::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_names_state_alarm_instance_since_and_last_value() {
        let status = AlarmStatus {
            name: "cpu_utilization > 80".into(),
            metric: MetricType::CpuUtilization,
            instance_id: "i-123456".into(),
            region: "eu-west-1".into(),
            state: AlarmState::Alarm,
            since_ms: Some(1_771_500_060_000),
            last_value: Some(91.5),
            last_datapoint_ms: Some(1_771_500_060_000),
        };
        let line = status.to_string();
        assert!(line.starts_with("ALARM "), "{line}");
        for part in [
            "cpu_utilization > 80",
            "i-123456",
            "since 2026-02-19T11:21:00.000Z",
            "last 91.5",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
        assert_eq!(
            alarm_key("i-1", "disk_usage > 90"),
            "alarm/i-1/disk_usage > 90"
        );
    }
}
