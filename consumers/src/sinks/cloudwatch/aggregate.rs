//! Grouping events into per-minute CloudWatch statistic sets.

use shardline_core::ports::{MetricDatum, StatisticSet};
use shardline_core::{MetricEvent, MetricType};
use std::collections::{BTreeMap, HashMap};

/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;

/// One statistic set of an instance: (region, metric, minute start ms) and the samples.
#[derive(Debug, Clone)]
struct Slot {
    region: String,
    metric: MetricType,
    minute_ms: i64,
    values: StatisticSet,
}

/// Accumulates statistic sets per (metric, instance, region, minute).
///
/// Sets are grouped by instance (looked up without allocating); an instance has a handful of
/// sets (its metric types times the minutes buffered), searched linearly.
#[derive(Debug, Default, Clone)]
pub struct MinuteAggregator {
    by_instance: HashMap<String, Vec<Slot>>,
    len: usize,
}

impl MinuteAggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many datums the aggregate currently holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot_index(slots: &[Slot], event: &MetricEvent, minute_ms: i64) -> Option<usize> {
        slots.iter().position(|s| {
            s.minute_ms == minute_ms && s.metric == event.metric_type && s.region == event.region
        })
    }

    /// Whether adding `event` would create a new datum (rather than grow an existing one).
    pub fn would_grow(&self, event: &MetricEvent) -> bool {
        let minute = minute_of(event);
        self.by_instance
            .get(event.instance_id.as_str())
            .is_none_or(|slots| Self::slot_index(slots, event, minute).is_none())
    }

    /// Adds one sample.
    pub fn add(&mut self, event: &MetricEvent) {
        let v = event.value;
        let minute = minute_of(event);
        let slots = match self.by_instance.get_mut(event.instance_id.as_str()) {
            Some(slots) => slots,
            None => self
                .by_instance
                .entry(event.instance_id.clone())
                .or_default(),
        };
        match Self::slot_index(slots, event, minute) {
            Some(i) => {
                let s = &mut slots[i].values;
                s.sample_count += 1.0;
                s.sum += v;
                s.minimum = s.minimum.min(v);
                s.maximum = s.maximum.max(v);
            }
            None => {
                slots.push(Slot {
                    region: event.region.clone(),
                    metric: event.metric_type,
                    minute_ms: minute,
                    values: StatisticSet {
                        sample_count: 1.0,
                        sum: v,
                        minimum: v,
                        maximum: v,
                    },
                });
                self.len += 1;
            }
        }
    }

    /// The datums (dimensions `Region` and `InstanceID`), ordered by metric name, instance,
    /// region and minute.
    pub fn datums(&self) -> Vec<MetricDatum> {
        let mut out: Vec<MetricDatum> = self
            .by_instance
            .iter()
            .flat_map(|(instance, slots)| {
                slots.iter().map(move |s| MetricDatum {
                    metric_name: s.metric.as_str().to_string(),
                    dimensions: BTreeMap::from([
                        ("InstanceID".to_string(), instance.clone()),
                        ("Region".to_string(), s.region.clone()),
                    ]),
                    timestamp_ms: s.minute_ms,
                    unit: s.metric.unit().as_str().to_string(),
                    values: s.values,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.metric_name, &a.dimensions, a.timestamp_ms).cmp(&(
                &b.metric_name,
                &b.dimensions,
                b.timestamp_ms,
            ))
        });
        out
    }

    /// The datums as [`MinuteAggregator::datums`], emptying the aggregator.
    pub fn take(&mut self) -> Vec<MetricDatum> {
        let out = self.datums();
        self.by_instance.clear();
        self.len = 0;
        out
    }
}

fn minute_of(event: &MetricEvent) -> i64 {
    let ms = event.event_time_ms();
    ms.saturating_sub(ms.rem_euclid(MINUTE_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn minutes_of_extreme_times_saturate() {
        assert_eq!(
            minute_of(&ev("i-1", i64::MAX, 1.0)),
            i64::MAX - i64::MAX % MINUTE_MS
        );
        assert_eq!(minute_of(&ev("i-1", i64::MIN, 1.0)), i64::MIN);
        assert_eq!(minute_of(&ev("i-1", -1, 1.0)), -MINUTE_MS);
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
