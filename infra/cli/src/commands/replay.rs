//! `shardline replay`: re-runs one consumer's sink over a range of the stream.
//!
//! The replay reads the range through [`shardline_consumers::replay`] with checkpoints of its
//! own, so the consumer's live checkpoints stay where they are. Sinks are idempotent, so a
//! replay of records already delivered changes nothing; after a projection was lost (objects
//! deleted, a table rebuilt) it writes back exactly what is missing. `--into-prefix P` rebuilds
//! the Parquet projection side by side under another prefix (with its own manifests). The
//! Parquet consumer's replay reads the range's shard lineages at once, one sink each (its
//! manifests are per shard), with the largest reads the stream allows.
//!
//! While `up` runs, a replay into the consumer's live targets pauses the live consumer (its
//! sink flushed and checkpointed) for the replay's duration, so the two never write the same
//! manifest or watermark at once; it resumes from its checkpoints afterwards. A replay into
//! another prefix runs beside it.

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use bytes::Bytes;
use shardline_consumers::Sink;
use shardline_consumers::replay::{RangeEnd, RangeStart, Replay, ReplayRange};
use shardline_consumers::runtime::ConsumerConfig;
use shardline_consumers::sinks::{alerts, cloudwatch, dynamodb, s3_parquet};
use shardline_core::ports::{ObjectMeta, ObjectStore, Stream};
use shardline_core::stream::limits::MAX_GET_RECORDS;
use shardline_core::{SequenceNumber, ShardId, StartingPosition};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::write_table;
use crate::cli::ReplayArgs;
use crate::data::Data;
use crate::io::Io;
use crate::pipeline::Pipeline;

/// Runs `shardline replay`.
pub async fn run(data: &Data, io: &mut Io, args: ReplayArgs) -> Result<i32> {
    let pipeline = data.pipeline().await?;
    let (consumer_cfg, kind) = consumer_section(&pipeline, &args.consumer)?;
    if args.into_prefix.is_some() && kind != Kind::S3 {
        bail!(
            "--into-prefix applies to the Parquet consumer `{}` only, not `{}`",
            pipeline.config.consumers.s3.consumer.name,
            args.consumer
        );
    }
    let range = parse_range(&args, shardline_core::time::now_ms())?;
    let objects = Arc::new(CountingObjects {
        inner: pipeline.backends.objects.clone(),
        puts: AtomicU64::new(0),
    });
    let total = estimate(&pipeline, &consumer_cfg.stream, &range).await;
    let replay = if kind == Kind::S3 {
        // The Parquet sink keeps a manifest per shard: the lineages of the range are replayed
        // at once, one sink each, reading the most records per call.
        let cfg = s3_config(&pipeline, args.into_prefix.as_deref())?;
        let mut consumer_cfg = consumer_cfg.clone();
        consumer_cfg.batch_size = MAX_GET_RECORDS;
        let objects: Arc<dyn ObjectStore> = objects.clone();
        Replay::per_lineage(
            consumer_cfg,
            pipeline.stream(),
            pipeline.backends.dead_letters.clone(),
            || {
                let sink = s3_parquet::S3ParquetSink::new(cfg.clone(), Arc::clone(&objects))?;
                Ok(Box::new(sink) as Box<dyn Sink>)
            },
            range,
        )
        .await?
    } else {
        let sink = build_sink(&pipeline, kind)?;
        Replay::new(
            consumer_cfg.clone(),
            pipeline.stream(),
            pipeline.backends.dead_letters.clone(),
            sink,
            range,
        )?
    };
    let paused = match data.consumers() {
        Some(set) if args.into_prefix.is_none() && set.contains(&args.consumer) => {
            Some(set.pause(&args.consumer).await?)
        }
        _ => None,
    };
    let progress = io.progress(&format!("replay {}", args.consumer), total);
    let status = replay.status();
    let started = Instant::now();
    let mut run = tokio::spawn(replay.run());
    let report = loop {
        tokio::select! {
            joined = &mut run => break joined,
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                progress.set_position(status.snapshot().records_in);
            }
        }
    };
    progress.finish();
    let was_paused = paused.is_some();
    if let Some(p) = paused {
        p.resume();
    }
    let report = report
        .context("the replay task panicked")?
        .with_context(|| format!("replay of `{}` failed", args.consumer))?;
    let seconds = started.elapsed().as_secs_f64();
    let s = &report.status;
    let rate = if seconds > 0.0 {
        (s.records_in as f64 / seconds) as u64
    } else {
        0
    };
    write_table(
        &mut io.out,
        &[
            "CONSUMER",
            "RECORDS",
            "DELIVERED",
            "DEAD",
            "OBJECTS",
            "SECONDS",
            "RECORDS/S",
        ],
        &[vec![
            args.consumer.clone(),
            s.records_in.to_string(),
            s.records_delivered.to_string(),
            s.dead_letters.to_string(),
            if kind == Kind::S3 {
                objects.puts.load(Ordering::Relaxed).to_string()
            } else {
                "-".into()
            },
            format!("{seconds:.2}"),
            rate.to_string(),
        ]],
    )?;
    if let Some(prefix) = &args.into_prefix {
        writeln!(
            io.err,
            "Parquet rebuilt under s3://{}/{prefix}/ (live checkpoints untouched)",
            pipeline.config.consumers.s3.sink.bucket
        )?;
    } else if was_paused {
        writeln!(
            io.err,
            "the running consumer `{}` was paused during the replay and resumed from its \
             checkpoints",
            args.consumer
        )?;
    }
    Ok(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    S3,
    DynamoDb,
    CloudWatch,
    Alerts,
}

