//! `shardline --backend aws` against moto's server, through the binary: `infra bootstrap` and
//! `status`, `up --once` with every port on AWS (counts in every sink, the seed's queries the
//! same as on the embedded backends), and two `consume` workers sharing a 4-shard stream, one
//! of them killed with SIGKILL; distributed Map states of `flow run` on S3; `backfill` from S3
//! and `replay` over Kinesis into a prefix of its own.
//!
//! Built only with the `moto-tests` feature (scripts/test-all.sh starts moto and exports
//! `SHARDLINE_MOTO_URL`); with the feature on and no URL every test fails saying how to run
//! them. Each test names its own stream, buckets, tables and topic, so tests share one moto.
//!
//! moto's Kinesis drops acknowledged records when several writers put to one stream at once:
//! every test writes from one process at a time (`stream put`, or `up --once`), never while
//! another writes, and the tests of this file run one at a time ([`one_at_a_time`]). Readers
//! (the consumers) run concurrently.
#![cfg(feature = "moto-tests")]
#![allow(clippy::unwrap_used)]

mod support;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use support::Shardline;

/// moto's URL, or a failure that says how to run these tests.
fn moto_url() -> String {
    std::env::var("SHARDLINE_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "SHARDLINE_MOTO_URL is not set: these tests run `shardline --backend aws` against \
             moto's server. Run scripts/test-all.sh (it installs and starts moto), or start \
             `.venv/bin/python scripts/moto_server.py 5000` and run \
             `SHARDLINE_MOTO_URL=http://127.0.0.1:5000 cargo test -p shardline --features moto-tests --test aws`"
        )
    })
}

/// Held by every test of this file: one test writes to moto at a time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static MOTO: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MOTO.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A name unique to this test run.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{what}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn set(t: &mut toml::Table, path: &str, v: impl Into<toml::Value>) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap();
    let mut cur = t;
    for p in parts {
        cur = cur
            .entry(p)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap();
    }
    cur.insert(last.into(), v.into());
}

/// The test configuration with every port on moto under names of its own; `embedded` keeps
/// the same settings on the embedded backends (for comparisons).
fn config(name: &str, collect: bool) -> toml::Table {
    let mut t: toml::Table = toml::from_str(support::TEST_TOML).unwrap();
    set(&mut t, "stream.name", format!("{name}-stream"));
    set(
        &mut t,
        "consumers.s3.sink.bucket",
        format!("{name}-parquet"),
    );
    set(
        &mut t,
        "consumers.dynamodb.sink.table",
        format!("{name}-items"),
    );
    set(
        &mut t,
        "consumers.alerts.sink.topic",
        format!("{name}-alarms"),
    );
    set(
        &mut t,
        "consumers.cloudwatch.sink.namespace",
        format!("{name}-metrics"),
    );
    set(&mut t, "aws.region", "eu-west-1");
    set(&mut t, "aws.endpoint_url", moto_url());
    // moto takes seconds for a large PutMetricData on this machine.
    set(&mut t, "aws.attempt_timeout", "120s");
    set(&mut t, "aws.s3.force_path_style", true);
    set(
        &mut t,
        "aws.resources.lease_table",
        format!("{name}-leases"),
    );
    set(&mut t, "aws.resources.state_table", format!("{name}-state"));
    set(
        &mut t,
        "aws.resources.dead_letter_bucket",
        format!("{name}-dead-letters"),
    );
    set(&mut t, "aws.retry.base_delay", "10ms");
    set(&mut t, "aws.retry.max_delay", "200ms");
    // moto serves one request at a time: poll it less often than the embedded log.
    for c in ["s3", "dynamodb", "cloudwatch", "alerts"] {
        set(
            &mut t,
            &format!("consumers.{c}.consumer.poll_interval"),
            "200ms",
        );
        set(
            &mut t,
            &format!("consumers.{c}.consumer.stream"),
            format!("{name}-stream"),
        );
    }
    if !collect {
        set(&mut t, "collectors.run", toml::Value::Array(Vec::new()));
    }
    t
}

