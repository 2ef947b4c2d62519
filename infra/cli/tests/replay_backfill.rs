//! `shardline replay` and `shardline backfill`, through the binary as a user runs them.
//!
//! - A replay from TRIM_HORIZON into a new prefix equals the live Parquet output row for row,
//!   and leaves the consumer's checkpoints where they were; replaying a middle range twice
//!   into the live targets changes nothing.
//! - A backfill of the seed's raw-metrics files (fixtures in the seed's exact format, written
//!   by its data-collector's code) lands in the year/month/day partitions of the events' own
//!   times; a re-run appends nothing; the corrupt line is a dead letter naming its file and
//!   line; a run killed between an append and its ledger entry is completed without
//!   duplicates.
//! - Backfilled events older than the consumers' `event_time.max_age` land in Parquet, while
//!   the same event put without the backfill marker is a `clock_skew` dead letter.

mod running;
mod support;

use anyhow::{Context, Result};
use running::quiet_toml;
use std::path::{Path, PathBuf};
use support::{Shardline, TEST_TOML};

fn csv_rows(text: &str) -> Vec<String> {
    text.lines().skip(1).map(str::to_string).collect()
}

const ROWS_SQL: &str = "SELECT shard_id, sequence_number, metric_id, metric_type, timestamp, \
                        value, instance_id, region, collected_at, event_time, unit FROM metrics \
                        ORDER BY shard_id, sequence_number";

/// Every row of the Parquet projection under `root`, sorted, as CSV lines.
async fn rows_under(root: &Path) -> Result<Vec<String>> {
    let engine = shardline_query::QueryEngine::new(root)?;
    let batches = engine.sql(ROWS_SQL).await?;
    let text = shardline_query::format_batches(&batches, shardline_query::OutputFormat::Csv)?;
    Ok(csv_rows(&text))
}

fn parquet_names(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p.strip_prefix(root)?.display().to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn bucket(sh: &Shardline) -> PathBuf {
    sh.data_dir()
        .join("s3")
        .join("infra-monitoring-pipeline-data")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_parquet_side_by_side_and_a_middle_range_twice_changes_nothing()
-> Result<()> {
    let sh = Shardline::with_config(TEST_TOML)?;
    for _ in 0..3 {
        sh.ok(&["up", "--once"])?;
    }
    let live = rows_under(&bucket(&sh).join("metrics")).await?;
    assert_eq!(live.len(), 96, "3 collections of 8 instances x 4 metrics");
    let checkpoints = sh.ok(&[
        "checkpoints",
        "list",
        "--consumer",
        "s3-parquet",
        "--format",
        "json",
    ])?;

    let out = sh.ok(&[
        "replay",
        "--consumer",
        "s3-parquet",
        "--from",
        "TRIM_HORIZON",
        "--into-prefix",
        "rebuilt",
    ])?;
    let summary: Vec<&str> = out
        .lines()
        .nth(1)
        .context("summary row")?
        .split_whitespace()
        .collect();
    assert_eq!(summary[0], "s3-parquet");
    assert_eq!(summary[1], "96", "records read: {out}");
    assert!(summary[4].parse::<u64>()? >= 1, "objects written: {out}");
    let rebuilt = rows_under(&bucket(&sh).join("rebuilt")).await?;
    assert_eq!(
        rebuilt, live,
        "the rebuilt projection equals the live one row for row"
    );
    assert_eq!(
        sh.ok(&[
            "checkpoints",
            "list",
            "--consumer",
            "s3-parquet",
            "--format",
            "json"
        ])?,
        checkpoints,
        "the live checkpoints are untouched"
    );

    // A middle range of arrival times, replayed twice into the live targets.
    let arrivals: Vec<String> = sh
        .ok(&[
            "stream",
            "get",
            "metrics",
            "--shard",
            "shardId-000000000001",
        ])?
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .map(|v| v["arrival"].as_str().unwrap_or("").to_string())
        })
        .collect::<Result<_, _>>()?;
    assert!(arrivals.len() >= 6, "{arrivals:?}");
    let (from, to) = (
        &arrivals[arrivals.len() / 3],
        &arrivals[2 * arrivals.len() / 3],
    );
    let names = parquet_names(&bucket(&sh).join("metrics"))?;
    let items = sh.ok(&["table", "count"])?;
    for _ in 0..2 {
        let out = sh.ok(&[
            "replay",
            "--consumer",
            "s3-parquet",
            "--from",
            from,
            "--to",
            to,
        ])?;
        let read: u64 = out
            .lines()
            .nth(1)
            .context("summary")?
            .split_whitespace()
            .nth(1)
            .context("records")?
            .parse()?;
        assert!(read > 0 && read < 96, "a middle range: {out}");
        sh.ok(&[
            "replay",
            "--consumer",
            "dynamodb",
            "--from",
            from,
            "--to",
            to,
        ])?;
        sh.ok(&[
            "replay",
            "--consumer",
            "cloudwatch",
            "--from",
            from,
            "--to",
            to,
        ])?;
        assert_eq!(
            rows_under(&bucket(&sh).join("metrics")).await?,
            live,
            "no row added or lost"
        );
        assert_eq!(
            parquet_names(&bucket(&sh).join("metrics"))?,
            names,
            "no object added"
        );
        assert_eq!(sh.ok(&["table", "count"])?, items);
        assert_eq!(
            sh.ok(&[
                "checkpoints",
                "list",
                "--consumer",
                "s3-parquet",
                "--format",
                "json"
            ])?,
            checkpoints
        );
    }
    let samples = sh.ok(&[
        "query",
        "SELECT COUNT(*) AS n FROM metrics",
        "--format",
        "csv",
    ])?;
    assert_eq!(csv_rows(&samples), ["96"]);
    let bad = sh.run(&[
        "replay",
        "--consumer",
        "dynamodb",
        "--from",
        "TRIM_HORIZON",
        "--into-prefix",
        "x",
    ])?;
    assert!(
        String::from_utf8(bad.stderr)?.contains("--into-prefix applies to the Parquet consumer")
    );
    let bad = sh.run(&["replay", "--consumer", "nobody", "--from", "TRIM_HORIZON"])?;
    assert!(String::from_utf8(bad.stderr)?.contains("no consumer `nobody`"));
    Ok(())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/raw-metrics")
}

