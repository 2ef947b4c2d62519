//! Why a consumer stopped.

use shardline_core::ShardId;

/// An error that stops a consumer. Each names the stream, shard or sink involved.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The configuration cannot be run; the message names the setting.
    #[error("invalid consumer configuration: {0}")]
    Config(String),
    /// A stream call failed permanently or ran out of retries.
    #[error("stream {stream}: {op} failed: {source}")]
    Stream {
        /// The stream.
        stream: String,
        /// The call, e.g. `get_records on shardId-000000000000`.
        op: String,
        /// The port's error.
        #[source]
        source: shardline_core::Error,
    },
    /// The sink rejected a batch permanently or ran out of retries. Nothing past the last
    /// durable record is checkpointed; fix the cause and restart to resume there.
    #[error("sink {sink} failed on {shard}: {source}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// The shard whose batch failed.
        shard: ShardId,
        /// The sink's error.
        #[source]
        source: shardline_core::Error,
    },
    /// The sink failed to write out its buffers permanently or ran out of retries.
    #[error("sink {sink} failed to flush: {source}")]
    SinkFlush {
        /// The sink's name.
        sink: String,
        /// The sink's error.
        #[source]
        source: shardline_core::Error,
    },
    /// Writing dead letters failed; the shard cannot move past the invalid records.
    #[error("dead-letter store failed for {shard}: {source}")]
    DeadLetter {
        /// The shard whose invalid records could not be stored.
        shard: ShardId,
        /// The store's error.
        #[source]
        source: shardline_core::Error,
    },
    /// A fresh consumer could not be built (its sink, say) when the supervisor started it.
    #[error("cannot start consumer {consumer}: {reason}")]
    Start {
        /// The consumer's name.
        consumer: String,
        /// Why, with the setting or file involved.
        reason: String,
    },
    /// The consumer panicked again and again without progress, at no record that could be set
    /// aside (a flush, say). Nothing past its checkpoint is lost: fix the sink and restart.
    #[error("consumer {consumer} panicked {times} times in a row, last during {during}: {message}")]
    Panicked {
        /// The consumer's name.
        consumer: String,
        /// Panics in a row.
        times: u64,
        /// What it was doing, e.g. `a flush of the sink's buffers`.
        during: String,
        /// The last panic's message.
        message: String,
    },
    /// The worker lost the lease of a shard this consumer was reading (another worker took it,
    /// or it could not be renewed in time): the consumer stops writing at once, and is started
    /// again without that shard.
    #[error("lease of {shard} lost: consumer {consumer} stops writing for it")]
    LeaseLost {
        /// The consumer's name.
        consumer: String,
        /// The shard.
        shard: ShardId,
    },
    /// Reading or writing a checkpoint failed.
    #[error("checkpoint of {shard} failed: {source}")]
    Checkpoint {
        /// The shard.
        shard: ShardId,
        /// The store's error.
        #[source]
        source: shardline_core::Error,
    },
}

/// Result alias for the runtime.
pub type Result<T, E = ConsumerError> = std::result::Result<T, E>;
