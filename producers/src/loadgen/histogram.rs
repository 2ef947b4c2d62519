//! [`Histogram`]: latencies in fixed memory, percentiles within 1.6 %.
//!
//! Values (microseconds) fall into buckets of 64 per power of two, so a percentile is reported
//! as its bucket's upper bound: never below the true value, at most 1/64 above it. Memory is
//! constant however many values are recorded (millions of per-record lags included).

use serde::Serialize;

const SUB: u32 = 64;
const BUCKETS: usize = (64 * SUB) as usize;

/// A latency histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < u64::from(SUB) {
        return v as usize;
    }
    let pow = 63 - v.leading_zeros(); // >= 6
    let shift = pow - SUB.trailing_zeros();
    let sub = (v >> shift) as u32 - SUB; // 0..SUB
    ((pow - SUB.trailing_zeros() + 1) * SUB + sub) as usize
}

fn upper(b: usize) -> u64 {
    let b = b as u32;
    if b < SUB {
        return u64::from(b);
    }
    let group = b / SUB - 1;
    let sub = b % SUB;
    let top = (u128::from(SUB + sub) + 1) << group;
    u64::try_from(top - 1).unwrap_or(u64::MAX)
}

impl Histogram {
    /// Records one value, microseconds.
    pub fn record(&mut self, micros: u64) {
        self.counts[bucket(micros).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// Adds another histogram's values.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(b).min(self.max);
            }
        }
        self.max
    }

    /// p50, p90, p99 and max in milliseconds.
    pub fn summary(&self) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: self.total,
            p50_ms: ms(self.quantile(0.50)),
            p90_ms: ms(self.quantile(0.90)),
            p99_ms: ms(self.quantile(0.99)),
            max_ms: ms(self.max),
        }
    }
}

/// A latency distribution as reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_one_bucket_above_the_truth() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, truth) in [(0.5, 50_000u64), (0.9, 90_000), (0.99, 99_000)] {
            let got = h.quantile(q);
            assert!(
                got >= truth && got <= truth + truth / 60,
                "q{q}: {got} vs {truth}"
            );
        }
        assert_eq!(h.quantile(1.0), 100_000);
        assert_eq!(h.summary().max_ms, 100.0);
        let mut other = Histogram::default();
        other.record(7);
        h.merge(&other);
        assert_eq!(h.count(), 100_001);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        let mut last = 0;
        for v in (0..64)
            .map(|s| 1u64 << s)
            .chain([3, 63, 65, 127, 1_000_001, u64::MAX])
        {
            let b = bucket(v);
            assert!(upper(b) >= v, "{v} -> {b} -> {}", upper(b));
            assert!(b < BUCKETS);
        }
        for v in (0..64).map(|s| 1u64 << s) {
            assert!(bucket(v) >= last);
            last = bucket(v);
        }
    }
}
