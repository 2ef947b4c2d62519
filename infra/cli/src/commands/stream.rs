//! `shardline stream ...`: manage streams and read or write records directly.

use anyhow::{Context, Result};
use base64::Engine;
use bytes::Bytes;
use serde_json::json;
use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, PutRecordsEntry, limits};
use shardline_core::{ShardId, StartingPosition};
use std::io::Write;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::cli::StreamCommand;
use crate::config::Config;
use crate::data::Data;
use crate::io::Io;

/// Runs a `stream` subcommand.
pub async fn run(data: &Data, io: &mut Io, command: StreamCommand) -> Result<i32> {
    if let StreamCommand::Verify { name } = &command {
        if data.is_owned() {
            // The running `up`'s log: checked up to what it had committed (not the tail being
            // appended meanwhile).
            let log = data.log().await?;
            let committed = committed(&log, name.as_deref()).await?;
            return verify(&data.config, io, name.as_deref(), Some(&committed));
        }
        // Offline: opening the log would refuse the very damage verify is asked to report.
        return verify(&data.config, io, name.as_deref(), None);
    }
    let stream = data.stream().await?;
    let log = data.embedded_log().await?;
    execute(&data.config, io, stream.as_ref(), log.as_deref(), command).await
}

/// Runs `command` on the stream port; `log` is the embedded log when the stream is embedded
/// (only it counts records per shard, for `describe`).
async fn execute(
    config: &Config,
    io: &mut Io,
    stream: &dyn Stream,
    log: Option<&shardline_log::Log>,
    command: StreamCommand,
) -> Result<i32> {
    match command {
        StreamCommand::Create {
            name,
            shards,
            retention,
        } => {
            stream
                .create_stream(&name, shards, retention)
                .await
                .with_context(|| format!("cannot create stream `{name}`"))?;
            writeln!(
                io.out,
                "created stream {name} with {shards} shards, retention {}",
                humantime::format_duration(retention)
            )?;
            Ok(0)
        }
        StreamCommand::List => {
            for name in stream.list_streams().await? {
                writeln!(io.out, "{name}")?;
            }
            Ok(0)
        }
        StreamCommand::Describe { name } => {
            let d = stream.describe_stream(&name).await.with_context(|| {
                format!("cannot describe stream `{name}` (see `shardline stream list`)")
            })?;
            let mut v = serde_json::to_value(&d)?;
            // Kinesis does not count a shard's records: only the embedded log has stats.
            let stats = match log {
                Some(log) => log.shard_stats(&name).await?,
                None => Vec::new(),
            };
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
            writeln!(io.out, "{}", serde_json::to_string_pretty(&v)?)?;
            Ok(0)
        }
        StreamCommand::Delete { name } => {
            stream
                .delete_stream(&name)
                .await
                .with_context(|| format!("cannot delete stream `{name}`"))?;
            writeln!(io.out, "deleted stream {name}")?;
            Ok(0)
        }
        StreamCommand::Put {
            name,
            partition_key,
            key_field,
        } => {
            put(
                io,
                stream,
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
        } => get(io, stream, &name, &shard, &iterator, limit, follow).await,
        StreamCommand::Verify { name } => {
            let committed = match log {
                Some(log) => Some(committed(log, name.as_deref()).await?),
                None => None,
            };
            verify(config, io, name.as_deref(), committed.as_ref())
        }
    }
}

/// Each shard's committed next offset, of stream `name` or of every stream, in the open `log`.
async fn committed(
    log: &shardline_log::Log,
    name: Option<&str>,
) -> Result<shardline_log::Committed> {
    let names = match name {
        Some(n) => vec![n.to_string()],
        None => log.list_streams().await?,
    };
    let mut committed = shardline_log::Committed::new();
    for stream in names {
        let stats = match log.shard_stats(&stream).await {
            Ok(s) => s,
            // Deleted since it was listed; verify reports what it finds on disk.
            Err(shardline_log::LogError::StreamNotFound(_)) if name.is_none() => continue,
            Err(e) => return Err(e.into()),
        };
        for s in stats {
            committed.insert((stream.clone(), s.shard), s.next_offset);
        }
    }
    Ok(committed)
}

/// Verifies the log's files; `committed` when the log is open (see
/// [`shardline_log::verify_committed`]).
fn verify(
    config: &Config,
    io: &mut Io,
    name: Option<&str>,
    committed: Option<&shardline_log::Committed>,
) -> Result<i32> {
    let report = match committed {
        Some(c) => shardline_log::verify_committed(config.log_dir(), name, c),
        None => shardline_log::verify(config.log_dir(), name),
    }
    .with_context(|| format!("cannot verify the log in {}", config.log_dir().display()))?;
    for p in &report.problems {
        writeln!(
            io.out,
            "DAMAGED {} at byte {}: {}",
            p.path.display(),
            p.offset,
            p.detail
        )?;
    }
    writeln!(
        io.out,
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
    )?;
    Ok(if report.is_ok() { 0 } else { 1 })
}

async fn put(
    io: &mut Io,
    log: &dyn Stream,
    name: &str,
    fixed_key: Option<String>,
    key_field: String,
) -> Result<i32> {
    let input = std::mem::replace(&mut io.input, Box::new(tokio::io::empty()));
    let summary = put_lines(
        log,
        name,
        fixed_key,
        &key_field,
        input,
        &mut io.out,
        &mut io.err,
    )
    .await?;
    io.flush().await?;
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
    log: &dyn Stream,
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
    log: &dyn Stream,
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
    io: &mut Io,
    log: &dyn Stream,
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
            writeln!(io.out, "{line}")?;
        }
        io.out.flush().await?;
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
                _ = io.cancelled() => break,
            }
        }
    }
    Ok(0)
}

fn base64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}
