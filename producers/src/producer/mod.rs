//! [`Producer`]: appends metric events to a [`Stream`] in batched put_records calls.
//!
//! Invariants:
//! - partition key = the event's `instance_id`; data = the event's JSON;
//! - each call carries at most `max_records_per_call` records and `max_bytes_per_call` bytes
//!   (data plus partition keys);
//! - only entries that failed with a retryable code (`ProvisionedThroughputExceededException`,
//!   `InternalFailure`, `KMSThrottlingException`, `ServiceUnavailable`) are put again, after an
//!   exponential backoff with full jitter, at most `max_attempts` times in all; other codes
//!   (`ValidationException`, …) and records over the 1 MiB limit are reported, not retried;
//! - in the default [`crate::OrderingMode::PerKey`] the records of one instance are appended in the
//!   order given (see [`queue`]);
//! - backpressure: a send holds permits for its bytes (up to `max_in_flight_bytes`) on a
//!   semaphore until it completes, so concurrent sends wait instead of piling up memory;
//! - [`Producer::close`] (shutdown) ends the retries: a send waiting to retry stops waiting and
//!   reports its entries not yet appended as failed (`NotSent`), so a stop never waits out a
//!   backoff.

mod queue;
mod report;

pub use report::{AppendedRecord, FailedRecord, SendReport};

use rand::RngExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use shardline_core::ports::Stream;
use shardline_core::stream::check_record_limits;
use shardline_core::{MetricEvent, PutRecordResult, PutRecordsEntry, RetryClass};

use crate::config::ProducerConfig;
use crate::error::ProducerError;
use queue::{Pending, SendQueue};

/// Per-record error codes worth retrying.
const RETRYABLE_CODES: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "KMSThrottlingException",
    "ServiceUnavailable",
];

/// Appends events to one stream; cheap to share behind an `Arc` across tasks.
pub struct Producer {
    stream: Arc<dyn Stream>,
    stream_name: String,
    cfg: ProducerConfig,
    in_flight: Arc<Semaphore>,
    capacity: u32,
    /// Set by [`Producer::close`]; wakes sends waiting to retry.
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("stream_name", &self.stream_name)
            .field("cfg", &self.cfg)
            .field("in_flight_bytes", &self.in_flight_bytes())
            .finish()
    }
}

