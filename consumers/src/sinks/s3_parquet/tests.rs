//! Tests of the S3 Parquet sink against the embedded object store (a directory tree).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::{
    Compression, Encoding, LogicalType, TimeUnit, TimestampType, Type as PhysicalType,
};
use parquet::file::metadata::PageIndexPolicy;
use shardline_core::ports::ObjectStore;
use shardline_core::schema::metric_schema;
use shardline_core::stream::SequenceParts;
use shardline_core::{MetricEvent, MetricType, SequenceNumber, ShardId};
use shardline_local::objects::DirObjectStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use super::*;
use crate::{Sink, SinkRecord};

/// 2026-02-19T00:00:00Z.
pub(super) const DAY0_MS: i64 = 1_771_459_200_000;

pub(super) fn seq(shard: u32, offset: u64) -> SequenceNumber {
    SequenceParts {
        shard_index: shard,
        offset,
        shard_created_secs: 1_771_000_000,
        arrival_secs: 1_771_500_000,
    }
    .encode()
}

/// Record `offset` of `shard`: instances cycle over 7, time advances 10 minutes per record
/// from `start_ms`.
pub(super) fn record(shard: u32, offset: u64, start_ms: i64) -> SinkRecord {
    let t_ms = start_ms + offset as i64 * 600_000 + 123;
    let metric_type = MetricType::ALL[(offset % 4) as usize];
    SinkRecord {
        shard: ShardId(shard),
        sequence_number: seq(shard, offset),
        arrival_ms: t_ms + 50,
        event: std::sync::Arc::new(MetricEvent {
            metric_id: format!("{}-{}", metric_type.id_prefix(), t_ms / 1000),
            metric_type,
            timestamp: t_ms / 1000,
            timestamp_ms: Some(t_ms),
            value: (offset % 90) as f64 + 0.5,
            unit: None,
            instance_id: format!("i-{:06}", 100_000 + (offset * 7919) % 7),
            region: "eu-west-1".into(),
            collected_at: shardline_core::time::format_rfc3339_ms(t_ms),
        }),
    }
}

pub(super) fn records(shard: u32, range: std::ops::Range<u64>, start_ms: i64) -> Vec<SinkRecord> {
    range.map(|o| record(shard, o, start_ms)).collect()
}

pub(super) fn store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DirObjectStore::open(dir.path()).expect("object store");
    (dir, Arc::new(store))
}

pub(super) fn config(buffer_size: u64) -> S3ParquetConfig {
    S3ParquetConfig {
        buffer_size,
        ..S3ParquetConfig::default()
    }
}

/// Feeds `recs` in batches of `batch` and force-flushes at the end; returns durable marks.
pub(super) async fn feed(
    sink: &mut S3ParquetSink,
    recs: Vec<SinkRecord>,
    batch: usize,
) -> Vec<SequenceNumber> {
    let mut marks = Vec::new();
    let mut it = recs.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<SinkRecord> = it.by_ref().take(batch).collect();
        let shard = chunk[0].shard;
        if let Some(m) = sink.write(shard, &chunk, 0).await.expect("write") {
            marks.push(m);
        }
    }
    for (_, m) in sink.flush(0, true).await.expect("flush") {
        marks.push(m);
    }
    marks
}

async fn parquet_objects(store: &dyn ObjectStore) -> Vec<(String, Bytes)> {
    let bucket = S3ParquetConfig::default().bucket;
    let mut out = Vec::new();
    for meta in store.list(&bucket, "metrics/").await.expect("list") {
        let body = store
            .get(&bucket, &meta.key)
            .await
            .expect("get")
            .expect("exists");
        out.push((meta.key, body));
    }
    out
}

/// Every (shard, sequence number) row in the bucket, with its count.
pub(super) async fn row_multiset(store: &dyn ObjectStore) -> BTreeMap<(String, String), u32> {
    let mut rows = BTreeMap::new();
    for (_, body) in parquet_objects(store).await {
        let reader = ParquetRecordBatchReaderBuilder::try_new(body)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let shard = batch
                .column_by_name("shard_id")
                .expect("col")
                .as_string::<i32>()
                .clone();
            let seq = batch
                .column_by_name("sequence_number")
                .expect("col")
                .as_string::<i32>()
                .clone();
            for i in 0..batch.num_rows() {
                *rows
                    .entry((shard.value(i).to_string(), seq.value(i).to_string()))
                    .or_insert(0) += 1;
            }
        }
    }
    rows
}

