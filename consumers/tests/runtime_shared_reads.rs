//! Shared reads over the real embedded log: consumers of one stream read each batch once, yet
//! each still gets every record once, in order, with its own dead letters and checkpoints,
//! whatever their positions; a consumer whose sink stalls does not hold the others.

mod runtime_support;

use async_trait::async_trait;
use runtime_support::*;
use shardline_consumers::runtime::{Consumer, SharedReads, SharedReadsConfig, StatusSnapshot};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::Stream;
use shardline_core::stream::{
    GetRecordsOutput, ShardDescription, StartingPosition, StreamDescription,
};
use shardline_core::{PutRecordResult, PutRecordsEntry, SequenceNumber, ShardId, ShardIterator};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The embedded log, counting the records its get_records calls return.
struct Counted {
    log: Arc<dyn Stream>,
    records_read: AtomicU64,
}

#[async_trait]
impl Stream for Counted {
    async fn create_stream(
        &self,
        name: &str,
        shards: u32,
        retention: Duration,
    ) -> shardline_core::Result<()> {
        self.log.create_stream(name, shards, retention).await
    }
    async fn delete_stream(&self, name: &str) -> shardline_core::Result<()> {
        self.log.delete_stream(name).await
    }
    async fn list_streams(&self) -> shardline_core::Result<Vec<String>> {
        self.log.list_streams().await
    }
    async fn describe_stream(&self, name: &str) -> shardline_core::Result<StreamDescription> {
        self.log.describe_stream(name).await
    }
    async fn list_shards(&self, name: &str) -> shardline_core::Result<Vec<ShardDescription>> {
        self.log.list_shards(name).await
    }
    async fn put_records(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> shardline_core::Result<Vec<PutRecordResult>> {
        self.log.put_records(name, entries).await
    }
    async fn get_shard_iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> shardline_core::Result<ShardIterator> {
        self.log.get_shard_iterator(name, shard, position).await
    }
    async fn get_records(
        &self,
        iterator: &ShardIterator,
        limit: usize,
    ) -> shardline_core::Result<GetRecordsOutput> {
        let out = self.log.get_records(iterator, limit).await?;
        self.records_read
            .fetch_add(out.records.len() as u64, Ordering::Relaxed);
        Ok(out)
    }
}

fn counted(env: &Env) -> Arc<Counted> {
    Arc::new(Counted {
        log: env.log.clone(),
        records_read: AtomicU64::new(0),
    })
}

fn consumer_on(env: &Env, stream: &Arc<Counted>, name: &str, sink: Box<dyn Sink>) -> Consumer {
    let mut cfg = config(name);
    cfg.batch_size = 100;
    Consumer::new(
        cfg,
        stream.clone(),
        env.checkpoints(),
        env.dead_letters(),
        sink,
    )
    .expect("valid consumer")
}

fn share(window_records: usize, stall: Duration) -> Arc<SharedReads> {
    Arc::new(SharedReads::new(
        STREAM,
        100,
        SharedReadsConfig {
            enabled: true,
            window_records,
            stall,
        },
    ))
}

/// 6,000 records over 4 shards, every 50th of them invalid JSON.
fn input() -> Vec<(String, Vec<u8>)> {
    valid(0..6000)
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            if i % 50 == 7 {
                (r.0, b"{\"metric_id\": ".to_vec())
            } else {
                r
            }
        })
        .collect()
}

/// The valid records per shard, in order, as appended.
fn expected(put: &[(ShardId, SequenceNumber)]) -> BTreeMap<ShardId, Vec<SequenceNumber>> {
    let mut m: BTreeMap<ShardId, Vec<SequenceNumber>> = BTreeMap::new();
    for (i, (shard, seq)) in put.iter().enumerate() {
        if i % 50 != 7 {
            m.entry(*shard).or_default().push(seq.clone());
        }
    }
    m
}

fn per_shard(records: &[SinkRecord]) -> BTreeMap<ShardId, Vec<SequenceNumber>> {
    let mut m: BTreeMap<ShardId, Vec<SequenceNumber>> = BTreeMap::new();
    for r in records {
        m.entry(r.shard)
            .or_default()
            .push(r.sequence_number.clone());
    }
    m
}

/// Drains every consumer; a drain that does not end within two minutes fails the test.
async fn drain_all(consumers: Vec<Consumer>) -> Vec<StatusSnapshot> {
    let tasks: Vec<_> = consumers
        .into_iter()
        .map(|c| tokio::spawn(c.drain()))
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        let report = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("a drain did not end within two minutes")
            .expect("join")
            .expect("drain");
        out.push(report.status);
    }
    out
}

