//! The seed's Athena queries, partition pruning and formats over real Parquet files.

mod support;

use std::collections::BTreeMap;

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, TimestampSecondType};
use shardline_core::MetricType;
use shardline_query::{OutputFormat, QueryEngine, format_batches};
use support::{Row, write_file};

const Q1: &str = "SELECT 
  instance_id,
  AVG(value) as avg_cpu,
  MAX(value) as max_cpu,
  MIN(value) as min_cpu
FROM infra_monitoring.metrics
WHERE metric_type = 'cpu_utilization'
GROUP BY instance_id
ORDER BY avg_cpu DESC;";

const Q2: &str = "SELECT 
  from_unixtime(timestamp) as time,
  metric_type,
  AVG(value) as avg_value
FROM infra_monitoring.metrics
GROUP BY timestamp, metric_type
ORDER BY timestamp DESC
LIMIT 100;";

/// 2026-02-19T00:00:00Z.
const DAY19: i64 = 1_771_459_200;
const TYPES: [&str; 4] = [
    "cpu_utilization",
    "memory_usage",
    "disk_usage",
    "network_traffic",
];

/// Three days × 5 instances × 4 types × 24 hourly samples, two files per day.
fn fixture(root: &std::path::Path) -> Vec<Row> {
    let mut all = Vec::new();
    for day in 0..3i64 {
        let mut rows = Vec::new();
        for hour in 0..24i64 {
            for inst in 0..5i64 {
                for (t, ty) in TYPES.iter().enumerate() {
                    let ts = DAY19 + day * 86_400 + hour * 3600;
                    let value =
                        20.0 + ((inst * 7 + hour * 3 + t as i64 * 11 + day * 5) % 70) as f64 + 0.25;
                    rows.push(Row {
                        metric_type: ty,
                        timestamp: ts,
                        value,
                        instance_id: format!("i-10000{inst}"),
                    });
                }
            }
        }
        let (a, b) = rows.split_at(rows.len() / 2);
        let date = (2026, 2, 19 + day as u32);
        write_file(root, date, "shardId-000000000000-a", a);
        write_file(root, date, "shardId-000000000001-b", b);
        all.extend(rows);
    }
    all
}

fn expected_q1(rows: &[Row]) -> Vec<(String, f64, f64, f64)> {
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric_type == "cpu_utilization") {
        by.entry(r.instance_id.clone()).or_default().push(r.value);
    }
    let mut out: Vec<_> = by
        .into_iter()
        .map(|(id, v)| {
            let avg = v.iter().sum::<f64>() / v.len() as f64;
            let max = v.iter().copied().fold(f64::MIN, f64::max);
            let min = v.iter().copied().fold(f64::MAX, f64::min);
            (id, avg, max, min)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

#[tokio::test]
async fn seed_query_one_runs_unchanged_and_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = fixture(dir.path());
    let engine = QueryEngine::new(dir.path()).expect("engine");
    let batches = engine.sql(Q1).await.expect("Q1");
    let expected = expected_q1(&rows);
    let mut got = Vec::new();
    for b in &batches {
        let ids =
            arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).expect("ids");
        let ids = ids.as_string::<i32>();
        let f = |i: usize| b.column(i).as_primitive::<Float64Type>().clone();
        let (avg, max, min) = (f(1), f(2), f(3));
        for r in 0..b.num_rows() {
            got.push((
                ids.value(r).to_string(),
                avg.value(r),
                max.value(r),
                min.value(r),
            ));
        }
    }
    assert_eq!(got.len(), 5);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.0, e.0);
        assert!((g.1 - e.1).abs() < 1e-9, "{g:?} vs {e:?}");
        assert_eq!((g.2, g.3), (e.2, e.3));
    }
    // The short name reads the same table.
    let n = engine
        .sql("SELECT count(*) AS n FROM metrics")
        .await
        .expect("count");
    let n = n[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0);
    assert_eq!(n as usize, rows.len());

    // metric_summary is the same aggregate, with counts.
    let summary = engine
        .metric_summary(MetricType::CpuUtilization, None, None)
        .await
        .expect("summary");
    assert_eq!(summary.len(), 5);
    assert_eq!(summary[0].instance_id, expected[0].0);
    assert_eq!(summary[0].samples, 72);
    assert!((summary[0].avg - expected[0].1).abs() < 1e-9);
}

