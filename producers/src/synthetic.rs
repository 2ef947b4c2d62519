//! The seed's data-collector as a seeded, deterministic generator.
//!
//! Invariants:
//! - the instance pool (`i-NNNNNN`, 100000–999999, distinct) is drawn once at construction
//!   from the random source and the same ids report on every collection;
//! - each collection yields, for every instance and every selected metric type (seed order),
//!   one event whose value lies in [`MetricType::seed_range`], rounded to two decimals;
//! - the same seed and the same calls give the same events;
//! - [`SyntheticCollector::collect_mixed`] replaces each event with probability
//!   `malformed_fraction` by a malformed record (partition key: the event's instance id), in
//!   turn cut-off JSON, an unknown metric type, a non-positive timestamp, and a timestamp in
//!   the year 2100 (a host clock far ahead: well-formed, but outside every event-time window,
//!   so a consumer dead-letters it as `clock_skew`) — each of which a consumer dead-letters;
//!   [`SyntheticCollector::collect`] never does.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeSet;

use shardline_core::{MetricEvent, MetricType};

use crate::config::SyntheticConfig;
use crate::error::{CollectError, ConfigError};
use crate::sample::{build_event, selected_types};

/// Most distinct `i-NNNNNN` ids there are.
const MAX_INSTANCES: usize = 900_000;

/// Generates seed-shaped metric events for a fixed pool of simulated instances.
#[derive(Debug)]
pub struct SyntheticCollector {
    rng: StdRng,
    instances: Vec<String>,
    region: String,
    malformed_fraction: f64,
    /// Which kind of malformed record comes next.
    next_malformed: usize,
}

/// A record that is not a valid metric event, as [`SyntheticCollector::collect_mixed`] makes
/// them for load tests.
#[derive(Debug, Clone, PartialEq)]
pub struct MalformedRecord {
    /// The partition key: the instance id of the event it replaced.
    pub partition_key: String,
    /// The record's bytes.
    pub data: Bytes,
}

/// One collection with malformed records mixed in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MixedCollection {
    /// The valid events.
    pub events: Vec<MetricEvent>,
    /// The records that replaced the others.
    pub malformed: Vec<MalformedRecord>,
}

impl SyntheticCollector {
    /// A collector for `cfg.instances` instances. With `seed`, the instance ids and every value
    /// are reproducible; without, the random source is seeded from the OS.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] when `instances` is 0 or above 900,000, or the region is empty.
    pub fn new(cfg: SyntheticConfig, seed: Option<u64>) -> Result<Self, CollectError> {
        if cfg.instances == 0 || cfg.instances > MAX_INSTANCES {
            return Err(ConfigError::OutOfRange {
                field: "instances",
                value: cfg.instances.to_string(),
                rule: "1 to 900000",
            }
            .into());
        }
        if cfg.region.trim().is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "region",
                value: "\"\"".into(),
                rule: "a region name such as eu-west-1",
            }
            .into());
        }
        if !(0.0..=1.0).contains(&cfg.malformed_fraction) {
            return Err(ConfigError::OutOfRange {
                field: "malformed_fraction",
                value: cfg.malformed_fraction.to_string(),
                rule: "0 to 1 (e.g. 0.01 for one record in a hundred)",
            }
            .into());
        }
        let mut rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => rand::make_rng(),
        };
        let mut seen = BTreeSet::new();
        let mut instances = Vec::with_capacity(cfg.instances);
        while instances.len() < cfg.instances {
            let n: u32 = rng.random_range(100_000..=999_999);
            if seen.insert(n) {
                instances.push(format!("i-{n}"));
            }
        }
        Ok(SyntheticCollector {
            rng,
            instances,
            region: cfg.region,
            malformed_fraction: cfg.malformed_fraction,
            next_malformed: 0,
        })
    }

    /// The simulated instance ids, in the order they report.
    pub fn instances(&self) -> &[String] {
        &self.instances
    }

    /// One collection at `now_ms`: for every instance, one event per selected type
    /// (`None` = all four, as the seed's `"all"`).
    pub fn collect(&mut self, which: Option<MetricType>, now_ms: i64) -> Vec<MetricEvent> {
        let types = selected_types(which);
        let mut out = Vec::with_capacity(self.instances.len() * types.len());
        for instance in &self.instances {
            for &t in &types {
                let (lo, hi) = t.seed_range();
                let value = self.rng.random_range(lo..=hi);
                out.push(build_event(t, value, instance, &self.region, now_ms));
            }
        }
        out
    }

    /// As [`SyntheticCollector::collect`], with each event replaced by a malformed record with
    /// probability `malformed_fraction`.
    pub fn collect_mixed(&mut self, which: Option<MetricType>, now_ms: i64) -> MixedCollection {
        let events = self.collect(which, now_ms);
        if self.malformed_fraction <= 0.0 {
            return MixedCollection {
                events,
                malformed: Vec::new(),
            };
        }
        let mut out = MixedCollection::default();
        for event in events {
            if self.rng.random_bool(self.malformed_fraction) {
                let data = malformed(&event, self.next_malformed);
                self.next_malformed += 1;
                out.malformed.push(MalformedRecord {
                    partition_key: event.instance_id,
                    data: Bytes::from(data),
                });
            } else {
                out.events.push(event);
            }
        }
        out
    }
}

