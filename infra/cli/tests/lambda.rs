//! `shardline lambda invoke` and `shardline esm run`: the flow's data-collector in-process and
//! as its real bootstrap binary under the local Runtime API append alike; the mappings over
//! the embedded log deliver every record once into Parquet and the table, and a replay adds
//! nothing.

mod support;

use anyhow::{Context, Result};
use serde_json::Value;
use support::{Shardline, described_records, totals};

fn answer(out: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(out.trim()).with_context(|| format!("not JSON: {out}"))?;
    let body: Value = serde_json::from_str(v["body"].as_str().context("no body")?)?;
    anyhow::ensure!(v["statusCode"] == 200, "{v}");
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_collector_as_its_bootstrap_appends_as_the_in_process_function() -> Result<()> {
    let sh = Shardline::new()?;
    let event = sh.dir.path().join("event.json");
    std::fs::write(&event, r#"{"metric_type": "cpu_utilization"}"#)?;
    let event = event.display().to_string();
    let in_process = answer(&sh.ok(&["lambda", "invoke", "data-collector", "--event", &event])?)?;
    assert_eq!(in_process["metrics_count"], 8, "{in_process}");
    assert_eq!(described_records(&sh)?, 8);
    let binary = env!("CARGO_BIN_EXE_data-collector");
    let real = answer(&sh.ok(&[
        "lambda",
        "invoke",
        "data-collector",
        "--event",
        &event,
        "--binary",
        binary,
    ])?)?;
    assert_eq!(real["metrics_count"], in_process["metrics_count"]);
    assert_eq!(real["metric_type"], "cpu_utilization");
    assert_eq!(
        real["sequence_numbers"].as_array().map(Vec::len),
        Some(8),
        "every event appended"
    );
    assert_eq!(
        described_records(&sh)?,
        16,
        "the same effect: eight more records"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esm_run_delivers_every_record_once_and_a_replay_adds_no_row() -> Result<()> {
    let sh = Shardline::new()?;
    let event = sh.dir.path().join("event.json");
    std::fs::write(&event, "{}")?;
    let event = event.display().to_string();
    for _ in 0..3 {
        sh.ok(&["lambda", "invoke", "data-collector", "--event", &event])?;
    }
    let records = described_records(&sh)?;
    assert_eq!(records, 96, "3 collections of 8 instances x 4 metrics");
    let out: Value = serde_json::from_str(&sh.ok(&[
        "esm",
        "run",
        "--function",
        "s3-parquet",
        "--once",
        "--batch-size",
        "10",
    ])?)?;
    assert_eq!(out["counts"]["records_done"], records);
    sh.ok(&["esm", "run", "--function", "dynamodb", "--once"])?;
    let t = totals(&sh).await?;
    assert_eq!((t.parquet_rows, t.distinct_rows), (records, records));
    assert_eq!(t.table_items, records);
    // The mapping's checkpoints lost: it reads everything again; the sink adds nothing.
    std::fs::remove_dir_all(sh.data_dir().join("esm"))?;
    let out: Value = serde_json::from_str(&sh.ok(&[
        "esm",
        "run",
        "--function",
        "s3-parquet",
        "--once",
        "--batch-size",
        "25",
    ])?)?;
    assert_eq!(out["counts"]["records_done"], records);
    let t = totals(&sh).await?;
    assert_eq!((t.parquet_rows, t.distinct_rows), (records, records));
    // A flow task is not a stream consumer: one clear line.
    let bad = sh.run(&["esm", "run", "--function", "data-collector", "--once"])?;
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--function data-collector"), "{err}");
    Ok(())
}