pub(super) fn expected_rows(
    shard: u32,
    range: std::ops::Range<u64>,
) -> BTreeMap<(String, String), u32> {
    range
        .map(|o| ((ShardId(shard).to_string(), seq(shard, o).to_string()), 1))
        .collect()
}

#[tokio::test]
async fn objects_hold_every_row_with_the_athena_schema_sorted_and_partitioned_by_day() {
    let (_dir, store) = store();
    let mut sink = S3ParquetSink::new(config(64 << 20), Arc::clone(&store)).expect("sink");
    // 300 records, 10 minutes apart: 50 hours, so three event days.
    let recs = records(0, 0..300, DAY0_MS);
    let marks = feed(&mut sink, recs.clone(), 100).await;
    assert_eq!(
        marks.last(),
        Some(&seq(0, 299)),
        "durable mark is the last record"
    );

    let objects = parquet_objects(store.as_ref()).await;
    let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.len(), 3, "one object per event day: {keys:?}");
    for (key, day) in keys.iter().zip(["day=19", "day=20", "day=21"]) {
        assert!(
            key.starts_with(&format!(
                "metrics/year=2026/month=02/{day}/shardId-000000000000-"
            )),
            "{key}"
        );
        assert!(key.ends_with(".parquet"), "{key}");
    }
    // The first object spans the first day's records: offsets 0..=143.
    assert!(
        keys[0].ends_with(&format!("-{}-{}.parquet", seq(0, 0), seq(0, 143))),
        "{}",
        keys[0]
    );

    let mut total = 0;
    for (key, body) in &objects {
        let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(body.clone(), opts)
            .expect("parquet");
        assert_eq!(builder.schema().as_ref(), metric_schema().as_ref(), "{key}");
        let meta = builder.metadata().clone();
        let descr = meta.file_metadata().schema_descr();
        let col = |name: &str| {
            descr
                .columns()
                .iter()
                .position(|c| c.name() == name)
                .expect("column")
        };
        assert_eq!(
            descr.column(col("timestamp")).physical_type(),
            PhysicalType::INT64
        );
        assert_eq!(
            descr.column(col("value")).physical_type(),
            PhysicalType::DOUBLE
        );
        let et = descr.column(col("event_time"));
        assert_eq!(et.physical_type(), PhysicalType::INT64);
        assert_eq!(
            et.logical_type_ref(),
            Some(&LogicalType::Timestamp(TimestampType {
                is_adjusted_to_u_t_c: true,
                unit: TimeUnit::MILLIS
            }))
        );
        let rg = meta.row_group(0);
        assert!(matches!(
            rg.column(col("instance_id")).compression(),
            Compression::ZSTD(_)
        ));
        let encodings: Vec<Encoding> = rg.column(col("instance_id")).encodings().collect();
        assert!(
            encodings.contains(&Encoding::RLE_DICTIONARY),
            "strings dictionary-encoded: {encodings:?}"
        );
        assert!(
            rg.column(col("value")).statistics().is_some(),
            "statistics written"
        );
        assert!(
            meta.column_index().is_some(),
            "page index (page statistics) written"
        );

        for batch in builder.build().expect("reader") {
            let batch = batch.expect("batch");
            total += batch.num_rows();
            let inst = batch
                .column_by_name("instance_id")
                .expect("col")
                .as_string::<i32>();
            let ts = batch
                .column_by_name("timestamp")
                .expect("col")
                .as_primitive::<Int64Type>();
            for i in 1..batch.num_rows() {
                let prev = (inst.value(i - 1), ts.value(i - 1));
                assert!(
                    prev <= (inst.value(i), ts.value(i)),
                    "rows sorted by (instance_id, timestamp)"
                );
            }
            let values = batch
                .column_by_name("value")
                .expect("col")
                .as_primitive::<Float64Type>();
            assert_eq!(values.null_count(), 0);
        }
    }
    assert_eq!(total, 300, "rows = records");
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..300));
    assert_eq!(sink.stats().rows, 300);
}