/// 2100-01-01T00:00:00Z in epoch seconds: the clock of a host that is decades ahead.
pub const CLOCK_SKEW_TIMESTAMP: i64 = 4_102_444_800;

/// Malformed record number `n` made from `event`: cut-off JSON, an unknown metric type, a
/// timestamp that is not a positive epoch second, or one in the year 2100
/// ([`CLOCK_SKEW_TIMESTAMP`]), in turn.
fn malformed(event: &MetricEvent, n: usize) -> Vec<u8> {
    let json = event.to_json();
    match n % 4 {
        0 => json[..json.len() / 2].to_vec(),
        1 => {
            let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
            v["metric_type"] = "gpu_temperature".into();
            v.to_string().into_bytes()
        }
        2 => with_timestamp(&json, -event.timestamp),
        _ => with_timestamp(&json, CLOCK_SKEW_TIMESTAMP),
    }
}

/// `json` with its `timestamp` replaced by `timestamp` (and no `timestamp_ms`).
fn with_timestamp(json: &[u8], timestamp: i64) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    v["timestamp"] = timestamp.into();
    if let Some(o) = v.as_object_mut() {
        o.remove("timestamp_ms");
    }
    v.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collector(instances: usize, seed: u64) -> SyntheticCollector {
        SyntheticCollector::new(
            SyntheticConfig {
                instances,
                ..SyntheticConfig::default()
            },
            Some(seed),
        )
        .expect("valid config")
    }

    #[test]
    fn values_stay_in_seed_ranges_with_two_decimals() {
        let mut c = collector(50, 7);
        for round in 0..40 {
            for e in c.collect(None, 1_771_500_309_000 + round * 1000) {
                let (lo, hi) = e.metric_type.seed_range();
                assert!(e.value >= lo && e.value <= hi, "{} out of range", e.value);
                assert_eq!((e.value * 100.0).round() / 100.0, e.value);
                assert!(e.validate().is_ok());
                let digits = e.instance_id.trim_start_matches("i-");
                assert_eq!(digits.len(), 6);
                assert!(digits.parse::<u32>().is_ok_and(|n| n >= 100_000));
            }
        }
    }

    #[test]
    fn instances_repeat_across_collections_and_seeds_reproduce() {
        let mut a = collector(3, 42);
        let mut b = collector(3, 42);
        let first = a.collect(None, 1_000_000);
        let second = a.collect(Some(MetricType::CpuUtilization), 2_000_000);
        assert_eq!(first.len(), 12);
        assert_eq!(second.len(), 3);
        let ids: BTreeSet<_> = first.iter().map(|e| e.instance_id.clone()).collect();
        assert_eq!(ids.len(), 3);
        assert!(second.iter().all(|e| ids.contains(&e.instance_id)));
        assert!(second.iter().all(|e| e.metric_id == "cpu-2000"));
        assert_eq!(b.collect(None, 1_000_000), first);
        assert_ne!(collector(3, 43).instances(), a.instances());
    }

    #[test]
    fn a_malformed_fraction_replaces_that_share_of_events_with_invalid_records() {
        let mut c = SyntheticCollector::new(
            SyntheticConfig {
                instances: 250,
                malformed_fraction: 0.01,
                ..SyntheticConfig::default()
            },
            Some(3),
        )
        .expect("valid config");
        let (mut events, mut bad) = (0, Vec::new());
        for round in 0..10 {
            let m = c.collect_mixed(None, 1_771_500_309_000 + round * 1000);
            assert_eq!(
                m.events.len() + m.malformed.len(),
                1000,
                "replaced, not added"
            );
            events += m.events.len();
            bad.extend(m.malformed);
        }
        // 10,000 draws at 1 %: 100 expected; the seed fixes the count.
        assert!((50..=150).contains(&bad.len()), "{} malformed", bad.len());
        assert_eq!(events + bad.len(), 10_000);
        let arrival_ms = 1_771_500_319_000;
        let limits = shardline_core::EventTimeLimits::default();
        for (i, r) in bad.iter().enumerate() {
            assert!(r.partition_key.starts_with("i-"), "{}", r.partition_key);
            let err =
                shardline_core::event::decode(&r.data, arrival_ms, &limits).expect_err("invalid");
            let why = err.reason();
            let expected = [
                "not a metric event",
                "gpu_temperature",
                "timestamp",
                "clock_skew: event time",
            ][i % 4];
            assert!(why.contains(expected), "record {i}: {why}");
            // Only the clock-skewed kind is a well-formed event on its own.
            assert_eq!(MetricEvent::from_json(&r.data).is_ok(), i % 4 == 3, "{why}");
        }
        assert!(bad.len() >= 4, "every kind made");
        let mut clean = collector(10, 3);
        assert!(clean.collect_mixed(None, 1_000_000).malformed.is_empty());
        let err = SyntheticCollector::new(
            SyntheticConfig {
                malformed_fraction: 1.5,
                ..SyntheticConfig::default()
            },
            None,
        )
        .expect_err("out of range");
        assert!(
            err.to_string().contains("malformed_fraction = 1.5"),
            "{err}"
        );
    }

    #[test]
    fn bad_config_is_named() {
        let err = SyntheticCollector::new(
            SyntheticConfig {
                instances: 0,
                ..SyntheticConfig::default()
            },
            None,
        )
        .expect_err("zero instances");
        assert!(err.to_string().contains("instances = 0"), "{err}");
    }
}
