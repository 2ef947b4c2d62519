//! Shared set-up of the runtime tests: a real embedded log and local stores in a temporary
//! directory, valid events, and a sink that applies every batch at once.

#![allow(dead_code)]

use async_trait::async_trait;
use bytes::Bytes;
use shardline_consumers::runtime::{Consumer, ConsumerConfig, RetryConfig};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::{CheckpointKey, CheckpointStore, DeadLetterStore, Stream};
use shardline_core::{Error, PutRecordResult, PutRecordsEntry, SequenceNumber, ShardId};
use shardline_local::{LocalBackends, LocalOptions};
use shardline_log::{Log, LogOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const STREAM: &str = "metrics";

pub struct Env {
    pub _dir: tempfile::TempDir,
    pub log: Arc<Log>,
    pub local: LocalBackends,
}

impl Env {
    pub async fn new(shards: u32) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path().join("log"), LogOptions::default())
            .await
            .expect("open log");
        log.create_stream(STREAM, shards, Duration::from_secs(24 * 3600))
            .await
            .expect("create stream");
        let local = LocalBackends::open(&dir.path().join("data"), LocalOptions::default())
            .expect("open local stores");
        Env {
            _dir: dir,
            log: Arc::new(log),
            local,
        }
    }

    pub fn checkpoints(&self) -> Arc<dyn CheckpointStore> {
        self.local.checkpoints.clone()
    }

    pub fn dead_letters(&self) -> Arc<dyn DeadLetterStore> {
        self.local.dead_letters.clone()
    }

    pub fn consumer(&self, config: ConsumerConfig, sink: Box<dyn Sink>) -> Consumer {
        Consumer::new(
            config,
            self.log.clone(),
            self.checkpoints(),
            self.dead_letters(),
            sink,
        )
        .expect("valid consumer")
    }

    /// Appends (partition key, data) pairs; returns each record's shard and sequence number.
    pub async fn put(&self, records: Vec<(String, Vec<u8>)>) -> Vec<(ShardId, SequenceNumber)> {
        let mut out = Vec::new();
        for chunk in records.chunks(500) {
            let entries = chunk
                .iter()
                .map(|(pk, data)| PutRecordsEntry {
                    partition_key: pk.clone(),
                    explicit_hash_key: None,
                    data: Bytes::from(data.clone()),
                })
                .collect();
            for r in self.log.put_records(STREAM, entries).await.expect("put") {
                match r {
                    PutRecordResult::Ok {
                        shard_id,
                        sequence_number,
                    } => out.push((shard_id, sequence_number)),
                    PutRecordResult::Err { error_message, .. } => {
                        panic!("put failed: {error_message}")
                    }
                }
            }
        }
        out
    }

    pub async fn checkpoint(&self, consumer: &str, shard: ShardId) -> Option<SequenceNumber> {
        let key = CheckpointKey {
            consumer: consumer.into(),
            stream: STREAM.into(),
            shard,
        };
        self.checkpoints()
            .get(&key)
            .await
            .expect("checkpoint get")
            .map(|c| c.sequence_number)
    }
}

pub fn event(i: u64) -> serde_json::Value {
    let ts = 1_771_500_000 + i as i64;
    serde_json::json!({
        "metric_id": format!("cpu-{ts}"),
        "metric_type": "cpu_utilization",
        "timestamp": ts,
        "value": (i % 90) as f64 + 0.25,
        "instance_id": format!("i-{:06}", 100_000 + i % 13),
        "region": "eu-west-1",
        "collected_at": "2026-02-19T11:20:00.000Z",
    })
}

pub fn valid(range: std::ops::Range<u64>) -> Vec<(String, Vec<u8>)> {
    range
        .map(|i| {
            let e = event(i);
            (
                e["instance_id"].as_str().unwrap_or("i").to_string(),
                e.to_string().into_bytes(),
            )
        })
        .collect()
}

pub fn config(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        poll_interval: Duration::from_millis(10),
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_attempts: 6,
        },
        ..ConsumerConfig::new(name, STREAM)
    }
}

pub type Delivered = Arc<Mutex<Vec<SinkRecord>>>;

pub fn delivered(d: &Delivered) -> Vec<SinkRecord> {
    d.lock().map(|v| v.clone()).unwrap_or_default()
}

