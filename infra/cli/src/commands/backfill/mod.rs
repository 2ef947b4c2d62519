//! `shardline backfill --from PATH`: appends historical metric events to the stream.
//!
//! Input: JSON Lines of metric events, e.g. the seed's data-collector files
//! (`raw-metrics/YYYY/MM/DD/metrics-<type>-<ts>.json`, `value` as a decimal string), read
//! from a file, a directory tree, or `s3://BUCKET/PREFIX` of the configured object store. Each
//! valid line is appended as it is, keeping its own timestamp (so Parquet partitions and
//! CloudWatch minutes follow event time), with one field added, `"backfill": "<file>#<line>"`,
//! and its `instance_id` as partition key. A line that is not a valid event goes to the
//! dead-letter store (consumer `backfill`) with the file and line number in its reason.
//!
//! Re-runs append nothing twice: deduplication is by file and line, through the ledger of
//! [`ledger`] (a killed run's last batch is looked up in the stream by its `backfill` field).
//!
//! # Layout
//! - [`source`]: listing and reading the input files.
//! - [`ledger`]: per-file progress in the state store.

pub mod ledger;
pub mod source;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use shardline_core::ports::DeadLetter;
use shardline_core::stream::limits;
use shardline_core::{
    MetricEvent, PutRecordResult, PutRecordsEntry, SequenceNumber, ShardId, StartingPosition,
};
use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use self::ledger::{Entry, Ledger, Pending};
use self::source::Source;
use super::write_table;
use crate::cli::BackfillArgs;
use crate::data::Data;
use crate::io::Io;
use crate::pipeline::Pipeline;
use crate::progress::Progress;

/// The consumer name backfill dead letters are stored under.
pub const DLQ_CONSUMER: &str = "backfill";

/// Dead letters stored together (with the batch's records, if any).
const MAX_LETTERS_PER_BATCH: usize = 1000;

/// How often a batch whose records the stream refused is tried again.
const PUT_ATTEMPTS: u32 = 8;

/// Totals of a backfill run.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    files: u64,
    lines: u64,
    appended: u64,
    already: u64,
    dead: u64,
    failed_files: u64,
}

