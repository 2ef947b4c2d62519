//! The CloudWatch sink over the embedded metric store: statistic sets per minute, exactly once.

mod sink_retry;

use shardline_consumers::sinks::cloudwatch::{CloudWatchConfig, CloudWatchSink};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::{Datapoint, MetricPublisher, StatisticSet, StatisticsQuery};
use shardline_core::ports::{MetricDatum, Watermark};
use shardline_core::{MetricEvent, MetricType, SequenceParts, ShardId};
use shardline_core::{Result, SequenceNumber};
use shardline_local::{LocalBackends, LocalOptions};
use sink_retry::{Retries, settle};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Passes every call to the embedded store and records how many datums each carried; holds
/// each call for `delay`, and fails the calls numbered in `fail` (0-based): `true` after
/// storing (the call landed but its answer was lost), `false` before.
struct CallSizes {
    inner: Arc<dyn MetricPublisher>,
    sizes: Mutex<Vec<usize>>,
    fail: BTreeMap<usize, bool>,
    delay: Duration,
    /// Takes puts as large as the embedded store takes; else one CloudWatch call's worth.
    whole_puts: bool,
}

/// The embedded metric store under `dir`, and the same store behind a [`CallSizes`].
fn counted_store(dir: &std::path::Path) -> (Arc<dyn MetricPublisher>, Arc<CallSizes>) {
    counted_store_with(dir, &[], Duration::ZERO)
}

/// [`counted_store`] whose calls take `delay` and fail as `fail` says (see [`CallSizes`]).
fn counted_store_with(
    dir: &std::path::Path,
    fail: &[(usize, bool)],
    delay: Duration,
) -> (Arc<dyn MetricPublisher>, Arc<CallSizes>) {
    let local = LocalBackends::open(dir, LocalOptions::default()).expect("backends");
    let store: Arc<dyn MetricPublisher> = local.metrics.clone();
    let sized = Arc::new(CallSizes {
        inner: store.clone(),
        sizes: Mutex::new(Vec::new()),
        fail: fail.iter().copied().collect(),
        delay,
        whole_puts: false,
    });
    (store, sized)
}

/// Buffering of `records` records or `interval`, every other setting the default.
fn buffering(records: usize, interval: Duration) -> CloudWatchConfig {
    CloudWatchConfig {
        buffer_records: records,
        buffer_interval: interval,
        ..CloudWatchConfig::default()
    }
}

#[async_trait::async_trait]
impl MetricPublisher for CallSizes {
    async fn put_metric_data(
        &self,
        namespace: &str,
        data: Vec<MetricDatum>,
        watermark: Option<&Watermark>,
    ) -> Result<()> {
        let call = {
            let mut sizes = self.sizes.lock().expect("lock");
            sizes.push(data.len());
            sizes.len() - 1
        };
        tokio::time::sleep(self.delay).await;
        let throttled = || Err(shardline_core::Error::Throttled("rate exceeded".into()));
        match self.fail.get(&call) {
            Some(false) => throttled(),
            Some(true) => {
                self.inner
                    .put_metric_data(namespace, data, watermark)
                    .await?;
                throttled()
            }
            None => self.inner.put_metric_data(namespace, data, watermark).await,
        }
    }
    fn max_datums_per_put(&self, per_call: usize) -> usize {
        if self.whole_puts {
            self.inner.max_datums_per_put(per_call)
        } else {
            per_call
        }
    }
    async fn watermark(&self, key: &str) -> Result<Option<SequenceNumber>> {
        self.inner.watermark(key).await
    }
    async fn get_metric_statistics(&self, query: &StatisticsQuery) -> Result<Vec<Datapoint>> {
        self.inner.get_metric_statistics(query).await
    }
}

/// A minute boundary (and a five-minute one).
const T0_MS: i64 = 1_771_500_000_000;

fn record(
    shard: u32,
    offset: u64,
    instance: &str,
    metric: MetricType,
    ms: i64,
    value: f64,
) -> SinkRecord {
    let secs = ms.div_euclid(1000);
    SinkRecord {
        shard: ShardId(shard),
        sequence_number: SequenceParts {
            shard_index: shard,
            offset,
            shard_created_secs: 1_771_000_000,
            arrival_secs: secs as u64,
        }
        .encode(),
        arrival_ms: ms,
        event: std::sync::Arc::new(MetricEvent {
            metric_id: format!("{}-{secs}", metric.id_prefix()),
            metric_type: metric,
            timestamp: secs,
            timestamp_ms: Some(ms),
            value,
            unit: None,
            instance_id: instance.to_string(),
            region: "eu-west-1".to_string(),
            collected_at: "2026-02-19T11:25:09".to_string(),
        }),
    }
}