fn on_moto(t: &toml::Table) -> Result<Shardline> {
    let mut sh = Shardline::with_config(&toml::to_string(t)?)?;
    sh.env = [
        ("SHARDLINE_BACKEND", "aws"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Ok(sh)
}

/// `n` valid events (at most 700), instances `i-000..i-011` (each metric type on each), four a
/// minute from the start of the hour three hours back: all in the past (the consumers
/// dead-letter events ahead of their arrival) and within CloudWatch's two weeks.
fn fixed_events(n: usize) -> String {
    let hour = shardline_core::time::now_ms() / 1000 / 3600 * 3600 - 3 * 3600;
    let types = [
        ("cpu_utilization", "cpu"),
        ("memory_usage", "mem"),
        ("disk_usage", "disk"),
        ("network_traffic", "net"),
    ];
    let mut out = String::new();
    for i in 0..n {
        let (t, p) = types[i % 4];
        let ts = hour + (i as i64 / 4) * 60;
        let value = ((i * 37) % 90) as f64 + 0.25;
        out.push_str(&format!(
            r#"{{"metric_id":"{p}-{ts}-{i}","metric_type":"{t}","timestamp":{ts},"value":{value},"instance_id":"i-{:03}","region":"eu-west-1","collected_at":"2026-01-01T00:00:00Z"}}"#,
            (i / 4) % 12
        ));
        out.push('\n');
    }
    out
}

fn put(sh: &Shardline, stream: &str, input: &str) -> Result<()> {
    let out = sh.run_with_stdin(&["stream", "put", stream], Some(input))?;
    if !out.status.success() {
        bail!(
            "stream put failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn query_csv(sh: &Shardline, sql: &str) -> Result<String> {
    sh.ok(&["query", sql, "--format", "csv"])
}

fn count(sh: &Shardline, sql: &str) -> Result<u64> {
    let csv = query_csv(sh, sql)?;
    csv.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("{sql}: {csv}"))
}

fn table_count(sh: &Shardline) -> Result<u64> {
    let out = sh.ok(&["table", "count"])?;
    out.split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .with_context(|| format!("table count: {out}"))
}

/// SampleCount summed over every (metric, instance) the Parquet output holds, read back with
/// `metrics stats` over `[from_s - 1 h, to_s + 1 h]`.
fn sample_count(sh: &Shardline) -> Result<f64> {
    let series = query_csv(
        sh,
        "SELECT metric_type, instance_id, MIN(timestamp) AS t0, MAX(timestamp) AS t1 FROM metrics \
         GROUP BY metric_type, instance_id",
    )?;
    let mut total = 0.0;
    for line in series.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (t0, t1): (i64, i64) = (f[2].parse()?, f[3].parse()?);
        let start = (t0 - 3600).div_euclid(3600) * 3600 * 1000;
        let hours = ((t1 + 3600) * 1000 - start) / 3_600_000 + 1;
        let out = sh.ok(&[
            "metrics",
            "stats",
            "--metric",
            f[0],
            "--instance",
            f[1],
            "--period",
            &(hours * 3600).to_string(),
            "--start",
            &start.to_string(),
            "--end",
            &(start + hours * 3_600_000).to_string(),
            "--statistics",
            "SampleCount",
        ])?;
        let v: Value = serde_json::from_str(&out)?;
        for d in v["Datapoints"].as_array().context("Datapoints")? {
            total += d["SampleCount"].as_f64().context("SampleCount")?;
        }
    }
    Ok(total)
}

const SEED_Q1: &str = "SELECT instance_id, AVG(value) as avg_cpu, MAX(value) as max_cpu, \
    MIN(value) as min_cpu FROM infra_monitoring.metrics WHERE metric_type = 'cpu_utilization' \
    GROUP BY instance_id ORDER BY avg_cpu DESC;";
const SEED_Q2: &str = "SELECT from_unixtime(timestamp) as time, metric_type, AVG(value) as \
    avg_value FROM infra_monitoring.metrics GROUP BY timestamp, metric_type ORDER BY timestamp \
    DESC LIMIT 100;";

#[test]
fn infra_bootstrap_creates_what_is_missing_once_and_status_checks_it() -> Result<()> {
    let _moto = one_at_a_time();
    let name = unique("infra");
    let sh = on_moto(&config(&name, true))?;
    let before = sh.run(&["infra", "status"])?;
    assert_eq!(before.status.code(), Some(1), "status before bootstrap");
    let text = String::from_utf8_lossy(&before.stdout);
    assert!(text.contains("MISSING"), "{text}");
    let created = sh.ok(&["infra", "bootstrap"])?;
    for what in [
        format!("{name}-stream"),
        format!("{name}-parquet"),
        format!("{name}-items"),
        format!("{name}-leases"),
        format!("{name}-alarms"),
    ] {
        assert!(
            created
                .lines()
                .any(|l| l.contains(&what) && l.contains("created")),
            "{what} created: {created}"
        );
    }
    let again = sh.ok(&["infra", "bootstrap"])?;
    assert!(!again.contains("created"), "idempotent: {again}");
    let status = sh.ok(&["infra", "status"])?;
    assert!(!status.contains("MISSING"), "{status}");
    Ok(())
}

#[test]
fn a_missing_stream_is_one_line_naming_service_action_and_bootstrap() -> Result<()> {
    let _moto = one_at_a_time();
    let sh = on_moto(&config(&unique("missing"), true))?;
    let out = sh.run(&["up", "--once"])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Kinesis") && err.contains("infra bootstrap"),
        "{err}"
    );
    assert!(err.lines().count() <= 2, "one clear line: {err}");
    Ok(())
}

#[test]
fn up_once_on_moto_puts_every_event_once_in_every_sink() -> Result<()> {
    let _moto = one_at_a_time();
    let name = unique("up");
    let sh = on_moto(&config(&name, true))?;
    sh.ok(&["infra", "bootstrap"])?;
    for _ in 0..2 {
        // 8 instances × 4 metric types.
        let out = sh.ok(&["up", "--once"])?;
        assert!(
            out.contains("collected 32 events, appended 32 (0 failed)"),
            "summary: {out}"
        );
        assert!(out.contains("AWS API calls per 1,000 events"), "{out}");
        for service in ["Kinesis", "S3", "DynamoDB", "CloudWatch"] {
            assert!(out.contains(service), "{service} in the summary: {out}");
        }
    }
    assert_eq!(count(&sh, "SELECT COUNT(*) AS n FROM metrics")?, 64);
    assert_eq!(
        count(
            &sh,
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT shard_id, sequence_number FROM metrics)"
        )?,
        64
    );
    assert_eq!(table_count(&sh)?, 64);
    assert_eq!(sample_count(&sh)?, 64.0);
    // Nothing of the pipeline was kept on the local disk.
    assert!(!sh.data_dir().join("log").exists());
    assert!(!sh.data_dir().join("local").exists());
    Ok(())
}

