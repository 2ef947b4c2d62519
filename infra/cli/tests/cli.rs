//! Tests that run the `shardline` binary: `up --once` (and its exit status when a consumer
//! cannot finish), `up` killed with SIGKILL and restarted, bad records through `stream put` and
//! `dlq list`, the `stream` commands round trip and
//! `verify` on a damaged segment, `flow validate | next` and `config show`.

mod support;

use anyhow::{Context, Result};
use serde_json::Value;
use std::time::Duration;
use support::{Shardline, described_records, outbox_lines_unique, totals};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_once_reaches_every_sink_once() -> Result<()> {
    let sh = Shardline::new()?;
    for _ in 0..3 {
        let out = sh.ok(&["up", "--once"])?;
        assert!(
            out.contains("collected 32 events, appended 32 (0 failed)"),
            "summary: {out}"
        );
        for consumer in ["s3-parquet", "dynamodb", "cloudwatch", "alerts"] {
            assert!(out.contains(consumer), "{consumer} in the summary: {out}");
        }
    }
    let t = totals(&sh).await?;
    assert_eq!(t.log_records, 96);
    assert_eq!(t.parquet_rows, 96, "{t:?}");
    assert_eq!(t.distinct_rows, 96, "{t:?}");
    assert_eq!(t.table_items, 96, "{t:?}");
    assert_eq!(t.samples, 96.0, "{t:?}");
    assert_eq!(described_records(&sh)?, 96);
    let count = sh.ok(&["table", "count"])?;
    assert!(count.contains("96"), "table count: {count}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_lose_and_duplicate_nothing() -> Result<()> {
    let sh = Shardline::new()?;
    let mut killed_after = Vec::new();
    let mut moments = support::Moments::new(0x5eed_0003);
    for _ in 0..3 {
        let mut up = sh.spawn(&["up"])?;
        let wait = moments.between_ms(500, 2500);
        std::thread::sleep(wait);
        assert!(
            up.is_running(),
            "`shardline up` exited before it was killed"
        );
        up.kill()?;
        killed_after.push(wait);
    }
    let out = sh.ok(&["up", "--once"])?;
    assert!(out.contains("appended 32 (0 failed)"), "{out}");
    let described = described_records(&sh)?;
    let t = totals(&sh).await?;
    eprintln!("killed after {killed_after:?}; {t:?}");
    assert!(
        t.log_records > 32,
        "the killed runs appended records: {t:?}"
    );
    assert_eq!(described, t.log_records, "stream describe vs the log");
    assert_eq!(
        t.parquet_rows, t.log_records,
        "Parquet rows vs log records: {t:?}"
    );
    assert_eq!(
        t.distinct_rows, t.parquet_rows,
        "a (shard, seq) row twice: {t:?}"
    );
    assert_eq!(t.table_items, t.log_records, "{t:?}");
    assert_eq!(t.samples, t.log_records as f64, "{t:?}");
    outbox_lines_unique(&sh)?;
    Ok(())
}

/// A sink that cannot write (its bucket directory is a file): `up --once` still drains the
/// other consumers, then exits 1 naming the consumer and the error, within its retries; once
/// the cause is gone, the next run resumes from the checkpoint and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_once_names_a_consumer_that_cannot_finish_and_the_next_run_catches_up() -> Result<()> {
    let toml = format!(
        "{}\n[consumers.s3.consumer.retry]\ninitial_backoff = \"10ms\"\nmax_backoff = \"50ms\"\n\
         max_attempts = 3\n",
        support::TEST_TOML
    );
    let sh = Shardline::with_config(&toml)?;
    let bucket = sh
        .data_dir()
        .join("s3")
        .join("infra-monitoring-pipeline-data");
    std::fs::create_dir_all(sh.data_dir().join("s3"))?;
    std::fs::write(&bucket, "not a directory")?;
    let out = sh.run(&["up", "--once"])?;
    let stdout = String::from_utf8(out.stdout)?;
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: consumer `s3-parquet` could not finish"))
        .with_context(|| format!("no error line for s3-parquet: {stderr}"))?;
    assert!(
        line.contains("infra-monitoring-pipeline-data"),
        "the error names the path: {line}"
    );
    for other in ["dynamodb", "cloudwatch", "alerts"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(other)),
            "{other} finished and is in the summary: {stdout}"
        );
    }
    assert!(
        !stdout.lines().any(|l| l.starts_with("s3-parquet")),
        "{stdout}"
    );

    std::fs::remove_file(&bucket)?;
    sh.ok(&["up", "--once"])?;
    let t = totals(&sh).await?;
    assert_eq!(t.log_records, 64);
    assert_eq!((t.parquet_rows, t.distinct_rows), (64, 64), "{t:?}");
    assert_eq!(t.table_items, 64, "{t:?}");
    Ok(())
}