/// Per shard: one instance, cpu and network every 10 s for 10 minutes (60 samples each).
fn shard_records(shard: u32, instance: &str) -> Vec<SinkRecord> {
    let mut out = Vec::new();
    for i in 0..60u64 {
        let ms = T0_MS + i as i64 * 10_000;
        let cpu = 20.0 + (i % 7) as f64 * 10.0;
        let net = 100.0 + i as f64 * 5.0;
        out.push(record(
            shard,
            2 * i,
            instance,
            MetricType::CpuUtilization,
            ms,
            cpu,
        ));
        out.push(record(
            shard,
            2 * i + 1,
            instance,
            MetricType::NetworkTraffic,
            ms,
            net,
        ));
    }
    out
}

fn query(metric: &str, instance: &str, period_secs: u32) -> StatisticsQuery {
    StatisticsQuery {
        namespace: "InfraMonitoring".into(),
        metric_name: metric.into(),
        dimensions: BTreeMap::from([
            ("InstanceID".to_string(), instance.to_string()),
            ("Region".to_string(), "eu-west-1".to_string()),
        ]),
        start_ms: T0_MS - 3_600_000,
        end_ms: T0_MS + 3_600_000,
        period_secs,
    }
}

fn total(points: &[Datapoint]) -> f64 {
    points.iter().map(|p| p.values.sample_count).sum()
}

/// Every batch published before `write` returns.
fn write_through() -> CloudWatchConfig {
    CloudWatchConfig {
        buffer_interval: Duration::ZERO,
        ..CloudWatchConfig::default()
    }
}

#[tokio::test]
async fn buffered_batches_share_statistic_sets_and_a_lost_buffer_replays_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, sized) = counted_store(dir.path());
    let config = CloudWatchConfig {
        buffer_records: 45,
        buffer_interval: Duration::from_secs(1),
        ..CloudWatchConfig::default()
    };
    let a = shard_records(0, "i-aaaaaa");
    assert_eq!(a.len(), 120);
    let mut sink = CloudWatchSink::new(sized.clone(), config.clone()).expect("sink");
    // 40 records (two metrics, six samples a minute each) wait.
    for chunk in a[..40].chunks(10) {
        assert_eq!(
            sink.write(ShardId(0), chunk, 1_000).await.expect("write"),
            None
        );
    }
    assert!(
        sized.sizes.lock().expect("lock").is_empty(),
        "nothing published yet"
    );
    // The 45th record fills the buffer: one call for all of them.
    // Published in the background: durable once the call returned.
    let durable = match sink
        .write(ShardId(0), &a[40..50], 1_000)
        .await
        .expect("write")
    {
        Some(d) => vec![(ShardId(0), d)],
        None => settle(&mut sink, 1_000).await,
    };
    assert_eq!(durable, vec![(ShardId(0), a[49].sequence_number.clone())]);
    let calls = sized.sizes.lock().expect("lock").clone();
    assert_eq!(calls.len(), 1, "one call for five batches: {calls:?}");
    assert!(calls[0] < 50, "statistic sets, not samples: {calls:?}");

    // 30 more wait; they go out once the interval passed.
    sink.write(ShardId(0), &a[50..80], 2_000)
        .await
        .expect("write");
    assert_eq!(sink.flush(2_999, false).await.expect("flush"), vec![]);
    assert_eq!(
        settle(&mut sink, 3_000).await,
        vec![(ShardId(0), a[79].sequence_number.clone())]
    );
    // The rest is buffered when the process dies; the next sink gets everything after the
    // checkpoint (79) plus some before it (the runtime's read position may lag).
    sink.write(ShardId(0), &a[80..], 4_000)
        .await
        .expect("write");
    drop(sink);
    let mut again = CloudWatchSink::new(sized.clone(), config).expect("sink");
    for chunk in a[60..].chunks(9) {
        again.write(ShardId(0), chunk, 5_000).await.expect("replay");
    }
    again.flush(5_000, true).await.expect("flush");
    for metric in ["cpu_utilization", "network_traffic"] {
        let minutes = store
            .get_metric_statistics(&query(metric, "i-aaaaaa", 60))
            .await
            .expect("stats");
        assert_eq!(total(&minutes), 60.0, "{metric}: every sample once");
    }
}

