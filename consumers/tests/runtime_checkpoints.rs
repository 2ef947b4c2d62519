//! Checkpoints follow the sink's durable mark: a buffering sink checks on every call that the
//! stored checkpoint never passes what it made durable; shutdown flushes and checkpoints.

mod runtime_support;

use async_trait::async_trait;
use runtime_support::*;
use shardline_consumers::runtime::ConsumerConfig;
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::{CheckpointKey, CheckpointStore};
use shardline_core::{SequenceNumber, ShardId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
        records: &[SinkRecord],
        _now_ms: i64,
    ) -> shardline_core::Result<Option<SequenceNumber>> {
        self.check(shard).await;
        let held = self.held.entry(shard).or_default();
        held.extend(records.iter().cloned());
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
