//! The DynamoDB sink over the embedded table: one item per sample, replays add nothing.

mod sink_retry;

use shardline_consumers::sinks::dynamodb::{DynamoDbConfig, DynamoDbSink, query_series};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::ItemTable;
use shardline_core::{MetricEvent, MetricType, SequenceParts, ShardId};
use shardline_local::{LocalBackends, LocalOptions};
use sink_retry::{Retries, settle};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const T0_MS: i64 = 1_771_500_000_000;

fn record(offset: u64, instance: &str, metric: MetricType, ms: i64, value: f64) -> SinkRecord {
    let secs = ms.div_euclid(1000);
    SinkRecord {
        shard: ShardId(0),
        sequence_number: SequenceParts {
            shard_index: 0,
            offset,
            shard_created_secs: 1_771_000_000,
            arrival_secs: secs as u64,
        }
        .encode(),
        arrival_ms: ms + 5,
        event: std::sync::Arc::new(MetricEvent {
            metric_id: format!("{}-{secs}", metric.id_prefix()),
            metric_type: metric,
            timestamp: secs,
            timestamp_ms: Some(ms),
            value,
            unit: None,
            instance_id: instance.to_string(),
            region: "eu-west-1".to_string(),
            collected_at: "2026-02-19T11:25:09.123456".to_string(),
        }),
    }
}

/// 3 instances × 4 metrics × 10 seconds, every instance sampling at the same instants, plus a
/// second cpu sample of i-000001 within the same second (different millisecond).
fn samples() -> Vec<SinkRecord> {
    let mut out = Vec::new();
    let mut offset = 0;
    for s in 0..10 {
        for instance in ["i-000001", "i-000002", "i-000003"] {
            for metric in MetricType::ALL {
                let value = 10.0 + f64::from(s as u32) + metric as u8 as f64;
                out.push(record(offset, instance, metric, T0_MS + s * 1000, value));
                offset += 1;
            }
        }
    }
    out.push(record(
        offset,
        "i-000001",
        MetricType::CpuUtilization,
        T0_MS + 3_500,
        77.25,
    ));
    out
}

/// Every batch written before `write` returns.
fn write_through() -> DynamoDbConfig {
    DynamoDbConfig {
        buffer_interval: Duration::ZERO,
        ..DynamoDbConfig::default()
    }
}

#[tokio::test]
async fn buffered_items_become_durable_together_and_a_lost_buffer_replays_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let table: Arc<dyn ItemTable> = local.table.clone();
    let config = DynamoDbConfig {
        buffer_records: 60,
        buffer_interval: Duration::from_secs(1),
        ..DynamoDbConfig::default()
    };
    let records = samples();
    let n = records.len() as u64;

    // 20 records wait; 40 more fill the buffer (60), written in one batch in the background
    // and reported durable once written.
    let mut sink = DynamoDbSink::new(table.clone(), config.clone()).expect("sink");
    sink.ensure_table().await.expect("table");
    let durable = sink
        .write(ShardId(0), &records[..20], 1_000)
        .await
        .expect("write");
    assert_eq!(durable, None, "nothing durable while buffered");
    assert_eq!(table.count("InfraMetrics").await.expect("count"), 0);
    let durable = sink
        .write(ShardId(0), &records[20..60], 1_100)
        .await
        .expect("write");
    let durable = match durable {
        Some(d) => d,
        None => {
            let advanced = settle(&mut sink, 1_100).await;
            assert_eq!(advanced.len(), 1, "{advanced:?}");
            advanced[0].1.clone()
        }
    };
    assert_eq!(durable, records[59].sequence_number);
    assert_eq!(table.count("InfraMetrics").await.expect("count"), 60);
    assert_eq!(sink.buffered(), 0);

    // 30 more wait; a non-forced flush before the interval writes nothing, after it writes them.
    assert_eq!(
        sink.write(ShardId(0), &records[60..90], 2_000)
            .await
            .expect("write"),
        None
    );
    assert_eq!(sink.flush(2_500, false).await.expect("flush"), vec![]);
    assert_eq!(sink.buffered(), 30);
    assert_eq!(
        settle(&mut sink, 3_000).await,
        vec![(ShardId(0), records[89].sequence_number.clone())]
    );
    assert_eq!(table.count("InfraMetrics").await.expect("count"), 90);

    // The rest is buffered when the process dies: nothing of it is in the table, and the
    // runtime's checkpoint (at 89) makes the next sink get it again, with the written ones.
    assert_eq!(
        sink.write(ShardId(0), &records[90..], 4_000)
            .await
            .expect("write"),
        None
    );
    drop(sink);
    assert_eq!(table.count("InfraMetrics").await.expect("count"), 90);
    let mut again = DynamoDbSink::new(table.clone(), config).expect("sink");
    for batch in records[40..].chunks(7) {
        again.write(ShardId(0), batch, 5_000).await.expect("replay");
    }
    let advanced = again.flush(5_000, true).await.expect("flush");
    assert_eq!(
        advanced,
        vec![(
            ShardId(0),
            records[records.len() - 1].sequence_number.clone()
        )]
    );
    assert_eq!(
        table.count("InfraMetrics").await.expect("count"),
        n,
        "no item lost or added"
    );
}

