//! Bad records interleaved with valid ones in one shard: each bad one becomes a dead letter
//! with its reason, and the valid ones after it still reach Parquet and the table.

use anyhow::Result;
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