fn consumer_section(p: &Pipeline, name: &str) -> Result<(ConsumerConfig, Kind)> {
    let c = &p.config.consumers;
    let all = [
        (&c.s3.consumer, Kind::S3),
        (&c.dynamodb.consumer, Kind::DynamoDb),
        (&c.cloudwatch.consumer, Kind::CloudWatch),
        (&c.alerts.consumer, Kind::Alerts),
    ];
    all.iter()
        .find(|(cfg, _)| cfg.name == name)
        .map(|(cfg, k)| ((*cfg).clone(), *k))
        .with_context(|| {
            format!(
                "no consumer `{name}` in the configuration; consumers: {}",
                all.iter()
                    .map(|(c, _)| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The Parquet sink's configuration, under `into_prefix` when given.
fn s3_config(p: &Pipeline, into_prefix: Option<&str>) -> Result<s3_parquet::S3ParquetConfig> {
    let mut cfg = p.config.consumers.s3.sink.clone();
    if let Some(prefix) = into_prefix {
        if prefix.trim_matches('/') == cfg.prefix {
            bail!("--into-prefix {prefix} is the live prefix; give another one");
        }
        cfg.prefix = prefix.trim_matches('/').to_string();
    }
    cfg.validate()
        .context("invalid [consumers.s3.sink] configuration (or --into-prefix)")?;
    Ok(cfg)
}

fn build_sink(p: &Pipeline, kind: Kind) -> Result<Box<dyn Sink>> {
    let c = &p.config.consumers;
    let b = &p.backends;
    Ok(match kind {
        Kind::S3 => bail!("the Parquet sink is built per lineage"),
        Kind::DynamoDb => Box::new(
            dynamodb::DynamoDbSink::new(b.table.clone(), c.dynamodb.sink.clone())
                .context("invalid [consumers.dynamodb.sink] configuration")?,
        ),
        Kind::CloudWatch => {
            let mut cfg = c.cloudwatch.sink.clone();
            cfg.consumer.clone_from(&c.cloudwatch.consumer.name);
            cfg.stream.clone_from(&c.cloudwatch.consumer.stream);
            Box::new(
                cloudwatch::CloudWatchSink::new(b.metrics.clone(), cfg)
                    .context("invalid [consumers.cloudwatch.sink] configuration")?,
            )
        }
        Kind::Alerts => Box::new(
            alerts::AlertsSink::new(p.notifier.clone(), b.state.clone(), p.alerts_config())
                .context("invalid [consumers.alerts.sink] configuration")?,
        ),
    })
}

/// `--from`, `--to` and `--shard` as a range; `now_ms` ends a range without `--to`.
fn parse_range(args: &ReplayArgs, now_ms: i64) -> Result<ReplayRange> {
    let bound = |flag: &str, text: &str| -> Result<Result<i64, SequenceNumber>> {
        if let Some(ms) = shardline_core::time::parse_rfc3339_ms(text) {
            return Ok(Ok(ms));
        }
        text.parse::<SequenceNumber>().map(Err).with_context(|| {
            format!(
                "{flag} {text}: use TRIM_HORIZON, an RFC 3339 time (2026-02-19T11:00:00Z) or a \
                 sequence number"
            )
        })
    };
    let start = if args.from.eq_ignore_ascii_case("TRIM_HORIZON") {
        RangeStart::TrimHorizon
    } else {
        match bound("--from", &args.from)? {
            Ok(ms) => RangeStart::Time(ms),
            Err(seq) => RangeStart::Sequence(seq),
        }
    };
    let end = match args.to.as_deref() {
        None => RangeEnd::Time(now_ms),
        Some(t) => match bound("--to", t)? {
            Ok(ms) => RangeEnd::Time(ms),
            Err(seq) => RangeEnd::Sequence(seq),
        },
    };
    let mut shard: Option<ShardId> = args.shard.as_deref().map(str::parse).transpose()?;
    let seqs = [
        match &start {
            RangeStart::Sequence(q) => Some(q),
            _ => None,
        },
        match &end {
            RangeEnd::Sequence(q) => Some(q),
            RangeEnd::Time(_) => None,
        },
    ];
    for seq in seqs.into_iter().flatten() {
        // A sequence number belongs to one shard: the range is that shard's.
        let id = ShardId(
            seq.parts()
                .with_context(|| format!("{seq}: give --shard for this sequence number"))?
                .shard_index,
        );
        match shard {
            Some(s) if s != id => bail!("sequence number {seq} is of {id}, not {s}"),
            _ => shard = Some(id),
        }
    }
    Ok(ReplayRange {
        start,
        end,
        shards: shard.map(|s| vec![s]),
    })
}

/// Records in the range, when the embedded log's sequence numbers give offsets (for the ETA;
/// none on Kinesis).
async fn estimate(p: &Pipeline, stream: &str, range: &ReplayRange) -> Option<u64> {
    let log = p.log.as_ref()?;
    let stats = log.shard_stats(stream).await.ok()?;
    let next: BTreeMap<ShardId, u64> = stats.iter().map(|s| (s.shard, s.next_offset)).collect();
    let mut total = 0;
    for s in stats.iter().filter(|s| range.includes(s.shard)) {
        let start = first_offset(log, stream, s.shard, range.start_position(), &next).await?;
        let end = match &range.end {
            RangeEnd::Time(ms) => {
                let after = StartingPosition::AtTimestamp(ms.saturating_add(1));
                first_offset(log, stream, s.shard, after, &next).await?
            }
            RangeEnd::Sequence(q) => q.parts().ok()?.offset + 1,
        };
        total += end.saturating_sub(start);
    }
    Some(total)
}

/// Offset of the first record at `pos` in `shard`, or the shard's end when there is none.
async fn first_offset(
    log: &shardline_log::Log,
    stream: &str,
    shard: ShardId,
    pos: StartingPosition,
    next: &BTreeMap<ShardId, u64>,
) -> Option<u64> {
    let it = log.get_shard_iterator(stream, shard, &pos).await.ok()?;
    let out = log.get_records(&it, 1).await.ok()?;
    Some(match out.records.first() {
        Some(r) => r.sequence_number.parts().ok()?.offset,
        None => next.get(&shard).copied().unwrap_or(0),
    })
}

/// The object store, counting the data objects a replay writes (manifests aside).
struct CountingObjects {
    inner: Arc<dyn ObjectStore>,
    puts: AtomicU64,
}

#[async_trait]
impl ObjectStore for CountingObjects {
    async fn ensure_bucket(&self, bucket: &str) -> shardline_core::Result<()> {
        self.inner.ensure_bucket(bucket).await
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> shardline_core::Result<()> {
        self.inner.put(bucket, key, body, content_type).await?;
        if !key.starts_with("_manifests/") {
            self.puts.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
    async fn get(&self, bucket: &str, key: &str) -> shardline_core::Result<Option<Bytes>> {
        self.inner.get(bucket, key).await
    }
    async fn list(&self, bucket: &str, prefix: &str) -> shardline_core::Result<Vec<ObjectMeta>> {
        self.inner.list(bucket, prefix).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> shardline_core::Result<()> {
        self.inner.delete(bucket, key).await
    }
    fn local_path(&self, bucket: &str, key: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(bucket, key)
    }
}