#[tokio::test]
async fn seed_query_two_runs_unchanged_with_from_unixtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = fixture(dir.path());
    let engine = QueryEngine::new(dir.path()).expect("engine");
    let batches = engine.sql(Q2).await.expect("Q2");
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(
        total, 100,
        "3 days × 24 hours × 4 types = 288 groups, limited to 100"
    );
    let first = &batches[0];
    let time = first.column(0).as_primitive::<TimestampSecondType>();
    let last_ts = rows.iter().map(|r| r.timestamp).max().expect("rows");
    assert_eq!(
        time.value(0),
        last_ts,
        "from_unixtime gives the epoch second as a timestamp"
    );
    let ty =
        arrow::compute::cast(first.column(1), &arrow::datatypes::DataType::Utf8).expect("cast");
    let ty = ty.as_string::<i32>().value(0).to_string();
    let want: Vec<f64> = rows
        .iter()
        .filter(|r| r.timestamp == last_ts && r.metric_type == ty)
        .map(|r| r.value)
        .collect();
    let avg = first.column(2).as_primitive::<Float64Type>().value(0);
    assert!((avg - want.iter().sum::<f64>() / want.len() as f64).abs() < 1e-9);
    let table = format_batches(&batches, OutputFormat::Table).expect("table");
    assert!(
        table.contains("2026-02-21T23:00:00"),
        "{}",
        &table[..400.min(table.len())]
    );
}

#[tokio::test]
async fn partition_filters_prune_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = fixture(dir.path());
    let engine = QueryEngine::new(dir.path()).expect("engine");
    for q in [
        "SELECT instance_id, value FROM infra_monitoring.metrics WHERE year = 2026 AND month = 2 AND day = 20",
        "SELECT instance_id, value FROM metrics WHERE year = '2026' AND month = '02' AND day = '20'",
        // The day-range form metric_summary uses.
        "SELECT instance_id, value FROM metrics WHERE CAST(year AS BIGINT) * 10000 \
         + CAST(month AS BIGINT) * 100 + CAST(day AS BIGINT) BETWEEN 20260220 AND 20260220",
    ] {
        let plan = engine.explain(q).await.expect("plan");
        assert!(plan.contains("day=20/"), "{plan}");
        assert!(
            !plan.contains("day=19/") && !plan.contains("day=21/"),
            "{plan}"
        );
        let got: usize = engine
            .sql(q)
            .await
            .expect("run")
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(got, rows.len() / 3);
    }
    // Time-bounded summaries read only the days in range: day 20, 06:00 to 12:00.
    let from = (DAY19 + 86_400 + 6 * 3600) * 1000;
    let to = (DAY19 + 86_400 + 12 * 3600) * 1000;
    let s = engine
        .metric_summary(MetricType::MemoryUsage, Some(from), Some(to))
        .await
        .expect("summary");
    assert_eq!(s.len(), 5);
    assert!(s.iter().all(|i| i.samples == 6), "{s:?}");
    let want: Vec<f64> = rows
        .iter()
        .filter(|r| {
            r.metric_type == "memory_usage"
                && r.instance_id == s[0].instance_id
                && r.timestamp * 1000 >= from
                && r.timestamp * 1000 < to
        })
        .map(|r| r.value)
        .collect();
    assert!((s[0].avg - want.iter().sum::<f64>() / 6.0).abs() < 1e-9);
}

#[tokio::test]
async fn missing_and_empty_roots_are_empty_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    for root in [dir.path().join("not-yet-written"), dir.path().to_path_buf()] {
        let engine = QueryEngine::new(&root).expect("engine");
        for q in [Q1, Q2] {
            let rows: usize = engine
                .sql(q)
                .await
                .expect("query")
                .iter()
                .map(|b| b.num_rows())
                .sum();
            assert_eq!(rows, 0);
        }
        let s = engine
            .metric_summary(MetricType::DiskUsage, None, None)
            .await
            .expect("summary");
        assert!(s.is_empty());
    }
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    let err = QueryEngine::new(&file).expect_err("a file is not a table root");
    assert!(err.to_string().contains("plain-file"), "{err}");
}