async fn write_all(sink: &mut CloudWatchSink, records: &[SinkRecord], batch: usize) {
    for chunk in records.chunks(batch) {
        let shard = chunk[0].shard;
        let durable = sink.write(shard, chunk, 0).await.expect("write");
        // At least the batch (a re-delivered batch reports what was durable before it).
        assert!(durable.as_ref() >= chunk.last().map(|r| &r.sequence_number));
    }
}

#[tokio::test]
async fn minutes_hold_every_sample_once_across_replays_and_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let store: Arc<dyn MetricPublisher> = local.metrics.clone();
    let mut sink = CloudWatchSink::new(store.clone(), write_through()).expect("sink");
    let a = shard_records(0, "i-aaaaaa");
    let b = shard_records(1, "i-bbbbbb");
    write_all(&mut sink, &a, 7).await;
    write_all(&mut sink, &b, 13).await;

    let check = |points: Vec<Datapoint>, expected: f64| {
        assert_eq!(total(&points), expected);
    };
    for instance in ["i-aaaaaa", "i-bbbbbb"] {
        for metric in ["cpu_utilization", "network_traffic"] {
            let minutes = store
                .get_metric_statistics(&query(metric, instance, 60))
                .await
                .expect("stats");
            assert_eq!(minutes.len(), 10, "{metric} {instance}");
            check(minutes, 60.0);
        }
    }

    // Minute 0 of i-aaaaaa cpu: samples i = 0..6 → 20,30,40,50,60,70.
    let cpu = store
        .get_metric_statistics(&query("cpu_utilization", "i-aaaaaa", 60))
        .await
        .expect("stats");
    assert_eq!(cpu[0].timestamp_ms, T0_MS);
    assert_eq!(
        cpu[0].values,
        StatisticSet {
            sample_count: 6.0,
            sum: 270.0,
            minimum: 20.0,
            maximum: 70.0
        }
    );
    assert_eq!(cpu[0].average(), 45.0);

    // Five-minute periods: two datapoints of 30 samples; network rises 5 per sample.
    let net5 = store
        .get_metric_statistics(&query("network_traffic", "i-bbbbbb", 300))
        .await
        .expect("stats");
    assert_eq!(net5.len(), 2);
    assert_eq!(net5[0].timestamp_ms, T0_MS);
    assert_eq!(net5[0].values.sample_count, 30.0);
    assert_eq!(net5[0].values.minimum, 100.0);
    assert_eq!(net5[0].values.maximum, 245.0);
    assert_eq!(
        net5[0].values.sum,
        (0..30).map(|i| 100.0 + f64::from(i) * 5.0).sum::<f64>()
    );
    assert_eq!(net5[1].values.minimum, 250.0);

    // Re-deliveries with other batch boundaries, on the same sink and on a restarted one.
    write_all(&mut sink, &a, 50).await;
    let mut restarted = CloudWatchSink::new(store.clone(), write_through()).expect("sink");
    write_all(&mut restarted, &b, 3).await;
    write_all(&mut restarted, &a[40..], 11).await;
    for instance in ["i-aaaaaa", "i-bbbbbb"] {
        let minutes = store
            .get_metric_statistics(&query("cpu_utilization", instance, 60))
            .await
            .expect("stats");
        check(minutes, 60.0);
    }
    let again = store
        .get_metric_statistics(&query("network_traffic", "i-bbbbbb", 300))
        .await
        .expect("stats");
    assert_eq!(again, net5);
    assert_eq!(
        store
            .watermark("cloudwatch/metrics/shardId-000000000000")
            .await
            .expect("wm"),
        a.last().map(|r| r.sequence_number.clone())
    );
}

