//! `shardline checkpoints list | reset`: consumers' positions in each shard.
//!
//! A reset moves the runtime's checkpoints (KCL's "checkpoint" of each shard). The four
//! pipeline consumers are idempotent on re-delivery, so moving one back is safe: the S3 sink's
//! manifest skips covered records, the table is keyed by series and time, the CloudWatch and
//! alerts sinks skip records at or below their own watermarks (and notifications carry
//! deduplication ids). A reset that would skip records (moving forward) or re-deliver to a
//! consumer that is not one of those asks for `--yes`. While `up` runs, the consumer is paused
//! for the reset (flushed and checkpointed) and resumes from its new checkpoints.

use anyhow::{Context, Result, bail};
use shardline_core::ports::{CheckpointKey, CheckpointStore, Stream};
use shardline_core::{SequenceNumber, SequenceParts, ShardId, StartingPosition};
use shardline_log::Log;
use std::collections::BTreeMap;
use std::io::Write;

use super::{list_format, write_table};
use crate::cli::{CheckpointsCommand, ListFormat};
use crate::data::Data;
use crate::io::Io;

/// Runs a `checkpoints` subcommand.
pub async fn run(data: &Data, io: &mut Io, command: CheckpointsCommand) -> Result<i32> {
    match command {
        CheckpointsCommand::List { consumer, format } => list(data, io, consumer, format).await,
        CheckpointsCommand::Reset {
            consumer,
            to,
            shard,
            yes,
        } => reset(data, io, &consumer, to.as_deref(), shard.as_deref(), yes).await,
    }
}

/// Records after `seq` in its shard, when the log's numbers decode.
fn behind(stats: &BTreeMap<ShardId, u64>, shard: ShardId, seq: &SequenceNumber) -> Option<u64> {
    let next = stats.get(&shard)?;
    let p = seq.parts().ok()?;
    Some(next.saturating_sub(p.offset + 1))
}

async fn next_offsets(log: &Log, stream: &str) -> BTreeMap<ShardId, u64> {
    log.shard_stats(stream)
        .await
        .map(|s| s.iter().map(|s| (s.shard, s.next_offset)).collect())
        .unwrap_or_default()
}

async fn list(
    data: &Data,
    io: &mut Io,
    consumer: Option<String>,
    format: Option<ListFormat>,
) -> Result<i32> {
    let backends = data.backends().await?;
    let log = data.log().await?;
    let checkpoints = backends
        .checkpoints
        .list(consumer.as_deref())
        .await
        .context("cannot read the checkpoint store")?;
    if checkpoints.is_empty() {
        writeln!(
            io.err,
            "no checkpoints{} yet (consumers write them as `shardline up` delivers records)",
            consumer
                .map(|c| format!(" of consumer {c}"))
                .unwrap_or_default()
        )?;
        return Ok(0);
    }
    let mut stats: BTreeMap<String, BTreeMap<ShardId, u64>> = BTreeMap::new();
    for (key, _) in &checkpoints {
        if !stats.contains_key(&key.stream) {
            stats.insert(key.stream.clone(), next_offsets(&log, &key.stream).await);
        }
    }
    let rows: Vec<(CheckpointKey, String, String, String, Option<u64>)> = checkpoints
        .iter()
        .map(|(k, c)| {
            (
                k.clone(),
                c.sequence_number.to_string(),
                shardline_core::time::format_rfc3339_ms(c.updated_ms),
                c.lease_owner.clone().unwrap_or_default(),
                stats
                    .get(&k.stream)
                    .and_then(|s| behind(s, k.shard, &c.sequence_number)),
            )
        })
        .collect();
    match list_format(format, io) {
        ListFormat::Json => {
            for (k, seq, updated, owner, behind) in &rows {
                let line = serde_json::json!({
                    "consumer": k.consumer, "stream": k.stream, "shard": k.shard.to_string(),
                    "sequence_number": seq, "updated": updated, "owner": owner,
                    "records_behind": behind,
                });
                writeln!(io.out, "{line}")?;
            }
        }
        ListFormat::Table => {
            let table: Vec<Vec<String>> = rows
                .into_iter()
                .map(|(k, seq, updated, owner, behind)| {
                    vec![
                        k.consumer,
                        k.stream,
                        k.shard.to_string(),
                        behind.map_or_else(|| "-".into(), |b| b.to_string()),
                        updated,
                        owner,
                        seq,
                    ]
                })
                .collect();
            write_table(
                &mut io.out,
                &[
                    "CONSUMER", "STREAM", "SHARD", "BEHIND", "UPDATED", "OWNER", "SEQUENCE",
                ],
                &table,
            )?;
        }
    }
    Ok(0)
}

