//! `shardline loadgen`: synthetic metric producers at a steady or stepped rate against any
//! [`Stream`] (the embedded log, `shardline serve`, kinesalite, Kinesis), with a report.
//!
//! - `callers` tasks share one schedule: batch `i` (of `batch` records) is due at
//!   `start + i × batch / rate` within its rate step, so the offered rate is the target
//!   however slow a call is, until every caller is busy (then the achieved rate shows it).
//!   A rate of 0 means as fast as the callers go.
//! - Records are the seed's metric events for `instances` instances (partition key =
//!   instance id), padded to `record_size` bytes, carrying their send time in `timestamp_ms`.
//! - Every put_records call's latency (send to acknowledgement) is recorded; each record is
//!   counted acknowledged, throttled (`ProvisionedThroughputExceededException`) or failed. No
//!   record is retried: the report shows what the endpoint did.
//! - With `consumers > 0`, that many readers follow every shard from LATEST (and into child
//!   shards) and record each record's end-to-end lag (read time minus send time).
//! - With `read_back`, once writing stops, every shard is read from TRIM_HORIZON to its end by
//!   `callers` concurrent readers, measuring GetRecords throughput and call latency.
//!
//! Everything is bounded: the write phase by `duration`, draining consumers and reading back
//! by [`DRAIN_LIMIT`] each.

mod histogram;
mod readers;
mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use shardline_core::ports::Stream;
use shardline_core::stream::PutRecordResult;
use tokio::sync::Mutex;

pub use histogram::{Histogram, Latency};
pub use readers::{ConsumerReport, ReadBackReport};

/// Longest wait for consumers to catch up, and for reading back, once writing stops.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// What to generate.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The stream to write.
    pub stream: String,
    /// Records per second, one entry per step (0 = as fast as possible).
    pub rates: Vec<u64>,
    /// How long each step lasts (the last lasts until `duration`).
    pub step: Duration,
    /// How long to write.
    pub duration: Duration,
    /// Simulated instances (distinct partition keys).
    pub instances: usize,
    /// Bytes per record (at least the event's own size).
    pub record_size: usize,
    /// Records per put_records call (1 to 500).
    pub batch: usize,
    /// Concurrent put_records calls.
    pub callers: usize,
    /// Readers measuring end-to-end lag.
    pub consumers: usize,
    /// Read everything back after writing, measuring GetRecords.
    pub read_back: bool,
    /// Seeds the values (a run is repeatable).
    pub seed: u64,
}

impl LoadConfig {
    /// Checks the settings, naming the one out of range.
    ///
    /// # Errors
    /// A message naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.rates.is_empty() {
            return Err("--rate needs at least one rate".into());
        }
        if !(1..=500).contains(&self.batch) {
            return Err(format!("--batch {} must be 1 to 500", self.batch));
        }
        if self.callers == 0 || self.callers > 1024 {
            return Err(format!("--callers {} must be 1 to 1024", self.callers));
        }
        if self.instances == 0 {
            return Err("--instances must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be more than 0s".into());
        }
        if self.record_size > 1024 * 1024 {
            return Err(format!("--record-size {} is over 1 MiB", self.record_size));
        }
        if self.rates[..self.rates.len() - 1].contains(&0) {
            return Err("--rate 0 (as fast as possible) can only be the last step".into());
        }
        if self.rates.len() > 1 && self.step.is_zero() {
            return Err("several --rate steps need --step".into());
        }
        Ok(())
    }
}

/// Live counters, readable while the load runs (for a progress line).
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Records sent.
    pub sent: AtomicU64,
    /// Records acknowledged.
    pub acknowledged: AtomicU64,
    /// Records throttled.
    pub throttled: AtomicU64,
    /// Records failed otherwise.
    pub failed: AtomicU64,
    /// Records the consumers read (all consumers together).
    pub consumed: AtomicU64,
    /// Records read back.
    pub read_back: AtomicU64,
    /// Set when writing has stopped.
    pub writing_done: AtomicBool,
}

/// The final report (`--json` writes it as is).
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The stream written.
    pub stream: String,
    /// Target rates, records/s (0 = unlimited).
    pub target_rates: Vec<u64>,
    /// Records per put_records call.
    pub batch: usize,
    /// Concurrent callers.
    pub callers: usize,
    /// Bytes per record.
    pub record_size: usize,
    /// How long writing ran, ms.
    pub duration_ms: u64,
    /// Records sent.
    pub sent: u64,
    /// Records acknowledged.
    pub acknowledged: u64,
    /// Records refused with ProvisionedThroughputExceededException.
    pub throttled: u64,
    /// Records failed otherwise (and records of calls that failed whole).
    pub failed: u64,
    /// Acknowledged records per second.
    pub achieved_rate: f64,
    /// put_records call latency (send to acknowledgement).
    pub ack_latency: Latency,
    /// Whole-call errors, first few, for the summary.
    pub errors: Vec<String>,
    /// Per consumer: records read and end-to-end lag.
    pub consumers: Vec<ConsumerReport>,
    /// Reading everything back, when asked for.
    pub read_back: Option<ReadBackReport>,
}

struct Shared {
    config: LoadConfig,
    stream: Arc<dyn Stream>,
    live: Arc<LiveStats>,
    next_batch: AtomicU64,
    start: Instant,
    latency: Mutex<Histogram>,
    errors: Mutex<Vec<String>>,
}

