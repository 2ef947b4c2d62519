//! The soak: `shardline up` at 3,000 events/s (75 synthetic instances × 4 metric types every
//! 100 ms) with 1 % malformed records (`collectors.synthetic.malformed_fraction`), SIGKILLed
//! 50 times at seeded random moments — from while it still opens its stores to a few seconds
//! into the load — then drained with `up --once`. Counted against the log itself: every valid
//! record is exactly once in the Parquet output, in the table and in SampleCount; every
//! malformed one is in the dead-letter store exactly once per consumer, and those timed in the
//! year 2100 (well-formed, but outside the event-time window) with reason `clock_skew`.
//!
//! A run takes two to three minutes in a debug build on two busy cores; it is bounded (each
//! `up` lives at most 4 s, the drain at most ten minutes). The seed is printed;
//! `SHARDLINE_SOAK_SEED=<n>` replays a run's kill moments.

mod support;

use anyhow::{Context, Result, bail};
use shardline::pipeline::Pipeline;
use shardline_core::ports::Stream;
use shardline_core::{MetricEvent, StartingPosition, event};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::{Moments, Shardline, totals};

/// How many times `up` is killed.
const KILLS: usize = 50;
/// The kill moments' seed unless `SHARDLINE_SOAK_SEED` gives one.
const SEED: u64 = 0x50a6_2026_1206;
/// A kill comes this long after the start, uniformly (ms).
const KILL_AFTER_MS: (u64, u64) = (100, 4000);
/// The longest the final drain may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// (shard id, sequence number), as the Parquet columns and the dead letters spell them.
type Key = (String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_50_times_under_load_every_event_lands_exactly_once() -> Result<()> {
    let seed = match std::env::var("SHARDLINE_SOAK_SEED") {
        Ok(s) => s
            .parse()
            .with_context(|| format!("SHARDLINE_SOAK_SEED={s} is not a number"))?,
        Err(_) => SEED,
    };
    eprintln!("soak: seed {seed} (SHARDLINE_SOAK_SEED={seed} replays it)");
    let toml = support::TEST_TOML.replace(
        "[collectors.synthetic]\ninstances = 8\n",
        "[collectors.synthetic]\ninstances = 75\nmalformed_fraction = 0.01\n",
    );
    assert_ne!(toml, support::TEST_TOML, "the fixture's synthetic section");
    let sh = Shardline::with_config(&toml)?;
    let started = Instant::now();
    let mut moments = Moments::new(seed);
    for kill in 0..KILLS {
        let log = sh.dir.path().join(format!("up-{kill}.log"));
        let mut up = sh.spawn_logged(&["up"], &log)?;
        let wait = moments.between_ms(KILL_AFTER_MS.0, KILL_AFTER_MS.1);
        std::thread::sleep(wait);
        if !up.is_running() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            bail!(
                "`shardline up` #{kill} exited on its own before its kill at {wait:?}; its last \
                 lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        up.kill()?;
    }
    let killed = started.elapsed();
    let drain = sh.run_within(&["up", "--once"], None, DRAIN_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&drain.stdout);
    assert!(
        drain.status.success(),
        "the drain failed: {stdout}\n{}",
        String::from_utf8_lossy(&drain.stderr)
    );

    let Census {
        good,
        bad,
        skewed,
        parquet,
        letters,
    } = census(&sh).await?;
    let t = totals(&sh).await?;
    eprintln!(
        "soak: {KILLS} kills in {killed:?}, drained in {:?}; {} valid and {} malformed records \
         ({} of them clock-skewed)",
        started.elapsed() - killed,
        good.len(),
        bad.len(),
        skewed.len()
    );
    // 50 runs of about a second at 3,000/s: far more than one collection per run.
    assert!(good.len() > 50 * 300, "the killed runs appended: {t:?}");
    assert!(!bad.is_empty(), "1 % of them malformed");
    assert!(
        !skewed.is_empty(),
        "every fourth malformed record a clock in 2100"
    );
    assert_eq!(t.log_records, (good.len() + bad.len()) as u64, "{t:?}");
    assert_eq!(
        t.parquet_rows,
        good.len() as u64,
        "Parquet rows: {t:?}, {}",
        describe_difference(&parquet, &good)
    );
    assert!(
        parquet == good,
        "the Parquet rows are the valid records: {}",
        describe_difference(&parquet, &good)
    );
    assert_eq!(t.distinct_rows, t.parquet_rows, "a row twice: {t:?}");
    assert_eq!(t.table_items, good.len() as u64, "table items: {t:?}");
    assert_eq!(t.samples, good.len() as f64, "SampleCount: {t:?}");
    assert_eq!(letters.len(), 4, "dead letters of four consumers");
    for (consumer, l) in &letters {
        assert_eq!(l.count, bad.len(), "{consumer}'s dead letters, each once");
        assert!(
            l.keys == bad,
            "{consumer}'s dead letters are the malformed records: {}",
            describe_difference(&l.keys, &bad)
        );
        assert!(
            l.clock_skew == skewed,
            "{consumer}'s `clock_skew` dead letters are the records timed in 2100: {}",
            describe_difference(&l.clock_skew, &skewed)
        );
    }
    support::outbox_lines_unique(&sh)?;
    Ok(())
}

/// What the log, the Parquet output and the dead-letter store hold after the drain.
struct Census {
    /// Records the consumers decode as events.
    good: BTreeSet<Key>,
    /// Records they reject.
    bad: BTreeSet<Key>,
    /// The rejected records that are well-formed events timed outside the event-time window.
    skewed: BTreeSet<Key>,
    /// The Parquet rows.
    parquet: BTreeSet<Key>,
    /// Per consumer, its dead letters.
    letters: BTreeMap<String, Letters>,
}

/// One consumer's dead letters.
#[derive(Default)]
struct Letters {
    /// How many.
    count: usize,
    /// Which records.
    keys: BTreeSet<Key>,
    /// Which records, of those with reason `clock_skew`.
    clock_skew: BTreeSet<Key>,
}

/// Reads the [`Census`] of `sh`'s pipeline (no process may have it open).
async fn census(sh: &Shardline) -> Result<Census> {
    let p = Pipeline::open(sh.config()?).await?;
    let out = census_of(&p).await;
    p.close().await?;
    out
}

async fn census_of(p: &Pipeline) -> Result<Census> {
    let stream = &p.config.stream.name;
    let limits = p.config.consumers.event_time;
    let (mut good, mut bad) = (BTreeSet::new(), BTreeSet::new());
    let mut skewed = BTreeSet::new();
    for shard in p.embedded_log()?.list_shards(stream).await? {
        let mut it = p
            .embedded_log()?
            .get_shard_iterator(stream, shard.shard_id, &StartingPosition::TrimHorizon)
            .await?;
        // At most a million records per shard: ample for the run, and a bound.
        for _ in 0..100 {
            let out = p.embedded_log()?.get_records(&it, 10_000).await?;
            for r in &out.records {
                let key = (
                    shard.shard_id.to_string(),
                    r.sequence_number.as_str().to_string(),
                );
                // As the consumers decode it: a well-formed event whose time is outside the
                // window around its arrival (the collector's clock-skew kind, in 2100) is bad.
                if event::decode(&r.data, r.approximate_arrival_ms, &limits).is_ok() {
                    good.insert(key);
                } else {
                    if MetricEvent::from_json(&r.data).is_ok() {
                        skewed.insert(key.clone());
                    }
                    bad.insert(key);
                }
            }
            match out.next_iterator {
                Some(next) if !out.records.is_empty() => it = next,
                _ => break,
            }
        }
    }

    let engine = shardline_query::QueryEngine::new(&shardline::wiring::parquet_root(&p.config))?;
    let batches = engine
        .sql("SELECT shard_id, sequence_number FROM metrics")
        .await?;
    let csv = shardline_query::format_batches(&batches, shardline_query::OutputFormat::Csv)?;
    let mut parquet = BTreeSet::new();
    for line in csv.lines().skip(1).filter(|l| !l.is_empty()) {
        let (shard, seq) = line
            .split_once(',')
            .with_context(|| format!("not a CSV row: {line}"))?;
        if !parquet.insert((shard.to_string(), seq.to_string())) {
            bail!("Parquet holds ({shard}, {seq}) twice");
        }
    }

    let mut letters = BTreeMap::new();
    for l in p.backends.dead_letters.list(None).await? {
        let entry: &mut Letters = letters.entry(l.consumer.clone()).or_default();
        let key = (l.shard.to_string(), l.sequence_number.as_str().to_string());
        entry.count += 1;
        if l.reason.starts_with("clock_skew: ") {
            entry.clock_skew.insert(key.clone());
        }
        entry.keys.insert(key);
    }
    Ok(Census {
        good,
        bad,
        skewed,
        parquet,
        letters,
    })
}

/// What one set has that the other lacks, briefly.
fn describe_difference(have: &BTreeSet<Key>, want: &BTreeSet<Key>) -> String {
    let missing: Vec<&Key> = want.difference(have).take(5).collect();
    let extra: Vec<&Key> = have.difference(want).take(5).collect();
    format!(
        "{} missing (e.g. {missing:?}), {} extra (e.g. {extra:?})",
        want.difference(have).count(),
        have.difference(want).count()
    )
}