#[tokio::test]
async fn buffers_flush_on_size_and_on_interval() {
    let (_dir, store) = store();
    let mut cfg = config(8 << 20);
    cfg.buffer_interval = Duration::from_secs(60);
    let mut sink = S3ParquetSink::new(cfg, Arc::clone(&store)).expect("sink");
    let shard = ShardId(0);
    assert_eq!(
        sink.write(shard, &records(0, 0..10, DAY0_MS), 1_000)
            .await
            .expect("write"),
        None
    );
    assert!(
        sink.flush(30_000, false).await.expect("flush").is_empty(),
        "interval not passed"
    );
    assert!(parquet_objects(store.as_ref()).await.is_empty());
    // Interval passed: the flush starts, and a later call reports it once it is written.
    let advanced = reported(&mut sink, 61_000).await;
    assert_eq!(
        advanced,
        vec![(shard, seq(0, 9))],
        "interval passed: flushed"
    );
    assert_eq!(parquet_objects(store.as_ref()).await.len(), 1);

    // A 4 KiB buffer fills within a 100-record batch: its flush starts at once.
    let mut small = S3ParquetSink::new(config(4096), Arc::clone(&store)).expect("sink");
    let durable = small
        .write(ShardId(1), &records(1, 0..100, DAY0_MS), 0)
        .await
        .expect("write");
    let durable = match durable {
        Some(d) => vec![(ShardId(1), d)],
        None => reported(&mut small, 0).await,
    };
    assert_eq!(durable, vec![(ShardId(1), seq(1, 99))]);
    assert_eq!(row_multiset(store.as_ref()).await.len(), 110);
}

/// Unforced flushes at `now_ms` until one reports a durable mark (a flush under way is
/// reported once its objects are written); at most 10 s.
async fn reported(sink: &mut S3ParquetSink, now_ms: i64) -> Vec<(ShardId, SequenceNumber)> {
    for _ in 0..1000 {
        let advanced = sink.flush(now_ms, false).await.expect("flush");
        if !advanced.is_empty() {
            return advanced;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no flush reported within 10 s");
}

/// The embedded object store with hooks on Parquet puts: each waits for a permit of `gate`
/// (when given), and one fails once armed, after `countdown` more such puts went through
/// (negative: disarmed). With `failing` set to `.json`, the countdown counts manifest puts
/// instead.
struct HookedParquetPuts {
    inner: Arc<dyn ObjectStore>,
    countdown: AtomicIsize,
    gate: Option<tokio::sync::Semaphore>,
    failing: &'static str,
}

impl HookedParquetPuts {
    fn new(inner: &Arc<dyn ObjectStore>, gated: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::clone(inner),
            countdown: AtomicIsize::new(-1),
            gate: gated.then(|| tokio::sync::Semaphore::new(0)),
            failing: ".parquet",
        })
    }
}

#[async_trait::async_trait]
impl ObjectStore for HookedParquetPuts {
    async fn ensure_bucket(&self, bucket: &str) -> shardline_core::Result<()> {
        self.inner.ensure_bucket(bucket).await
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> shardline_core::Result<()> {
        if let (true, Some(gate)) = (key.ends_with(".parquet"), &self.gate) {
            gate.acquire().await.expect("gate open").forget();
        }
        if key.ends_with(self.failing)
            && self
                .countdown
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n >= 0).then(|| n - 1)
                })
                == Ok(0)
        {
            return Err(shardline_core::Error::Unavailable(format!(
                "put {key} failed"
            )));
        }
        self.inner.put(bucket, key, body, content_type).await
    }
    async fn get(&self, bucket: &str, key: &str) -> shardline_core::Result<Option<Bytes>> {
        self.inner.get(bucket, key).await
    }
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> shardline_core::Result<Vec<shardline_core::ports::ObjectMeta>> {
        self.inner.list(bucket, prefix).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> shardline_core::Result<()> {
        self.inner.delete(bucket, key).await
    }
}

/// A flush written in the background fails after its first day's object: the error comes
/// back through the sink, nothing is reported durable past what was committed, and the retry
/// (the runtime hands the same batch again) puts the flush's objects again: every row exactly
/// once.
#[tokio::test]
async fn a_failed_background_flush_is_written_again_without_duplicates() {
    let (_dir, inner) = store();
    let failing = HookedParquetPuts::new(&inner, false);
    // Records 10 minutes apart, 144 a day; a ~3 KiB buffer is due after every 40-record batch.
    let mut sink = S3ParquetSink::new(config(3 << 10), failing.clone()).expect("sink");
    let all = records(0, 0..300, DAY0_MS);
    let mut marks = Vec::new();
    let mut failures = 0;
    for (i, chunk) in all.chunks(40).enumerate() {
        if i == 3 {
            // Records 120..160 span two days: the first object goes through, the second fails.
            failing.countdown.store(1, Ordering::SeqCst);
        }
        loop {
            match sink.write(ShardId(0), chunk, 0).await {
                Ok(mark) => {
                    marks.extend(mark);
                    break;
                }
                Err(e) => {
                    assert!(e.to_string().contains("failed"), "{e}");
                    failures += 1;
                    assert!(
                        marks.last() < Some(&seq(0, 120)),
                        "nothing durable past the failed flush: {:?}",
                        marks.last()
                    );
                }
            }
        }
    }
    let done = sink.flush(0, true).await.expect("forced flush");
    marks.extend(done.into_iter().map(|(_, m)| m));
    assert_eq!(failures, 1, "one put failed, once");
    assert_eq!(
        failing.countdown.load(Ordering::SeqCst),
        -1,
        "the failure happened"
    );
    assert_eq!(marks.last(), Some(&seq(0, 299)));
    assert!(marks.windows(2).all(|w| w[0] < w[1]), "marks only advance");
    assert_eq!(row_multiset(inner.as_ref()).await, expected_rows(0, 0..300));
    assert_eq!(sink.stats().rows, 300);
}

