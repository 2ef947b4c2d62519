//! The consumer runtime against the real embedded log and local stores: consumption,
//! checkpoint resume, dead letters per bad-input case, retries, durable-mark checkpoints,
//! shutdown.

use async_trait::async_trait;
use bytes::Bytes;
use shardline_consumers::runtime::{Consumer, ConsumerConfig, ConsumerError, RetryConfig};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::{CheckpointKey, CheckpointStore, DeadLetterStore, Stream};
use shardline_core::{
    Error, PutRecordResult, PutRecordsEntry, SequenceNumber, ShardId, StartingPosition,
};
use shardline_local::{LocalBackends, LocalOptions};
use shardline_log::{Log, LogOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STREAM: &str = "metrics";

struct Env {
    _dir: tempfile::TempDir,
    log: Arc<Log>,
    local: LocalBackends,
}

impl Env {
    async fn new(shards: u32) -> Env {
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

    fn checkpoints(&self) -> Arc<dyn CheckpointStore> {
        self.local.checkpoints.clone()
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetterStore> {
        self.local.dead_letters.clone()
    }

    fn consumer(&self, config: ConsumerConfig, sink: Box<dyn Sink>) -> Consumer {
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
    async fn put(&self, records: Vec<(String, Vec<u8>)>) -> Vec<(ShardId, SequenceNumber)> {
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

    async fn checkpoint(&self, consumer: &str, shard: ShardId) -> Option<SequenceNumber> {
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

fn event(i: u64) -> serde_json::Value {
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

fn valid(range: std::ops::Range<u64>) -> Vec<(String, Vec<u8>)> {
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

fn config(name: &str) -> ConsumerConfig {
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

type Delivered = Arc<Mutex<Vec<SinkRecord>>>;

fn delivered(d: &Delivered) -> Vec<SinkRecord> {
    d.lock().map(|v| v.clone()).unwrap_or_default()
}

/// Applies every batch at once and reports it durable.
struct CollectSink {
    out: Delivered,
    /// Fail this many write calls with a retryable error first.
    fail_retryable: u32,
    /// Fail every write with a permanent error.
    fail_permanent: bool,
    attempts: Arc<Mutex<u32>>,
}

impl CollectSink {
    fn new() -> (Self, Delivered) {
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
        records: Vec<SinkRecord>,
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
            out.extend(records);
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

fn seqs(records: &[SinkRecord]) -> Vec<SequenceNumber> {
    records.iter().map(|r| r.sequence_number.clone()).collect()
}

fn last_per_shard(put: &[(ShardId, SequenceNumber)]) -> BTreeMap<ShardId, SequenceNumber> {
    let mut m = BTreeMap::new();
    for (shard, seq) in put {
        let e = m.entry(*shard).or_insert_with(|| seq.clone());
        if seq > e {
            *e = seq.clone();
        }
    }
    m
}

#[tokio::test]
async fn drains_every_record_of_every_shard_and_checkpoints_the_last() {
    let env = Env::new(3).await;
    let put = env.put(valid(0..600)).await;
    let (sink, out) = CollectSink::new();
    let report = env
        .consumer(config("c1"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    let got = delivered(&out);
    assert_eq!(got.len(), 600);
    assert_eq!(report.status.records_in, 600);
    assert_eq!(report.status.records_delivered, 600);
    assert_eq!(report.status.dead_letters, 0);
    let mut want: Vec<SequenceNumber> = put.iter().map(|(_, s)| s.clone()).collect();
    let mut have = seqs(&got);
    want.sort();
    have.sort();
    assert_eq!(have, want, "each record delivered once");
    // Per shard in sequence order.
    for shard in 0..3 {
        let s: Vec<_> = got
            .iter()
            .filter(|r| r.shard == ShardId(shard))
            .map(|r| r.sequence_number.clone())
            .collect();
        assert!(s.windows(2).all(|w| w[0] < w[1]), "shard {shard} in order");
    }
    let lasts = last_per_shard(&put);
    assert_eq!(lasts.len(), 3, "records spread over all shards");
    for (shard, last) in lasts {
        assert_eq!(env.checkpoint("c1", shard).await, Some(last.clone()));
        assert_eq!(report.status.shards[&shard].checkpointed, Some(last));
        assert_eq!(report.status.shards[&shard].millis_behind_latest, 0);
    }
    assert!(report.status.last_checkpoint_ms.is_some());
}

#[tokio::test]
async fn a_restarted_consumer_resumes_after_its_checkpoint() {
    let env = Env::new(2).await;
    env.put(valid(0..100)).await;
    let (sink, first) = CollectSink::new();
    env.consumer(config("resume"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert_eq!(delivered(&first).len(), 100);

    let newer = env.put(valid(100..150)).await;
    let (sink, second) = CollectSink::new();
    let report = env
        .consumer(config("resume"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    let mut got = seqs(&delivered(&second));
    let mut want: Vec<_> = newer.iter().map(|(_, s)| s.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "only the records appended after the stop");
    assert_eq!(report.status.records_in, 50);

    // Another consumer has its own checkpoints and reads everything.
    let (sink, other) = CollectSink::new();
    env.consumer(config("other"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert_eq!(delivered(&other).len(), 150);
}

#[tokio::test]
async fn latest_skips_existing_records_when_no_checkpoint_exists() {
    let env = Env::new(1).await;
    env.put(valid(0..20)).await;
    let (sink, out) = CollectSink::new();
    let cfg = ConsumerConfig {
        starting_position: StartingPosition::Latest,
        ..config("latest")
    };
    let report = env
        .consumer(cfg, Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert!(delivered(&out).is_empty());
    assert_eq!(report.status.records_in, 0);
    assert_eq!(env.checkpoint("latest", ShardId(0)).await, None);
}

/// One bad record between two valid ones: it is dead-lettered with `reason`, and the valid
/// records on both sides still reach the sink.
async fn dead_letter_case(bad: Vec<u8>, reason: &str) {
    let env = Env::new(1).await;
    let mut input = valid(0..1);
    input.push(("i-bad".into(), bad.clone()));
    input.extend(valid(1..2));
    let put = env.put(input).await;
    let (sink, out) = CollectSink::new();
    let report = env
        .consumer(config("dlq"), Box::new(sink))
        .drain()
        .await
        .expect("drain");

    let got = delivered(&out);
    assert_eq!(
        seqs(&got),
        vec![put[0].1.clone(), put[2].1.clone()],
        "valid records flow"
    );
    let letters = env.dead_letters().list(Some("dlq")).await.expect("list");
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert!(
        l.reason.contains(reason),
        "reason `{}` should contain `{reason}`",
        l.reason
    );
    assert_eq!(l.shard, ShardId(0));
    assert_eq!(l.sequence_number, put[1].1);
    assert_eq!(l.partition_key, "i-bad");
    assert_eq!(l.stream, STREAM);
    assert_eq!(l.data.as_ref(), String::from_utf8_lossy(&bad).as_bytes());
    assert_eq!(report.status.dead_letters, 1);
    assert_eq!(
        env.checkpoint("dlq", ShardId(0)).await,
        Some(put[2].1.clone())
    );
}

fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut e = event(7);
    e[field] = value;
    e.to_string().into_bytes()
}

#[tokio::test]
async fn unparseable_json_is_dead_lettered() {
    dead_letter_case(
        b"{\"metric_id\": \"cpu-1\", oops".to_vec(),
        "not a metric event",
    )
    .await;
}

#[tokio::test]
async fn unknown_metric_type_is_dead_lettered() {
    dead_letter_case(
        with("metric_type", "gpu_utilization".into()),
        "unknown metric_type `gpu_utilization`",
    )
    .await;
}

#[tokio::test]
async fn non_finite_value_is_dead_lettered() {
    dead_letter_case(with("value", "NaN".into()), "value is not a finite number").await;
}

#[tokio::test]
async fn negative_value_is_dead_lettered() {
    dead_letter_case(with("value", (-5.5).into()), "value -5.5 is negative").await;
}

#[tokio::test]
async fn percent_above_100_is_dead_lettered() {
    dead_letter_case(
        with("value", 150.0.into()),
        "cpu_utilization value 150 is above 100 percent",
    )
    .await;
}

#[tokio::test]
async fn missing_field_is_dead_lettered() {
    let mut e = event(3);
    e.as_object_mut().map(|o| o.remove("region"));
    dead_letter_case(e.to_string().into_bytes(), "missing field `region`").await;
}

#[tokio::test]
async fn a_retryable_sink_error_is_retried_then_succeeds() {
    let env = Env::new(1).await;
    let put = env.put(valid(0..30)).await;
    let (mut sink, out) = CollectSink::new();
    sink.fail_retryable = 3;
    let attempts = sink.attempts.clone();
    let report = env
        .consumer(config("flaky"), Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert_eq!(
        delivered(&out).len(),
        30,
        "the same batch went through after the failures"
    );
    assert_eq!(attempts.lock().map(|a| *a).unwrap_or(0), 4);
    assert_eq!(report.status.retries, 3);
    assert_eq!(
        env.checkpoint("flaky", ShardId(0)).await,
        Some(put[29].1.clone())
    );
}

#[tokio::test]
async fn a_permanent_sink_error_stops_the_consumer_without_checkpointing() {
    let env = Env::new(1).await;
    env.put(valid(0..10)).await;
    let (mut sink, out) = CollectSink::new();
    sink.fail_permanent = true;
    let err = env
        .consumer(config("broken"), Box::new(sink))
        .drain()
        .await
        .expect_err("stops");
    assert!(
        matches!(err, ConsumerError::Sink { ref sink, shard: ShardId(0), .. } if sink == "collect"),
        "{err}"
    );
    assert!(
        err.to_string().contains("table schema does not match"),
        "{err}"
    );
    assert!(delivered(&out).is_empty());
    assert_eq!(
        env.checkpoint("broken", ShardId(0)).await,
        None,
        "nothing skipped"
    );
}

/// Holds records until `every` are buffered (or a forced flush), like a Firehose buffer, and
/// checks on every call that the stored checkpoint never passes its durable mark.
struct BufferingSink {
    every: usize,
    held: BTreeMap<ShardId, Vec<SinkRecord>>,
    durable: BTreeMap<ShardId, SequenceNumber>,
    out: Delivered,
    checkpoints: Arc<dyn CheckpointStore>,
    consumer: String,
    violations: Arc<Mutex<Vec<String>>>,
    checks: Arc<Mutex<u32>>,
}

impl BufferingSink {
    async fn check(&self, shard: ShardId) {
        let key = CheckpointKey {
            consumer: self.consumer.clone(),
            stream: STREAM.into(),
            shard,
        };
        let stored = self
            .checkpoints
            .get(&key)
            .await
            .ok()
            .flatten()
            .map(|c| c.sequence_number);
        if let Ok(mut n) = self.checks.lock() {
            *n += 1;
        }
        if let Some(cp) = stored
            && self.durable.get(&shard).is_none_or(|d| cp > *d)
            && let Ok(mut v) = self.violations.lock()
        {
            v.push(format!(
                "{shard}: checkpoint {cp} past durable {:?}",
                self.durable.get(&shard)
            ));
        }
    }

    fn release(&mut self, shard: ShardId) -> Option<SequenceNumber> {
        let held = self.held.remove(&shard)?;
        let last = held.last()?.sequence_number.clone();
        if let Ok(mut out) = self.out.lock() {
            out.extend(held);
        }
        self.durable.insert(shard, last.clone());
        Some(last)
    }
}

#[async_trait]
impl Sink for BufferingSink {
    fn name(&self) -> &str {
        "buffering"
    }

    async fn write(
        &mut self,
        shard: ShardId,
        records: Vec<SinkRecord>,
        _now_ms: i64,
    ) -> shardline_core::Result<Option<SequenceNumber>> {
        self.check(shard).await;
        let held = self.held.entry(shard).or_default();
        held.extend(records);
        if held.len() >= self.every {
            return Ok(self.release(shard));
        }
        Ok(None)
    }

    async fn flush(
        &mut self,
        _now_ms: i64,
        force: bool,
    ) -> shardline_core::Result<Vec<(ShardId, SequenceNumber)>> {
        let shards: Vec<ShardId> = self.held.keys().copied().collect();
        let mut advanced = Vec::new();
        for shard in shards {
            self.check(shard).await;
            if force && let Some(s) = self.release(shard) {
                advanced.push((shard, s));
            }
        }
        Ok(advanced)
    }
}

#[tokio::test]
async fn checkpoints_never_pass_the_sinks_durable_mark() {
    let env = Env::new(2).await;
    // Bad records interleaved: dead letters must not let the checkpoint jump a held record.
    let mut input = Vec::new();
    for i in 0..400u64 {
        input.extend(valid(i..i + 1));
        if i % 50 == 7 {
            input.push((format!("i-{:06}", 100_000 + i % 13), b"garbage".to_vec()));
        }
    }
    let put = env.put(input).await;
    let violations = Arc::new(Mutex::new(Vec::new()));
    let checks = Arc::new(Mutex::new(0));
    let out = Delivered::default();
    let sink = BufferingSink {
        every: 64,
        held: BTreeMap::new(),
        durable: BTreeMap::new(),
        out: out.clone(),
        checkpoints: env.checkpoints(),
        consumer: "buffered".into(),
        violations: violations.clone(),
        checks: checks.clone(),
    };
    let cfg = ConsumerConfig {
        batch_size: 25,
        ..config("buffered")
    };
    let report = env
        .consumer(cfg, Box::new(sink))
        .drain()
        .await
        .expect("drain");
    assert!(
        checks.lock().map(|n| *n).unwrap_or(0) > 10,
        "the sink checked on every call"
    );
    let v = violations.lock().map(|v| v.clone()).unwrap_or_default();
    assert!(v.is_empty(), "checkpoint passed the durable mark: {v:?}");
    assert_eq!(delivered(&out).len(), 400);
    assert_eq!(report.status.dead_letters, 8);
    for (shard, last) in last_per_shard(&put) {
        assert_eq!(
            env.checkpoint("buffered", shard).await,
            Some(last),
            "forced flush at the end"
        );
    }
}

#[tokio::test]
async fn run_stops_on_shutdown_after_flushing_and_checkpointing() {
    let env = Env::new(2).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let out = Delivered::default();
    let sink = BufferingSink {
        every: usize::MAX,
        held: BTreeMap::new(),
        durable: BTreeMap::new(),
        out: out.clone(),
        checkpoints: env.checkpoints(),
        consumer: "runner".into(),
        violations: Arc::default(),
        checks: Arc::default(),
    };
    let consumer = env.consumer(config("runner"), Box::new(sink));
    let status = consumer.status();
    let task = tokio::spawn(consumer.run(rx));
    let put = env.put(valid(0..200)).await;
    for _ in 0..500 {
        if status.snapshot().records_in >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let live = status.snapshot();
    assert_eq!(live.records_in, 200, "status is readable while running");
    assert_eq!(
        live.checkpoints, 0,
        "nothing durable before the forced flush"
    );
    for (shard, _) in last_per_shard(&put) {
        assert_eq!(env.checkpoint("runner", shard).await, None);
    }
    tx.send(true).expect("send shutdown");
    let report = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops promptly")
        .expect("task")
        .expect("run");
    assert_eq!(delivered(&out).len(), 200);
    for (shard, last) in last_per_shard(&put) {
        assert_eq!(env.checkpoint("runner", shard).await, Some(last));
    }
    assert_eq!(report.status.records_in, 200);
}

#[tokio::test]
async fn a_bad_configuration_is_refused_with_the_setting_named() {
    let env = Env::new(1).await;
    let (sink, _) = CollectSink::new();
    let cfg = ConsumerConfig {
        batch_size: 0,
        ..config("bad")
    };
    let err = Consumer::new(
        cfg,
        env.log.clone(),
        env.checkpoints(),
        env.dead_letters(),
        Box::new(sink),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("batch_size 0"), "{err}");
}
