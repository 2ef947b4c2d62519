//! SQL over Parquet read through an object store port (what `shardline query` does on S3):
//! the same answers as over the directory, only ranged reads, and partitions a filter excludes
//! are neither listed nor read.

mod support;

use async_trait::async_trait;
use bytes::Bytes;
use shardline_core::ports::{ByteRange, ObjectLevel, ObjectMeta, ObjectStore, RangedObject};
use shardline_query::{OutputFormat, QueryEngine, format_batches};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use support::{Row, write_file};

const BUCKET: &str = "infra-monitoring-pipeline-data";

/// Objects in memory, with every call recorded.
#[derive(Default)]
struct Recorded {
    objects: BTreeMap<String, Bytes>,
    calls: Mutex<Vec<String>>,
}

impl Recorded {
    fn note(&self, call: String) {
        self.calls.lock().expect("calls").push(call);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }
}

#[async_trait]
impl ObjectStore for Recorded {
    async fn ensure_bucket(&self, _bucket: &str) -> shardline_core::Result<()> {
        Ok(())
    }
    async fn put(&self, _: &str, key: &str, _: Bytes, _: &str) -> shardline_core::Result<()> {
        panic!("the query engine wrote {key}")
    }
    async fn get(&self, _bucket: &str, key: &str) -> shardline_core::Result<Option<Bytes>> {
        self.note(format!("get {key}"));
        Ok(self.objects.get(key).cloned())
    }
    async fn list(&self, _bucket: &str, prefix: &str) -> shardline_core::Result<Vec<ObjectMeta>> {
        self.note(format!("list {prefix}"));
        Ok(self
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta {
                key: k.clone(),
                size: v.len() as u64,
                last_modified_ms: 1,
            })
            .collect())
    }
    async fn delete(&self, _: &str, key: &str) -> shardline_core::Result<()> {
        panic!("the query engine deleted {key}")
    }
    async fn get_range(
        &self,
        _bucket: &str,
        key: &str,
        range: ByteRange,
    ) -> shardline_core::Result<Option<RangedObject>> {
        self.note(format!("range {key}"));
        let Some(body) = self.objects.get(key) else {
            return Ok(None);
        };
        let r = range.resolve(body.len() as u64)?;
        Ok(Some(RangedObject {
            bytes: body.slice(r.start as usize..r.end as usize),
            start: r.start,
            size: body.len() as u64,
            last_modified_ms: 1,
        }))
    }
    async fn list_level(&self, bucket: &str, prefix: &str) -> shardline_core::Result<ObjectLevel> {
        self.note(format!("level {prefix}"));
        let listed = self
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta {
                key: k.clone(),
                size: v.len() as u64,
                last_modified_ms: 1,
            })
            .collect();
        let _ = bucket;
        Ok(ObjectLevel::from_listing(prefix, listed))
    }
}

/// Three days of rows written as files, and the same files as objects under `metrics/`.
fn fixture() -> (tempfile::TempDir, Arc<Recorded>) {
    let dir = tempfile::tempdir().expect("tempdir");
    for day in 0..3u32 {
        let rows: Vec<Row> = (0..40i64)
            .map(|i| Row {
                metric_type: if (i / 4) % 2 == 0 {
                    "cpu_utilization"
                } else {
                    "memory_usage"
                },
                timestamp: 1_771_459_200 + i64::from(day) * 86_400 + i * 600,
                value: 10.0 + ((i * 7 + i64::from(day)) % 80) as f64 + 0.5,
                instance_id: format!("i-00000{}", i % 4),
            })
            .collect();
        write_file(
            dir.path(),
            (2026, 2, 19 + day),
            "shardId-000000000000-x",
            &rows,
        );
    }
    let mut objects = BTreeMap::new();
    for entry in walk(dir.path()) {
        let key = format!(
            "metrics/{}",
            entry
                .strip_prefix(dir.path())
                .expect("under root")
                .to_string_lossy()
        );
        objects.insert(key, Bytes::from(std::fs::read(&entry).expect("read")));
    }
    (
        dir,
        Arc::new(Recorded {
            objects,
            calls: Mutex::default(),
        }),
    )
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

async fn table(engine: &QueryEngine, sql: &str) -> String {
    format_batches(&engine.sql(sql).await.expect("query"), OutputFormat::Csv).expect("csv")
}

const SEED_Q1: &str = "SELECT instance_id, AVG(value) as avg_cpu, MAX(value) as max_cpu, \
    MIN(value) as min_cpu FROM infra_monitoring.metrics WHERE metric_type = 'cpu_utilization' \
    GROUP BY instance_id ORDER BY avg_cpu DESC;";
const SEED_Q2: &str = "SELECT from_unixtime(timestamp) as time, metric_type, AVG(value) as \
    avg_value FROM infra_monitoring.metrics GROUP BY timestamp, metric_type ORDER BY timestamp \
    DESC LIMIT 100;";

#[tokio::test]
async fn the_seed_queries_answer_the_same_over_the_port_as_over_the_directory() {
    let (dir, store) = fixture();
    let local = QueryEngine::new(dir.path()).expect("engine");
    let remote = QueryEngine::over_objects(store.clone(), BUCKET, "metrics").expect("engine");
    for q in [SEED_Q1, SEED_Q2] {
        let (a, b) = (table(&local, q).await, table(&remote, q).await);
        assert!(a.lines().count() > 3, "{a}");
        assert_eq!(a, b, "{q}");
    }
    let calls = store.calls();
    assert!(
        calls.iter().all(|c| !c.starts_with("get ")),
        "objects are read by ranges, never whole: {calls:?}"
    );
}

#[tokio::test]
async fn partitions_a_filter_excludes_are_not_listed_nor_read() {
    let (_dir, store) = fixture();
    let engine = QueryEngine::over_objects(store.clone(), BUCKET, "metrics").expect("engine");
    let rows = table(
        &engine,
        "SELECT count(*) AS n FROM metrics WHERE year = '2026' AND month = '02' AND day = '20'",
    )
    .await;
    assert_eq!(rows.lines().nth(1), Some("40"), "{rows}");
    let calls = store.calls();
    let day = "metrics/year=2026/month=02/day=20/";
    assert!(calls.iter().any(|c| c.contains("day=20")), "{calls:?}");
    for c in &calls {
        let (_, target) = c.split_once(' ').expect("call and target");
        assert!(
            target.starts_with(day) || day.starts_with(target),
            "a call outside the filtered partition: {c} (all: {calls:?})"
        );
    }
}