/// A flush under way holds its rows encoded, not the records: once encoded, the records'
/// events are released while the put still waits; nothing is reported durable before the
/// put, and everything after it.
#[tokio::test]
async fn a_flush_under_way_releases_its_records_once_encoded() {
    let (_dir, inner) = store();
    let gated = HookedParquetPuts::new(&inner, true);
    let mut sink = S3ParquetSink::new(config(4096), gated.clone()).expect("sink");
    let batch = records(0, 0..100, DAY0_MS);
    let watched: Vec<std::sync::Weak<MetricEvent>> =
        batch.iter().map(|r| Arc::downgrade(&r.event)).collect();
    let durable = sink.write(ShardId(0), &batch, 0).await.expect("write");
    assert_eq!(durable, None, "nothing written yet");
    drop(batch);
    let mut released = false;
    for _ in 0..1000 {
        if watched.iter().all(|w| w.strong_count() == 0) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(released, "the records were released while the put waited");
    assert!(
        sink.flush(0, false).await.expect("flush").is_empty(),
        "not durable before the put"
    );
    assert!(parquet_objects(inner.as_ref()).await.is_empty());
    gated.gate.as_ref().expect("gated").add_permits(100);
    let done = sink.flush(0, true).await.expect("forced flush");
    assert_eq!(done, vec![(ShardId(0), seq(0, 99))]);
    assert_eq!(row_multiset(inner.as_ref()).await, expected_rows(0, 0..100));
}

#[tokio::test]
async fn replays_with_different_boundaries_leave_each_row_once() {
    let (_dir, store) = store();
    // First run: all 400 records, small buffers (many objects), batches of 37.
    let mut first = S3ParquetSink::new(config(3 << 10), Arc::clone(&store)).expect("sink");
    feed(&mut first, records(0, 0..400, DAY0_MS), 37).await;
    let objects_before = parquet_objects(store.as_ref()).await.len();
    assert!(
        objects_before > 10,
        "small buffers write many objects: {objects_before}"
    );
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..400));

    // Replay from the middle of an earlier object, with other boundaries, past the old end.
    let mut second = S3ParquetSink::new(config(7 << 10), Arc::clone(&store)).expect("sink");
    feed(&mut second, records(0, 123..520, DAY0_MS), 53).await;
    assert_eq!(second.stats().skipped_covered, 400 - 123);
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..520));

    // Replay everything from TRIM_HORIZON with one big buffer: nothing new.
    let mut third = S3ParquetSink::new(config(64 << 20), Arc::clone(&store)).expect("sink");
    let marks = feed(&mut third, records(0, 0..520, DAY0_MS), 1000).await;
    assert_eq!(
        marks.last(),
        Some(&seq(0, 519)),
        "covered records are durable"
    );
    assert_eq!(third.stats().rows, 0);
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..520));
}

#[tokio::test]
async fn a_crash_between_objects_and_manifest_commit_leaves_no_duplicates() {
    let (_dir, store) = store();
    let mut sink = S3ParquetSink::new(config(64 << 20), Arc::clone(&store)).expect("sink");
    assert_eq!(
        sink.write(ShardId(0), &records(0, 0..200, DAY0_MS), 0)
            .await
            .expect("write"),
        None
    );
    sink.flush_without_commit(ShardId(0))
        .await
        .expect("stage and write");
    drop(sink); // crash: objects written, manifest entry still pending
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..200));

    // Restart and replay from TRIM_HORIZON with other boundaries: the pending flush is adopted.
    let mut again = S3ParquetSink::new(config(5 << 10), Arc::clone(&store)).expect("sink");
    feed(&mut again, records(0, 0..260, DAY0_MS), 45).await;
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..260));
}