#[tokio::test]
async fn every_sample_is_one_item_and_replays_add_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let table: Arc<dyn ItemTable> = local.table.clone();
    let mut sink = DynamoDbSink::new(table.clone(), write_through()).expect("sink");
    let records = samples();
    let n = records.len();
    assert_eq!(n, 121);

    // The seed's key (metric_id = <prefix>-<epoch s>, timestamp = epoch s) would collide.
    let seed_keys: BTreeSet<(String, i64)> = records
        .iter()
        .map(|r| (r.event.metric_id.clone(), r.event.timestamp))
        .collect();
    assert_eq!(
        seed_keys.len(),
        40,
        "the seed schema keeps only 40 of 121 samples"
    );

    for batch in records.chunks(17) {
        let durable = sink.write(ShardId(0), batch, 0).await.expect("write");
        assert_eq!(durable.as_ref(), batch.last().map(|r| &r.sequence_number));
    }
    assert_eq!(table.count("InfraMetrics").await.expect("count"), n as u64);

    // The same records again, with other batch boundaries, and through a fresh sink.
    let mut again = DynamoDbSink::new(table.clone(), DynamoDbConfig::default()).expect("sink");
    for batch in records.chunks(50) {
        again.write(ShardId(0), batch, 0).await.expect("replay");
    }
    sink.write(ShardId(0), &records, 0).await.expect("replay");
    assert_eq!(table.count("InfraMetrics").await.expect("count"), n as u64);
    assert_eq!(sink.flush(0, true).await.expect("flush"), vec![]);
}

/// Batches large enough for the embedded table to write them as sorted tables of their own:
/// every sample is one item, a replay from the start with other batch boundaries adds none,
/// and a replayed sample with a new value replaces the stored one.
#[tokio::test]
async fn large_batches_replay_without_adding_items() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let table: Arc<dyn ItemTable> = local.table.clone();
    let config = DynamoDbConfig {
        buffer_records: 3_000,
        buffer_interval: Duration::from_secs(3600),
        ..DynamoDbConfig::default()
    };
    // 200 instances x 4 metrics x 10 seconds = 8,000 samples; even instances on shard 0,
    // odd ones on shard 1, each shard's records in sequence order.
    let mut shards: [Vec<SinkRecord>; 2] = Default::default();
    for s in 0..10i64 {
        for i in 0..200u32 {
            for metric in MetricType::ALL {
                let k = (i % 2) as usize;
                let mut r = record(
                    shards[k].len() as u64,
                    &format!("i-{i:06}"),
                    metric,
                    T0_MS + s * 1000,
                    f64::from(i % 90),
                );
                r.shard = ShardId(k as u32);
                shards[k].push(r);
            }
        }
    }
    let records: Vec<SinkRecord> = shards.iter().flatten().cloned().collect();
    let n = records.len() as u64;
    let mut sink = DynamoDbSink::new(table.clone(), config.clone()).expect("sink");
    for (a, b) in shards[0].chunks(500).zip(shards[1].chunks(500)) {
        sink.write(ShardId(0), a, 0).await.expect("write");
        sink.write(ShardId(1), b, 0).await.expect("write");
    }
    sink.flush(0, true).await.expect("flush");
    assert_eq!(table.count("InfraMetrics").await.expect("count"), n);

    // Replayed from the start through a fresh sink, batches of another size, one value new.
    let mut again = DynamoDbSink::new(table.clone(), config).expect("sink");
    let mut changed = shards.clone();
    Arc::make_mut(&mut changed[1][2_345].event).value = 99.5;
    for (a, b) in changed[0].chunks(777).zip(changed[1].chunks(777)) {
        again.write(ShardId(0), a, 0).await.expect("replay");
        again.write(ShardId(1), b, 0).await.expect("replay");
    }
    again.flush(0, true).await.expect("flush");
    assert_eq!(
        table.count("InfraMetrics").await.expect("count"),
        n,
        "a replay adds no items"
    );
    assert_eq!(records.len(), 8_000);
    let e = &changed[1][2_345].event;
    let series = query_series(
        table.as_ref(),
        "InfraMetrics",
        &e.series_id(),
        Some(e.event_time_ms()),
        Some(e.event_time_ms()),
    )
    .await
    .expect("query");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["value"].as_f64(), Some(99.5));
}