#[test]
fn the_seed_queries_answer_the_same_on_moto_as_on_the_embedded_backends() -> Result<()> {
    let _moto = one_at_a_time();
    let name = unique("seedq");
    let aws = on_moto(&config(&name, false))?;
    let mut t = config(&name, false);
    t.remove("aws");
    let local = Shardline::with_config(&toml::to_string(&t)?)?;
    let stream = format!("{name}-stream");
    let events = fixed_events(200);
    aws.ok(&["infra", "bootstrap"])?;
    local.ok(&["stream", "create", &stream, "--shards", "4"])?;
    for sh in [&aws, &local] {
        put(sh, &stream, &events)?;
        let out = sh.ok(&["up", "--once"])?;
        assert!(out.contains("s3-parquet"), "{out}");
        assert_eq!(count(sh, "SELECT COUNT(*) AS n FROM metrics")?, 200);
        assert_eq!(table_count(sh)?, 200);
        assert_eq!(sample_count(sh)?, 200.0);
    }
    // The same rows; rows that tie on the ORDER BY key may come in either order (the seed's
    // second query orders by timestamp only, four metric types sharing each).
    let sorted = |csv: &str| {
        let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    for q in [SEED_Q1, SEED_Q2] {
        let (a, b) = (query_csv(&aws, q)?, query_csv(&local, q)?);
        assert!(a.lines().count() > 10, "{a}");
        assert_eq!(sorted(&a), sorted(&b), "{q}");
    }
    Ok(())
}

/// One `lease ...` line of a worker's output.
#[derive(Debug, Clone)]
struct Event {
    consumer: String,
    shard: String,
    kind: String,
    worker: String,
    at_ms: i64,
    detail: String,
}

fn events(log: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (head, detail) = l.split_once(": ").unwrap_or((l, ""));
            let w: Vec<&str> = head.split(' ').collect();
            (w.len() >= 10 && w[0] == "lease" && w[4] == "by").then(|| Event {
                consumer: w[1].into(),
                shard: w[2].into(),
                kind: w[3].into(),
                worker: w[5].into(),
                at_ms: w[7].parse().unwrap_or(0),
                detail: detail.into(),
            })
        })
        .collect()
}

