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
//! Dead letters are stored under the consumer's own name: the dead-letter store keeps one per
//! (consumer, stream, shard, sequence number), so replaying a range adds none twice. Sinks are
//! idempotent (see [`crate::sink`]), so replaying records they already applied changes nothing.
//!
//! # Layout
//! - [`range`] — [`ReplayRange`] and [`RangeStream`].
//! - [`memory`] — [`MemoryCheckpoints`].

pub mod memory;
pub mod range;

pub use memory::MemoryCheckpoints;
pub use range::{RangeEnd, RangeStart, RangeStream, ReplayRange};

use shardline_core::StartingPosition;
use shardline_core::ports::{DeadLetterStore, Stream};
use std::sync::Arc;

use crate::Sink;
use crate::runtime::{Consumer, ConsumerConfig, ConsumerError, ConsumerReport, ConsumerStatus};

/// A consumer set up to replay a range; [`Replay::run`] drains it.
#[derive(Debug)]
pub struct Replay {
    consumer: Consumer,
}

impl Replay {
    /// A replay of `range` through `sink`, as consumer `config.name` (its dead letters) but
    /// with checkpoints of its own. Reads are not shared with live consumers.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] when the configuration cannot run.
    pub fn new(
        mut config: ConsumerConfig,
        stream: Arc<dyn Stream>,
        dead_letters: Arc<dyn DeadLetterStore>,
        sink: Box<dyn Sink>,
        range: ReplayRange,
    ) -> Result<Replay, ConsumerError> {
        // The bounded stream maps the starting position to the range's start in each shard.
        config.starting_position = StartingPosition::TrimHorizon;
        config.share_reads = false;
        let bounded: Arc<dyn Stream> = Arc::new(RangeStream::new(stream, range));
        let consumer = Consumer::new(
            config,
            bounded,
            Arc::new(MemoryCheckpoints::default()),
            dead_letters,
            sink,
        )?;
        Ok(Replay { consumer })
    }

    /// The replay's live progress.
    pub fn status(&self) -> Arc<ConsumerStatus> {
        self.consumer.status()
    }

    /// Reads the range, hands it to the sink, flushes it; returns what it did.
    ///
    /// # Errors
    /// As [`Consumer::drain`].
    pub async fn run(self) -> Result<ConsumerReport, ConsumerError> {
        self.consumer.drain().await
    }
}