#[tokio::test]
async fn a_series_reads_back_in_time_order_within_bounds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let table: Arc<dyn ItemTable> = local.table.clone();
    let config = DynamoDbConfig {
        table: "InfraMetricsTest".into(),
        ..write_through()
    };
    let mut sink = DynamoDbSink::new(table.clone(), config).expect("sink");
    // Written newest first: the query must still answer oldest first.
    let mut records = samples();
    records.reverse();
    sink.write(ShardId(0), &records, 0).await.expect("write");

    let all = query_series(
        table.as_ref(),
        "InfraMetricsTest",
        "cpu-i-000001",
        None,
        None,
    )
    .await
    .expect("query");
    assert_eq!(
        all.len(),
        11,
        "10 seconds plus the extra sample in second 3"
    );
    let times: Vec<i64> = all
        .iter()
        .map(|i| i["timestamp"].as_i64().expect("numeric timestamp"))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted);

    let window = query_series(
        table.as_ref(),
        "InfraMetricsTest",
        "cpu-i-000001",
        Some(T0_MS + 3_000),
        Some(T0_MS + 4_000),
    )
    .await
    .expect("bounded query");
    let got: Vec<(i64, f64, String)> = window
        .iter()
        .map(|i| {
            (
                i["timestamp"].as_i64().expect("timestamp"),
                i["value"].as_f64().expect("value"),
                i["seed_metric_id"].as_s().expect("seed id").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (T0_MS + 3_000, 13.0, "cpu-1771500003".to_string()),
            (T0_MS + 3_500, 77.25, "cpu-1771500003".to_string()),
            (T0_MS + 4_000, 14.0, "cpu-1771500004".to_string()),
        ]
    );
    let item = &window[0];
    assert_eq!(item["instance_id"].as_s(), Some("i-000001"));
    assert_eq!(item["metric_type"].as_s(), Some("cpu_utilization"));
    assert_eq!(item["unit"].as_s(), Some("Percent"));
    assert_eq!(item["epoch_seconds"].as_i64(), Some(1_771_500_003));
    assert_eq!(item["shard_id"].as_s(), Some("shardId-000000000000"));
}

#[test]
fn a_bad_table_name_is_refused_with_the_rule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let err = DynamoDbSink::new(
        local.table.clone(),
        DynamoDbConfig {
            table: "infra metrics!".into(),
            ..DynamoDbConfig::default()
        },
    )
    .err()
    .expect("invalid name");
    assert!(err.to_string().contains("infra metrics!"), "{err}");
    assert!(err.to_string().contains("3-255 characters"), "{err}");
}

/// The embedded table behind a put hook: fails the put calls numbered in `fail_calls`
/// (0-based) as throttled, holds every put for `delay`, records how many puts were under way at
/// once and the most shards one put carried, and which records' items were written.
struct InstrumentedTable {
    inner: Arc<dyn ItemTable>,
    fail_calls: HashSet<usize>,
    calls: AtomicUsize,
    delay: Duration,
    under_way: Mutex<(usize, usize)>,
    most_shards: AtomicUsize,
    /// `<shard id>/<sequence number>` of the records whose items were written.
    written: Mutex<HashSet<String>>,
}

impl InstrumentedTable {
    fn new(inner: Arc<dyn ItemTable>, fail_calls: &[usize], delay: Duration) -> Self {
        Self {
            inner,
            fail_calls: fail_calls.iter().copied().collect(),
            calls: AtomicUsize::new(0),
            delay,
            under_way: Mutex::default(),
            most_shards: AtomicUsize::new(0),
            written: Mutex::default(),
        }
    }

    /// Counts a put in (`+1`) or out (`-1`); returns the most at once so far.
    fn track(&self, delta: isize) -> usize {
        let mut guard = self.under_way.lock().expect("lock");
        guard.0 = guard.0.saturating_add_signed(delta);
        guard.1 = guard.1.max(guard.0);
        guard.1
    }