impl Producer {
    /// A producer appending to `stream_name` on `stream`.
    ///
    /// # Errors
    /// [`ProducerError::Config`] when a configuration value is out of range.
    pub fn new(
        stream: Arc<dyn Stream>,
        stream_name: impl Into<String>,
        cfg: ProducerConfig,
    ) -> Result<Self, ProducerError> {
        cfg.validate()?;
        let capacity = u32::try_from(cfg.max_in_flight_bytes.bytes()).unwrap_or(u32::MAX);
        Ok(Producer {
            stream,
            stream_name: stream_name.into(),
            in_flight: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            cfg,
            closed: watch::Sender::new(false),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.cfg
    }

    /// Bytes held by sends in progress.
    pub fn in_flight_bytes(&self) -> u64 {
        u64::from(self.capacity).saturating_sub(self.in_flight.available_permits() as u64)
    }

    /// Appends `events`, retrying throttled entries, and reports what happened to each.
    ///
    /// Waits first while other sends hold `max_in_flight_bytes`. Once the producer is closed
    /// it retries nothing: the entries left are reported failed (`NotSent`).
    ///
    /// # Errors
    /// [`ProducerError::Stream`] when the stream rejects a whole call with a permanent error
    /// (the report inside lists what was appended before); [`ProducerError::Closed`] after
    /// [`Producer::close`].
    pub async fn send(&self, events: Vec<MetricEvent>) -> Result<SendReport, ProducerError> {
        let records = events
            .into_iter()
            .map(|e| {
                let data = bytes::Bytes::from(e.to_json());
                (e.instance_id, data)
            })
            .collect();
        self.send_records(records).await
    }

    /// As [`Producer::send`] for records given as (partition key, data), whatever the data
    /// holds (load tests append malformed records this way).
    ///
    /// # Errors
    /// As [`Producer::send`].
    pub async fn send_records(
        &self,
        records: Vec<(String, bytes::Bytes)>,
    ) -> Result<SendReport, ProducerError> {
        let mut report = SendReport::default();
        let mut total = 0u64;
        let records: Vec<(usize, String, bytes::Bytes)> = records
            .into_iter()
            .enumerate()
            .filter_map(|(index, (key, data))| {
                if let Err(why) = check_record_limits(&key, data.len()) {
                    report.failed.push(FailedRecord {
                        index,
                        partition_key: key,
                        error_code: "ValidationException".into(),
                        reason: why,
                        attempts: 0,
                    });
                    return None;
                }
                total += (data.len() + key.len()) as u64;
                Some((index, key, data))
            })
            .collect();
        let want = u32::try_from(total).unwrap_or(u32::MAX).min(self.capacity);
        let _permit = self
            .in_flight
            .acquire_many(want)
            .await
            .map_err(|_| ProducerError::Closed(self.stream_name.clone()))?;
        let mut queue = SendQueue::new(self.cfg.ordering, records);
        let mut retry_level = 0u32;
        let mut closed = self.closed.subscribe();
        while !queue.is_empty() {
            if retry_level > 0 {
                tokio::select! {
                    () = tokio::time::sleep(self.backoff(retry_level)) => {}
                    _ = closed.wait_for(|c| *c) => {}
                }
                if *closed.borrow() {
                    for p in queue.drain() {
                        let reason = format!(
                            "not sent: the producer closed before the record's next attempt \
                             ({} so far)",
                            p.attempts
                        );
                        report.failed.push(failed(p, "NotSent", reason));
                    }
                    break;
                }
            }
            let call = queue.next_call(
                self.cfg.max_records_per_call,
                self.cfg.max_bytes_per_call.bytes() as usize,
            );
            retry_level = match self.put_call(call, &mut queue, &mut report).await {
                Ok(level) => level,
                Err(source) => {
                    for p in queue.drain() {
                        report
                            .failed
                            .push(failed(p, "NotSent", format!("not sent: {source}")));
                    }
                    report.sort();
                    return Err(ProducerError::Stream {
                        stream: self.stream_name.clone(),
                        source,
                        partial: Box::new(report),
                    });
                }
            };
        }
        report.sort();
        Ok(report)
    }

    /// Waits until every send in progress has completed.
    ///
    /// # Errors
    /// [`ProducerError::Closed`] after [`Producer::close`].
    pub async fn flush(&self) -> Result<(), ProducerError> {
        let _all = self
            .in_flight
            .acquire_many(self.capacity)
            .await
            .map_err(|_| ProducerError::Closed(self.stream_name.clone()))?;
        Ok(())
    }

    /// Refuses further sends; sends in progress finish their call under way and retry
    /// nothing (see [`Producer::send`]).
    pub fn close(&self) {
        self.in_flight.close();
        self.closed.send_replace(true);
    }

    /// Puts one call. Returns the retry level for the next call (0 = no backoff), or the
    /// stream's error when the whole call failed permanently (its records are back in `queue`).
    async fn put_call(
        &self,
        mut call: Vec<Pending>,
        queue: &mut SendQueue,
        report: &mut SendReport,
    ) -> Result<u32, shardline_core::Error> {
        let entries: Vec<PutRecordsEntry> = call
            .iter_mut()
            .map(|p| {
                p.attempts += 1;
                if p.attempts > 1 {
                    report.retries += 1;
                }
                PutRecordsEntry {
                    partition_key: p.key.clone(),
                    explicit_hash_key: None,
                    data: p.data.clone(),
                }
            })
            .collect();
        report.calls += 1;
        let n = entries.len();
        debug!(stream = %self.stream_name, records = n, "put_records");
        let results = match self.stream.put_records(&self.stream_name, entries).await {
            Ok(r) if r.len() == n => r,
            Ok(r) => {
                queue.requeue(call);
                return Err(shardline_core::Error::Internal(format!(
                    "put_records returned {} results for {n} entries",
                    r.len()
                )));
            }
            Err(e) if e.retry_class() == RetryClass::Retryable => {
                warn!(stream = %self.stream_name, records = n, error = %e, "put_records call failed; retrying");
                let msg = e.to_string();
                let failed_all = call
                    .into_iter()
                    .map(|p| (p, "CallFailed".to_string(), msg.clone()))
                    .collect();
                return Ok(self.requeue_or_fail(failed_all, queue, report));
            }
            Err(e) => {
                queue.requeue(call);
                return Err(e);
            }
        };
        let mut retry = Vec::new();
        for (p, r) in call.into_iter().zip(results) {
            match r {
                PutRecordResult::Ok {
                    shard_id,
                    sequence_number,
                } => {
                    report.bytes += p.size() as u64;
                    report.appended.push(AppendedRecord {
                        index: p.index,
                        partition_key: p.key,
                        shard_id,
                        sequence_number,
                    });
                }
                PutRecordResult::Err {
                    error_code,
                    error_message,
                } => {
                    if RETRYABLE_CODES.contains(&error_code.as_str()) {
                        retry.push((p, error_code, error_message));
                    } else {
                        report.failed.push(failed(p, &error_code, error_message));
                    }
                }
            }
        }
        if retry.is_empty() {
            return Ok(0);
        }
        warn!(stream = %self.stream_name, records = retry.len(), "entries throttled; retrying");
        Ok(self.requeue_or_fail(retry, queue, report))
    }

    /// Puts retryable failures back in the queue, or reports those out of attempts.
    /// Returns the highest attempt count requeued (the next backoff level).
    fn requeue_or_fail(
        &self,
        retry: Vec<(Pending, String, String)>,
        queue: &mut SendQueue,
        report: &mut SendReport,
    ) -> u32 {
        let mut level = 0;
        let mut back = Vec::new();
        for (p, code, msg) in retry {
            if p.attempts >= self.cfg.max_attempts {
                let reason = format!("gave up after {} attempts: {msg}", p.attempts);
                report.failed.push(failed(p, &code, reason));
            } else {
                level = level.max(p.attempts);
                back.push(p);
            }
        }
        queue.requeue(back);
        level
    }

    /// Full-jitter exponential backoff: uniform in [0, min(max, base · 2^(level-1))].
    fn backoff(&self, level: u32) -> Duration {
        let base = self.cfg.base_backoff.as_micros() as u64;
        let ceiling = base
            .saturating_mul(1u64 << level.saturating_sub(1).min(30))
            .min(self.cfg.max_backoff.as_micros() as u64);
        Duration::from_micros(rand::rng().random_range(0..=ceiling))
    }
}

fn failed(p: Pending, code: &str, reason: String) -> FailedRecord {
    FailedRecord {
        index: p.index,
        partition_key: p.key,
        error_code: code.to_string(),
        reason,
        attempts: p.attempts,
    }
}