#[test]
fn backfill_of_the_seeds_raw_metrics_lands_by_event_time_once() -> Result<()> {
    let sh = Shardline::with_config(&quiet_toml())?;
    let from = fixtures().canonicalize()?;
    let from = from.to_str().context("UTF-8 path")?;
    let first = sh.run(&["backfill", "--from", from])?;
    let out = String::from_utf8(first.stdout)?;
    let err = String::from_utf8(first.stderr)?;
    assert!(first.status.success(), "{err}");
    let s = support::summary(&out)?;
    assert_eq!(s["FILES"], "16", "{out}");
    assert_eq!(s["LINES"], "49");
    assert_eq!(s["APPENDED"], "48");
    assert_eq!(s["DEAD"], "1");
    sh.ok(&["up", "--once"])?;
    let by_day = sh.ok(&[
        "query",
        "SELECT year, month, day, timestamp, COUNT(*) AS n FROM metrics \
         GROUP BY year, month, day, timestamp ORDER BY timestamp",
        "--format",
        "csv",
    ])?;
    assert_eq!(
        csv_rows(&by_day),
        [
            "2026,02,19,1771500309,12",
            "2026,02,19,1771511109,12",
            "2026,02,20,1771586709,12",
            "2026,03,01,1772330000,12",
        ],
        "each event in the partition of its own day"
    );
    let value = sh.ok(&[
        "query",
        "SELECT value FROM metrics WHERE metric_type = 'cpu_utilization' AND instance_id = 'i-573923' AND timestamp = 1771500309",
        "--format",
        "csv",
    ])?;
    assert_eq!(
        csv_rows(&value),
        ["42.67"],
        "the seed's decimal string value"
    );

    let again = sh.ok(&["backfill", "--from", from])?;
    let s = support::summary(&again)?;
    assert_eq!(s["APPENDED"], "0", "a re-run appends nothing: {again}");
    assert_eq!(s["ALREADY"], "49");
    let described: serde_json::Value =
        serde_json::from_str(&sh.ok(&["stream", "describe", "metrics"])?)?;
    let records: u64 = described["shard_stats"]
        .as_array()
        .context("shard_stats")?
        .iter()
        .filter_map(|s| s["records"].as_u64())
        .sum();
    assert_eq!(records, 48);

    let dlq = sh.ok(&["dlq", "list", "--consumer", "backfill", "--format", "json"])?;
    let letters: Vec<serde_json::Value> = dlq
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(letters.len(), 1, "{dlq}");
    let reason = letters[0]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("raw-metrics/2026/02/20/metrics-memory_usage-1771586709.json line 2:"),
        "{reason}"
    );
    Ok(())
}

