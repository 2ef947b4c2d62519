//! `shardline stream ...`: manage streams and read or write records directly.

use anyhow::{Context, Result};
use base64::Engine;
use bytes::Bytes;
use serde_json::json;
use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, PutRecordsEntry, limits};
use shardline_core::{ShardId, StartingPosition};
use std::io::Write;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::cli::StreamCommand;
use crate::config::Config;
use crate::wiring;

/// Runs a `stream` subcommand.
pub async fn run(config: &Config, command: StreamCommand) -> Result<i32> {
    if let StreamCommand::Verify { name } = &command {
        // Offline: opening the log would refuse the very damage verify is asked to report.
        return verify(config, name.as_deref());
    }
    let log = wiring::open_log(config).await?;
    let result = execute(config, &log, command).await;
    log.close().await?;
    result
}

async fn execute(config: &Config, log: &shardline_log::Log, command: StreamCommand) -> Result<i32> {
    match command {
        StreamCommand::Create {
            name,
            shards,
            retention,
        } => {
            log.create_stream(&name, shards, retention)
                .await
                .with_context(|| format!("cannot create stream `{name}`"))?;
            println!(
                "created stream {name} with {shards} shards, retention {}",
                humantime::format_duration(retention)
            );
            Ok(0)
        }
        StreamCommand::List => {
            for name in log.list_streams().await? {
                println!("{name}");
            }
            Ok(0)
        }
        StreamCommand::Describe { name } => {
            let d = log.describe_stream(&name).await.with_context(|| {
                format!("cannot describe stream `{name}` (see `shardline stream list`)")
            })?;
            let stats = log.shard_stats(&name).await?;
            let mut v = serde_json::to_value(&d)?;
            v["shard_stats"] = stats
                .iter()
                .map(|s| {
                    json!({
                        "shard_id": s.shard.to_string(),
                        "trim_offset": s.trim_offset,
                        "next_offset": s.next_offset,
                        "records": s.next_offset - s.trim_offset,
                        "bytes": s.bytes,
                        "segments": s.segments,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        StreamCommand::Delete { name } => {
            log.delete_stream(&name)
                .await
                .with_context(|| format!("cannot delete stream `{name}`"))?;
            println!("deleted stream {name}");
            Ok(0)
        }
        StreamCommand::Put {
            name,
            partition_key,
            key_field,
        } => {
            put(
                log,
                &name,
                partition_key,
                key_field.unwrap_or_else(|| "instance_id".into()),
            )
            .await
        }
        StreamCommand::Get {
            name,
            shard,
            iterator,
            limit,
            follow,
        } => get(log, &name, &shard, &iterator, limit, follow).await,
        StreamCommand::Verify { name } => verify(config, name.as_deref()),
    }
}

fn verify(config: &Config, name: Option<&str>) -> Result<i32> {
    let report = shardline_log::verify(config.log_dir(), name)
        .with_context(|| format!("cannot verify the log in {}", config.log_dir().display()))?;
    for p in &report.problems {
        println!(
            "DAMAGED {} at byte {}: {}",
            p.path.display(),
            p.offset,
            p.detail
        );
    }
    println!(
        "checked {} streams, {} shards, {} segments, {} records, {} bytes: {}",
        report.streams,
        report.shards,
        report.segments,
        report.records,
        report.bytes,
        if report.is_ok() {
            "all CRCs ok".to_string()
        } else {
            format!("{} problems", report.problems.len())
        }
    );
    Ok(if report.is_ok() { 0 } else { 1 })
}

async fn put(
    log: &shardline_log::Log,
    name: &str,
    fixed_key: Option<String>,
    key_field: String,
) -> Result<i32> {
    let stdin = BufReader::new(tokio::io::stdin());
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let summary = put_lines(log, name, fixed_key, &key_field, stdin, &mut out, &mut err).await?;
    Ok(if summary.refused == 0 { 0 } else { 1 })
}

/// What [`put_lines`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutSummary {
    /// Records appended (durable).
    pub appended: usize,
    /// Lines refused: no partition key, a key or record outside Kinesis's limits, or a record
    /// the stream rejected.
    pub refused: usize,
}

/// `stream put`: appends each non-blank line of `input` as one record, its bytes exactly as
/// read (a final `\r` of a `\r\n` line ending excepted; the bytes need not be UTF-8). Prints
/// `<shard-id> <sequence-number>` per appended record on `out`, in input order, once durable.
///
/// A line that cannot be appended is refused with one line on `err` naming the line number,
/// the reason and the fix, and the rest go on: no partition key found (`key_field` missing or
/// not a string or number), a partition key outside 1 to 256 characters or a record over 1 MiB
/// (checked here, as PutRecords on Kinesis would refuse the whole call), or a record the stream
/// rejected. A summary line ends `err`.
///
/// # Errors
/// When `input` cannot be read or the stream cannot be appended to at all.
pub async fn put_lines<R: AsyncBufRead + Unpin>(
    log: &shardline_log::Log,
    name: &str,
    fixed_key: Option<String>,
    key_field: &str,
    mut input: R,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<PutSummary> {
    let mut batch: Vec<(usize, PutRecordsEntry)> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut line_no = 0usize;
    let mut summary = PutSummary::default();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let read = input
            .read_until(b'\n', &mut raw)
            .await
            .context("cannot read standard input")?;
        if read == 0 {
            break;
        }
        line_no += 1;
        if raw.last() == Some(&b'\n') {
            raw.pop();
            if raw.last() == Some(&b'\r') {
                raw.pop();
            }
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let key = match &fixed_key {
            Some(k) => k.clone(),
            None => match key_of(&String::from_utf8_lossy(&raw), key_field) {
                Some(k) => k,
                None => {
                    writeln!(
                        err,
                        "line {line_no}: no string field `{key_field}` to use as partition key; \
                         pass --partition-key K or --key-field NAME (record skipped)"
                    )?;
                    summary.refused += 1;
                    continue;
                }
            },
        };
        if let Err(why) = shardline_core::stream::check_record_limits(&key, raw.len()) {
            writeln!(
                err,
                "line {line_no}: {why}: Kinesis refuses such a record; {} (record skipped)",
                if why.contains("partition key") {
                    format!(
                        "give it a `{key_field}` of 1 to 256 characters or pass --partition-key K"
                    )
                } else {
                    "split it or shorten it".to_string()
                }
            )?;
            summary.refused += 1;
            continue;
        }
        let size = key.len() + raw.len();
        if batch.len() == limits::MAX_RECORDS_PER_PUT
            || batch_bytes + size > limits::MAX_BYTES_PER_PUT
        {
            flush(log, name, &mut batch, out, err, &mut summary).await?;
            batch_bytes = 0;
        }
        batch_bytes += size;
        batch.push((
            line_no,
            PutRecordsEntry {
                partition_key: key,
                explicit_hash_key: None,
                data: Bytes::copy_from_slice(&raw),
            },
        ));
    }
    flush(log, name, &mut batch, out, err, &mut summary).await?;
    writeln!(
        err,
        "{} records appended to {name}, {} lines refused",
        summary.appended, summary.refused
    )?;
    Ok(summary)
}

fn key_of(line: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    match v.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn flush(
    log: &shardline_log::Log,
    name: &str,
    batch: &mut Vec<(usize, PutRecordsEntry)>,
    out: &mut impl Write,
    err: &mut impl Write,
    summary: &mut PutSummary,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let (lines, entries): (Vec<usize>, Vec<PutRecordsEntry>) =
        std::mem::take(batch).into_iter().unzip();
    let results = log
        .put_records(name, entries)
        .await
        .with_context(|| format!("cannot append to stream `{name}`"))?;
    for (line, result) in lines.into_iter().zip(results) {
        match result {
            PutRecordResult::Ok {
                shard_id,
                sequence_number,
            } => {
                summary.appended += 1;
                writeln!(out, "{shard_id} {sequence_number}")?;
            }
            PutRecordResult::Err {
                error_code,
                error_message,
            } => {
                summary.refused += 1;
                writeln!(err, "line {line}: {error_code}: {error_message}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

async fn get(
    log: &shardline_log::Log,
    name: &str,
    shard: &str,
    iterator: &str,
    limit: Option<usize>,
    follow: bool,
) -> Result<i32> {
    let shard: ShardId = shard.parse()?;
    let position: StartingPosition = iterator.parse()?;
    let mut it = log
        .get_shard_iterator(name, shard, &position)
        .await
        .with_context(|| format!("cannot read {shard} of stream `{name}`"))?;
    let mut remaining = limit.unwrap_or(usize::MAX);
    let mut out = std::io::stdout().lock();
    while remaining > 0 {
        let batch = log
            .get_records(&it, remaining.min(limits::MAX_GET_RECORDS))
            .await?;
        for r in &batch.records {
            let data = match std::str::from_utf8(&r.data) {
                Ok(s) => serde_json::from_str::<serde_json::Value>(s).unwrap_or_else(|_| json!(s)),
                Err(_) => json!({ "base64": base64_encode(&r.data) }),
            };
            let line = json!({
                "sequence_number": r.sequence_number.as_str(),
                "partition_key": r.partition_key,
                "arrival": shardline_core::time::format_rfc3339_ms(r.approximate_arrival_ms),
                "data": data,
            });
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        remaining = remaining.saturating_sub(batch.records.len());
        match batch.next_iterator {
            Some(next) => it = next,
            None => break,
        }
        if batch.records.is_empty() {
            if !follow {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    Ok(0)
}

fn base64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}