/// Runs `shardline backfill`.
pub async fn run(data: &Data, io: &mut Io, args: BackfillArgs) -> Result<i32> {
    let pipeline = data.pipeline().await?;
    let sources = source::list(&args.from, &io.cwd, pipeline.backends.objects.as_ref()).await?;
    let total = count_lines(&sources).await;
    let progress = io.progress("backfill", total);
    let started = Instant::now();
    let mut totals = Totals::default();
    for src in &sources {
        totals.files += 1;
        match backfill_file(&pipeline, src, &progress, &mut totals).await {
            Ok(()) => {}
            Err(e) => {
                totals.failed_files += 1;
                writeln!(io.err, "{}: {e:#}", src.id())?;
            }
        }
        io.err.flush().await?;
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    write_table(
        &mut io.out,
        &[
            "FILES", "LINES", "APPENDED", "ALREADY", "DEAD", "FAILED", "SECONDS",
        ],
        &[vec![
            totals.files.to_string(),
            totals.lines.to_string(),
            totals.appended.to_string(),
            totals.already.to_string(),
            totals.dead.to_string(),
            totals.failed_files.to_string(),
            format!("{seconds:.2}"),
        ]],
    )?;
    if totals.dead > 0 {
        writeln!(
            io.err,
            "{} lines were not metric events: see `shardline dlq list --consumer {DLQ_CONSUMER}`",
            totals.dead
        )?;
    }
    Ok(if totals.failed_files == 0 { 0 } else { 1 })
}

/// Lines in local files (the progress bar's total); `None` for objects.
async fn count_lines(sources: &[Source]) -> Option<u64> {
    let mut n = 0u64;
    for s in sources {
        let Source::File(p) = s else {
            return None;
        };
        let bytes = tokio::fs::read(p).await.ok()?;
        n += bytes.iter().filter(|b| **b == b'\n').count() as u64;
        if bytes.last().is_some_and(|b| *b != b'\n') {
            n += 1;
        }
    }
    Some(n)
}

/// The stream record of a valid line: the line's JSON object with the `backfill` field added.
fn record_data(line: &str, id: &str, line_no: u64) -> Option<Bytes> {
    let trimmed = line.trim_end();
    let body = trimmed.strip_suffix('}')?;
    let marker = serde_json::to_string(&format!("{id}#{line_no}")).ok()?;
    Some(Bytes::from(format!("{body},\"backfill\":{marker}}}")))
}

/// The `backfill` field of a record, as (file id, line).
fn marker_of(data: &[u8]) -> Option<(String, u64)> {
    #[derive(serde::Deserialize)]
    struct Marker {
        backfill: Option<String>,
    }
    let m: Marker = serde_json::from_slice(data).ok()?;
    let text = m.backfill?;
    let (id, line) = text.rsplit_once('#')?;
    Some((id.to_string(), line.parse().ok()?))
}

/// A dead letter's identity for a bad line: stable per (file, line), so a re-run stores it once.
fn letter_id(id: &str, line_no: u64) -> SequenceNumber {
    let digest = Sha256::digest(id.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let text = format!("{}{line_no:010}", u64::from_be_bytes(head) >> 1);
    text.parse()
        .unwrap_or_else(|_| SequenceNumber::before_all())
}

/// Lines of file `id` in `pending` that a killed run appended: read from the stream after the
/// pending batch started.
async fn appended_lines(p: &Pipeline, id: &str, pending: &Pending) -> Result<BTreeSet<u64>> {
    let stream = &p.config.stream.name;
    let mut found = BTreeSet::new();
    let since = pending.since_ms.saturating_sub(5_000);
    for shard in p.stream.list_shards(stream).await? {
        let mut it = p
            .stream
            .get_shard_iterator(
                stream,
                shard.shard_id,
                &StartingPosition::AtTimestamp(since),
            )
            .await?;
        loop {
            let out = p.stream.get_records(&it, limits::MAX_GET_RECORDS).await?;
            for r in &out.records {
                if let Some((file, line)) = marker_of(&r.data)
                    && file == id
                    && (pending.first_line..=pending.last_line).contains(&line)
                {
                    found.insert(line);
                }
            }
            match out.next_iterator {
                Some(next) if !out.records.is_empty() => it = next,
                _ => break,
            }
        }
    }
    Ok(found)
}

/// A batch being built.
#[derive(Default)]
struct Batch {
    entries: Vec<PutRecordsEntry>,
    bytes: usize,
    letters: Vec<DeadLetter>,
    first_line: u64,
    last_line: u64,
    /// Content bytes of the batch's lines, newlines included.
    content: Vec<u8>,
}

async fn backfill_file(
    p: &Pipeline,
    src: &Source,
    progress: &Progress,
    totals: &mut Totals,
) -> Result<()> {
    let id = src.id();
    let content = src.read(p.backends.objects.as_ref()).await?;
    let ledger = Ledger::new(p.backends.state.as_ref(), &p.config.stream.name);
    let mut entry = ledger.get(&id).await?.unwrap_or_default();
    let done_bytes = usize::try_from(entry.bytes).unwrap_or(usize::MAX);
    let mut hasher = Sha256::new();
    if done_bytes > 0 {
        let same = content.len() >= done_bytes && {
            hasher.update(&content[..done_bytes]);
            hex(&hasher.clone().finalize()) == entry.sha256
        };
        if !same {
            bail!(
                "changed since an earlier backfill appended its first {} lines (those bytes \
                 differ now); nothing more is appended from it. Give changed data a new file \
                 name to append it",
                entry.lines
            );
        }
    }
    totals.already += entry.lines;
    totals.lines += entry.lines;
    progress.inc(entry.lines);
    let recovered = match &entry.pending {
        Some(pending) => appended_lines(p, &id, pending).await?,
        None => BTreeSet::new(),
    };
    let text = &content[done_bytes.min(content.len())..];
    let mut batch = Batch::default();
    let mut line_no = entry.lines;
    for raw in text.split_inclusive(|b| *b == b'\n') {
        line_no += 1;
        if batch.first_line == 0 {
            batch.first_line = line_no;
        }
        batch.last_line = line_no;
        batch.content.extend_from_slice(raw);
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = MetricEvent::from_json(line);
        match event {
            Err(reason) => batch.letters.push(DeadLetter {
                consumer: DLQ_CONSUMER.into(),
                stream: p.config.stream.name.clone(),
                shard: ShardId(0),
                sequence_number: letter_id(&id, line_no),
                partition_key: String::new(),
                reason: format!("{id} line {line_no}: {reason}"),
                data: Bytes::copy_from_slice(line),
                at_ms: shardline_core::time::now_ms(),
            }),
            Ok(_) if recovered.contains(&line_no) => totals.already += 1,
            Ok(event) => {
                let text = String::from_utf8_lossy(line);
                let data = record_data(&text, &id, line_no)
                    .context("internal: a valid event is not a JSON object")?;
                let size = data.len() + event.instance_id.len();
                if batch.entries.len() == limits::MAX_RECORDS_PER_PUT
                    || batch.bytes + size > limits::MAX_BYTES_PER_PUT
                {
                    // The line just read opens the next batch.
                    let carried = raw.len();
                    let keep = batch.content.split_off(batch.content.len() - carried);
                    batch.last_line = line_no - 1;
                    commit(
                        p,
                        &ledger,
                        &id,
                        &mut entry,
                        &mut hasher,
                        &mut batch,
                        progress,
                        totals,
                    )
                    .await?;
                    batch.first_line = line_no;
                    batch.last_line = line_no;
                    batch.content = keep;
                }
                batch.bytes += size;
                batch.entries.push(PutRecordsEntry {
                    partition_key: event.instance_id,
                    explicit_hash_key: None,
                    data,
                });
            }
        }
        if batch.letters.len() >= MAX_LETTERS_PER_BATCH {
            // A file of mostly bad lines is committed as it goes, not held whole.
            commit(
                p,
                &ledger,
                &id,
                &mut entry,
                &mut hasher,
                &mut batch,
                progress,
                totals,
            )
            .await?;
        }
    }
    commit(
        p,
        &ledger,
        &id,
        &mut entry,
        &mut hasher,
        &mut batch,
        progress,
        totals,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn commit(
    p: &Pipeline,
    ledger: &Ledger<'_>,
    id: &str,
    entry: &mut Entry,
    hasher: &mut Sha256,
    batch: &mut Batch,
    progress: &Progress,
    totals: &mut Totals,
) -> Result<()> {
    let b = std::mem::take(batch);
    if b.first_line == 0 {
        return Ok(());
    }
    let lines = b.last_line + 1 - b.first_line;
    if !b.entries.is_empty() {
        entry.pending = Some(Pending {
            first_line: b.first_line,
            last_line: b.last_line,
            since_ms: shardline_core::time::now_ms(),
        });
        ledger.put(id, entry).await?;
        totals.appended += append(p, b.entries).await?;
    }
    if !b.letters.is_empty() {
        totals.dead += b.letters.len() as u64;
        p.backends
            .dead_letters
            .put(b.letters)
            .await
            .context("cannot store dead letters")?;
    }
    hasher.update(&b.content);
    entry.lines = b.last_line;
    entry.bytes += b.content.len() as u64;
    entry.sha256 = hex(&hasher.clone().finalize());
    entry.pending = None;
    ledger.put(id, entry).await?;
    totals.lines += lines;
    progress.inc(lines);
    Ok(())
}

/// Appends every entry, trying refused ones again with backoff; returns how many.
async fn append(p: &Pipeline, mut entries: Vec<PutRecordsEntry>) -> Result<u64> {
    let stream = &p.config.stream.name;
    let total = entries.len() as u64;
    let mut backoff = Duration::from_millis(50);
    for attempt in 1..=PUT_ATTEMPTS {
        let results = p
            .stream
            .put_records(stream, entries.clone())
            .await
            .with_context(|| format!("cannot append to stream `{stream}`"))?;
        let mut refused = Vec::new();
        let mut last_error = String::new();
        for (e, r) in entries.into_iter().zip(results) {
            if let PutRecordResult::Err {
                error_code,
                error_message,
            } = r
            {
                last_error = format!("{error_code}: {error_message}");
                refused.push(e);
            }
        }
        if refused.is_empty() {
            return Ok(total);
        }
        if attempt == PUT_ATTEMPTS {
            bail!(
                "stream `{stream}` refused {} records {PUT_ATTEMPTS} times ({last_error}); run \
                 the backfill again later: it resumes where it stopped",
                refused.len()
            );
        }
        entries = refused;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    Ok(total)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_added_and_read_back() {
        let line = r#"{"metric_id":"cpu-1771500309","metric_type":"cpu_utilization","timestamp":1771500309,"value":"42.5","instance_id":"i-573923","region":"eu-west-1","collected_at":"2026-02-19T11:25:09.123456"}"#;
        let data = record_data(line, "/in/raw-metrics/a#b.json", 7).expect("an object");
        let event = MetricEvent::from_json(&data).expect("still a valid event");
        assert_eq!(event.timestamp, 1_771_500_309);
        assert_eq!(event.value, 42.5);
        assert_eq!(
            marker_of(&data),
            Some(("/in/raw-metrics/a#b.json".to_string(), 7))
        );
        assert_eq!(marker_of(line.as_bytes()), None);
        assert_ne!(letter_id("a", 1), letter_id("a", 2));
        assert_ne!(letter_id("a", 1), letter_id("b", 1));
        assert_eq!(letter_id("a", 1), letter_id("a", 1));
    }
}