/// Applies every batch at once and reports it durable.
pub struct CollectSink {
    pub out: Delivered,
    /// Fail this many write calls with a retryable error first.
    pub fail_retryable: u32,
    /// Fail every write with a permanent error.
    pub fail_permanent: bool,
    pub attempts: Arc<Mutex<u32>>,
}

impl CollectSink {
    pub fn new() -> (Self, Delivered) {
        let out = Delivered::default();
        let sink = CollectSink {
            out: out.clone(),
            fail_retryable: 0,
            fail_permanent: false,
            attempts: Arc::default(),
        };
        (sink, out)
    }
}

#[async_trait]
impl Sink for CollectSink {
    fn name(&self) -> &str {
        "collect"
    }

    async fn write(
        &mut self,
        _shard: ShardId,
        records: &[SinkRecord],
        _now_ms: i64,
    ) -> shardline_core::Result<Option<SequenceNumber>> {
        if let Ok(mut a) = self.attempts.lock() {
            *a += 1;
        }
        if self.fail_permanent {
            return Err(Error::InvalidArgument("table schema does not match".into()));
        }
        if self.fail_retryable > 0 {
            self.fail_retryable -= 1;
            return Err(Error::Throttled("slow down".into()));
        }
        let last = records.last().map(|r| r.sequence_number.clone());
        if let Ok(mut out) = self.out.lock() {
            out.extend(records.iter().cloned());
        }
        Ok(last)
    }

    async fn flush(
        &mut self,
        _now_ms: i64,
        _force: bool,
    ) -> shardline_core::Result<Vec<(ShardId, SequenceNumber)>> {
        Ok(Vec::new())
    }
}

pub fn seqs(records: &[SinkRecord]) -> Vec<SequenceNumber> {
    records.iter().map(|r| r.sequence_number.clone()).collect()
}

pub fn last_per_shard(put: &[(ShardId, SequenceNumber)]) -> BTreeMap<ShardId, SequenceNumber> {
    let mut m = BTreeMap::new();
    for (shard, seq) in put {
        let e = m.entry(*shard).or_insert_with(|| seq.clone());
        if seq > e {
            *e = seq.clone();
        }
    }
    m
}

/// How many times each record was applied.
pub type Applied = Arc<Mutex<BTreeMap<SequenceNumber, u32>>>;

pub fn applied(a: &Applied) -> BTreeMap<SequenceNumber, u32> {
    a.lock().map(|m| m.clone()).unwrap_or_default()
}

/// Counts each record of `records` as applied once more; the last one's sequence number.
pub fn apply(a: &Applied, records: &[SinkRecord]) -> Option<SequenceNumber> {
    if let Ok(mut m) = a.lock() {
        for r in records {
            *m.entry(r.sequence_number.clone()).or_default() += 1;
        }
    }
    records.last().map(|r| r.sequence_number.clone())
}

/// The supervised tests' consumer: batches of 100, retries from 100 ms up to 10 s, 4 tries.
pub fn supervised_config(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        batch_size: 100,
        poll_interval: Duration::from_millis(50),
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_attempts: 4,
        },
        ..ConsumerConfig::new(name, STREAM)
    }
}

/// A bound no test comes near (virtual time: it costs nothing to wait).
pub const HOUR: Duration = Duration::from_secs(3600);

/// Waits (paused time: each step is a virtual second) until `done`, at most `steps` seconds.
pub async fn eventually(what: &str, steps: u32, mut done: impl FnMut() -> bool) {
    for _ in 0..steps {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{what}: not within {steps} s");
}

/// Applies each batch and reports it durable; fails every write while `down` is set.
pub struct SwitchedSink {
    /// The sink's name (what errors name).
    pub name: &'static str,
    pub applied: Applied,
    pub down: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl Sink for SwitchedSink {
    fn name(&self) -> &str {
        self.name
    }

    async fn write(
        &mut self,
        _shard: ShardId,
        records: &[SinkRecord],
        _now_ms: i64,
    ) -> shardline_core::Result<Option<SequenceNumber>> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Unavailable("the table is down".into()));
        }
        Ok(apply(&self.applied, records))
    }

    async fn flush(
        &mut self,
        _now_ms: i64,
        _force: bool,
    ) -> shardline_core::Result<Vec<(ShardId, SequenceNumber)>> {
        Ok(Vec::new())
    }
}