/// The shards `worker` holds per consumer after its events.
fn holdings(evs: &[Event]) -> BTreeMap<String, BTreeSet<String>> {
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in evs {
        let set = held.entry(e.consumer.clone()).or_default();
        match e.kind.as_str() {
            "took" => {
                set.insert(e.shard.clone());
            }
            _ => {
                set.remove(&e.shard);
            }
        }
    }
    held
}

fn wait_until(what: &str, bound: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + bound;
    loop {
        if done()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn two_consume_workers_share_four_shards_and_one_takes_over_after_sigkill() -> Result<()> {
    let _moto = one_at_a_time();
    let name = unique("consume");
    let mut t = config(&name, false);
    set(&mut t, "leases.failover_time", "6s");
    set(&mut t, "leases.renew_interval", "1s");
    let sh = on_moto(&t)?;
    let stream = format!("{name}-stream");
    sh.ok(&["infra", "bootstrap"])?;
    let consumers = ["--consumer", "s3-parquet", "--consumer", "dynamodb"];
    let (log_a, log_b) = (sh.dir.path().join("a.log"), sh.dir.path().join("b.log"));
    let args = |id: &'static str| {
        let mut a = vec!["consume", "--worker-id", id];
        a.extend(consumers);
        a
    };
    let all = fixed_events(600);
    let batches: Vec<String> = {
        let lines: Vec<&str> = all.lines().collect();
        lines
            .chunks(200)
            .map(|c| c.iter().map(|l| format!("{l}\n")).collect())
            .collect()
    };
    put(&sh, &stream, &batches[0])?;
    let mut a = sh.spawn_logged(&args("worker-a"), &log_a)?;
    let mut b = sh.spawn_logged(&args("worker-b"), &log_b)?;
    // Fair share: two shards each, per consumer.
    wait_until(
        "both workers hold two shards of each consumer",
        Duration::from_secs(90),
        || {
            let (ha, hb) = (holdings(&events(&log_a)), holdings(&events(&log_b)));
            Ok(["s3-parquet", "dynamodb"].iter().all(|c| {
                ha.get(*c).map_or(0, BTreeSet::len) == 2 && hb.get(*c).map_or(0, BTreeSet::len) == 2
            }))
        },
    )?;
    // One writer at a time: the workers only read.
    put(&sh, &stream, &batches[1])?;
    wait_until(
        "the first 400 records in Parquet",
        Duration::from_secs(120),
        || Ok(count(&sh, "SELECT COUNT(*) AS n FROM metrics")? >= 400),
    )?;
    let a_held = holdings(&events(&log_a));
    a.kill()?;
    let killed_ms = shardline_core::time::now_ms();
    put(&sh, &stream, &batches[2])?;
    wait_until(
        "worker b holds all four shards of each consumer",
        Duration::from_secs(90),
        || {
            let hb = holdings(&events(&log_b));
            Ok(["s3-parquet", "dynamodb"]
                .iter()
                .all(|c| hb.get(*c).map_or(0, BTreeSet::len) == 4))
        },
    )?;
    wait_until(
        "all 600 records in Parquet and the table",
        Duration::from_secs(120),
        || Ok(count(&sh, "SELECT COUNT(*) AS n FROM metrics")? >= 600 && table_count(&sh)? >= 600),
    )?;
    // SIGTERM: final checkpoints, then b releases its leases.
    let pid = b.0.as_ref().context("b running")?.id();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    assert!(status.success());
    wait_until("worker b exits on SIGTERM", Duration::from_secs(60), || {
        Ok(!b.is_running())
    })?;

    // Exactly once in both sinks.
    assert_eq!(count(&sh, "SELECT COUNT(*) AS n FROM metrics")?, 600);
    assert_eq!(
        count(
            &sh,
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT shard_id, sequence_number FROM metrics)"
        )?,
        600
    );
    assert_eq!(table_count(&sh)?, 600);

    // No shard owned by both at once: b took a's shards only as expired leases, after the
    // kill, and a never took one of b's while b held it.
    let (ea, eb) = (events(&log_a), events(&log_b));
    for c in ["s3-parquet", "dynamodb"] {
        for shard in &a_held[c] {
            let took = eb
                .iter()
                .find(|e| e.consumer == c && &e.shard == shard && e.kind == "took")
                .with_context(|| format!("b took {c} {shard}: {eb:?}"))?;
            assert_eq!(took.worker, "worker-b");
            assert!(
                took.at_ms > killed_ms,
                "{c} {shard} taken before a was killed: {took:?}"
            );
            assert!(
                took.detail.starts_with("from worker-a, unchanged for"),
                "taken as an expired lease of a: {took:?}"
            );
            let unchanged: i64 = took
                .detail
                .split(' ')
                .nth(4)
                .and_then(|n| n.parse().ok())
                .context("unchanged ms")?;
            assert!(
                unchanged >= 6000,
                "taken before the failover time: {took:?}"
            );
            eprintln!(
                "{c} {shard}: taken over {} ms after the SIGKILL (failover time 6 s)",
                took.at_ms - killed_ms
            );
        }
        let b_first: BTreeSet<&String> = eb
            .iter()
            .filter(|e| e.consumer == c && e.kind == "took" && e.at_ms < killed_ms)
            .map(|e| &e.shard)
            .collect();
        for e in ea.iter().filter(|e| e.consumer == c && e.kind == "took") {
            assert!(
                !b_first.contains(&e.shard)
                    || !eb.iter().any(|x| x.consumer == c
                        && x.shard == e.shard
                        && x.kind == "took"
                        && x.at_ms <= e.at_ms),
                "{c} {} taken by a while b held it: {e:?}",
                e.shard
            );
        }
    }
    let released = eb.iter().filter(|e| e.kind == "released").count();
    assert_eq!(
        released, 8,
        "b released its 2 × 4 leases on SIGTERM: {eb:?}"
    );
    Ok(())
}

