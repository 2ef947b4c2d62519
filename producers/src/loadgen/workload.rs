//! The records loadgen sends: the seed's metric events, padded to a size, carrying their send
//! time (`timestamp_ms`) so readers can measure end-to-end lag.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use shardline_core::MetricType;
use shardline_core::stream::PutRecordsEntry;

use super::LoadConfig;
use crate::sample::build_event;

/// Generates batches round-robin over the instances and metric types.
pub(super) struct Generator {
    instances: Vec<String>,
    next: usize,
    record_size: usize,
    rng: StdRng,
}

impl Generator {
    pub(super) fn new(cfg: &LoadConfig, seed: u64) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let start = rng.random_range(0..cfg.instances.max(1));
        Generator {
            instances: (0..cfg.instances).map(|i| format!("i-{i:06}")).collect(),
            next: start,
            record_size: cfg.record_size,
            rng,
        }
    }

    /// `n` records stamped `now_ms`.
    pub(super) fn batch(&mut self, n: usize, now_ms: i64) -> Vec<PutRecordsEntry> {
        (0..n)
            .map(|_| {
                let k = self.next;
                self.next = self.next.wrapping_add(1);
                let instance = &self.instances[k % self.instances.len()];
                let ty = MetricType::ALL[(k / self.instances.len()) % 4];
                let value = match ty {
                    MetricType::NetworkTraffic => self.rng.random_range(0.0..1000.0),
                    _ => self.rng.random_range(0.0..100.0),
                };
                let event = build_event(ty, value, instance, "eu-west-1", now_ms);
                PutRecordsEntry {
                    partition_key: instance.clone(),
                    explicit_hash_key: None,
                    data: Bytes::from(pad(event.to_json(), self.record_size)),
                }
            })
            .collect()
    }
}

/// Pads a JSON object to `size` bytes with a `"pad"` member (left as is when already larger).
pub(super) fn pad(mut json: Vec<u8>, size: usize) -> Vec<u8> {
    const MEMBER: &[u8] = b",\"pad\":\"\"";
    if json.len() + MEMBER.len() > size || json.last() != Some(&b'}') {
        return json;
    }
    json.pop();
    json.extend_from_slice(b",\"pad\":\"");
    let fill = size - json.len() - 2;
    json.resize(json.len() + fill, b'x');
    json.extend_from_slice(b"\"}");
    json
}

/// The send time a loadgen record carries, read without parsing the whole event.
pub(super) fn sent_ms(data: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"timestamp_ms\":";
    let at = data.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: &[u8] = &data[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_records_are_valid_events_of_the_size_asked() {
        let cfg = LoadConfig {
            stream: "s".into(),
            rates: vec![0],
            step: std::time::Duration::ZERO,
            duration: std::time::Duration::from_secs(1),
            instances: 3,
            record_size: 300,
            batch: 10,
            callers: 1,
            consumers: 0,
            read_back: false,
            seed: 1,
        };
        let mut g = Generator::new(&cfg, 7);
        let batch = g.batch(10, 1_700_000_000_123);
        assert_eq!(batch.len(), 10);
        let keys: std::collections::BTreeSet<_> =
            batch.iter().map(|e| e.partition_key.clone()).collect();
        assert_eq!(keys.len(), 3);
        for e in &batch {
            assert_eq!(e.data.len(), 300);
            let ev = shardline_core::MetricEvent::from_json(&e.data).expect("a valid metric event");
            assert_eq!(ev.instance_id, e.partition_key);
            assert_eq!(sent_ms(&e.data), Some(1_700_000_000_123));
        }
        assert_eq!(
            pad(b"{\"a\":1}".to_vec(), 3),
            b"{\"a\":1}".to_vec(),
            "too small: unchanged"
        );
    }
}