#[test]
fn a_backfill_older_than_max_age_lands_in_parquet_not_in_the_dead_letters() -> Result<()> {
    // The fixtures are from February and March 2026: months older than 30 days.
    let toml = format!(
        "{}\n[consumers.event_time]\nmax_age = \"30d\"\n",
        quiet_toml()
    );
    let sh = Shardline::with_config(&toml)?;
    let from = fixtures().canonicalize()?;
    let first = sh.run(&["backfill", "--from", from.to_str().context("UTF-8 path")?])?;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        support::summary(&String::from_utf8(first.stdout)?)?["APPENDED"],
        "48"
    );
    // The control: one of those events put as it is, without the backfill marker.
    let plain =
        std::fs::read_to_string(fixtures().join("2026/02/19/metrics-disk_usage-1771500309.json"))?;
    let plain = plain.lines().next().context("a fixture line")?;
    sh.run_with_stdin(
        &["stream", "put", "metrics", "--key-field", "instance_id"],
        Some(&format!("{plain}\n")),
    )?;
    sh.ok(&["up", "--once"])?;

    let count = sh.ok(&[
        "query",
        "SELECT COUNT(*) AS n FROM metrics",
        "--format",
        "csv",
    ])?;
    assert_eq!(
        csv_rows(&count),
        ["48"],
        "every backfilled event in Parquet"
    );
    let dlq = sh.ok(&[
        "dlq",
        "list",
        "--consumer",
        "s3-parquet",
        "--format",
        "json",
    ])?;
    let letters: Vec<serde_json::Value> = dlq
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(letters.len(), 1, "only the unmarked event: {dlq}");
    let reason = letters[0]["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("clock_skew"), "{reason}");
    assert!(reason.contains("max_age"), "{reason}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_between_append_and_ledger_resumes_without_duplicates() -> Result<()> {
    use shardline::commands::backfill::ledger::{Entry, Ledger, Pending};
    let sh = Shardline::with_config(&quiet_toml())?;
    let file = sh.dir.path().join("in.jsonl");
    let fixture = fixtures().join("2026/02/19/metrics-disk_usage-1771500309.json");
    let lines: Vec<String> = std::fs::read_to_string(&fixture)?
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3);
    // A run that appended lines 1-2 of a file whose third line came later.
    std::fs::write(&file, format!("{}\n{}\n", lines[0], lines[1]))?;
    let id = file.canonicalize()?.display().to_string();
    let file_arg = id.clone();
    sh.ok(&["backfill", "--from", &file_arg])?;
    std::fs::write(&file, format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]))?;
    // As if killed after appending lines 1-3 were attempted but before the ledger moved: the
    // ledger says nothing is done and lines 1-3 are pending; the stream holds lines 1-2.
    {
        let p = shardline::pipeline::Pipeline::open(sh.config()?).await?;
        let ledger = Ledger::new(p.backends.state.as_ref(), "metrics");
        let entry = Entry {
            lines: 0,
            bytes: 0,
            sha256: String::new(),
            pending: Some(Pending {
                first_line: 1,
                last_line: 3,
                since_ms: shardline_core::time::now_ms() - 60_000,
            }),
        };
        ledger.put(&id, &entry).await?;
        p.close().await?;
    }
    let out = sh.ok(&["backfill", "--from", &file_arg])?;
    let s = support::summary(&out)?;
    assert_eq!(s["APPENDED"], "1", "only the line the stream lacked: {out}");
    assert_eq!(s["ALREADY"], "2", "{out}");
    sh.ok(&["up", "--once"])?;
    assert_eq!(sh.ok(&["table", "count"])?.trim(), "3");
    let n = sh.ok(&[
        "query",
        "SELECT COUNT(*) AS n FROM metrics",
        "--format",
        "csv",
    ])?;
    assert_eq!(csv_rows(&n), ["3"], "no line twice");
    Ok(())
}