/// Where a reset puts one shard's checkpoint.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// No checkpoint: the consumer starts at its starting position.
    Remove,
    /// This sequence number is the last processed.
    Set(SequenceNumber),
}

/// A sequence number of `shard` at `offset`, in the layout of the shard's first one.
fn seq_at(first: &SequenceNumber, offset: u64) -> Result<SequenceNumber> {
    let mut p: SequenceParts = first.parts()?;
    p.offset = offset;
    Ok(p.encode())
}

/// The checkpoint that makes a consumer read again every record of the shard that arrived at
/// or after `at_ms`.
async fn before_time(log: &Log, stream: &str, shard: ShardId, at_ms: i64) -> Result<Target> {
    let shards = log.list_shards(stream).await?;
    let first = shards
        .iter()
        .find(|s| s.shard_id == shard)
        .map(|s| s.starting_sequence_number.clone())
        .with_context(|| format!("stream `{stream}` has no {shard}"))?;
    let it = log
        .get_shard_iterator(stream, shard, &StartingPosition::AtTimestamp(at_ms))
        .await?;
    let out = log.get_records(&it, 1).await?;
    let offset = match out.records.first() {
        Some(r) => r.sequence_number.parts()?.offset,
        None => next_offsets(log, stream)
            .await
            .get(&shard)
            .copied()
            .unwrap_or(0),
    };
    if offset == 0 {
        return Ok(Target::Remove);
    }
    Ok(Target::Set(seq_at(&first, offset - 1)?))
}

/// Records re-delivered (positive) or skipped (negative) when moving from `from` to `to`.
fn movement(from: Option<&SequenceNumber>, to: &Target, trim: u64) -> Option<i64> {
    let pos = |s: Option<&SequenceNumber>| -> Option<i64> {
        match s {
            Some(s) => s.parts().ok().map(|p| p.offset as i64 + 1),
            None => Some(trim as i64),
        }
    };
    let to = match to {
        Target::Remove => pos(None)?,
        Target::Set(s) => pos(Some(s))?,
    };
    Some(pos(from)? - to)
}

async fn reset(
    data: &Data,
    io: &mut Io,
    consumer: &str,
    to: Option<&str>,
    shard: Option<&str>,
    yes: bool,
) -> Result<i32> {
    let backends = data.backends().await?;
    let log = data.log().await?;
    let config = &data.config;
    let known = known_consumers(data);
    let existing = backends.checkpoints.list(Some(consumer)).await?;
    let stream = existing
        .first()
        .map(|(k, _)| k.stream.clone())
        .unwrap_or_else(|| config.stream.name.clone());
    if existing.is_empty() && !known.contains_key(consumer) {
        bail!(
            "consumer `{consumer}` has no checkpoints and is not configured (see `shardline \
             checkpoints list`)"
        );
    }
    let only: Option<ShardId> = shard.map(str::parse).transpose()?;
    let stats = log
        .shard_stats(&stream)
        .await
        .with_context(|| format!("cannot read stream `{stream}`"))?;
    let time = to.and_then(shardline_core::time::parse_rfc3339_ms);
    let seq: Option<SequenceNumber> = match (to, time) {
        (Some(t), None) => Some(t.parse().with_context(|| {
            format!("--to {t}: use an RFC 3339 time (2026-02-19T11:00:00Z) or a sequence number")
        })?),
        _ => None,
    };
    let seq_shard = match &seq {
        Some(s) => {
            let idx = s.parts()?.shard_index;
            let id = ShardId(idx);
            if only.is_some_and(|o| o != id) {
                bail!(
                    "--to {s} is a sequence number of {id}, not of --shard {}",
                    only.map(|o| o.to_string()).unwrap_or_default()
                );
            }
            Some(id)
        }
        None => None,
    };
    let current: BTreeMap<ShardId, SequenceNumber> = existing
        .iter()
        .map(|(k, c)| (k.shard, c.sequence_number.clone()))
        .collect();
    let mut plan: Vec<(ShardId, Option<SequenceNumber>, Target, Option<i64>)> = Vec::new();
    for s in &stats {
        if only.is_some_and(|o| o != s.shard) || seq_shard.is_some_and(|o| o != s.shard) {
            continue;
        }
        let target = match (&seq, time) {
            (Some(q), _) => {
                let p = q.parts()?;
                if p.offset >= s.next_offset {
                    bail!("--to {q} is past the newest record of {}", s.shard);
                }
                Target::Set(q.clone())
            }
            (None, Some(t)) => before_time(&log, &stream, s.shard, t).await?,
            (None, None) => Target::Remove,
        };
        let from = current.get(&s.shard).cloned();
        let moved = movement(from.as_ref(), &target, s.trim_offset);
        plan.push((s.shard, from, target, moved));
    }
    let skips: i64 = plan
        .iter()
        .filter_map(|p| p.3)
        .filter(|m| *m < 0)
        .map(|m| -m)
        .sum();
    let redelivers: i64 = plan.iter().filter_map(|p| p.3).filter(|m| *m > 0).sum();
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|(shard, from, target, moved)| {
            vec![
                shard.to_string(),
                from.as_ref().map_or_else(|| "-".into(), |s| s.to_string()),
                match target {
                    Target::Remove => "- (starting position)".into(),
                    Target::Set(s) => s.to_string(),
                },
                match moved {
                    Some(m) if *m > 0 => format!("re-delivers {m}"),
                    Some(m) if *m < 0 => format!("skips {}", -m),
                    Some(_) => "no change".into(),
                    None => "?".into(),
                },
            ]
        })
        .collect();
    write_table(&mut io.out, &["SHARD", "FROM", "TO", "EFFECT"], &rows)?;
    let mut reasons = Vec::new();
    if skips > 0 {
        reasons.push(format!(
            "it skips {skips} records consumer `{consumer}` has not processed"
        ));
    }
    if redelivers > 0 && !known.get(consumer).copied().unwrap_or(false) {
        reasons.push(format!(
            "it re-delivers {redelivers} records to `{consumer}`, which is not one of this \
             pipeline's idempotent consumers"
        ));
    }
    if !reasons.is_empty() && !yes {
        writeln!(
            io.err,
            "not reset: {}; pass --yes to reset anyway",
            reasons.join(", and ")
        )?;
        return Ok(1);
    }
    let paused = match data.consumers() {
        Some(set) if set.contains(consumer) => Some(set.pause(consumer).await?),
        _ => None,
    };
    let applied = apply(&*backends.checkpoints, consumer, &stream, &plan).await;
    let was_paused = paused.is_some();
    if let Some(p) = paused {
        p.resume();
    }
    applied?;
    writeln!(
        io.err,
        "checkpoints of `{consumer}` moved{}",
        if was_paused {
            " (the running consumer was paused and resumed from them)"
        } else {
            ""
        }
    )?;
    Ok(0)
}