    fn most_under_way(&self) -> usize {
        self.under_way.lock().expect("lock").1
    }
}

#[async_trait::async_trait]
impl ItemTable for InstrumentedTable {
    async fn ensure_table(
        &self,
        schema: &shardline_core::ports::TableSchema,
    ) -> shardline_core::Result<()> {
        self.inner.ensure_table(schema).await
    }
    async fn batch_put(
        &self,
        table: &str,
        items: Vec<shardline_core::ports::Item>,
    ) -> shardline_core::Result<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let shards: HashSet<&str> = items
            .iter()
            .map(|i| i["shard_id"].as_s().unwrap_or_default())
            .collect();
        self.most_shards.fetch_max(shards.len(), Ordering::SeqCst);
        let sequences: Vec<String> = items
            .iter()
            .map(|i| {
                format!(
                    "{}/{}",
                    i["shard_id"].as_s().unwrap_or_default(),
                    i["sequence_number"].as_s().unwrap_or_default()
                )
            })
            .collect();
        self.track(1);
        tokio::time::sleep(self.delay).await;
        let out = if self.fail_calls.contains(&call) {
            Err(shardline_core::Error::Throttled(
                "provisioned throughput exceeded".into(),
            ))
        } else {
            self.inner.batch_put(table, items).await
        };
        self.track(-1);
        if out.is_ok() {
            self.written.lock().expect("lock").extend(sequences);
        }
        out
    }
    async fn query(
        &self,
        query: &shardline_core::ports::ItemQuery,
    ) -> shardline_core::Result<Vec<shardline_core::ports::Item>> {
        self.inner.query(query).await
    }
    async fn count(&self, table: &str) -> shardline_core::Result<u64> {
        self.inner.count(table).await
    }
}

/// The embedded backends under `dir`, and a sink (30-record buffer, an hour's interval)
/// whose first put fails as throttled.
fn sink_failing_first_put(dir: &std::path::Path) -> (LocalBackends, DynamoDbSink) {
    let local = LocalBackends::open(dir, LocalOptions::default()).expect("backends");
    let failing = Arc::new(InstrumentedTable::new(
        local.table.clone(),
        &[0],
        Duration::ZERO,
    ));
    let config = DynamoDbConfig {
        buffer_records: 30,
        buffer_interval: Duration::from_secs(3600),
        ..DynamoDbConfig::default()
    };
    let sink = DynamoDbSink::new(failing, config).expect("sink");
    (local, sink)
}

#[tokio::test]
async fn a_failed_background_write_is_retried_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (local, mut sink) = sink_failing_first_put(dir.path());
    let records = samples();
    let mut retries = Retries::new("throughput");
    let mut durable = None;
    for batch in records.chunks(10) {
        durable = retries
            .write(&mut sink, ShardId(0), batch, 0)
            .await
            .or(durable);
    }
    for (_, d) in retries.flush(&mut sink, 0, true).await {
        durable = Some(d);
    }
    assert_eq!(retries.errors, 1, "the one failed put surfaced once");
    assert_eq!(durable.as_ref(), records.last().map(|r| &r.sequence_number));
    assert_eq!(
        local.table.count("InfraMetrics").await.expect("count"),
        records.len() as u64
    );
}