#[tokio::test]
async fn a_batch_over_1000_datums_is_split_and_counted_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, sized) = counted_store(dir.path());
    let config = CloudWatchConfig {
        consumer: "cw-split".into(),
        ..write_through()
    };
    let mut sink = CloudWatchSink::new(sized.clone(), config).expect("sink");
    // 1,500 minutes of one series, two samples each: 1,500 datums in one batch.
    let mut records = Vec::new();
    for m in 0..1500u64 {
        for k in 0..2u64 {
            let ms = T0_MS + m as i64 * 60_000 + k as i64 * 1_000;
            records.push(record(
                0,
                m * 2 + k,
                "i-cccccc",
                MetricType::MemoryUsage,
                ms,
                40.0 + k as f64,
            ));
        }
    }
    sink.write(ShardId(0), &records, 0).await.expect("write");
    let mut q = query("memory_usage", "i-cccccc", 60);
    q.end_ms = T0_MS + 1500 * 60_000;
    q.start_ms = T0_MS;
    let minutes = store.get_metric_statistics(&q).await.expect("stats");
    assert_eq!(minutes.len(), 1500);
    assert_eq!(total(&minutes), 3000.0);
    assert!(
        minutes
            .iter()
            .all(|p| p.values.sum == 81.0 && p.values.maximum == 41.0)
    );
    sink.write(ShardId(0), &records, 0).await.expect("replay");
    assert_eq!(
        sized.sizes.lock().expect("lock").len(),
        2,
        "a replay publishes nothing"
    );
    assert_eq!(
        total(&store.get_metric_statistics(&q).await.expect("stats")),
        3000.0
    );
    // A smaller configured chunk: 100 datums per call, every sample still counted once.
    let config = CloudWatchConfig {
        consumer: "cw-small".into(),
        namespace: "InfraMonitoringSmall".into(),
        max_datums_per_call: 100,
        ..write_through()
    };
    sized.sizes.lock().expect("lock").clear();
    let mut small = CloudWatchSink::new(sized.clone(), config).expect("sink");
    small.write(ShardId(0), &records, 0).await.expect("write");
    assert_eq!(*sized.sizes.lock().expect("lock"), vec![100; 15]);
    let mut q_small = q.clone();
    q_small.namespace = "InfraMonitoringSmall".into();
    let small_minutes = store.get_metric_statistics(&q_small).await.expect("stats");
    assert_eq!(small_minutes, minutes);
    assert_eq!(
        store
            .watermark("cw-split/metrics/shardId-000000000000")
            .await
            .expect("wm")
            .map(String::from),
        Some(
            SequenceParts {
                shard_index: 0,
                offset: 2999,
                shard_created_secs: 1_771_000_000,
                arrival_secs: ((T0_MS + 1499 * 60_000 + 1000) / 1000) as u64
            }
            .encode()
            .into()
        )
    );
}

/// A shard with more series than one call carries: records cycle through the series, so
/// puts of one call's worth would each take ~1,000 records; the embedded store takes the
/// batch in one put. Either way every sample counts once.
#[tokio::test]
async fn a_shard_with_more_series_than_a_call_takes_is_one_put_on_the_embedded_store() {
    let instances: Vec<String> = (0..1200).map(|i| format!("i-{i:06}")).collect();
    let records: Vec<SinkRecord> = (0..5u64)
        .flat_map(|round| instances.iter().map(move |i| (round, i)))
        .enumerate()
        .map(|(offset, (round, instance))| {
            let ms = T0_MS + round as i64 * 1_000;
            record(
                0,
                offset as u64,
                instance,
                MetricType::CpuUtilization,
                ms,
                50.0,
            )
        })
        .collect();
    for whole_puts in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = counted_store(dir.path());
        let sized = Arc::new(CallSizes {
            inner: store.clone(),
            sizes: Mutex::new(Vec::new()),
            fail: BTreeMap::new(),
            delay: Duration::ZERO,
            whole_puts,
        });
        let mut sink = CloudWatchSink::new(sized.clone(), write_through()).expect("sink");
        sink.write(ShardId(0), &records, 0).await.expect("write");
        let sizes = sized.sizes.lock().expect("lock").clone();
        if whole_puts {
            assert_eq!(sizes, vec![1200], "one put of one datum per series");
        } else {
            assert!(sizes.len() >= 6, "cut every ~1,000 records: {sizes:?}");
            assert!(sizes.iter().all(|&n| n <= 1000), "{sizes:?}");
        }
        for instance in ["i-000000", "i-000999", "i-001000", "i-001199"] {
            let points = store
                .get_metric_statistics(&query("cpu_utilization", instance, 60))
                .await
                .expect("stats");
            assert_eq!(total(&points), 5.0, "{instance}, whole puts {whole_puts}");
        }
    }
}

#[test]
fn config_rejects_more_than_1000_datums_per_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
    let config = CloudWatchConfig {
        max_datums_per_call: 5000,
        ..CloudWatchConfig::default()
    };
    let err = CloudWatchSink::new(local.metrics.clone(), config)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("use 1 to 1000"), "{err}");
}