#[tokio::test]
async fn a_crash_midway_through_the_objects_removes_the_partial_flush() {
    let (_dir, store) = store();
    let mut sink = S3ParquetSink::new(config(64 << 20), Arc::clone(&store)).expect("sink");
    sink.write(ShardId(0), &records(0, 0..300, DAY0_MS), 0)
        .await
        .expect("write");
    sink.flush_without_commit(ShardId(0))
        .await
        .expect("stage and write");
    drop(sink);
    // Simulate the crash before the last day's object: remove it.
    let objects = parquet_objects(store.as_ref()).await;
    assert_eq!(objects.len(), 3);
    let bucket = S3ParquetConfig::default().bucket;
    store.delete(&bucket, &objects[2].0).await.expect("delete");

    let mut again = S3ParquetSink::new(config(64 << 20), Arc::clone(&store)).expect("sink");
    feed(&mut again, records(0, 0..300, DAY0_MS), 100).await;
    assert_eq!(
        row_multiset(store.as_ref()).await,
        expected_rows(0, 0..300),
        "no row lost or doubled"
    );
}

#[tokio::test]
async fn raw_json_archive_follows_the_seed_layout() {
    let (_dir, store) = store();
    let mut cfg = config(64 << 20);
    cfg.raw_json_archive = true;
    let mut sink = S3ParquetSink::new(cfg, Arc::clone(&store)).expect("sink");
    feed(&mut sink, records(2, 0..100, DAY0_MS), 100).await;
    let bucket = S3ParquetConfig::default().bucket;
    let raw = store.list(&bucket, "raw-metrics/").await.expect("list");
    assert_eq!(raw.len(), 1);
    assert_eq!(
        raw[0].key,
        format!(
            "raw-metrics/2026/02/19/metrics-shardId-000000000002-{}-{}.json",
            seq(2, 0),
            seq(2, 99)
        )
    );
    let body = store
        .get(&bucket, &raw[0].key)
        .await
        .expect("get")
        .expect("exists");
    let lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 100);
    let first = MetricEvent::from_json(lines[0]).expect("valid event");
    assert_eq!(first, *record(2, 0, DAY0_MS).event);
}

#[test]
fn bad_config_is_named() {
    let err = toml::from_str::<S3ParquetConfig>("buffer_size = \"8 lots\"").expect_err("bad size");
    assert!(err.to_string().contains("not a size"), "{err}");
    let err = toml::from_str::<S3ParquetConfig>("compresion = \"zstd\"").expect_err("unknown");
    assert!(err.to_string().contains("compresion"), "{err}");
    let cfg: S3ParquetConfig =
        toml::from_str("compression = \"snappy\"\nbuffer_interval = \"5s\"").expect("valid");
    assert_eq!(cfg.compression, ParquetCompression::Snappy);
    assert_eq!(cfg.buffer_interval, Duration::from_secs(5));
    assert_eq!(cfg.buffer_size, 8 << 20);
    let cfg = S3ParquetConfig {
        prefix: "/metrics".into(),
        ..S3ParquetConfig::default()
    };
    assert!(
        cfg.validate()
            .expect_err("bad prefix")
            .to_string()
            .contains("prefix")
    );
    let cfg = S3ParquetConfig {
        flushes_in_flight: 0,
        ..S3ParquetConfig::default()
    };
    let err = cfg.validate().expect_err("no flush could run");
    assert!(err.to_string().contains("`flushes_in_flight` 0"), "{err}");
    let cfg: S3ParquetConfig = toml::from_str("page_size = \"2KiB\"").expect("parses");
    let err = cfg.validate().expect_err("page too small");
    assert!(err.to_string().contains("`page_size` 2048 bytes"), "{err}");
    let cfg: S3ParquetConfig = toml::from_str("page_size = \"64KiB\"").expect("parses");
    assert_eq!(cfg.page_size, 64 << 10);
    cfg.validate().expect("64 KiB pages are fine");
}

