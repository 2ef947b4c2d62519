//! Event parsing, the first step of every consumer: `MetricEvent::from_json` over synthetic
//! records shaped like the collectors' (about 200 bytes of JSON each), beside serde_json
//! parsing the same bytes from a byte slice (which validates every string it reads as UTF-8).
//!
//! ```sh
//! cargo run --profile fast -p shardline-core --example parse_bench -- [RECORDS]
//! ```
//! Prints the best of seven alternating passes for each, in records/s and ns per record.

use shardline_core::{MetricEvent, MetricType};
use std::time::Instant;

fn records(n: usize) -> Vec<Vec<u8>> {
    let start_s = 1_771_459_200i64;
    (0..n)
        .map(|i| {
            let metric_type = MetricType::ALL[i % 4];
            let ts = start_s + (i / 4000) as i64 * 10;
            let (lo, hi) = metric_type.seed_range();
            MetricEvent {
                metric_id: format!("{}-{ts}", metric_type.id_prefix()),
                metric_type,
                timestamp: ts,
                timestamp_ms: Some(ts * 1000 + (i % 1000) as i64),
                value: ((lo + (hi - lo) * ((i * 7919) % 10_000) as f64 / 10_000.0) * 100.0).round()
                    / 100.0,
                unit: None,
                instance_id: format!("i-{:06}", 100_000 + (i / 4) % 1000),
                region: "eu-west-1".to_string(),
                collected_at: shardline_core::time::format_rfc3339_ms(ts * 1000),
            }
            .to_json()
        })
        .collect()
}

/// Best time of each of two passes over `rounds` rounds, the passes alternating so that both
/// see the same machine noise.
fn best_of_both<A: FnMut() -> usize, B: FnMut() -> usize>(
    rounds: usize,
    mut a: A,
    mut b: B,
) -> ((f64, usize), (f64, usize)) {
    let mut best = [(f64::MAX, 0usize); 2];
    for _ in 0..rounds {
        for (slot, pass) in [&mut a as &mut dyn FnMut() -> usize, &mut b]
            .into_iter()
            .enumerate()
        {
            let started = Instant::now();
            let parsed = pass();
            let secs = started.elapsed().as_secs_f64();
            if secs < best[slot].0 {
                best[slot] = (secs, parsed);
            }
        }
    }
    (best[0], best[1])
}

fn main() -> Result<(), String> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a
            .replace('_', "")
            .parse()
            .map_err(|_| format!("`{a}` is not a record count; pass e.g. 1000000"))?,
        None => 1_000_000,
    };
    let data = records(n);
    let bytes: usize = data.iter().map(Vec::len).sum();
    let ((ours, ok_ours), (slice, ok_slice)) = best_of_both(
        7,
        || {
            data.iter()
                .filter(|r| MetricEvent::from_json(r).is_ok())
                .count()
        },
        || {
            data.iter()
                .filter(|r| serde_json::from_slice::<MetricEvent>(r).is_ok())
                .count()
        },
    );
    if ok_ours != n || ok_slice != n {
        return Err(format!(
            "records that failed to parse: {} (from_json), {} (from_slice) of {n}",
            n - ok_ours,
            n - ok_slice
        ));
    }
    println!("{n} records, {:.0} bytes each", bytes as f64 / n as f64);
    for (name, secs) in [
        ("MetricEvent::from_json (validated)", ours),
        ("serde_json::from_slice (no validation)", slice),
    ] {
        println!(
            "{name:40} {:>12.0} records/s {:>7.1} ns/record",
            n as f64 / secs,
            secs * 1e9 / n as f64
        );
    }
    Ok(())
}