/// Statistic sets published in the background: a shard's mark is reported only once its
/// watermark is stored; a call that landed but answered with an error, and one that failed
/// outright, are retried as the runtime retries (the same batch again) and every sample
/// counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_publishes_report_landed_marks_and_retries_count_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, flaky) = counted_store_with(
        dir.path(),
        &[(0, true), (2, false)],
        Duration::from_millis(20),
    );
    let config = buffering(20, Duration::from_secs(3600));
    let mut sink = CloudWatchSink::new(flaky.clone(), config).expect("sink");
    let shards = [shard_records(0, "i-aaaaaa"), shard_records(1, "i-bbbbbb")];
    let mut retries = Retries::new("rate exceeded");
    let mut marks: BTreeMap<u32, SequenceNumber> = BTreeMap::new();
    let check = |shard: ShardId, mark: &SequenceNumber, sink: &CloudWatchSink| {
        let key = sink.watermark_key(shard);
        let store = store.clone();
        let mark = mark.clone();
        async move {
            let stored = store.watermark(&key).await.expect("watermark");
            assert!(
                stored.as_ref() >= Some(&mark),
                "{shard} reported {mark} with {stored:?} stored"
            );
        }
    };
    for round in 0..12 {
        for (k, records) in shards.iter().enumerate() {
            let shard = ShardId(k as u32);
            let batch = &records[round * 10..(round + 1) * 10];
            if let Some(d) = retries.write(&mut sink, shard, batch, 0).await {
                check(shard, &d, &sink).await;
                marks.insert(shard.0, d);
            }
        }
    }
    for (shard, d) in retries.flush(&mut sink, 0, true).await {
        check(shard, &d, &sink).await;
        marks.insert(shard.0, d);
    }
    assert_eq!(retries.errors, 2, "each failed call surfaced once");
    for (k, instance) in ["i-aaaaaa", "i-bbbbbb"].into_iter().enumerate() {
        assert_eq!(
            marks.get(&(k as u32)),
            shards[k].last().map(|r| &r.sequence_number),
            "shard {k}'s final mark"
        );
        for metric in ["cpu_utilization", "network_traffic"] {
            let minutes = store
                .get_metric_statistics(&query(metric, instance, 60))
                .await
                .expect("stats");
            assert_eq!(
                total(&minutes),
                60.0,
                "{instance} {metric}: every sample once"
            );
        }
    }
}

/// One shard's call fails while another's lands: the flush that sees the failure returns the
/// error, and the landed shard's mark is still reported by the retried flush (not lost with
/// the failed call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_shard_does_not_lose_another_shards_mark() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, flaky) = counted_store_with(dir.path(), &[(1, false)], Duration::from_millis(20));
    let config = buffering(20, Duration::from_secs(3600));
    let mut sink = CloudWatchSink::new(flaky.clone(), config).expect("sink");
    let a = shard_records(0, "i-aaaaaa");
    let b = shard_records(1, "i-bbbbbb");
    // Both due: shard 0's call (the first) lands, shard 1's (the second) fails.
    assert_eq!(
        sink.write(ShardId(0), &a[..20], 0).await.expect("write"),
        None
    );
    // Shard 0's call must be the first made (the calls run on tasks of their own).
    for _ in 0..500 {
        if !flaky.sizes.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        sink.write(ShardId(1), &b[..20], 0).await.expect("write"),
        None
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut retries = Retries::new("rate exceeded");
    let mut marks = retries.flush(&mut sink, 0, false).await;
    marks.extend(retries.flush(&mut sink, 0, true).await);
    assert_eq!(retries.errors, 1);
    assert_eq!(
        marks,
        vec![
            (ShardId(0), a[19].sequence_number.clone()),
            (ShardId(1), b[19].sequence_number.clone()),
        ]
    );
}

/// Records taken in while a call is under way wait for their own size or age: once the call
/// landed they are not published at once (they would make many small calls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_taken_during_a_call_wait_until_they_are_due() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, slow) = counted_store_with(dir.path(), &[], Duration::from_millis(50));
    let config = buffering(20, Duration::from_secs(10));
    let mut sink = CloudWatchSink::new(slow.clone(), config).expect("sink");
    let a = shard_records(0, "i-aaaaaa");
    let calls = || slow.sizes.lock().expect("lock").len();
    sink.write(ShardId(0), &a[..20], 0).await.expect("write");
    sink.write(ShardId(0), &a[20..25], 100)
        .await
        .expect("write");
    assert_eq!(
        settle(&mut sink, 200).await,
        vec![(ShardId(0), a[19].sequence_number.clone())]
    );
    sink.write(ShardId(0), &a[25..26], 300)
        .await
        .expect("write");
    assert_eq!(sink.flush(400, false).await.expect("flush"), vec![]);
    assert_eq!(calls(), 1, "six records, neither 20 nor 10 s old: not due");
    // Due by age (the oldest of them came at 100 ms).
    assert_eq!(
        settle(&mut sink, 10_100).await,
        vec![(ShardId(0), a[25].sequence_number.clone())]
    );
    assert_eq!(calls(), 2);
}