#[tokio::test]
async fn formats_and_errors_are_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let engine = QueryEngine::new(dir.path()).expect("engine");
    let batches = engine
        .sql("SELECT instance_id, value FROM metrics WHERE day = 19 ORDER BY instance_id, value LIMIT 3")
        .await
        .expect("query");
    let json = format_batches(&batches, OutputFormat::Json).expect("json");
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("{\"instance_id\":\"i-100000\",\"value\":"),
        "{json}"
    );
    let csv = format_batches(&batches, OutputFormat::Csv).expect("csv");
    assert_eq!(csv.lines().next(), Some("instance_id,value"));
    assert_eq!(csv.lines().count(), 4);

    let err = engine
        .sql("SELECT nope FROM metrics")
        .await
        .expect_err("unknown column");
    let msg = err.to_string();
    assert!(
        msg.contains("nope") && msg.contains("SELECT nope FROM metrics"),
        "{msg}"
    );
    assert!("xml".parse::<OutputFormat>().is_err());
}

#[tokio::test]
async fn files_written_after_a_query_are_seen_by_the_same_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("metrics");
    let engine = QueryEngine::new(&root).expect("engine");
    let count = |engine: QueryEngine| async move {
        let b = engine
            .sql("SELECT count(*) AS n FROM infra_monitoring.metrics")
            .await
            .expect("count");
        b[0].column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0)
    };
    // Before the first object exists, the table is empty.
    assert_eq!(count(engine.clone()).await, 0);
    let rows = fixture(&root);
    let day19 = (rows.len() / 3) as i64;
    assert_eq!(count(engine.clone()).await, 3 * day19);
    // Another object in an existing partition, then a new partition.
    let more: Vec<Row> = rows[..10].to_vec();
    write_file(&root, (2026, 2, 21), "shardId-000000000002-c", &more);
    assert_eq!(count(engine.clone()).await, 3 * day19 + 10);
    write_file(&root, (2026, 2, 22), "shardId-000000000003-d", &more);
    assert_eq!(count(engine.clone()).await, 3 * day19 + 20);
    // Q1 over the same engine sees them too.
    let q1: usize = engine
        .sql(Q1)
        .await
        .expect("Q1")
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(q1, 5);
}

/// Queries are read-only unless writes are allowed: whatever writes a file or changes the
/// session is refused before it runs, wherever it sits in the statement.
#[tokio::test]
async fn statements_that_write_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("metrics");
    fixture(&root);
    let engine = QueryEngine::new(&root).expect("engine");
    let out = dir.path().join("copied.csv");
    let copy = format!(
        "COPY (SELECT instance_id FROM metrics) TO '{}' STORED AS CSV",
        out.display()
    );
    let refused = [
        copy.clone(),
        format!("EXPLAIN ANALYZE {copy}"),
        "CREATE TABLE t AS SELECT * FROM metrics".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
        format!(
            "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '{}'",
            dir.path().join("e.csv").display()
        ),
        "INSERT INTO metrics SELECT * FROM metrics".to_string(),
        "DROP TABLE metrics".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ];
    for sql in &refused {
        let err = engine.sql(sql).await.expect_err(sql);
        assert!(
            matches!(err, shardline_query::QueryError::ReadOnly { .. }),
            "{sql}: {err}"
        );
    }
    assert!(!out.exists(), "nothing was written");
    assert!(engine.sql("SELECT COUNT(*) FROM metrics").await.is_ok());
    for sql in [
        "SELECT COUNT(*) FROM infra_monitoring.metrics",
        "EXPLAIN SELECT * FROM metrics WHERE day = '19'",
        "SHOW TABLES",
        "SHOW COLUMNS FROM metrics",
        "DESCRIBE metrics",
    ] {
        let batches = engine
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(
            batches.iter().map(|b| b.num_rows()).sum::<usize>() > 0,
            "{sql}"
        );
    }
    engine
        .sql_with(&copy, shardline_query::Access::ReadWrite)
        .await
        .expect("allowed");
    assert!(out.exists(), "COPY wrote its file when allowed");
}