fn valid(instance: &str, value: f64) -> String {
    format!(
        r#"{{"metric_id":"cpu-1767225600","metric_type":"cpu_utilization","timestamp":1767225600,"value":{value},"instance_id":"{instance}","region":"eu-west-1","collected_at":"2026-01-01T00:00:00Z"}}"#
    )
}

#[test]
fn bad_records_go_to_the_dead_letter_store() -> Result<()> {
    let sh = Shardline::new()?;
    sh.ok(&["stream", "create", "metrics", "--shards", "4"])?;
    let bad = [
        ("{\"metric_type\": cpu", "not a metric event"),
        (
            r#"{"metric_id":"x-1","metric_type":"gpu_temperature","timestamp":1767225600,"value":5,"instance_id":"i-b","region":"eu-west-1","collected_at":"c"}"#,
            "unknown metric_type `gpu_temperature`",
        ),
        (
            r#"{"metric_id":"cpu-1","metric_type":"cpu_utilization","timestamp":1767225600,"value":"NaN","instance_id":"i-b","region":"eu-west-1","collected_at":"c"}"#,
            "not a finite number",
        ),
        (
            r#"{"metric_id":"net-1","metric_type":"network_traffic","timestamp":1767225600,"value":-2,"instance_id":"i-b","region":"eu-west-1","collected_at":"c"}"#,
            "is negative",
        ),
        (
            r#"{"metric_id":"disk-1","metric_type":"disk_usage","timestamp":1767225600,"value":101.5,"instance_id":"i-b","region":"eu-west-1","collected_at":"c"}"#,
            "above 100 percent",
        ),
        (
            r#"{"metric_id":"mem-1","metric_type":"memory_usage","timestamp":1767225600,"value":50,"region":"eu-west-1","collected_at":"c"}"#,
            "missing field `instance_id`",
        ),
    ];
    let mut input = String::new();
    for (i, (line, _)) in bad.iter().enumerate() {
        input.push_str(&valid(&format!("i-ok{i}"), 10.0 + i as f64));
        input.push('\n');
        input.push_str(line);
        input.push('\n');
    }
    input.push_str(&valid("i-last", 42.5));
    input.push('\n');
    let out = sh.run_with_stdin(
        &["stream", "put", "metrics", "--partition-key", "k"],
        Some(&input),
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let put = String::from_utf8(out.stdout)?;
    let seqs: Vec<&str> = put.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(seqs.len(), 2 * bad.len() + 1, "one line per record: {put}");

    sh.ok(&["up", "--once"])?;
    let dlq = sh.ok(&[
        "dlq",
        "list",
        "--consumer",
        "s3-parquet",
        "--format",
        "json",
    ])?;
    let letters = json_lines(&dlq)?;
    for (line, reason) in &bad {
        assert!(
            letters
                .iter()
                .any(|l| l["data"] == *line
                    && l["reason"].as_str().is_some_and(|r| r.contains(reason))),
            "`dlq list` lacks the record {line} with {reason:?}:\n{dlq}"
        );
    }
    let table = sh.ok(&[
        "dlq",
        "list",
        "--consumer",
        "s3-parquet",
        "--format",
        "table",
    ])?;
    assert!(table.starts_with("AT "), "a header row: {table}");
    for (_, reason) in &bad {
        assert!(
            table.contains(reason),
            "the table lacks {reason:?}:\n{table}"
        );
    }
    let rows = sh.ok(&[
        "query",
        "SELECT sequence_number FROM metrics",
        "--format",
        "csv",
    ])?;
    for (i, seq) in seqs.iter().enumerate() {
        assert_eq!(
            rows.contains(seq),
            i % 2 == 0,
            "record #{i} in Parquet: {rows}"
        );
    }
    let last = sh.ok(&["table", "query", "--metric-id", "cpu-i-last"])?;
    assert!(
        last.contains("42.5"),
        "the last valid record is in the table: {last}"
    );
    Ok(())
}

fn json_lines(text: &str) -> Result<Vec<Value>> {
    text.lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect()
}

#[test]
fn stream_commands_round_trip_and_verify_finds_damage() -> Result<()> {
    let sh = Shardline::new()?;
    let created = sh.ok(&["stream", "create", "s", "--shards", "2"])?;
    assert!(
        created.contains("created stream s with 2 shards"),
        "{created}"
    );
    let first: String = (0..5)
        .map(|i| format!("{{\"n\":{i},\"k\":\"a\"}}\n"))
        .collect();
    let out = sh.run_with_stdin(
        &["stream", "put", "s", "--partition-key", "p"],
        Some(&first),
    )?;
    assert!(out.status.success());
    let put1 = String::from_utf8(out.stdout)?;
    let placed: Vec<(String, String)> = put1
        .lines()
        .map(|l| {
            let mut it = l.split(' ');
            (
                it.next().unwrap_or_default().to_string(),
                it.next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(placed.len(), 5, "{put1}");
    let shard = placed[0].0.clone();
    assert!(shard.starts_with("shardId-"), "{put1}");
    assert!(
        placed.iter().all(|(s, _)| *s == shard),
        "one key, one shard"
    );
    std::thread::sleep(Duration::from_millis(20));
    let second: String = (5..8).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = sh.run_with_stdin(
        &["stream", "put", "s", "--partition-key", "p"],
        Some(&second),
    )?;
    assert!(out.status.success());

    let all = json_lines(&sh.ok(&["stream", "get", "s", "--shard", &shard])?)?;
    let ns: Vec<u64> = all.iter().filter_map(|r| r["data"]["n"].as_u64()).collect();
    assert_eq!(ns, (0..8).collect::<Vec<_>>());
    assert_eq!(all[0]["sequence_number"], placed[0].1.as_str());
    assert_eq!(all[0]["partition_key"], "p");

    let after = format!("AFTER_SEQUENCE_NUMBER:{}", placed[2].1);
    let rest = json_lines(&sh.ok(&[
        "stream",
        "get",
        "s",
        "--shard",
        &shard,
        "--iterator",
        &after,
    ])?)?;
    let ns: Vec<u64> = rest
        .iter()
        .filter_map(|r| r["data"]["n"].as_u64())
        .collect();
    assert_eq!(ns, vec![3, 4, 5, 6, 7]);

    let t = all[5]["arrival"].as_str().context("arrival")?.to_string();
    let at = format!("AT_TIMESTAMP:{t}");
    let later =
        json_lines(&sh.ok(&["stream", "get", "s", "--shard", &shard, "--iterator", &at])?)?;
    let ns: Vec<u64> = later
        .iter()
        .filter_map(|r| r["data"]["n"].as_u64())
        .collect();
    assert_eq!(ns, vec![5, 6, 7], "records that arrived at or after {t}");
    let two = json_lines(&sh.ok(&["stream", "get", "s", "--shard", &shard, "--limit", "2"])?)?;
    assert_eq!(two.len(), 2);

    let d: Value = serde_json::from_str(&sh.ok(&["stream", "describe", "s"])?)?;
    let records: u64 = d["shard_stats"]
        .as_array()
        .context("shard_stats")?
        .iter()
        .filter_map(|s| s["records"].as_u64())
        .sum();
    assert_eq!(records, 8);

    let ok = sh.run(&["stream", "verify"])?;
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let seg_dir = sh.data_dir().join("log").join("s").join(&shard);
    let seg = std::fs::read_dir(&seg_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .context("no segment file")?;
    let mut bytes = std::fs::read(&seg)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&seg, &bytes)?;
    let bad = sh.run(&["stream", "verify"])?;
    let text = String::from_utf8(bad.stdout)?;
    assert_eq!(bad.status.code(), Some(1), "{text}");
    let name = seg
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(text.contains("DAMAGED") && text.contains(&name), "{text}");
    let offset: u64 = text
        .split("at byte ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no offset in {text}"))?;
    assert!(
        offset <= middle as u64,
        "frame at {offset} holds byte {middle}: {text}"
    );
    Ok(())
}

#[test]
fn flow_validate_and_next() -> Result<()> {
    let sh = Shardline::new()?;
    let def = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/statemachine/pipeline.asl.json"
    );
    let ok = sh.run(&["flow", "validate", def])?;
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8(ok.stdout)?.contains("valid"));

    let text = std::fs::read_to_string(def)?;
    let broken = text.replacen(
        "\"Next\": \"CheckPipelineHealth\"",
        "\"Next\": \"NoSuchState\"",
        1,
    );
    assert_ne!(
        broken, text,
        "the seed has WaitForProcessing -> CheckPipelineHealth"
    );
    let path = sh.dir.path().join("broken.asl.json");
    std::fs::write(&path, broken)?;
    let bad = sh.run(&["flow", "validate", &path.to_string_lossy()])?;
    let err = String::from_utf8(bad.stderr)?;
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(
        err.contains("WaitForProcessing") && err.contains("Next") && err.contains("NoSuchState"),
        "names the state and field: {err}"
    );

    let next = sh.ok(&["flow", "next", "rate(3 hours)", "--count", "5"])?;
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = next
        .lines()
        .map(chrono::DateTime::parse_from_rfc3339)
        .collect::<Result<_, _>>()?;
    assert_eq!(times.len(), 5, "{next}");
    for w in times.windows(2) {
        assert_eq!((w[1] - w[0]).num_seconds(), 3 * 3600, "{next}");
    }
    Ok(())
}

#[test]
fn config_show_reads_env_and_rejects_unknown_keys() -> Result<()> {
    let sh = Shardline::new()?;
    let out = sh
        .command(&["config", "show"])
        .env("SHARDLINE__STREAM__SHARDS", "8")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: toml::Table = toml::from_str(&String::from_utf8(out.stdout)?)?;
    assert_eq!(shown["stream"]["shards"].as_integer(), Some(8));
    assert_eq!(
        shown["collectors"]["synthetic"]["instances"].as_integer(),
        Some(8)
    );

    let out = sh
        .command(&["config", "show"])
        .env("SHARDLINE__STREAM__SHARDZ", "8")
        .output()?;
    let err = String::from_utf8(out.stderr)?;
    assert!(!out.status.success());
    assert!(err.contains("shardz"), "names the unknown key: {err}");

    let file = Shardline::with_config("[stream]\nretention_days = 3\n")?;
    let out = file.run(&["config", "show"])?;
    let err = String::from_utf8(out.stderr)?;
    assert!(!out.status.success());
    assert!(
        err.contains("retention_days"),
        "names the unknown key: {err}"
    );
    Ok(())
}

#[test]
fn notifier_type_can_be_replaced_in_the_config_file() -> Result<()> {
    let sh = Shardline::with_config("[notifier]\ntype = \"outbox\"\n")?;
    let out = sh.run(&["config", "show"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: toml::Table = toml::from_str(&String::from_utf8(out.stdout)?)?;
    assert_eq!(shown["notifier"]["type"].as_str(), Some("outbox"));
    Ok(())
}

/// `flow run` prints the execution's output as JSON on standard output, so it can be piped:
/// the default notifier's console target (the seed flow's own SNS step notifies) prints on
/// standard error instead.
#[test]
fn flow_run_keeps_standard_output_for_its_json() -> Result<()> {
    // The default notifier's targets: the console and the outbox.
    let toml = support::TEST_TOML.replace(
        "targets = [{ type = \"outbox\" }]",
        "targets = [{ type = \"stdout\" }, { type = \"outbox\" }]",
    );
    assert_ne!(toml, support::TEST_TOML, "the fixture's notifier targets");
    let sh = Shardline::with_config(&toml)?;
    let run = sh.run(&["flow", "run"])?;
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8(run.stdout)?;
    let output: Value =
        serde_json::from_str(&stdout).with_context(|| format!("stdout is not JSON: {stdout}"))?;
    assert!(output.get("MessageId").is_some(), "{output}");
    assert!(
        stderr.contains("subject: Pipeline Execution Success"),
        "the notification is printed on standard error: {stderr}"
    );
    Ok(())
}

/// `--backend aws` with no region anywhere (no variables, no profile, no IMDS answer) is one
/// line naming what to set: the AWS SDK's own warnings (multi-line dumps of the IMDS answer) are
/// not printed at the default log level.
#[test]
fn the_aws_backend_without_a_region_is_one_line() -> Result<()> {
    let sh = Shardline::new()?;
    let mut cmd = sh.command(&["--backend", "aws", "stream", "list"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    // No ~/.aws/config or credentials file: the profile has no region either.
    cmd.env("HOME", sh.dir.path());
    let out = support::run_bounded(&mut cmd, Duration::from_secs(120))?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("no AWS region configured"), "{err}");
    assert!(err.contains("AWS_REGION"), "names what to set: {err}");
    Ok(())
}

/// `[flow] lag_source` as the deploy template sets it (a `SHARDLINE__*` variable): the two
/// accepted values load, anything else is refused in one line naming the key and the values.
#[test]
fn the_lag_source_takes_checkpoints_or_iterator_age_and_nothing_else() -> Result<()> {
    let mut sh = Shardline::new()?;
    let shown = sh.ok(&["config", "show"])?;
    assert!(shown.contains("lag_source = \"checkpoints\""), "{shown}");
    sh.env = vec![("SHARDLINE__FLOW__LAG_SOURCE".into(), "iterator-age".into())];
    let shown = sh.ok(&["config", "show"])?;
    assert!(shown.contains("lag_source = \"iterator-age\""), "{shown}");

    sh.env = vec![("SHARDLINE__FLOW__LAG_SOURCE".into(), "iterator_age".into())];
    let out = sh.run(&["config", "show"])?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("unknown value `iterator_age` for `flow.lag_source`"),
        "{err}"
    );
    assert!(err.contains("did you mean `iterator-age`?"), "{err}");
    assert!(err.contains("accepted: checkpoints, iterator-age"), "{err}");
    Ok(())
}

/// Configuration mistakes are caught when the configuration loads (or, for a stream that
/// must exist, when `up` opens the log), each in one line naming the key and the fix.
#[test]
fn configuration_errors_name_the_key_and_the_fix() -> Result<()> {
    let one_line = |out: &std::process::Output| -> Result<String> {
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr.clone())?;
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        Ok(err)
    };
    let typo = Shardline::with_config("[consumers.s3.consumer]\nbatchsize = 5\n")?;
    let err = one_line(&typo.run(&["config", "show"])?)?;
    assert!(
        err.contains("unknown key `consumers.s3.consumer.batchsize`"),
        "{err}"
    );
    assert!(err.contains("did you mean `batch_size`?"), "{err}");

    let notifier = Shardline::with_config("[notifier]\ntype = \"webhok\"\nurl = \"http://x/\"\n")?;
    let err = one_line(&notifier.run(&["config", "show"])?)?;
    assert!(err.contains("unknown value `webhok`"), "{err}");
    assert!(err.contains("did you mean `webhook`?"), "{err}");

    let broken = Shardline::with_config("[stream]\nshards = 4\n[stream]\nshards = 2\n")?;
    let err = one_line(&broken.run(&["config", "show"])?)?;
    assert!(err.contains("not valid TOML"), "{err}");
    assert!(err.contains("at line 3, column"), "{err}");

    let twins = Shardline::with_config(&support::TEST_TOML.replace(
        "[consumers.alerts.consumer]\n",
        "[consumers.alerts.consumer]\nname = \"s3-parquet\"\n",
    ))?;
    let err = one_line(&twins.run(&["config", "show"])?)?;
    assert!(
        err.contains(
            "consumers.alerts.consumer.name = \"s3-parquet\" is also consumers.s3.consumer.name"
        ),
        "{err}"
    );
    assert!(
        err.contains("give consumers.alerts.consumer a name of its own"),
        "{err}"
    );

    // A consumer of another stream: loads, but `up` refuses a stream that does not exist...
    let other = Shardline::with_config(&support::TEST_TOML.replace(
        "[consumers.dynamodb.consumer]\n",
        "[consumers.dynamodb.consumer]\nstream = \"metrix\"\n",
    ))?;
    other.ok(&["config", "show"])?;
    let err = one_line(&other.run(&["up", "--once"])?)?;
    assert!(
        err.contains("consumers.dynamodb.consumer.stream = \"metrix\": no such stream"),
        "{err}"
    );
    assert!(err.contains("shardline stream create metrix"), "{err}");
    // ...and reads it once it does.
    other.ok(&["stream", "create", "metrix", "--shards", "1"])?;
    other.ok(&["up", "--once"])?;
    Ok(())
}

/// `shardline query` only reads unless told otherwise.
#[test]
fn query_is_read_only_unless_allow_write() -> Result<()> {
    let sh = Shardline::new()?;
    sh.ok(&["up", "--once"])?;
    let target = sh.dir.path().join("copy.csv");
    let copy = format!(
        "COPY (SELECT instance_id FROM metrics) TO '{}' STORED AS CSV",
        target.display()
    );
    for sql in [
        copy.as_str(),
        "CREATE TABLE t AS SELECT 1",
        "DROP TABLE metrics",
    ] {
        let out = sh.run(&["query", sql])?;
        assert!(!out.status.success(), "{sql}");
        let err = String::from_utf8(out.stderr)?;
        assert!(
            err.contains("read-only") && err.contains("--allow-write"),
            "{err}"
        );
    }
    assert!(!target.exists());
    for sql in [
        "SELECT COUNT(*) FROM metrics",
        "EXPLAIN SELECT * FROM metrics",
        "SHOW TABLES",
        "DESCRIBE metrics",
    ] {
        sh.ok(&["query", sql])?;
    }
    sh.ok(&["query", &copy, "--allow-write"])?;
    assert!(target.exists(), "COPY ran with --allow-write");
    Ok(())
}

/// Dead letters keep the record's exact bytes: `dlq list` shows text when it is UTF-8 and
/// base64, marked, when not.
#[test]
fn dead_letters_keep_bytes_that_are_not_utf8() -> Result<()> {
    let sh = Shardline::new()?;
    sh.ok(&["stream", "create", "metrics", "--shards", "4"])?;
    let mut input = b"{\"metric_id\":\"x\",\"region\":\"\xff\xfe\"}\n".to_vec();
    input.extend_from_slice(b"{\"not\": \"an event\"}\n");
    let out = sh.run_with_input(
        &["stream", "put", "metrics", "--partition-key", "k"],
        Some(&input),
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sh.ok(&["up", "--once"])?;
    let text = sh.ok(&["dlq", "list", "--consumer", "dynamodb"])?;
    assert!(
        text.contains("    data (base64): eyJtZXRyaWNfaWQiOiJ4IiwicmVnaW9uIjoi//4ifQ==\n"),
        "{text}"
    );
    assert!(
        text.contains("    data: {\"not\": \"an event\"}\n"),
        "{text}"
    );
    let json =
        json_lines(&sh.ok(&["dlq", "list", "--consumer", "dynamodb", "--format", "json"])?)?;
    assert_eq!(json.len(), 2);
    assert_eq!(json[0]["data_encoding"], "base64");
    assert_eq!(
        json[0]["data"],
        "eyJtZXRyaWNfaWQiOiJ4IiwicmVnaW9uIjoi//4ifQ=="
    );
    assert!(json[1].get("data_encoding").is_none());
    assert_eq!(json[1]["data"], "{\"not\": \"an event\"}");
    Ok(())
}

/// `stream put` refuses a line whose partition key Kinesis would refuse (empty, or over 256
/// characters) with one line naming it and the fix, appends every other line, counts the
/// refused ones, and exits 1 so a script notices.
#[test]
fn stream_put_refuses_partition_keys_kinesis_refuses_and_appends_the_rest() -> Result<()> {
    let sh = Shardline::new()?;
    sh.ok(&["stream", "create", "metrics", "--shards", "2"])?;
    let line = |instance: &str| {
        format!(
            r#"{{"metric_id":"cpu-1","metric_type":"cpu_utilization","timestamp":1,"value":1,"instance_id":"{instance}","region":"eu-west-1","collected_at":"x"}}"#
        )
    };
    let input = [
        line("i-before"),
        line(""),
        line(&"k".repeat(257)),
        line(&"k".repeat(256)),
    ]
    .join("\n");
    let out = sh.run_with_stdin(&["stream", "put", "metrics"], Some(&input))?;
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 2: partition key must be 1 to 256 characters, got 0"),
        "{err}"
    );
    assert!(
        err.contains("line 3: partition key must be 1 to 256 characters, got 257"),
        "{err}"
    );
    assert!(
        err.contains("or pass --partition-key K (record skipped)"),
        "{err}"
    );
    assert!(
        err.contains("2 records appended to metrics, 2 lines refused"),
        "{err}"
    );
    assert_eq!(String::from_utf8(out.stdout)?.lines().count(), 2);
    assert_eq!(described_records(&sh)?, 2);
    Ok(())
}
