//! The local Kinesis event source mapping: reads a stream (any `Stream` port: the embedded
//! log, `shardline serve`, Kinesis) like Lambda's ESM and invokes a function with
//! KinesisEvent batches in AWS's exact JSON.
//!
//! LocalStack's ESM implements neither BisectBatchOnFunctionError, ParallelizationFactor nor
//! tumbling windows; this one implements every setting of [`MappingConfig`] with AWS's rules
//! (see [`batch`] and [`shard`] for them, and where AWS's behaviour is not documented, what
//! the runner does).
//!
//! # Invariants
//! - A record is checkpointed only once it is done: the function succeeded with it, or it was
//!   given up on and described to the OnFailure destination (which must accept the record).
//! - Records of one partition key reach the function in sequence order, one batch at a time.
//! - A child shard is read once its parents are finished.
//!
//! # Layout
//! - [`config`]: the mapping's settings, [`MappingConfig`].
//! - [`checkpoints`]: [`MappingCheckpoints`], the mapping's own checkpoint file.
//! - [`on_failure`]: AWS's OnFailure record and the destinations.
//! - [`batch`]: one batch until done (retries, partial responses, bisection, record age).
//! - [`shard`]: reading a shard, batching, parallelization, tumbling windows.
//! - [`stats`]: the live counters, [`EsmStats`].

pub mod batch;
pub mod checkpoints;
pub mod config;
pub mod on_failure;
pub mod shard;
pub mod stats;

use shardline_core::ports::Stream;
use shardline_core::time::{Clock, SystemClock};
use shardline_core::{SequenceNumber, ShardId};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

pub use checkpoints::MappingCheckpoints;
pub use config::MappingConfig;
pub use on_failure::{Condition, Destination, MappingIdentity};
pub use stats::{EsmCounts, EsmStats};

use crate::invoke::Invoker;
use crate::kinesis::{EventSource, stream_arn};

/// Why a mapping stopped.
#[derive(Debug, thiserror::Error)]
pub enum EsmError {
    /// The mapping's settings cannot run.
    #[error("{0}")]
    Config(String),
    /// Reading the stream failed.
    #[error("stream {stream}: {what}")]
    Stream {
        /// The stream.
        stream: String,
        /// What failed.
        what: String,
    },
    /// A shard could not be read.
    #[error("{shard}: {what}")]
    Shard {
        /// The shard.
        shard: ShardId,
        /// What failed.
        what: String,
    },
    /// The OnFailure destination refused a record: the shard stops before it.
    #[error("{shard}: OnFailure destination: {what}")]
    OnFailure {
        /// The shard.
        shard: ShardId,
        /// What failed.
        what: String,
    },
    /// The checkpoint file could not be written.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// When [`EsmRunner::run`] returns.
#[derive(Debug, Clone)]
pub enum Until {
    /// Once every shard is caught up with nothing left to invoke.
    CaughtUp,
    /// When the receiver turns `true` (or its sender is dropped).
    Shutdown(watch::Receiver<bool>),
}

impl Until {
    fn stopped(&self) -> bool {
        match self {
            Until::CaughtUp => false,
            Until::Shutdown(rx) => *rx.borrow() || rx.has_changed().is_err(),
        }
    }