/// A failed write is retried by the next non-forced flush although no record arrived since
/// and the buffer interval has not passed: the checkpoint does not wait for new traffic.
#[tokio::test]
async fn a_failed_write_is_retried_by_the_next_flush_without_new_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (local, mut sink) = sink_failing_first_put(dir.path());
    let records = samples();
    // 30 records: due by size, written in the background, and that write fails.
    assert_eq!(
        sink.write(ShardId(0), &records[..30], 0)
            .await
            .expect("write"),
        None
    );
    let mut failed = false;
    for _ in 0..500 {
        match sink.flush(0, false).await {
            Err(e) => {
                assert!(e.to_string().contains("throughput"), "{e}");
                failed = true;
                break;
            }
            Ok(advanced) => assert_eq!(advanced, vec![]),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(failed, "the failed write surfaced");
    assert_eq!(sink.buffered(), 30, "the batch is back in the buffer");
    assert_eq!(
        settle(&mut sink, 0).await,
        vec![(ShardId(0), records[29].sequence_number.clone())]
    );
    assert_eq!(local.table.count("InfraMetrics").await.expect("count"), 30);
}

/// Four shards' records, each shard with instances of its own, as the runtime hands them:
/// batches of `per_batch` records, the shards interleaved.
fn four_shards(per_batch: usize) -> Vec<(ShardId, Vec<SinkRecord>)> {
    let per_shard: Vec<Vec<SinkRecord>> = (0..4u32)
        .map(|k| {
            samples()
                .into_iter()
                .map(|mut r| {
                    r.shard = ShardId(k);
                    Arc::make_mut(&mut r.event).instance_id =
                        format!("{}-{k}", r.event.instance_id);
                    r
                })
                .collect()
        })
        .collect();
    let rounds = per_shard[0].len().div_ceil(per_batch);
    let mut out = Vec::new();
    for round in 0..rounds {
        for (k, records) in per_shard.iter().enumerate() {
            let from = (round * per_batch).min(records.len());
            let to = ((round + 1) * per_batch).min(records.len());
            out.push((ShardId(k as u32), records[from..to].to_vec()));
        }
    }
    out
}

/// Checks a reported mark: every record of the shard up to it has its item written.
fn check_mark(
    probe: &InstrumentedTable,
    batches: &[(ShardId, Vec<SinkRecord>)],
    shard: ShardId,
    mark: &shardline_core::SequenceNumber,
) {
    let written = probe.written.lock().expect("lock");
    for (s, records) in batches {
        for r in records
            .iter()
            .filter(|r| *s == shard && r.sequence_number <= *mark)
        {
            assert!(
                written.contains(&format!("{shard}/{}", r.sequence_number)),
                "shard {shard} reported durable at {mark} before {} was written",
                r.sequence_number
            );
        }
    }
}

/// Every shard's reported durable mark is its last record.
fn assert_every_mark_at_its_last_record(
    batches: &[(ShardId, Vec<SinkRecord>)],
    durable: &HashMap<u32, shardline_core::SequenceNumber>,
) {
    for k in 0..4u32 {
        let last = batches
            .iter()
            .filter(|(s, _)| s.0 == k)
            .flat_map(|(_, b)| b.last())
            .last()
            .map(|r| &r.sequence_number);
        assert_eq!(durable.get(&k), last, "shard {k}'s durable mark");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_share_batches_written_up_to_the_limit_at_once() {
    for limit in [1, 2, 3] {
        let dir = tempfile::tempdir().expect("temp dir");
        let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
        let probe = Arc::new(InstrumentedTable::new(
            local.table.clone(),
            &[],
            Duration::from_millis(30),
        ));
        let config = DynamoDbConfig {
            buffer_records: 30,
            buffer_interval: Duration::from_secs(3600),
            writes_in_flight: limit,
            ..DynamoDbConfig::default()
        };
        let mut sink = DynamoDbSink::new(probe.clone(), config).expect("sink");
        let batches = four_shards(12);
        let mut durable = HashMap::new();
        for (shard, batch) in &batches {
            if let Some(d) = sink.write(*shard, batch, 0).await.expect("write") {
                check_mark(&probe, &batches, *shard, &d);
                durable.insert(shard.0, d);
            }
        }
        for (shard, d) in sink.flush(0, true).await.expect("flush") {
            check_mark(&probe, &batches, shard, &d);
            durable.insert(shard.0, d);
        }
        assert_eq!(
            probe.most_under_way(),
            limit,
            "puts under way at once with writes_in_flight {limit}"
        );
        assert!(
            probe.most_shards.load(Ordering::SeqCst) >= 2,
            "a put carries records of several shards"
        );
        let total: usize = batches.iter().map(|(_, b)| b.len()).sum();
        assert_eq!(
            local.table.count("InfraMetrics").await.expect("count"),
            total as u64
        );
        assert_every_mark_at_its_last_record(&batches, &durable);
    }
}

/// With three batches in flight and the second one failing, no shard's mark passes a record
/// of the failed batch (the third batch, written or not, is written again with it), and
/// retrying the same batch as the runtime does writes everything once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_holds_back_the_marks_of_every_later_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let probe = Arc::new(InstrumentedTable::new(
        local.table.clone(),
        &[1, 4],
        Duration::from_millis(20),
    ));
    let config = DynamoDbConfig {
        buffer_records: 20,
        buffer_interval: Duration::from_secs(3600),
        writes_in_flight: 3,
        ..DynamoDbConfig::default()
    };
    let mut sink = DynamoDbSink::new(probe.clone(), config).expect("sink");
    let batches = four_shards(7);
    let mut retries = Retries::new("throughput");
    let mut durable = HashMap::new();
    for (shard, batch) in &batches {
        if let Some(d) = retries.write(&mut sink, *shard, batch, 0).await {
            check_mark(&probe, &batches, *shard, &d);
            durable.insert(shard.0, d);
        }
    }
    for (shard, d) in retries.flush(&mut sink, 0, true).await {
        check_mark(&probe, &batches, shard, &d);
        durable.insert(shard.0, d);
    }
    // The second failure surfaces on its own, or not at all when its batch was still in
    // flight behind the first failed one (then it is put back and written again unseen).
    assert!(
        (1..=2).contains(&retries.errors),
        "failures surfaced: {}",
        retries.errors
    );
    assert!(
        probe.calls.load(Ordering::SeqCst) > 4,
        "both failing puts were made"
    );
    let total: usize = batches.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(
        local.table.count("InfraMetrics").await.expect("count"),
        total as u64,
        "every sample once"
    );
    assert_eq!(probe.written.lock().expect("lock").len(), total);
    assert_every_mark_at_its_last_record(&batches, &durable);
}