async fn apply(
    store: &dyn CheckpointStore,
    consumer: &str,
    stream: &str,
    plan: &[(ShardId, Option<SequenceNumber>, Target, Option<i64>)],
) -> Result<()> {
    let key = |shard| CheckpointKey {
        consumer: consumer.to_string(),
        stream: stream.to_string(),
        shard,
    };
    if plan.iter().any(|p| p.2 == Target::Remove) {
        // The store removes a consumer's checkpoints all at once: put back the others.
        let keep: Vec<(ShardId, SequenceNumber)> = store
            .list(Some(consumer))
            .await?
            .into_iter()
            .filter(|(k, _)| k.stream == stream && !plan.iter().any(|p| p.0 == k.shard))
            .map(|(k, c)| (k.shard, c.sequence_number))
            .collect();
        store.reset(consumer, stream).await?;
        for (shard, seq) in keep {
            store.put(&key(shard), &seq, None, None).await?;
        }
    }
    for (shard, _, target, _) in plan {
        if let Target::Set(seq) = target {
            store.put(&key(*shard), seq, None, None).await?;
        }
    }
    Ok(())
}

/// The configured consumers (enabled or not) and whether re-delivery to them is idempotent.
fn known_consumers(data: &Data) -> BTreeMap<String, bool> {
    let c = &data.config.consumers;
    [
        &c.s3.consumer.name,
        &c.dynamodb.consumer.name,
        &c.cloudwatch.consumer.name,
        &c.alerts.consumer.name,
    ]
    .into_iter()
    .map(|n| (n.clone(), true))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(shard: u32, offset: u64) -> SequenceNumber {
        SequenceParts {
            shard_index: shard,
            offset,
            shard_created_secs: 1_700_000_000,
            arrival_secs: 1_700_000_100,
        }
        .encode()
    }

    #[test]
    fn movement_counts_records_re_delivered_and_skipped() {
        // Checkpoint at offset 9 (10 records done), moved back to offset 4: 5 again.
        assert_eq!(
            movement(Some(&seq(0, 9)), &Target::Set(seq(0, 4)), 0),
            Some(5)
        );
        assert_eq!(
            movement(Some(&seq(0, 4)), &Target::Set(seq(0, 9)), 0),
            Some(-5)
        );
        assert_eq!(movement(Some(&seq(0, 9)), &Target::Remove, 3), Some(7));
        assert_eq!(movement(None, &Target::Set(seq(0, 2)), 0), Some(-3));
        assert_eq!(
            seq_at(&seq(2, 0), 41)
                .expect("encodes")
                .parts()
                .expect("decodes")
                .offset,
            41
        );
    }
}