    fn when_caught_up(&self) -> bool {
        matches!(self, Until::CaughtUp)
    }
}

/// A mapping of one stream to one function.
pub struct EsmRunner {
    config: MappingConfig,
    stream: Arc<dyn Stream>,
    invoker: Arc<dyn Invoker>,
    on_failure: Option<Destination>,
    checkpoints: Mutex<MappingCheckpoints>,
    clock: Arc<dyn Clock>,
    source: EventSource,
    identity: MappingIdentity,
    stats: Arc<EsmStats>,
}

impl EsmRunner {
    /// A mapping of `config.stream` to `invoker`, keeping its checkpoints in `state_dir`.
    ///
    /// # Errors
    /// [`EsmError::Config`] naming a bad setting, or an unreadable checkpoint file.
    pub fn new(
        config: MappingConfig,
        stream: Arc<dyn Stream>,
        invoker: Arc<dyn Invoker>,
        on_failure: Option<Destination>,
        state_dir: &Path,
    ) -> Result<Self, EsmError> {
        config.validate().map_err(EsmError::Config)?;
        let checkpoints = MappingCheckpoints::open(state_dir).map_err(EsmError::Config)?;
        let source = EventSource::new(
            &config.stream,
            &config.region,
            &config.account,
            &format!("{}-role", config.function),
        );
        let identity = MappingIdentity {
            uuid: mapping_uuid(&config.function, &config.stream),
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                config.region, config.account, config.function
            ),
            stream_arn: stream_arn(&config.region, &config.account, &config.stream),
        };
        Ok(Self {
            config,
            stream,
            invoker,
            on_failure,
            checkpoints: Mutex::new(checkpoints),
            clock: Arc::new(SystemClock),
            source,
            identity,
            stats: Arc::new(EsmStats::default()),
        })
    }

    /// Uses `clock` for record ages, batching windows and tumbling windows.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<EsmStats> {
        Arc::clone(&self.stats)
    }

    /// The mapping's identity (UUID, ARNs).
    pub fn identity(&self) -> &MappingIdentity {
        &self.identity
    }

    /// Every shard's checkpoint now.
    pub async fn checkpoints(&self) -> Vec<(ShardId, SequenceNumber)> {
        let c = self.checkpoints.lock().await;
        c.all().iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    async fn checkpoint(&self, shard: ShardId) -> Option<SequenceNumber> {
        self.checkpoints.lock().await.get(shard).cloned()
    }

    async fn put_checkpoint(&self, shard: ShardId, seq: SequenceNumber) -> Result<(), EsmError> {
        self.checkpoints
            .lock()
            .await
            .put(shard, seq)
            .map_err(EsmError::Checkpoint)?;
        self.stats.checkpoint();
        Ok(())
    }

    /// Runs every shard (children after their parents) until `until`.
    ///
    /// # Errors
    /// The first error that stopped a shard; checkpoints written before it stay.
    pub async fn run(&self, until: Until) -> Result<EsmCounts, EsmError> {
        let shards = self
            .stream
            .list_shards(&self.config.stream)
            .await
            .map_err(|e| EsmError::Stream {
                stream: self.config.stream.clone(),
                what: format!("list_shards: {e}"),
            })?;
        let mut finished: BTreeSet<ShardId> = BTreeSet::new();
        let mut left = shards;
        // Generations: shards whose parents are finished (or unknown) run together.
        while !left.is_empty() {
            let known: BTreeSet<ShardId> = left.iter().map(|s| s.shard_id).collect();
            let (ready, wait): (Vec<_>, Vec<_>) = left.into_iter().partition(|s| {
                [s.parent_shard_id, s.adjacent_parent_shard_id]
                    .into_iter()
                    .flatten()
                    .all(|p| finished.contains(&p) || !known.contains(&p))
            });
            if ready.is_empty() {
                return Err(EsmError::Stream {
                    stream: self.config.stream.clone(),
                    what: "the shards' parent links form a cycle".into(),
                });
            }
            let runs = ready
                .iter()
                .map(|s| shard::ShardRun::new(self, s.shard_id).run(&until));
            for r in futures::future::join_all(runs).await {
                r?;
            }
            if until.stopped() {
                break;
            }
            finished.extend(ready.iter().map(|s| s.shard_id));
            left = wait;
        }
        Ok(self.stats.snapshot())
    }
}

/// A stable UUID for the mapping of `stream` to `function` (its checkpoint directory and its
/// OnFailure S3 keys name it).
pub fn mapping_uuid(function: &str, stream: &str) -> String {
    use md5::{Digest, Md5};
    let d = Md5::digest(format!("{function}\n{stream}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d);
    uuid::Builder::from_md5_bytes(b).into_uuid().to_string()
}