/// The latest item of `series` in the test table.
async fn latest_item(table: &dyn ItemTable, series: &str) -> shardline_core::ports::Item {
    let mut items = query_series(table, "InfraMetricsTest", series, None, None)
        .await
        .expect("query");
    items.pop().unwrap_or_else(|| panic!("no item of {series}"))
}

/// A large batch (written as a sorted table) and a small one (through the journal) store
/// every attribute as the text DynamoDB would hold, long instance ids included.
#[tokio::test]
async fn items_hold_every_attribute_whichever_way_the_table_writes_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let table: Arc<dyn ItemTable> = local.table.clone();
    let long_id = format!("i-{}", "7".repeat(100));
    for (n, first_offset) in [(3000u64, 0u64), (10, 10_000)] {
        let mut sink = DynamoDbSink::new(
            table.clone(),
            DynamoDbConfig {
                table: "InfraMetricsTest".into(),
                ..write_through()
            },
        )
        .expect("sink");
        let records: Vec<SinkRecord> = (0..n)
            .map(|i| {
                let instance = if i == 1 {
                    long_id.clone()
                } else {
                    format!("i-{i:06}")
                };
                let ms = T0_MS + (first_offset + i) as i64 * 1000 + 250;
                record(
                    first_offset + i,
                    &instance,
                    MetricType::NetworkTraffic,
                    ms,
                    512.125,
                )
            })
            .collect();
        sink.write(ShardId(0), &records, 0).await.expect("write");
        sink.flush(0, true).await.expect("flush");

        let r = &records[1];
        let item = latest_item(table.as_ref(), &format!("net-{long_id}")).await;
        let ms = r.event.timestamp_ms.expect("ms");
        let text = |name: &str| match &item[name] {
            shardline_core::ports::AttributeValue::S(s)
            | shardline_core::ports::AttributeValue::N(s) => s.clone(),
            other => panic!("{name} is {other:?}"),
        };
        assert_eq!(item.len(), 13, "{item:?}");
        assert_eq!(text("metric_id"), format!("net-{long_id}"));
        assert_eq!(text("timestamp"), ms.to_string());
        assert_eq!(text("epoch_seconds"), ms.div_euclid(1000).to_string());
        assert_eq!(text("arrival_ms"), (ms + 5).to_string());
        assert_eq!(text("value"), "512.125");
        assert_eq!(text("unit"), "Megabits/Second");
        assert_eq!(text("metric_type"), "network_traffic");
        assert_eq!(text("instance_id"), long_id);
        assert_eq!(text("region"), "eu-west-1");
        assert_eq!(text("collected_at"), "2026-02-19T11:25:09.123456");
        assert_eq!(text("seed_metric_id"), r.event.metric_id);
        assert_eq!(text("sequence_number"), r.sequence_number.as_str());
        assert_eq!(text("shard_id"), "shardId-000000000000");

        // An ordinary id: its series key and numbers as written for every other item.
        let r = &records[0];
        let item = latest_item(table.as_ref(), &r.event.series_id()).await;
        let ms = r.event.timestamp_ms.expect("ms");
        assert_eq!(
            item["metric_id"],
            shardline_core::ports::AttributeValue::S(format!("net-{}", r.event.instance_id))
        );
        assert_eq!(
            item["timestamp"],
            shardline_core::ports::AttributeValue::N(ms.to_string())
        );
    }
    assert_eq!(
        table.count("InfraMetricsTest").await.expect("count"),
        3010,
        "one item per sample"
    );
}
