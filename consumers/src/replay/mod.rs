//! Replays: one consumer's sink re-run over a range of the stream, beside its live run.
//!
//! A replay is an ordinary [`Consumer`] draining a bounded view of the stream:
//! - [`RangeStream`] starts every shard at the range's start (TRIM_HORIZON, an arrival time or
//!   a sequence number) and ends it after the range's last record (an arrival time or a
//!   sequence number), presenting that end as the end of a closed shard, so the consumer
//!   finishes once every shard of the range is read and durable;
//! - [`MemoryCheckpoints`] keeps the replay's checkpoints in memory, so the consumer's live
//!   checkpoints are never read or written.
//!
//! A range over several independent shard lineages (see [`lineage`]) can be read by one
//! consumer per lineage at once ([`Replay::per_lineage`]), each with a sink of its own and all
//! counting into one status: a parent is still finished before its children, which are in its
//! lineage, and a sink whose state is per shard (the Parquet sink's manifests) writes exactly
//! what one consumer would.
//!
//! Dead letters are stored under the consumer's own name: the dead-letter store keeps one per
//! (consumer, stream, shard, sequence number), so replaying a range adds none twice. Sinks are
//! idempotent (see [`crate::sink`]), so replaying records they already applied changes nothing.
//!
//! # Layout
//! - [`range`] — [`ReplayRange`] and [`RangeStream`].
//! - [`memory`] — [`MemoryCheckpoints`].
//! - [`lineage`] — [`lineages`]: the groups of shards read independently.

pub mod lineage;
pub mod memory;
pub mod range;

pub use lineage::lineages;

pub use memory::MemoryCheckpoints;
pub use range::{RangeEnd, RangeStart, RangeStream, ReplayRange};

use shardline_core::StartingPosition;
use shardline_core::ports::{DeadLetterStore, Stream};
use std::sync::Arc;
use tokio::time::Instant;

use crate::Sink;
use crate::runtime::{Consumer, ConsumerConfig, ConsumerError, ConsumerReport, ConsumerStatus};

/// Consumers set up to replay a range; [`Replay::run`] drains them.
#[derive(Debug)]
pub struct Replay {
    /// One consumer per group of shards read at once; all report into `status`.
    consumers: Vec<Consumer>,
    status: Arc<ConsumerStatus>,
}

impl Replay {
    /// A replay of `range` through `sink`, as consumer `config.name` (its dead letters) but
    /// with checkpoints of its own: one consumer reading the range's shards in turn. Reads
    /// are not shared with live consumers.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] when the configuration cannot run.
    pub fn new(
        config: ConsumerConfig,
        stream: Arc<dyn Stream>,
        dead_letters: Arc<dyn DeadLetterStore>,
        sink: Box<dyn Sink>,
        range: ReplayRange,
    ) -> Result<Replay, ConsumerError> {
        let status = Arc::new(ConsumerStatus::default());
        let consumer = consumer(config, stream, dead_letters, sink, range, &status)?;
        Ok(Replay {
            consumers: vec![consumer],
            status,
        })
    }

    /// A replay of `range` with one consumer per shard lineage in the range (see
    /// [`lineage`]), each with a sink from `sink`, read at the same time. For sinks whose
    /// state is per shard, such as the Parquet sink (per-shard manifests): the result is what
    /// [`Replay::new`] writes, sooner.
    ///
    /// # Errors
    /// [`ConsumerError::Stream`] when the shards cannot be listed, [`ConsumerError::Start`]
    /// when `sink` fails, [`ConsumerError::Config`] when the configuration cannot run.
    pub async fn per_lineage(
        config: ConsumerConfig,
        stream: Arc<dyn Stream>,
        dead_letters: Arc<dyn DeadLetterStore>,
        mut sink: impl FnMut() -> shardline_core::Result<Box<dyn Sink>>,
        range: ReplayRange,
    ) -> Result<Replay, ConsumerError> {
        let mut shards =
            stream
                .list_shards(&config.stream)
                .await
                .map_err(|source| ConsumerError::Stream {
                    stream: config.stream.clone(),
                    op: "list_shards".into(),
                    source,
                })?;
        shards.retain(|s| range.includes(s.shard_id));
        let groups = lineages(&shards);
        let status = Arc::new(ConsumerStatus::default());
        let mut consumers = Vec::with_capacity(groups.len().max(1));
        // No shard (yet): one consumer over the range, which finds nothing.
        let ranges = if groups.is_empty() {
            vec![range]
        } else {
            groups
                .into_iter()
                .map(|g| ReplayRange {
                    shards: Some(g),
                    ..range.clone()
                })
                .collect()
        };
        for r in ranges {
            let sink = sink().map_err(|e| ConsumerError::Start {
                consumer: config.name.clone(),
                reason: e.to_string(),
            })?;
            consumers.push(consumer(
                config.clone(),
                Arc::clone(&stream),
                Arc::clone(&dead_letters),
                sink,
                r,
                &status,
            )?);
        }
        Ok(Replay { consumers, status })
    }

    /// Consumers reading at the same time (1 for [`Replay::new`]).
    pub fn consumers(&self) -> usize {
        self.consumers.len()
    }

    /// The replay's live progress (every consumer's counters added up).
    pub fn status(&self) -> Arc<ConsumerStatus> {
        Arc::clone(&self.status)
    }

    /// Reads the range, hands it to the sinks, flushes them; returns what it did. With
    /// several consumers, each runs as a task of its own; the first error stops the others
    /// (what they made durable stays, and a replay again writes only what is missing).
    ///
    /// # Errors
    /// As [`Consumer::drain`].
    pub async fn run(self) -> Result<ConsumerReport, ConsumerError> {
        let started = Instant::now();
        let mut consumers = self.consumers;
        if consumers.len() == 1
            && let Some(only) = consumers.pop()
        {
            return only.drain().await;
        }
        let name = consumers
            .first()
            .map(|c| c.config().name.clone())
            .unwrap_or_default();
        let mut tasks = tokio::task::JoinSet::new();
        for c in consumers {
            tasks.spawn(c.drain());
        }
        let mut first: Option<ConsumerReport> = None;
        while let Some(joined) = tasks.join_next().await {
            let report = match joined {
                Ok(r) => r?,
                Err(e) => {
                    return Err(ConsumerError::Panicked {
                        consumer: name,
                        times: 1,
                        during: "a replay of one shard lineage".into(),
                        message: e.to_string(),
                    });
                }
            };
            first.get_or_insert(report);
        }
        let Some(first) = first else {
            return Err(ConsumerError::Config("a replay without consumers".into()));
        };
        Ok(ConsumerReport {
            status: self.status.snapshot(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..first
        })
    }
}

fn consumer(
    mut config: ConsumerConfig,
    stream: Arc<dyn Stream>,
    dead_letters: Arc<dyn DeadLetterStore>,
    sink: Box<dyn Sink>,
    range: ReplayRange,
    status: &Arc<ConsumerStatus>,
) -> Result<Consumer, ConsumerError> {
    // The bounded stream maps the starting position to the range's start in each shard.
    config.starting_position = StartingPosition::TrimHorizon;
    config.share_reads = false;
    let bounded: Arc<dyn Stream> = Arc::new(RangeStream::new(stream, range));
    Ok(Consumer::new(
        config,
        bounded,
        Arc::new(MemoryCheckpoints::default()),
        dead_letters,
        sink,
    )?
    .with_status(Arc::clone(status)))
}
