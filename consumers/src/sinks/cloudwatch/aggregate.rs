//! Grouping events into per-minute CloudWatch statistic sets.

use shardline_core::MetricEvent;
use shardline_core::ports::{MetricDatum, StatisticSet};
use std::collections::BTreeMap;

/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;

/// (metric name, instance, region, minute start ms).
type Key = (String, String, String, i64);

/// Accumulates statistic sets per (metric, instance, region, minute).
#[derive(Debug, Default, Clone)]
pub struct MinuteAggregator {
    sets: BTreeMap<Key, (String, StatisticSet)>,
}

impl MinuteAggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many datums the aggregate currently holds.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Whether adding `event` would create a new datum (rather than grow an existing one).
    pub fn would_grow(&self, event: &MetricEvent) -> bool {
        !self.sets.contains_key(&key_of(event))
    }

    /// Adds one sample.
    pub fn add(&mut self, event: &MetricEvent) {
        let v = event.value;
        self.sets
            .entry(key_of(event))
            .and_modify(|(_, s)| {
                s.sample_count += 1.0;
                s.sum += v;
                s.minimum = s.minimum.min(v);
                s.maximum = s.maximum.max(v);
            })
            .or_insert_with(|| {
                (
                    event.unit().as_str().to_string(),
                    StatisticSet {
                        sample_count: 1.0,
                        sum: v,
                        minimum: v,
                        maximum: v,
                    },
                )
            });
    }

    /// The datums (dimensions `Region` and `InstanceID`), emptying the aggregator.
    pub fn take(&mut self) -> Vec<MetricDatum> {
        std::mem::take(&mut self.sets)
            .into_iter()
            .map(
                |((metric, instance, region, minute), (unit, values))| MetricDatum {
                    metric_name: metric,
                    dimensions: BTreeMap::from([
                        ("InstanceID".to_string(), instance),
                        ("Region".to_string(), region),
                    ]),
                    timestamp_ms: minute,
                    unit,
                    values,
                },
            )
            .collect()
    }
}

fn key_of(event: &MetricEvent) -> Key {
    (
        event.metric_type.as_str().to_string(),
        event.instance_id.clone(),
        event.region.clone(),
        event.event_time_ms().div_euclid(MINUTE_MS) * MINUTE_MS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::MetricType;

    fn ev(instance: &str, ms: i64, value: f64) -> MetricEvent {
        MetricEvent {
            metric_id: format!("cpu-{}", ms / 1000),
            metric_type: MetricType::CpuUtilization,
            timestamp: ms / 1000,
            timestamp_ms: Some(ms),
            value,
            unit: None,
            instance_id: instance.to_string(),
            region: "eu-west-1".to_string(),
            collected_at: "2026-02-19T11:25:09".to_string(),
        }
    }

    #[test]
    fn one_statistic_set_per_instance_and_minute() {
        let mut agg = MinuteAggregator::new();
        let base = 1_771_500_000_000;
        for (i, v) in [(0, 10.0), (59_999, 30.0), (60_000, 50.0)] {
            agg.add(&ev("i-1", base + i, v));
        }
        agg.add(&ev("i-2", base, 70.0));
        let data = agg.take();
        assert!(agg.is_empty());
        assert_eq!(data.len(), 3);
        let first = &data[0];
        assert_eq!(first.dimensions["InstanceID"], "i-1");
        assert_eq!(first.timestamp_ms, base);
        assert_eq!(first.unit, "Percent");
        assert_eq!(
            first.values,
            StatisticSet {
                sample_count: 2.0,
                sum: 40.0,
                minimum: 10.0,
                maximum: 30.0
            }
        );
    }
}
