//! The Parquet output read by pyarrow and DuckDB: same rows, the documented types, the same
//! per-type counts and value sum as the Rust writer; the seed's Athena queries run in DuckDB
//! and agree with the query engine.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use shardline_core::MetricType;
use shardline_tests::{TestEnv, drain_all, parquet_root, read_parquet_dir};
use std::collections::BTreeMap;

const SCRIPT: &str = r#"
import json, sys
import duckdb
import pyarrow.compute as pc
import pyarrow.dataset as ds

root = sys.argv[1]
t = ds.dataset(root, format="parquet", partitioning="hive").to_table()
per_type = {}
for m in t.column("metric_type").to_pylist():
    per_type[m] = per_type.get(m, 0) + 1
out = {"pyarrow": {
    "rows": t.num_rows,
    "types": {f.name: str(f.type) for f in t.schema},
    "per_type": per_type,
    "sum_value": pc.sum(t.column("value")).as_py(),
}}
con = duckdb.connect()
con.execute("CREATE MACRO from_unixtime(x) AS to_timestamp(x)")
con.execute(f"CREATE VIEW metrics AS SELECT * FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)")
out["duckdb"] = {
    "rows": con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0],
    "types": {r[0]: r[1] for r in con.execute("DESCRIBE metrics").fetchall()},
    "per_type": dict(con.execute("SELECT metric_type, COUNT(*) FROM metrics GROUP BY 1").fetchall()),
    "sum_value": con.execute("SELECT SUM(value) FROM metrics").fetchone()[0],
    "q1": [list(r) for r in con.execute("""
        SELECT
          instance_id,
          AVG(value) as avg_cpu,
          MAX(value) as max_cpu,
          MIN(value) as min_cpu
        FROM metrics
        WHERE metric_type = 'cpu_utilization'
        GROUP BY instance_id
        ORDER BY avg_cpu DESC""").fetchall()],
    "q2": [[str(r[0]), r[1], r[2]] for r in con.execute("""
        SELECT
          from_unixtime(timestamp) as time,
          metric_type,
          AVG(value) as avg_value
        FROM metrics
        GROUP BY timestamp, metric_type
        ORDER BY timestamp DESC
        LIMIT 100""").fetchall()],
}
print(json.dumps(out))
"#;

/// The Python interpreter with pyarrow and duckdb, or `None` (skip) outside CI.
fn python() -> Result<Option<String>> {
    match std::env::var("SHARDLINE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Ok(Some(p)),
        _ if std::env::var_os("CI").is_some() => bail!(
            "SHARDLINE_TEST_PYTHON is not set: run scripts/test-all.sh, which creates .venv \
             with pyarrow and duckdb and sets it"
        ),
        _ => {
            eprintln!(
                "\n!!!! SKIPPED pyarrow/DuckDB interop test: SHARDLINE_TEST_PYTHON is not set \
                 (run scripts/test-all.sh to run it) !!!!\n"
            );
            Ok(None)
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_and_duckdb_agree_with_the_writer() -> Result<()> {
    let Some(python) = python()? else {
        return Ok(());
    };
    let env = TestEnv::new("")?;
    let p = env.open().await?;
    for _ in 0..3 {
        p.collect_once(None).await?;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drain_all(&p).await?;
    let root = parquet_root(&p);
    let rows = read_parquet_dir(&root)?;
    let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        *per_type.entry(r.metric_type.clone()).or_default() += 1;
    }
    let sum: f64 = rows.iter().map(|r| r.value).sum();

    let run = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&root)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .with_context(|| format!("{python} did not finish within 60 s"))?
        .with_context(|| format!("cannot run {python}"))?;
    assert!(
        out.status.success(),
        "{python} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)?;

    for reader in ["pyarrow", "duckdb"] {
        let r = &v[reader];
        assert_eq!(r["rows"], rows.len(), "{reader} rows");
        let theirs: BTreeMap<String, u64> = serde_json::from_value(r["per_type"].clone())?;
        assert_eq!(theirs, per_type, "{reader} per-type counts");
        let s = r["sum_value"].as_f64().context("sum_value")?;
        assert!(close(s, sum), "{reader} sum of value {s} vs {sum}");
    }
    let expected_arrow = [
        ("timestamp", "int64"),
        ("value", "double"),
        ("event_time", "timestamp[ms, tz=UTC]"),
        ("arrival_time", "timestamp[ms, tz=UTC]"),
    ];
    let expected_duck = [
        ("timestamp", "BIGINT"),
        ("value", "DOUBLE"),
        ("event_time", "TIMESTAMP WITH TIME ZONE"),
        ("arrival_time", "TIMESTAMP WITH TIME ZONE"),
    ];
    for (col, ty) in expected_arrow {
        assert_eq!(v["pyarrow"]["types"][col], ty, "pyarrow type of {col}");
    }
    for (col, ty) in expected_duck {
        assert_eq!(v["duckdb"]["types"][col], ty, "DuckDB type of {col}");
    }
    for col in [
        "metric_id",
        "metric_type",
        "instance_id",
        "region",
        "collected_at",
        "unit",
        "shard_id",
        "sequence_number",
    ] {
        let a = v["pyarrow"]["types"][col].as_str().unwrap_or_default();
        assert!(
            a == "string" || a == "large_string",
            "pyarrow type of {col}: {a}"
        );
        assert_eq!(v["duckdb"]["types"][col], "VARCHAR", "DuckDB type of {col}");
    }

    // Seed Q1 in DuckDB vs the query engine's per-instance summary.
    let engine = shardline_query::QueryEngine::new(&root)?;
    let ours = engine
        .metric_summary(MetricType::CpuUtilization, None, None)
        .await?;
    let q1 = v["duckdb"]["q1"].as_array().context("q1")?;
    assert_eq!(q1.len(), 8, "one row per instance");
    assert_eq!(q1.len(), ours.len());
    for (d, o) in q1.iter().zip(&ours) {
        assert_eq!(d[0], o.instance_id.as_str());
        for (i, ours) in [(1, o.avg), (2, o.max), (3, o.min)] {
            let theirs = d[i].as_f64().context("q1 number")?;
            assert!(
                close(theirs, ours),
                "{}: column {i}: {theirs} vs {ours}",
                o.instance_id
            );
        }
    }
    // Seed Q2: (metric_type, avg) groups agree with the query engine running the same SQL.
    let q2 = v["duckdb"]["q2"].as_array().context("q2")?;
    let batches = engine
        .sql(
            "SELECT from_unixtime(timestamp) as time, metric_type, AVG(value) as avg_value \
             FROM infra_monitoring.metrics GROUP BY timestamp, metric_type \
             ORDER BY timestamp DESC LIMIT 100",
        )
        .await?;
    let engine_rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(q2.len(), engine_rows, "Q2 rows");
    assert!(!q2.is_empty());
    let mut duck: Vec<(String, i64)> = q2
        .iter()
        .map(|r| {
            (
                r[1].as_str().unwrap_or_default().to_string(),
                (r[2].as_f64().unwrap_or(f64::NAN) * 1e6).round() as i64,
            )
        })
        .collect();
    let mut mine = Vec::new();
    for b in &batches {
        let mt = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Utf8)?;
        let mt = mt
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .context("metric_type")?;
        let avg = b
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .context("avg_value")?;
        for i in 0..b.num_rows() {
            mine.push((mt.value(i).to_string(), (avg.value(i) * 1e6).round() as i64));
        }
    }
    duck.sort();
    mine.sort();
    assert_eq!(duck, mine, "Q2 groups");
    p.close().await?;
    Ok(())
}