async fn run(env: &Env, share_reads: Option<Arc<SharedReads>>) -> (Vec<Delivered>, u64, u64) {
    let stream = counted(env);
    let mut consumers = Vec::new();
    let mut outs = Vec::new();
    for name in ["s3", "dynamodb", "cloudwatch", "alerts"] {
        let (sink, out) = CollectSink::new();
        let mut c = consumer_on(env, &stream, name, Box::new(sink));
        if let Some(share) = &share_reads {
            c = c.share_reads(share).expect("same stream and batch size");
        }
        consumers.push(c);
        outs.push(out);
    }
    let statuses = drain_all(consumers).await;
    let shared = statuses.iter().map(|s| s.records_shared).sum();
    (outs, stream.records_read.load(Ordering::Relaxed), shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_consumers_read_each_batch_once_and_each_gets_every_record() {
    let env = Env::new(4).await;
    let put = env.put(input()).await;
    let total = put.len() as u64;
    let want = expected(&put);

    let (outs, read, shared) = run(&env, Some(share(40_000, Duration::from_secs(2)))).await;

    for (name, out) in ["s3", "dynamodb", "cloudwatch", "alerts"].iter().zip(&outs) {
        assert_eq!(
            per_shard(&delivered(out)),
            want,
            "{name}: every valid record once, in order"
        );
        let letters = env.dead_letters().list(Some(name)).await.expect("list");
        assert_eq!(letters.len(), 120, "{name}: its own dead letters");
        for (shard, seq) in last_per_shard(&put) {
            assert_eq!(
                env.checkpoint(name, shard).await,
                Some(seq),
                "{name} checkpointed {shard} at its end"
            );
        }
    }
    // Each record read once (the first batches too: from TRIM_HORIZON every consumer starts
    // before the first record); allow one batch per shard read twice. Without sharing it
    // would be 4 x 6,000.
    assert!(
        read <= total + 4 * 100,
        "{read} records read for {total} appended and 4 consumers: batches should be shared"
    );
    assert!(
        shared >= 3 * total - 3 * 4 * 100,
        "{shared} of {} records handed on came from another consumer's read",
        4 * total
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sharing_every_consumer_reads_every_record() {
    let env = Env::new(4).await;
    let put = env.put(input()).await;
    let (outs, read, shared) = run(&env, None).await;
    assert_eq!(read, 4 * put.len() as u64);
    assert_eq!(shared, 0);
    for out in &outs {
        assert_eq!(per_shard(&delivered(out)), expected(&put));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_at_different_positions_share_without_loss_or_duplicates() {
    let env = Env::new(4).await;
    let put = env.put(input()).await;
    let want = expected(&put);
    // `ahead` has already handed on 1,730 records (checkpointed at odd places in each
    // shard), `middle` 455; `fresh` starts at the beginning.
    let stream = counted(&env);
    for (name, n) in [("ahead", 1730usize), ("middle", 455)] {
        for (shard, seq) in last_per_shard(&put[..n]) {
            let key = shardline_core::ports::CheckpointKey {
                consumer: name.into(),
                stream: STREAM.into(),
                shard,
            };
            env.checkpoints()
                .put(&key, &seq, None, None)
                .await
                .expect("checkpoint");
        }
    }
    let shared_reads = share(40_000, Duration::from_secs(2));
    let mut consumers = Vec::new();
    let mut outs = Vec::new();
    for name in ["ahead", "middle", "fresh"] {
        let (sink, out) = CollectSink::new();
        consumers.push(
            consumer_on(&env, &stream, name, Box::new(sink))
                .share_reads(&shared_reads)
                .expect("share"),
        );
        outs.push(out);
    }
    let statuses = drain_all(consumers).await;

    for ((name, n), out) in [("ahead", 1730usize), ("middle", 455), ("fresh", 0)]
        .iter()
        .zip(&outs)
    {
        let mut want_here = want.clone();
        for (shard, seq) in last_per_shard(&put[..*n]) {
            if let Some(v) = want_here.get_mut(&shard) {
                v.retain(|s| *s > seq);
            }
        }
        assert_eq!(
            per_shard(&delivered(out)),
            want_here,
            "{name}: every valid record after its checkpoint, once, in order"
        );
    }
    let shared: u64 = statuses.iter().map(|s| s.records_shared).sum();
    assert!(
        shared > 0,
        "the consumers behind took batches read by others"
    );
    assert_eq!(shared_reads.kept_records(), 0, "nothing kept once all took");
}

/// A sink whose writes wait for a permit after the first one.
struct Gated {
    inner: CollectSink,
    gate: Arc<Semaphore>,
    writes: u32,
}

#[async_trait]
impl Sink for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    async fn write(
        &mut self,
        shard: ShardId,
        records: &[SinkRecord],
        now_ms: i64,
    ) -> shardline_core::Result<Option<SequenceNumber>> {
        self.writes += 1;
        if self.writes > 1 {
            self.gate
                .acquire()
                .await
                .map_err(|e| shardline_core::Error::Internal(e.to_string()))?
                .forget();
        }
        self.inner.write(shard, records, now_ms).await
    }
    async fn flush(
        &mut self,
        now_ms: i64,
        force: bool,
    ) -> shardline_core::Result<Vec<(ShardId, SequenceNumber)>> {
        self.inner.flush(now_ms, force).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_does_not_hold_the_others() {
    let env = Env::new(4).await;
    let put = env.put(input()).await;
    let want = expected(&put);
    let stream = counted(&env);
    // A window of 500 records: without the stall rule the others would wait for `stuck`
    // after five batches.
    let shared_reads = share(500, Duration::from_millis(300));
    let gate = Arc::new(Semaphore::new(0));
    let (inner, stuck_out) = CollectSink::new();
    let stuck = consumer_on(
        &env,
        &stream,
        "stuck",
        Box::new(Gated {
            inner,
            gate: gate.clone(),
            writes: 0,
        }),
    )
    .share_reads(&shared_reads)
    .expect("share");
    let stuck = tokio::spawn(stuck.drain());
    let mut others = Vec::new();
    let mut outs = Vec::new();
    for name in ["a", "b"] {
        let (sink, out) = CollectSink::new();
        others.push(
            consumer_on(&env, &stream, name, Box::new(sink))
                .share_reads(&shared_reads)
                .expect("share"),
        );
        outs.push(out);
    }
    let done = tokio::time::timeout(Duration::from_secs(60), drain_all(others))
        .await
        .expect("the others finish while `stuck` waits");
    assert_eq!(done.len(), 2);
    for out in &outs {
        assert_eq!(per_shard(&delivered(out)), want);
    }
    assert!(!stuck.is_finished(), "`stuck` is still waiting on its sink");
    let kept = shared_reads.kept_records();
    assert!(
        kept <= 2 * 500,
        "{kept} records kept for a stalled consumer: the bound is twice the window"
    );

    gate.add_permits(10_000);
    stuck.await.expect("join").expect("drain");
    assert_eq!(
        per_shard(&delivered(&stuck_out)),
        want,
        "`stuck` gets every record once it moves again"
    );
}

#[tokio::test]
async fn a_consumer_of_another_stream_or_batch_size_cannot_share() {
    let env = Env::new(1).await;
    let stream = counted(&env);
    let shared_reads = share(1000, Duration::from_secs(1));
    let (sink, _) = CollectSink::new();
    let mut cfg = config("big");
    cfg.batch_size = 500;
    let err = Consumer::new(
        cfg,
        stream.clone(),
        env.checkpoints(),
        env.dead_letters(),
        Box::new(sink),
    )
    .expect("valid")
    .share_reads(&shared_reads)
    .expect_err("batch size differs");
    assert!(err.to_string().contains("batch_size 500"), "{err}");

    let (sink, _) = CollectSink::new();
    let mut cfg = config("alone");
    cfg.batch_size = 100;
    cfg.share_reads = false;
    let c = Consumer::new(
        cfg,
        stream,
        env.checkpoints(),
        env.dead_letters(),
        Box::new(sink),
    )
    .expect("valid")
    .share_reads(&shared_reads)
    .expect("opting out is not an error");
    assert!(!c.shares_reads());
}

/// A batch is validated once, against one event-time window: consumers with another window
/// read on their own.
#[tokio::test]
async fn consumers_with_different_event_time_windows_do_not_share() {
    let env = Env::new(1).await;
    let (sink, _) = CollectSink::new();
    let mut cfg = config("wide");
    cfg.batch_size = 100;
    cfg.event_time = Some(shardline_core::EventTimeLimits::unbounded());
    let consumer = env.consumer(cfg, Box::new(sink));
    let err = consumer
        .share_reads(&share(1000, Duration::from_secs(2)))
        .expect_err("another window");
    assert!(err.to_string().contains("event_time window"), "{err}");
    let wide = Arc::new(
        SharedReads::new(
            STREAM,
            100,
            SharedReadsConfig {
                enabled: true,
                window_records: 1000,
                stall: Duration::from_secs(2),
            },
        )
        .with_event_time(shardline_core::EventTimeLimits::unbounded()),
    );
    let (sink, _) = CollectSink::new();
    let mut cfg = config("wide");
    cfg.batch_size = 100;
    cfg.event_time = Some(shardline_core::EventTimeLimits::unbounded());
    assert!(
        env.consumer(cfg, Box::new(sink))
            .share_reads(&wide)
            .expect("same window")
            .shares_reads()
    );
}