/// Runs the load against `stream` and returns the report. `live` is updated as it goes.
///
/// # Errors
/// A configuration problem, or listing the stream's shards failing.
pub async fn run(
    stream: Arc<dyn Stream>,
    config: LoadConfig,
    live: Arc<LiveStats>,
) -> Result<LoadReport, String> {
    config.validate()?;
    let consumers = readers::start_consumers(&stream, &config, &live).await?;
    let shared = Arc::new(Shared {
        config: config.clone(),
        stream: stream.clone(),
        live: live.clone(),
        next_batch: AtomicU64::new(0),
        start: Instant::now(),
        latency: Mutex::new(Histogram::default()),
        errors: Mutex::new(Vec::new()),
    });
    let callers: Vec<_> = (0..config.callers)
        .map(|i| tokio::spawn(caller(shared.clone(), i as u64)))
        .collect();
    for c in callers {
        let _ = c.await;
    }
    let elapsed = shared.start.elapsed();
    live.writing_done.store(true, Ordering::Release);
    let acknowledged = live.acknowledged.load(Ordering::Acquire);
    let consumers = readers::finish_consumers(consumers, acknowledged, &live).await;
    let read_back = if config.read_back {
        Some(readers::read_back(&stream, &config, &live).await?)
    } else {
        None
    };
    let latency = shared.latency.lock().await.summary();
    let errors = shared.errors.lock().await.clone();
    Ok(LoadReport {
        stream: config.stream.clone(),
        target_rates: config.rates.clone(),
        batch: config.batch,
        callers: config.callers,
        record_size: config.record_size,
        duration_ms: elapsed.as_millis() as u64,
        sent: live.sent.load(Ordering::Acquire),
        acknowledged,
        throttled: live.throttled.load(Ordering::Acquire),
        failed: live.failed.load(Ordering::Acquire),
        achieved_rate: acknowledged as f64 / elapsed.as_secs_f64().max(1e-9),
        ack_latency: latency,
        errors,
        consumers,
        read_back,
    })
}

/// One caller: takes the next due batch, waits for its time, sends it, counts the outcome.
async fn caller(shared: Arc<Shared>, id: u64) {
    let cfg = &shared.config;
    let mut generator = workload::Generator::new(cfg, shared.config.seed ^ id.wrapping_mul(0x9e37));
    let mut hist = Histogram::default();
    loop {
        let n = shared.next_batch.fetch_add(1, Ordering::AcqRel);
        let due = due_time(cfg, n);
        let Some(due) = due else { break };
        if due >= cfg.duration {
            break;
        }
        let now = shared.start.elapsed();
        if due > now {
            tokio::time::sleep(due - now).await;
        }
        if shared.start.elapsed() >= cfg.duration {
            break;
        }
        let entries = generator.batch(cfg.batch, shardline_core::time::now_ms());
        let count = entries.len() as u64;
        shared.live.sent.fetch_add(count, Ordering::Relaxed);
        let sent_at = Instant::now();
        match shared.stream.put_records(&cfg.stream, entries).await {
            Ok(results) => {
                hist.record(sent_at.elapsed().as_micros() as u64);
                let (mut ok, mut thr, mut bad) = (0, 0, 0);
                for r in &results {
                    match r {
                        PutRecordResult::Ok { .. } => ok += 1,
                        PutRecordResult::Err { error_code, .. }
                            if error_code == "ProvisionedThroughputExceededException" =>
                        {
                            thr += 1
                        }
                        PutRecordResult::Err { .. } => bad += 1,
                    }
                }
                shared.live.acknowledged.fetch_add(ok, Ordering::Relaxed);
                shared.live.throttled.fetch_add(thr, Ordering::Relaxed);
                shared.live.failed.fetch_add(bad, Ordering::Relaxed);
            }
            Err(e) => {
                let throttled = e.retry_class() == shardline_core::RetryClass::Retryable
                    && matches!(e, shardline_core::Error::Throttled(_));
                let counter = if throttled {
                    &shared.live.throttled
                } else {
                    &shared.live.failed
                };
                counter.fetch_add(count, Ordering::Relaxed);
                let mut errors = shared.errors.lock().await;
                if errors.len() < 5 {
                    errors.push(e.to_string());
                }
            }
        }
    }
    shared.latency.lock().await.merge(&hist);
}

/// When batch `n` is due, counted from the start (an unlimited step's batches are due at its
/// start: callers send them back to back until the time is up).
fn due_time(cfg: &LoadConfig, n: u64) -> Option<Duration> {
    // Walk the steps: each step s lasts `step` (the last until the end) at rates[s].
    let mut start = Duration::ZERO;
    let mut first_batch = 0u64;
    for (s, &rate) in cfg.rates.iter().enumerate() {
        let last = s + 1 == cfg.rates.len() || cfg.step.is_zero();
        let len = if last {
            cfg.duration.saturating_sub(start)
        } else {
            cfg.step
        };
        if rate == 0 {
            return Some(start);
        }
        let per_batch = Duration::from_secs_f64(cfg.batch as f64 / rate as f64);
        let batches = (len.as_secs_f64() / per_batch.as_secs_f64()).ceil() as u64;
        if last || n < first_batch + batches {
            return Some(start + per_batch.mul_f64((n - first_batch) as f64));
        }
        first_batch += batches;
        start += len;
    }
    None
}

#[cfg(test)]
mod tests;
