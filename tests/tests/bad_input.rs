//! Bad records interleaved with valid ones in one shard: each bad one becomes a dead letter
//! with its reason, and the valid ones after it still reach Parquet and the table.

use anyhow::Result;
use shardline_core::ports::Stream;
use shardline_tests::{TestEnv, drain_all, parquet_root, put_raw, read_parquet_dir, table_count};
use std::collections::BTreeSet;

/// A record in the seed's shape with `value` and `metric_type` replaced.
fn record(metric_type: &str, value: &str, instance: &str) -> String {
    format!(
        r#"{{"metric_id":"cpu-1767225600","metric_type":"{metric_type}","timestamp":1767225600,"value":{value},"instance_id":"{instance}","region":"eu-west-1","collected_at":"2026-01-01T00:00:00Z"}}"#
    )
}

/// `(record, the reason a user must see for it)`.
pub fn bad_cases() -> Vec<(String, &'static str)> {
    vec![
        ("{\"metric_type\": cpu".to_string(), "not a metric event"),
        (record("gpu_temperature", "5", "i-bad1"), "unknown metric_type `gpu_temperature`"),
        (record("cpu_utilization", "\"NaN\"", "i-bad2"), "not a finite number"),
        (record("network_traffic", "-3.5", "i-bad3"), "is negative"),
        (record("memory_usage", "150", "i-bad4"), "above 100 percent"),
        (
            r#"{"metric_id":"disk-1767225600","metric_type":"disk_usage","timestamp":1767225600,"value":40,"region":"eu-west-1","collected_at":"2026-01-01T00:00:00Z"}"#.to_string(),
            "missing field `instance_id`",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_dead_lettered_and_the_shard_keeps_flowing() -> Result<()> {
    let env = TestEnv::new("")?;
    let p = env.open().await?;
    let cases = bad_cases();
    let mut lines = Vec::new();
    for (i, (bad, _)) in cases.iter().enumerate() {
        lines.push(record(
            "cpu_utilization",
            &format!("{}.5", 10 + i),
            &format!("i-ok{i}"),
        ));
        lines.push(bad.clone());
    }
    lines.push(record("disk_usage", "77.25", "i-last"));
    let appended = put_raw(&p, "k", &lines).await?;
    let shards: BTreeSet<_> = appended.iter().map(|(s, _)| *s).collect();
    assert_eq!(shards.len(), 1, "one partition key, one shard");
    let (events, _) = p.collect_once(None).await?;
    drain_all(&p).await?;

    let letters = p.backends.dead_letters.list(Some("s3-parquet")).await?;
    assert_eq!(letters.len(), cases.len(), "{letters:#?}");
    for (bad, reason) in &cases {
        let found = letters
            .iter()
            .find(|l| l.data.as_ref() == bad.as_bytes())
            .unwrap_or_else(|| panic!("no dead letter for {bad}"));
        assert!(
            found.reason.contains(reason),
            "dead letter for {bad} says {:?}, expected it to mention {reason:?}",
            found.reason
        );
    }
    assert_eq!(
        p.backends.dead_letters.count(None).await?,
        4 * cases.len() as u64,
        "every consumer dead-letters each bad record once"
    );

    let valid = cases.len() + 1;
    let rows = read_parquet_dir(&parquet_root(&p))?;
    assert_eq!(rows.len(), valid + events.len());
    let seqs: BTreeSet<&str> = rows.iter().map(|r| r.sequence_number.as_str()).collect();
    for (i, (_, seq)) in appended.iter().enumerate() {
        let is_valid = i % 2 == 0;
        assert_eq!(
            seqs.contains(seq.as_str()),
            is_valid,
            "record #{i} ({})",
            lines[i]
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.instance_id == "i-last" && r.value == 77.25)
    );
    assert_eq!(table_count(&p).await?, (valid + events.len()) as u64);
    p.close().await?;
    Ok(())
}

/// The shape of a collector's record, at `ts_ms`, as bytes.
fn event_at(metric_type: &str, value: &str, instance: &str, ts_ms: i64) -> Vec<u8> {
    let ts = ts_ms.div_euclid(1000);
    format!(
        r#"{{"metric_id":"cpu-{ts}","metric_type":"{metric_type}","timestamp":{ts},"timestamp_ms":{ts_ms},"value":{value},"instance_id":"{instance}","region":"eu-west-1","collected_at":"2026-12-01T00:00:00Z"}}"#
    )
    .into_bytes()
}

/// A record with one field's JSON replaced.
fn with_field(instance: &str, field: &str, json: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&event_at(
        "cpu_utilization",
        "50",
        instance,
        now_ms() - 60_000,
    ))
    .expect("valid JSON");
    v[field] = serde_json::from_str(json).expect("field JSON");
    if field == "timestamp" {
        v.as_object_mut().map(|o| o.remove("timestamp_ms"));
    }
    serde_json::to_vec(&v).expect("JSON")
}

/// A record whose `value` is the JSON text `value` (which need not parse as a number).
fn value_text(instance: &str, value: &str) -> Vec<u8> {
    let record = event_at("cpu_utilization", "1", instance, now_ms() - 60_000);
    String::from_utf8(record)
        .expect("UTF-8")
        .replace("\"value\":1,", &format!("\"value\":{value},"))
        .into_bytes()
}

fn now_ms() -> i64 {
    shardline_core::time::now_ms()
}

/// `(name, record, the reason code its dead letter starts with)`.
fn hostile_table() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut invalid_utf8 = event_at("cpu_utilization", "50", "i-utf8", now_ms() - 60_000);
    let at = invalid_utf8
        .windows(4)
        .position(|w| w == b"west")
        .expect("region");
    invalid_utf8[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
    // 1 MiB of JSON in all (less the one-byte partition key, Kinesis's record limit): a valid
    // event padded with a field no one reads.
    let mut mib = event_at("cpu_utilization", "50", "i-mib", now_ms() - 60_000);
    mib.pop();
    mib.extend_from_slice(br#","padding":""#);
    mib.resize(1024 * 1024 - 1 - 2, b'x');
    mib.extend_from_slice(b"\"}");
    let nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes();
    let no_fields = br#"{"metric_type":"cpu_utilization","value":50}"#.to_vec();
    vec![
        (
            "timestamp 9223372036854775",
            with_field("i-corrupt", "timestamp", "9223372036854775"),
            "clock_skew",
        ),
        (
            "a host clock in 2100",
            with_field("i-future", "timestamp", "4102444800"),
            "clock_skew",
        ),
        (
            "timestamp i64::MIN",
            with_field("i-min", "timestamp", "-9223372036854775808"),
            "bad_timestamp",
        ),
        (
            "timestamp i64::MAX",
            with_field("i-max", "timestamp", "9223372036854775807"),
            "clock_skew",
        ),
        (
            "timestamp_ms i64::MAX",
            with_field("i-max-ms", "timestamp_ms", "9223372036854775807"),
            "bad_timestamp",
        ),
        (
            "value NaN",
            with_field("i-nan", "value", "\"NaN\""),
            "non_finite",
        ),
        (
            "value inf",
            with_field("i-inf", "value", "\"inf\""),
            "non_finite",
        ),
        ("value 1e999", value_text("i-big", "1e999"), "malformed"),
        (
            "negative value",
            with_field("i-neg", "value", "-3.5"),
            "negative",
        ),
        (
            "over 100 percent",
            with_field("i-over", "value", "150"),
            "percent_above_100",
        ),
        (
            "unknown metric type",
            with_field("i-gpu", "metric_type", "\"gpu_temperature\""),
            "unknown_metric_type",
        ),
        ("missing fields", no_fields, "missing_field"),
        ("invalid UTF-8", invalid_utf8, "malformed"),
        ("1 MiB of JSON", mib, "too_large"),
        ("20,000 nested arrays", nested, "malformed"),
        (
            "a 300-character instance id",
            with_field(
                "i-long",
                "instance_id",
                &format!("\"i-{}\"", "9".repeat(298)),
            ),
            "field_too_long",
        ),
        (
            "CR/LF in the instance id",
            with_field("i-crlf", "instance_id", "\"i-1\\r\\nX-Injected: 1\""),
            "not_printable_ascii",
        ),
    ]
}

/// The hostile-input table of issue 21 through `stream put` and `up --once`, as a user runs
/// them: every case is a dead letter with its reason in every consumer, the shard flows on
/// past all of them, and the alarms of the other instances on that shard are what their own
/// samples say (a clock in 2100 would otherwise have dragged the shard's event time ahead and
/// had them forgotten; timestamp 9223372036854775 panicked the alerts consumer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_through_stream_put_and_up_once() -> Result<()> {
    use shardline::commands::stream::put_lines;
    use shardline_consumers::sinks::alerts::{AlarmState, read_alarm_states};

    let env = TestEnv::new("")?;
    let config = env.config.clone();
    let stream = config.stream.name.clone();
    let table = hostile_table();
    let t = now_ms() - 120_000;
    // One partition key: every record in one shard, good ones around every bad one.
    let mut input = Vec::new();
    let mut good = Vec::new();
    for (i, (_, bad, _)) in table.iter().enumerate() {
        good.push(input_line(
            &mut input,
            &event_at(
                "cpu_utilization",
                &format!("{}.5", 10 + i),
                &format!("i-ok{i}"),
                t,
            ),
        ));
        input_line(&mut input, bad);
    }
    // After every bad record: an instance breaching its threshold and one well below it.
    good.push(input_line(
        &mut input,
        &event_at("cpu_utilization", "95", "i-hot", t),
    ));
    good.push(input_line(
        &mut input,
        &event_at("cpu_utilization", "20", "i-cool", t),
    ));

    let log = shardline::wiring::open_log(&config).await?;
    log.create_stream(&stream, config.stream.shards, config.stream.retention)
        .await?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = put_lines(
        log.as_ref(),
        &stream,
        Some("k".into()),
        "instance_id",
        &input[..],
        &mut out,
        &mut err,
    )
    .await?;
    assert_eq!(
        (summary.appended, summary.refused),
        (2 * table.len() + 2, 0),
        "{}",
        String::from_utf8_lossy(&err)
    );
    let out = String::from_utf8(out)?;
    let shards: BTreeSet<&str> = out.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(shards.len(), 1, "one partition key, one shard");
    let seqs: Vec<String> = out
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!(seqs.len(), 2 * table.len() + 2);

    // Partition keys Kinesis refuses: `stream put` refuses those lines, says why, counts them
    // and appends the rest.
    let mut keys_input = Vec::new();
    input_line(
        &mut keys_input,
        &event_at("cpu_utilization", "30", "i-before", t),
    );
    input_line(&mut keys_input, &with_field("x", "instance_id", "\"\""));
    input_line(
        &mut keys_input,
        &with_field("x", "instance_id", &format!("\"{}\"", "k".repeat(257))),
    );
    input_line(
        &mut keys_input,
        &event_at("cpu_utilization", "31", "i-after", t),
    );
    let (mut out2, mut err2) = (Vec::new(), Vec::new());
    let keyed = put_lines(
        log.as_ref(),
        &stream,
        None,
        "instance_id",
        &keys_input[..],
        &mut out2,
        &mut err2,
    )
    .await?;
    let err2 = String::from_utf8(err2)?;
    assert_eq!((keyed.appended, keyed.refused), (2, 2), "{err2}");
    assert!(
        err2.contains("line 2: partition key must be 1 to 256 characters, got 0"),
        "{err2}"
    );
    assert!(
        err2.contains("line 3: partition key must be 1 to 256 characters, got 257"),
        "{err2}"
    );
    assert!(
        err2.contains("2 records appended to metrics, 2 lines refused"),
        "{err2}"
    );
    log.close().await?;
    drop(log);

    let code = shardline::commands::up::run(
        config.clone(),
        shardline::cli::UpArgs {
            once: true,
            duration: None,
        },
    )
    .await?;
    assert_eq!(code, 0, "up --once finished every consumer");

    let p = env.open().await?;
    for consumer in p.consumer_names() {
        let letters = p.backends.dead_letters.list(Some(&consumer)).await?;
        assert_eq!(
            letters.len(),
            table.len(),
            "{consumer}: {:#?}",
            letters.iter().map(|l| &l.reason).collect::<Vec<_>>()
        );
        for (name, bad, code) in &table {
            let found = letters
                .iter()
                .find(|l| l.data.as_ref() == bad.as_slice())
                .unwrap_or_else(|| panic!("{consumer}: no dead letter for {name}"));
            assert!(
                found.reason.starts_with(&format!("{code}: ")),
                "{consumer}: {name} says {:?}, expected {code}",
                found.reason
            );
        }
    }
    // The shard flowed on: every good record is in Parquet and the table, no bad one is.
    let rows = read_parquet_dir(&parquet_root(&p))?;
    let in_parquet: BTreeSet<&str> = rows.iter().map(|r| r.sequence_number.as_str()).collect();
    for &i in &good {
        assert!(
            in_parquet.contains(seqs[i].as_str()),
            "good record #{i} missing"
        );
    }
    for (i, seq) in seqs.iter().enumerate() {
        if !good.contains(&i) {
            assert!(
                !in_parquet.contains(seq.as_str()),
                "bad record #{i} in Parquet"
            );
        }
    }
    assert!(rows.iter().any(|r| r.instance_id == "i-after"));
    assert!(!rows.iter().any(|r| r.instance_id.starts_with('x')));
    let table_items = table_count(&p).await?;
    assert_eq!(
        table_items as usize,
        rows.len(),
        "the table holds what Parquet holds"
    );
    // The other instances' alarms: their own samples decide.
    let states = read_alarm_states(
        p.backends.state.as_ref(),
        &p.alerts_config().state_namespace(),
    )
    .await?;
    let state = |instance: &str| {
        states
            .iter()
            .find(|s| s.instance_id == instance)
            .map(|s| s.state)
            .unwrap_or_else(|| panic!("no alarm for {instance}: {states:#?}"))
    };
    assert_eq!(state("i-hot"), AlarmState::Alarm);
    assert_eq!(state("i-cool"), AlarmState::Ok);
    for i in 0..table.len() {
        assert_eq!(state(&format!("i-ok{i}")), AlarmState::Ok);
    }
    assert!(
        !states
            .iter()
            .any(|s| ["i-corrupt", "i-future", "i-max"].contains(&s.instance_id.as_str())),
        "no alarm for a rejected event: {states:#?}"
    );
    p.close().await?;
    Ok(())
}

/// Appends `record` and a newline to `input`; returns the record's index among the lines.
fn input_line(input: &mut Vec<u8>, record: &[u8]) -> usize {
    let index = input.iter().filter(|&&b| b == b'\n').count();
    input.extend_from_slice(record);
    input.push(b'\n');
    index
}
