//! Building one [`MetricEvent`] the way the seed's data-collector does.
//!
//! Invariants of every event built here:
//! - `metric_id` is `<cpu|mem|disk|net>-<epoch seconds>`;
//! - `timestamp` is `timestamp_ms / 1000` (floor) and both are set;
//! - `value` is rounded to two decimals (the seed's `round(x, 2)`);
//! - `unit` is the metric type's unit;
//! - `collected_at` is ISO 8601 UTC with microseconds and a `Z` suffix.

use shardline_core::{MetricEvent, MetricType};

use crate::error::CollectError;

/// Rounds to two decimals, as the seed's `round(value, 2)`.
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Formats epoch milliseconds as `2026-02-19T11:25:09.123000Z`.
pub fn collected_at(now_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// One event for `instance_id` at `now_ms`, with `value` rounded to two decimals.
pub fn build_event(
    metric_type: MetricType,
    value: f64,
    instance_id: &str,
    region: &str,
    now_ms: i64,
) -> MetricEvent {
    let timestamp = now_ms.div_euclid(1000);
    MetricEvent {
        metric_id: format!("{}-{timestamp}", metric_type.id_prefix()),
        metric_type,
        timestamp,
        timestamp_ms: Some(now_ms),
        value: round2(value),
        unit: Some(metric_type.unit()),
        instance_id: instance_id.to_string(),
        region: region.to_string(),
        collected_at: collected_at(now_ms),
    }
}

/// Reads the seed's `metric_type` event field: absent or `"all"` selects all four types
/// (`None`), otherwise one type.
///
/// # Errors
/// [`CollectError::UnknownMetricType`] naming the text given.
pub fn parse_metric_selection(field: Option<&str>) -> Result<Option<MetricType>, CollectError> {
    match field.map(str::trim) {
        None | Some("all") | Some("") => Ok(None),
        Some(s) => s
            .parse::<MetricType>()
            .map(Some)
            .map_err(|_| CollectError::UnknownMetricType(s.to_string())),
    }
}

/// The types a selection stands for, in the seed's order.
pub fn selected_types(which: Option<MetricType>) -> Vec<MetricType> {
    match which {
        Some(t) => vec![t],
        None => MetricType::ALL.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_the_seed_shape() {
        let e = build_event(
            MetricType::DiskUsage,
            55.555_5,
            "i-123456",
            "eu-west-1",
            1_771_500_309_123,
        );
        assert_eq!(e.metric_id, "disk-1771500309");
        assert_eq!(e.timestamp, 1_771_500_309);
        assert_eq!(e.timestamp_ms, Some(1_771_500_309_123));
        assert_eq!(e.value, 55.56);
        assert_eq!(e.collected_at, "2026-02-19T11:25:09.123000Z");
        assert_eq!(e.unit, Some(shardline_core::Unit::Percent));
        assert!(e.validate().is_ok());
    }

    #[test]
    fn selection_reads_the_seed_field() {
        assert_eq!(parse_metric_selection(None).ok(), Some(None));
        assert_eq!(parse_metric_selection(Some("all")).ok(), Some(None));
        assert_eq!(
            parse_metric_selection(Some("memory_usage")).ok(),
            Some(Some(MetricType::MemoryUsage))
        );
        let err = parse_metric_selection(Some("gpu")).expect_err("unknown");
        assert!(err.to_string().contains("`gpu`"), "{err}");
        assert_eq!(selected_types(None).len(), 4);
    }
}
