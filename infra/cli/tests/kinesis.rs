//! `shardline serve` and `up`'s endpoint driven by the clients people use: boto3, the AWS CLI,
//! raw CBOR (cbor2) — Python from the test venv (`scripts/test-all.sh` creates it and sets
//! `SHARDLINE_TEST_PYTHON`) — plus kill -9 under load and resharding while `up` runs.

mod support;

use anyhow::{Context, Result, bail};
use shardline_core::ports::Stream;
use shardline_core::stream::{HashKeyRange, ShardDescription, ShardId, StartingPosition};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Running, Shardline};

/// The venv's Python: required under CI (scripts/test-all.sh sets it), else the test is
/// skipped loudly.
fn python() -> Result<Option<PathBuf>> {
    match std::env::var("SHARDLINE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Ok(Some(PathBuf::from(p))),
        _ if std::env::var_os("CI").is_some() => bail!(
            "SHARDLINE_TEST_PYTHON is not set: run scripts/test-all.sh, which creates .venv \
             with boto3, awscli and cbor2 and sets it"
        ),
        _ => {
            eprintln!(
                "\n!!!! SKIPPED Kinesis client test: SHARDLINE_TEST_PYTHON is not set (run \
                 scripts/test-all.sh to run it) !!!!\n"
            );
            Ok(None)
        }
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python")
        .join(name)
}

/// Waits (bounded) for the endpoint file a serving process writes; returns the URL.
fn endpoint(sh: &Shardline, child: &mut Running) -> Result<String> {
    let file = sh.data_dir().join("kinesis-endpoint");
    let _ = std::fs::remove_file(&file);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&file)
            && text.ends_with('\n')
        {
            return Ok(text.trim().to_string());
        }
        if !child.is_running() {
            bail!("the serving process exited before announcing its endpoint");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("no endpoint announced in {} within 30 s", file.display())
}

/// Starts `shardline serve` and returns it with its URL.
fn serve(sh: &Shardline) -> Result<(Running, String)> {
    let _ = std::fs::remove_file(sh.data_dir().join("kinesis-endpoint"));
    let mut child = sh.spawn(&["serve"])?;
    let url = endpoint(sh, &mut child)?;
    Ok((child, url))
}

/// Runs a Python script to completion (bounded), failing with its output if it fails.
fn run_python(py: &Path, args: &[&str]) -> Result<String> {
    let out = support::run_bounded(Command::new(py).args(args), Duration::from_secs(120))?;
    if !out.status.success() {
        bail!(
            "{args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn boto3_drives_serve_through_every_action() -> Result<()> {
    let Some(py) = python()? else { return Ok(()) };
    let sh = Shardline::new()?;
    let (_serve, url) = serve(&sh)?;
    let out = run_python(
        &py,
        &[script("kinesis_boto3.py").to_str().unwrap_or(""), &url],
    )?;
    let summary: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(summary["records"], 801, "{out}");
    Ok(())
}

#[test]
fn raw_cbor_answers_equal_the_json_ones() -> Result<()> {
    let Some(py) = python()? else { return Ok(()) };
    let sh = Shardline::new()?;
    let (_serve, url) = serve(&sh)?;
    let out = run_python(
        &py,
        &[script("kinesis_cbor.py").to_str().unwrap_or(""), &url],
    )?;
    assert!(out.contains("\"records\": 50"), "{out}");
    Ok(())
}

#[test]
fn the_aws_cli_creates_puts_and_gets() -> Result<()> {
    let Some(py) = python()? else { return Ok(()) };
    let aws = py.with_file_name("aws");
    if !aws.exists() {
        bail!(
            "{} is missing: scripts/test-all.sh installs awscli into .venv",
            aws.display()
        );
    }
    let sh = Shardline::new()?;
    let (_serve, url) = serve(&sh)?;
    let cli = |args: &[&str]| -> Result<serde_json::Value> {
        let mut cmd = Command::new(&aws);
        cmd.args(["--endpoint-url", &url, "--output", "json", "kinesis"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE");
        let out = support::run_bounded(&mut cmd, Duration::from_secs(60))?;
        if !out.status.success() {
            bail!("aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    };
    cli(&[
        "create-stream",
        "--stream-name",
        "cli",
        "--shard-count",
        "1",
    ])?;
    // awscli v1 sends --data as given (it base64-encodes the text once more on the wire).
    let put = cli(&[
        "put-record",
        "--stream-name",
        "cli",
        "--partition-key",
        "k",
        "--data",
        "hello from the cli",
    ])?;
    assert_eq!(put["ShardId"], "shardId-000000000000");
    let it = cli(&[
        "get-shard-iterator",
        "--stream-name",
        "cli",
        "--shard-id",
        "shardId-000000000000",
        "--shard-iterator-type",
        "TRIM_HORIZON",
    ])?;
    let it = it["ShardIterator"]
        .as_str()
        .context("iterator")?
        .to_string();
    let got = cli(&["get-records", "--shard-iterator", &it])?;
    let records = got["Records"].as_array().context("records")?;
    assert_eq!(records.len(), 1, "{got}");
    assert_eq!(records[0]["SequenceNumber"], put["SequenceNumber"]);
    let names = cli(&["list-streams"])?;
    assert_eq!(names["StreamNames"], serde_json::json!(["cli"]));
    Ok(())
}

#[test]
fn botocore_signatures_verify_when_access_keys_are_configured() -> Result<()> {
    let Some(py) = python()? else { return Ok(()) };
    let sh = Shardline::with_config(&support::TEST_TOML.replace(
        "[serve]\nlisten = \"127.0.0.1:0\"",
        "[serve]\nlisten = \"127.0.0.1:0\"\n\
         access_keys = [{ id = \"AKIDSHARDLINETEST\", secret = \"s3cret/with+chars\" }]",
    ))?;
    let (_serve, url) = serve(&sh)?;
    let out = run_python(
        &py,
        &[
            script("kinesis_sigv4.py").to_str().unwrap_or(""),
            &url,
            "AKIDSHARDLINETEST",
            "s3cret/with+chars",
        ],
    )?;
    assert!(out.contains("\"verified\": true"), "{out}");
    Ok(())
}

/// The JSON report `shardline loadgen --json` wrote.
fn loadgen_report(sh: &Shardline, args: &[&str]) -> Result<serde_json::Value> {
    let file = sh.dir.path().join("report.json");
    let _ = std::fs::remove_file(&file);
    let mut all = vec!["loadgen"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", file.to_str().unwrap_or("")]);
    let out = sh.run_within(&all, None, Duration::from_secs(120))?;
    if !out.status.success() {
        bail!(
            "shardline {all:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ack latency p50"),
        "the summary names the latency: {stdout}"
    );
    Ok(serde_json::from_slice(&std::fs::read(&file)?)?)
}

#[test]
fn loadgen_reports_against_serve_and_against_the_embedded_log() -> Result<()> {
    let sh = Shardline::new()?;
    let (mut serve_proc, url) = serve(&sh)?;
    let common = [
        "--stream",
        "load",
        "--shards",
        "2",
        "--duration",
        "2s",
        "--batch",
        "50",
        "--callers",
        "2",
        "--record-size",
        "120",
    ];
    let mut args = common.to_vec();
    args.extend_from_slice(&[
        "--endpoint",
        &url,
        "--rate",
        "300,600",
        "--step",
        "1s",
        "--consumers",
        "1",
        "--read-back",
    ]);
    let r = loadgen_report(&sh, &args)?;
    let acked = r["acknowledged"].as_u64().context("acknowledged")?;
    assert!(acked > 0, "{r}");
    assert_eq!(r["sent"], acked, "{r}");
    assert_eq!(
        (r["throttled"].as_u64(), r["failed"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(r["target_rates"], serde_json::json!([300, 600]));
    assert_eq!(r["record_size"], 120);
    assert!(r["achieved_rate"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    for p in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert!(r["ack_latency"][p].is_number(), "{p} in {r}");
    }
    let consumers = r["consumers"].as_array().context("consumers")?;
    assert_eq!(consumers.len(), 1, "{r}");
    assert_eq!(consumers[0]["records"], acked, "{r}");
    assert_eq!(consumers[0]["caught_up"], true, "{r}");
    assert_eq!(
        consumers[0]["lag"]["count"], acked,
        "one lag per record: {r}"
    );
    assert_eq!(r["read_back"]["records"], acked, "{r}");
    serve_proc.kill()?;

    // The same workload straight into the data directory's log; then the log holds both runs.
    let mut args = common.to_vec();
    args.extend_from_slice(&["--embedded", "--rate", "500"]);
    let r2 = loadgen_report(&sh, &args)?;
    let acked2 = r2["acknowledged"].as_u64().context("acknowledged")?;
    assert!(acked2 > 0, "{r2}");
    assert_eq!(
        (r2["sent"].as_u64(), r2["failed"].as_u64()),
        (Some(acked2), Some(0))
    );
    let rt = tokio::runtime::Runtime::new()?;
    let (_, data) = rt.block_on(read_log(&sh.data_dir().join("log"), "load"))?;
    assert_eq!(
        data.len() as u64,
        acked + acked2,
        "every acknowledged record is in the log"
    );
    Ok(())
}

/// Every record of every shard of `stream`, read through the library (no process has the
/// directory open), and the shards.
async fn read_log(dir: &Path, stream: &str) -> Result<(Vec<ShardDescription>, Vec<String>)> {
    let log = shardline_log::Log::open(dir, shardline_log::LogOptions::default()).await?;
    let shards = log.list_shards(stream).await?;
    let mut data = Vec::new();
    for s in &shards {
        let mut it = log
            .get_shard_iterator(stream, s.shard_id, &StartingPosition::TrimHorizon)
            .await?;
        loop {
            let r = log.get_records(&it, 10_000).await?;
            let empty = r.records.is_empty();
            data.extend(
                r.records
                    .into_iter()
                    .map(|r| String::from_utf8_lossy(&r.data).into_owned()),
            );
            match r.next_iterator {
                Some(next) if !empty => it = next,
                _ => break,
            }
        }
    }
    log.close().await?;
    Ok((shards, data))
}

/// Open shards tile the hash-key space; every child's parents are closed; every closed shard's
/// children cover its range.
fn check_lineage(shards: &[ShardDescription]) -> Result<()> {
    let mut open: Vec<HashKeyRange> = shards
        .iter()
        .filter(|s| s.ending_sequence_number.is_none())
        .map(|s| s.hash_key_range)
        .collect();
    open.sort_by_key(|r| r.start);
    let tiles = open.first().map(|r| r.start) == Some(0)
        && open.last().map(|r| r.end) == Some(u128::MAX)
        && open
            .windows(2)
            .all(|w| w[0].end.checked_add(1) == Some(w[1].start));
    if !tiles {
        bail!("open shards do not tile the hash-key space: {shards:#?}");
    }
    let by_id: BTreeMap<ShardId, &ShardDescription> =
        shards.iter().map(|s| (s.shard_id, s)).collect();
    for s in shards {
        for p in s.parent_shard_id.iter().chain(&s.adjacent_parent_shard_id) {
            if by_id
                .get(p)
                .is_some_and(|p| p.ending_sequence_number.is_none())
            {
                bail!("{} has an open parent {p}", s.shard_id);
            }
        }
        if s.ending_sequence_number.is_some() {
            let kids: Vec<_> = shards
                .iter()
                .filter(|c| {
                    c.parent_shard_id == Some(s.shard_id)
                        || c.adjacent_parent_shard_id == Some(s.shard_id)
                })
                .collect();
            let lo = kids.iter().map(|k| k.hash_key_range.start).min();
            let hi = kids.iter().map(|k| k.hash_key_range.end).max();
            if lo.is_none_or(|lo| lo > s.hash_key_range.start)
                || hi.is_none_or(|hi| hi < s.hash_key_range.end)
            {
                bail!(
                    "the children of closed {} do not cover its range: {shards:#?}",
                    s.shard_id
                );
            }
        }
    }
    Ok(())
}

/// Lines in the acknowledgement files of `dir` whose names start with `prefix`.
fn acked_lines(dir: &Path, prefix: &str) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            n += std::fs::read_to_string(entry.path())?.lines().count();
        }
    }
    Ok(n)
}

#[test]
fn kill_9_under_load_and_resharding_loses_no_acknowledged_record() -> Result<()> {
    let Some(py) = python()? else { return Ok(()) };
    let sh = Shardline::new()?;
    let acked = sh.dir.path().join("acked");
    std::fs::create_dir_all(&acked)?;
    let seed = std::env::var("SHARDLINE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7u64);
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..6u32 {
        let (mut serve_proc, url) = serve(&sh)?;
        if round == 0 {
            run_python(
                &py,
                &[
                    "-c",
                    &format!(
                        "import boto3; boto3.client('kinesis', endpoint_url='{url}', region_name='us-east-1', \
                 aws_access_key_id='l', aws_secret_access_key='l').create_stream(StreamName='crash', ShardCount=2)"
                    ),
                ],
            )?;
        }
        // Rounds alternate sequential (one PutRecord at a time) and concurrent writers.
        let threads = if round % 2 == 0 { "1" } else { "4" };
        let file = acked.join(format!("r{round}"));
        let mut writer = Running(Some(
            Command::new(&py)
                .args([
                    script("kinesis_writer.py").to_str().unwrap_or(""),
                    &url,
                    "crash",
                ])
                .arg(&file)
                .args([threads, &format!("r{round}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ));
        let mut resharder = Running(Some(
            Command::new(&py)
                .args([
                    script("kinesis_resharder.py").to_str().unwrap_or(""),
                    &url,
                    "crash",
                    &round.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ));
        // Once the writers are acknowledged (Python takes a while to start on a busy machine),
        // let the load run a random while longer, then kill -9.
        let started = Instant::now();
        while acked_lines(&acked, &format!("r{round}."))? < 20 {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("round {round}: the writers got no acknowledgement within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(next() % 1500));
        serve_proc.kill()?;
        support::wait_exit(&mut writer, Duration::from_secs(60))?;
        support::wait_exit(&mut resharder, Duration::from_secs(60))?;
    }
    let mut acknowledged = BTreeSet::new();
    for entry in std::fs::read_dir(&acked)? {
        for line in std::fs::read_to_string(entry?.path())?.lines() {
            acknowledged.insert(line.to_string());
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    let (shards, data) = rt.block_on(read_log(&sh.data_dir().join("log"), "crash"))?;
    let present: BTreeSet<String> = data.iter().cloned().collect();
    assert_eq!(present.len(), data.len(), "a record is in the log twice");
    let missing: Vec<_> = acknowledged.difference(&present).take(5).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {missing:?} (of {})",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > 100,
        "the writers got through: {}",
        acknowledged.len()
    );
    assert!(shards.len() > 2, "resharding happened: {shards:#?}");
    check_lineage(&shards)?;
    eprintln!(
        "kill -9: {} acknowledged, {} present, {} shards (seed {seed})",
        acknowledged.len(),
        present.len(),
        shards.len()
    );
    Ok(())
}

#[test]
fn split_then_merge_while_up_runs_keeps_rows_exactly_once_and_in_key_order() -> Result<()> {
    let Some(py) = python()? else { return Ok(()) };
    let sh = Shardline::with_config(
        &support::TEST_TOML
            .replace("shards = 4", "shards = 2")
            // 32 instances: every child of a split gets some of them (8 could all hash to one).
            .replace("instances = 8", "instances = 32")
            .replace(
            "[consumers.s3.consumer]\npoll_interval = \"20ms\"",
            "[consumers.s3.consumer]\npoll_interval = \"20ms\"\nshard_refresh_interval = \"100ms\"",
        ),
    )?;
    let mut up = sh.spawn(&["up"])?;
    let url = endpoint(&sh, &mut up)?;
    let lineage = run_python(
        &py,
        &[
            script("kinesis_reshard_up.py").to_str().unwrap_or(""),
            &url,
            "metrics",
        ],
    )?;
    // A little more load on the merged shard, then a clean stop (Ctrl-C): sinks flush.
    std::thread::sleep(Duration::from_millis(500));
    support::interrupt(&mut up, Duration::from_secs(60))?;
    // `up --once` drains every consumer to the end of every shard, closed parents first.
    sh.ok(&["up", "--once"])?;
    let totals = tokio::runtime::Runtime::new()?.block_on(support::totals(&sh))?;
    assert!(totals.log_records > 0);
    assert_eq!(
        totals.parquet_rows, totals.log_records,
        "Parquet rows equal records ({lineage})"
    );
    assert_eq!(totals.distinct_rows, totals.parquet_rows, "no row twice");
    // Per-key order: a parent's records were all durable in the sink before any record of its
    // children was written, so every parent object is older than every child object.
    let objects = support::parquet_objects_by_shard(&sh)?;
    let lineage: serde_json::Value = serde_json::from_str(lineage.trim())?;
    let mut checked = 0;
    for s in lineage.as_array().context("lineage")? {
        let child = s["id"].as_str().context("id")?;
        for parent in [&s["parent"], &s["adjacent"]]
            .into_iter()
            .filter_map(|p| p.as_str())
        {
            let (Some(p), Some(c)) = (objects.get(parent), objects.get(child)) else {
                continue;
            };
            let newest_parent = p.iter().max().context("parent objects")?;
            let oldest_child = c.iter().min().context("child objects")?;
            assert!(
                newest_parent <= oldest_child,
                "{child}'s rows were written before {parent} finished"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "the split and the merge were both checked: {lineage}"
    );
    // Per-key order, row by row: each instance's rows, in the order the sink wrote them, go
    // up in sequence number within a shard and move only from a shard to its descendant.
    let root = shardline::wiring::parquet_root(&sh.config()?);
    let order = run_python(
        &py,
        &[
            script("parquet_key_order.py").to_str().unwrap_or(""),
            root.to_str().unwrap_or(""),
            &lineage.to_string(),
        ],
    )?;
    let order: serde_json::Value = serde_json::from_str(order.trim())?;
    assert_eq!(
        order["rows"].as_u64(),
        Some(totals.parquet_rows),
        "every row read: {order}"
    );
    assert_eq!(order["violations"], serde_json::json!([]), "{order}");
    assert!(
        order["crossings"].as_u64().unwrap_or(0) > 0,
        "some instance moved to a child shard: {order}"
    );
    Ok(())
}