/// `flow run FILE` on the aws backend: a distributed Map's ResultWriter, ItemReader over an S3
/// prefix (listObjectsV2) and over a JSON object (getObject) all go to S3, and what one run
/// writes the next ones list and read back.
#[test]
fn distributed_map_states_write_list_and_read_objects_on_s3() -> Result<()> {
    let _moto = one_at_a_time();
    let name = unique("flowmap");
    let sh = on_moto(&config(&name, false))?;
    sh.ok(&["infra", "bootstrap"])?;
    let bucket = format!("{name}-parquet");
    let distributed = |extra: Value, proc: Value| {
        let mut m = serde_json::json!({"Type": "Map", "End": true,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "P", "States": {"P": proc}}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            m[k] = v.clone();
        }
        serde_json::json!({"StartAt": "M", "States": {"M": m}})
    };
    let run = |file: &str, def: &Value, input: &Value| -> Result<Value> {
        let path = sh.dir.path().join(file);
        std::fs::write(&path, serde_json::to_vec_pretty(def)?)?;
        let out = sh.ok(&[
            "flow",
            "run",
            path.to_str().context("path")?,
            "--input",
            &input.to_string(),
        ])?;
        serde_json::from_str(&out).with_context(|| format!("{file}: {out}"))
    };
    // Write: ten items, each doubled, the results written to S3.
    let items: Vec<Value> = (1..=10).map(|n| serde_json::json!({"n": n})).collect();
    let written = run(
        "write.asl.json",
        &distributed(
            serde_json::json!({"ItemsPath": "$.items", "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": bucket, "Prefix": "flow-results"}}}),
            serde_json::json!({"Type": "Pass", "Parameters": {"double.$": "States.MathAdd($.n, $.n)"}, "End": true}),
        ),
        &serde_json::json!({ "items": items }),
    )?;
    assert_eq!(
        written["ResultWriterDetails"]["Bucket"], bucket,
        "{written}"
    );
    let manifest = written["ResultWriterDetails"]["Key"]
        .as_str()
        .context("manifest key")?
        .to_string();
    assert!(
        manifest.starts_with("flow-results/") && manifest.ends_with("/manifest.json"),
        "{written}"
    );
    // List: the objects under the prefix are the ones the write run put there.
    let listed = run(
        "list.asl.json",
        &distributed(
            serde_json::json!({"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                "Parameters": {"Bucket": bucket, "Prefix": "flow-results/"}}}),
            serde_json::json!({"Type": "Pass", "Parameters": {"key.$": "$.Key"}, "End": true}),
        ),
        &serde_json::json!({}),
    )?;
    let keys: BTreeSet<String> = listed
        .as_array()
        .context("listed")?
        .iter()
        .filter_map(|v| v["key"].as_str().map(str::to_string))
        .collect();
    let run_dir = manifest.trim_end_matches("manifest.json");
    assert!(keys.contains(&manifest), "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with(run_dir)), "{keys:?}");
    let succeeded = format!("{run_dir}SUCCEEDED_0.json");
    assert!(keys.contains(&succeeded), "{keys:?}");
    // Read: the SUCCEEDED file as a JSON array of items gives back every doubled value.
    let read = run(
        "read.asl.json",
        &distributed(
            serde_json::json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": bucket, "Key": succeeded}}}),
            serde_json::json!({"Type": "Pass", "Parameters": {"out.$": "States.StringToJson($.Output)"}, "End": true}),
        ),
        &serde_json::json!({}),
    )?;
    let mut doubles: Vec<i64> = read
        .as_array()
        .context("read")?
        .iter()
        .filter_map(|v| v["out"]["double"].as_i64())
        .collect();
    doubles.sort_unstable();
    assert_eq!(
        doubles,
        (1..=10).map(|n| 2 * n).collect::<Vec<i64>>(),
        "{read}"
    );
    Ok(())
}

/// Uploads the seed's raw-metrics fixtures to `s3://bucket/raw-metrics/...` on moto (boto3 from
/// the test venv: the uploads are the test's, not Shardline's).
fn upload_raw_metrics(bucket: &str) -> Result<()> {
    let py = std::env::var("SHARDLINE_TEST_PYTHON").context(
        "SHARDLINE_TEST_PYTHON is not set: run scripts/test-all.sh (it creates .venv with boto3)",
    )?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let script = r#"
import os, sys, boto3
url, bucket, root = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=url, region_name="eu-west-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
for d, _, files in os.walk(os.path.join(root, "raw-metrics")):
    for f in files:
        path = os.path.join(d, f)
        s3.upload_file(path, bucket, os.path.relpath(path, root))
"#;
    let mut cmd = std::process::Command::new(py);
    cmd.args(["-c", script, &moto_url(), bucket])
        .arg(root.canonicalize()?);
    let out = support::run_bounded(&mut cmd, Duration::from_secs(120))?;
    if !out.status.success() {
        bail!("upload failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[test]
fn backfill_from_s3_and_replay_over_kinesis_into_a_prefix_of_its_own() -> Result<()> {
    let _moto = one_at_a_time();
    let name = unique("replay");
    let t = config(&name, false);
    let sh = on_moto(&t)?;
    sh.ok(&["infra", "bootstrap"])?;
    let bucket = format!("{name}-parquet");
    upload_raw_metrics(&bucket)?;
    let from = format!("s3://{bucket}/raw-metrics/");

    // The seed's raw-metrics objects, read from S3 and appended to Kinesis.
    let first = sh.run(&["backfill", "--from", &from])?;
    let out = String::from_utf8(first.stdout)?;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let s = support::summary(&out)?;
    assert_eq!(
        (
            s["FILES"].as_str(),
            s["APPENDED"].as_str(),
            s["DEAD"].as_str()
        ),
        ("16", "48", "1"),
        "{out}"
    );
    let again = support::summary(&sh.ok(&["backfill", "--from", &from])?)?;
    assert_eq!(again["APPENDED"], "0", "a re-run appends nothing");
    sh.ok(&["up", "--once"])?;
    let rows = "SELECT COUNT(*) AS n FROM metrics";
    assert_eq!(count(&sh, rows)?, 48);
    assert_eq!(table_count(&sh)?, 48);
    // CloudWatch takes nothing older than two weeks: those statistic sets are left out, and
    // the consumer moves on instead of retrying a call CloudWatch would refuse.
    assert_eq!(sample_count(&sh)?, 0.0);
    let by_day = query_csv(
        &sh,
        "SELECT year, month, day, COUNT(*) AS n FROM metrics GROUP BY year, month, day \
         ORDER BY year, month, day",
    )?;
    assert_eq!(
        by_day.lines().skip(1).collect::<Vec<_>>(),
        ["2026,02,19,24", "2026,02,20,12", "2026,03,01,12"],
        "each event in the partition of its own day"
    );

    // The whole stream replayed from Kinesis into a prefix of its own: the same rows.
    let out = sh.ok(&[
        "replay",
        "--consumer",
        "s3-parquet",
        "--from",
        "TRIM_HORIZON",
        "--into-prefix",
        "rebuilt",
    ])?;
    let replayed: Vec<&str> = out
        .lines()
        .nth(1)
        .context("summary row")?
        .split_whitespace()
        .collect();
    assert_eq!(replayed[1], "48", "records read: {out}");
    let mut rebuilt_t = t.clone();
    set(&mut rebuilt_t, "consumers.s3.sink.prefix", "rebuilt");
    let rebuilt = on_moto(&rebuilt_t)?;
    let all = "SELECT shard_id, sequence_number, metric_id, value FROM metrics \
               ORDER BY shard_id, sequence_number";
    assert_eq!(
        query_csv(&rebuilt, all)?,
        query_csv(&sh, all)?,
        "the rebuilt projection equals the live one row for row"
    );
    // Replaying into the live prefix again adds nothing.
    sh.ok(&[
        "replay",
        "--consumer",
        "s3-parquet",
        "--from",
        "TRIM_HORIZON",
    ])?;
    assert_eq!(count(&sh, rows)?, 48);
    Ok(())
}
