//! `shardline lambda invoke`, `shardline esm run` and `shardline lambda package`: the flow's
//! data-collector in-process and as its real bootstrap binary under the local Runtime API
//! append alike; the mappings over the embedded log deliver every record once into Parquet
//! and the table, and a replay adds nothing; a mapping reads the stream `shardline serve`
//! serves; the package holds every bootstrap where the deploy template looks for it.
//!
//! The package test zips the bootstraps the test build made (`--binaries`, no cargo run): the
//! sink functions' binaries are shardline-lambda's, built by `cargo test --workspace` (alone:
//! `cargo build -p shardline-lambda --bins` first).

mod support;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
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

fn count(sh: &Shardline, sql: &str) -> Result<u64> {
    let csv = sh.ok(&["query", sql, "--format", "csv"])?;
    csv.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("{sql}: {csv}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esm_run_reads_the_stream_shardline_serve_serves() -> Result<()> {
    let sh = Shardline::new()?;
    let event = sh.dir.path().join("event.json");
    std::fs::write(&event, "{}")?;
    let event = event.display().to_string();
    for _ in 0..2 {
        sh.ok(&["lambda", "invoke", "data-collector", "--event", &event])?;
    }
    let records = described_records(&sh)?;
    assert_eq!(records, 64, "2 collections of 8 instances x 4 metrics");
    let mut serve = sh.spawn(&["serve"])?;
    let file = sh.data_dir().join("kinesis-endpoint");
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && text.ends_with('\n')
        {
            break text.trim().to_string();
        }
        if !serve.is_running() || Instant::now() > deadline {
            bail!(
                "shardline serve announced no endpoint in {}",
                file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Another directory: its stream is the one serve serves, its sinks are embedded.
    let config = format!(
        "{}\n[backend]\nstream = \"aws\"\n\n[aws]\nregion = \"eu-west-1\"\nendpoint_url = \"{url}\"\n",
        support::TEST_TOML
    );
    let mut reader = Shardline::with_config(&config)?;
    reader.env = [
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out: Value = serde_json::from_str(&reader.ok(&[
        "esm",
        "run",
        "--function",
        "s3-parquet",
        "--once",
        "--batch-size",
        "20",
    ])?)?;
    assert_eq!(out["counts"]["records_done"], records, "{out}");
    assert!(
        !reader.data_dir().join("log").exists(),
        "the reader has no log of its own"
    );
    assert_eq!(
        count(&reader, "SELECT COUNT(*) AS n FROM metrics")?,
        records
    );
    assert_eq!(
        count(
            &reader,
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT shard_id, sequence_number FROM metrics)"
        )?,
        records
    );
    serve.kill()?;
    Ok(())
}

/// The one entry of a zip `shardline lambda package` wrote: its name, Unix mode, contents.
fn zip_entry(zip: &[u8]) -> Result<(String, u32, Vec<u8>)> {
    let u16_at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]);
    let eocd = zip.len().checked_sub(22).context("too short for a zip")?;
    anyhow::ensure!(u32_at(eocd) == 0x0605_4b50, "no end of central directory");
    anyhow::ensure!(u16_at(eocd + 10) == 1, "one entry");
    let central = u32_at(eocd + 16) as usize;
    anyhow::ensure!(
        u32_at(central) == 0x0201_4b50,
        "no central directory header"
    );
    anyhow::ensure!(u16_at(central + 10) == 0, "stored, not compressed");
    let size = u32_at(central + 20) as usize;
    let name_len = u16_at(central + 28);
    let mode = u32_at(central + 38) >> 16;
    let name = String::from_utf8(zip[central + 46..central + 46 + name_len].to_vec())?;
    let local = u32_at(central + 42) as usize;
    anyhow::ensure!(u32_at(local) == 0x0403_4b50, "no local file header");
    let data = local + 30 + u16_at(local + 26) + u16_at(local + 28);
    Ok((name, mode, zip[data..data + size].to_vec()))
}

#[test]
fn lambda_package_zips_every_bootstrap_where_the_template_looks() -> Result<()> {
    let sh = Shardline::new()?;
    let binaries = Path::new(env!("CARGO_BIN_EXE_data-collector"))
        .parent()
        .context("the binaries' directory")?;
    let deploy = sh.dir.path().join("deploy");
    let out = sh.ok(&[
        "lambda",
        "package",
        "--binaries",
        &binaries.display().to_string(),
        "--out",
        &deploy.join("build").display().to_string(),
    ])?;
    assert_eq!(out.lines().count(), 7, "one zip per function: {out}");
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/template.yaml"),
    )?;
    let uris: Vec<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("CodeUri:"))
        .map(str::trim)
        .collect();
    assert_eq!(uris.len(), 7, "{uris:?}");
    for uri in uris {
        // The template's CodeUri is relative to its folder, infra/deploy; the package's
        // default --out is infra/deploy/build.
        let zip = deploy.join(uri);
        let name = uri
            .strip_prefix("build/")
            .and_then(|n| n.strip_suffix(".zip"))
            .with_context(|| format!("CodeUri {uri} is not build/<function>.zip"))?;
        let bytes = std::fs::read(&zip).with_context(|| format!("{uri}: {}", zip.display()))?;
        let (entry, mode, data) = zip_entry(&bytes).with_context(|| uri.to_string())?;
        assert_eq!(entry, "bootstrap", "{uri}");
        assert_eq!(mode, 0o100_755, "{uri}: a regular file, executable");
        assert!(
            data == std::fs::read(binaries.join(name))?,
            "{uri} holds the {name} binary"
        );
        assert_eq!(&data[..4], b"\x7fELF", "{uri}");
    }
    Ok(())
}