/// Four shards' buffers, each flushed in the background on size; the forced flush at the end
/// writes the rest of every shard at once and reports each shard's last record.
#[tokio::test]
async fn shards_flush_in_the_background_and_a_forced_flush_writes_every_shard() {
    let (_dir, store) = store();
    let mut sink = S3ParquetSink::new(config(6 << 10), Arc::clone(&store)).expect("sink");
    let mut last = BTreeMap::new();
    for round in 0..5u64 {
        for shard in 0..4u32 {
            let batch = records(shard, round * 50..round * 50 + 50, DAY0_MS);
            if let Some(m) = sink.write(ShardId(shard), &batch, 0).await.expect("write") {
                last.insert(ShardId(shard), m);
            }
        }
    }
    assert!(
        sink.stats().flushes > 0,
        "full buffers were flushed on the way"
    );
    for (shard, m) in sink.flush(0, true).await.expect("flush") {
        last.insert(shard, m);
    }
    let want: BTreeMap<ShardId, SequenceNumber> =
        (0..4).map(|s| (ShardId(s), seq(s, 249))).collect();
    assert_eq!(last, want, "every shard durable to its last record");
    let mut expected = BTreeMap::new();
    for shard in 0..4 {
        expected.extend(expected_rows(shard, 0..250));
    }
    assert_eq!(row_multiset(store.as_ref()).await, expected);
    assert_eq!(sink.stats().rows, 1000);
}

/// A flush whose objects were put but whose manifest commit failed is committed by the retry
/// (which puts nothing again): every row once, and the Parquet bytes counted are the bytes of
/// the objects in the store.
#[tokio::test]
async fn a_failed_manifest_commit_is_committed_by_the_retry_with_its_bytes_counted() {
    let (_dir, inner) = store();
    let hooked = Arc::new(HookedParquetPuts {
        inner: Arc::clone(&inner),
        // Manifest puts: each flush saves the manifest when staged, then when committed.
        countdown: AtomicIsize::new(-1),
        gate: None,
        failing: ".json",
    });
    let mut sink = S3ParquetSink::new(config(3 << 10), hooked.clone()).expect("sink");
    let all = records(0, 0..200, DAY0_MS);
    let mut failures = 0;
    for (i, chunk) in all.chunks(40).enumerate() {
        if i == 2 {
            // A due buffer first commits the shard's flush under way (started by the last
            // batch), then stages itself: the commit's manifest put fails.
            hooked.countdown.store(0, Ordering::SeqCst);
        }
        while let Err(e) = sink.write(ShardId(0), chunk, 0).await {
            assert!(e.to_string().contains("failed"), "{e}");
            failures += 1;
        }
    }
    sink.flush(0, true).await.expect("forced flush");
    assert_eq!(
        hooked.countdown.load(Ordering::SeqCst),
        -1,
        "the failure happened"
    );
    assert!(failures >= 1, "the failed commit was reported");
    assert_eq!(row_multiset(inner.as_ref()).await, expected_rows(0, 0..200));
    let stored: u64 = parquet_objects(inner.as_ref())
        .await
        .iter()
        .map(|(_, body)| body.len() as u64)
        .sum();
    let stats = sink.stats();
    assert_eq!(stats.rows, 200);
    assert_eq!(stats.parquet_bytes, stored, "{stats:?}");
}

/// `page_size` bounds the data pages: the same rows in 8 KiB pages take more pages than in
/// the default 1 MiB ones, and read back the same.
#[test]
fn page_size_sets_the_data_page_limit() {
    let recs = records(0, 0..5_000, DAY0_MS);
    let rows: Vec<&SinkRecord> = recs.iter().collect();
    let pages_and_rows = |page_size: u64| {
        let cfg = S3ParquetConfig {
            page_size,
            ..S3ParquetConfig::default()
        };
        cfg.validate().expect("valid");
        let body = writer::encode_parquet(&rows, &EncodeOptions::from(&cfg)).expect("encode");
        let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let builder =
            ParquetRecordBatchReaderBuilder::try_new_with_options(body, opts).expect("parquet");
        let meta = builder.metadata().clone();
        let column = metric_schema().index_of("sequence_number").expect("column");
        let pages: usize = meta
            .offset_index()
            .expect("offset index")
            .iter()
            .map(|group| group[column].page_locations().len())
            .sum();
        let read: usize = builder
            .build()
            .expect("reader")
            .map(|b| b.expect("batch").num_rows())
            .sum();
        (pages, read)
    };
    let (default_pages, default_rows) = pages_and_rows(S3ParquetConfig::default().page_size);
    let (small_pages, small_rows) = pages_and_rows(8 << 10);
    assert_eq!((default_rows, small_rows), (5_000, 5_000));
    // 5,000 sequence numbers of ~56 digits: ~280 KiB plain, one page at 1 MiB.
    assert_eq!(default_pages, 1);
    assert!(small_pages >= 20, "{small_pages} pages of 8 KiB");
}
