//! The [`Stream`] port on Kinesis Data Streams.
//!
//! # Layout
//! - `admin`: create, delete, list and describe streams.
//! - `shards`: ListShards with pagination, and a short-lived cache of the listing used to
//!   tell a closed shard's end where the endpoint never ends its iterator (moto).
//! - `put`: PutRecords, retrying only the failed entries.
//! - `read`: GetShardIterator for every iterator type, and GetRecords that renews an expired
//!   iterator, backs off on throttling and ends a closed shard with its children.
//!
//! # Invariants
//! - A [`ShardIterator`] handed out is `sl1:<stream>:<shard index>:<resume>:<Kinesis
//!   iterator>`, where `<resume>` is where to start again if the Kinesis iterator expires:
//!   after the last record returned, else the position the iterator was made for.
//! - `get_records` returns `next_iterator: None` exactly at the end of a closed shard, and
//!   from then on [`Stream::child_shards`] names the shard's children.

mod admin;
mod put;
mod read;
mod shards;

use async_trait::async_trait;
use shardline_core::ports::Stream;
use shardline_core::stream::{
    GetRecordsOutput, PutRecordResult, PutRecordsEntry, ShardDescription, StartingPosition,
    StreamDescription,
};
use shardline_core::{Result, ShardId, ShardIterator};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::AwsClients;
use crate::config::RetryConfig;
use crate::error::{Call, Service};

pub use put::PutStats;

/// Children of fully read closed shards, by (stream, shard).
type ChildShards = HashMap<(String, ShardId), Vec<ShardId>>;

/// What the adapter retried and renewed, for tests and status lines.
#[derive(Debug, Default)]
pub struct KinesisStats {
    /// PutRecords entries sent again after failing.
    pub entries_retried: AtomicU64,
    /// Retry rounds of PutRecords (requests after the first for one `put_records`).
    pub put_retry_rounds: AtomicU64,
    /// Keys whose later entry landed before an earlier failed one (see `put`).
    pub keys_reordered: AtomicU64,
    /// Expired iterators renewed from the last sequence number.
    pub iterators_renewed: AtomicU64,
    /// GetRecords calls retried after throttling (beyond the SDK's own attempts).
    pub read_throttles: AtomicU64,
}

impl KinesisStats {
    /// A copy of the counts.
    pub fn snapshot(&self) -> PutStats {
        PutStats {
            entries_retried: self.entries_retried.load(Ordering::Relaxed),
            put_retry_rounds: self.put_retry_rounds.load(Ordering::Relaxed),
            keys_reordered: self.keys_reordered.load(Ordering::Relaxed),
            iterators_renewed: self.iterators_renewed.load(Ordering::Relaxed),
            read_throttles: self.read_throttles.load(Ordering::Relaxed),
        }
    }
}

/// Kinesis Data Streams as a [`Stream`].
#[derive(Debug, Clone)]
pub struct KinesisStream {
    client: aws_sdk_kinesis::Client,
    region: String,
    retry: RetryConfig,
    shard_cache_ttl: Duration,
    list_page: i32,
    token_with_name: Arc<AtomicBool>,
    shard_cache: Arc<Mutex<HashMap<String, shards::Listing>>>,
    children: Arc<Mutex<ChildShards>>,
    stats: Arc<KinesisStats>,
}

impl KinesisStream {
    /// The adapter over the clients' Kinesis client.
    pub fn new(clients: &AwsClients) -> Self {
        KinesisStream {
            client: clients.kinesis.clone(),
            region: clients.region.clone(),
            retry: clients.config.retry.clone(),
            shard_cache_ttl: clients.config.kinesis.shard_cache_ttl,
            list_page: 1000,
            token_with_name: Arc::default(),
            shard_cache: Arc::default(),
            children: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// The adapter asking ListShards for `page` shards per call instead of 1,000 (Kinesis's
    /// most), e.g. to see its pagination at work on a small stream.
    pub fn with_list_shards_page(mut self, page: i32) -> Self {
        self.list_page = page.clamp(1, 10_000);
        self
    }

    /// What was retried and renewed so far.
    pub fn stats(&self) -> PutStats {
        self.stats.snapshot()
    }

    fn call(&self, action: &'static str, stream: &str) -> Call<'_> {
        Call {
            service: Service::Kinesis,
            action,
            target: format!("stream \"{stream}\""),
            region: &self.region,
        }
    }
}

#[async_trait]
impl Stream for KinesisStream {
    async fn create_stream(&self, name: &str, shards: u32, retention: Duration) -> Result<()> {
        self.create(name, shards, retention).await
    }

    async fn delete_stream(&self, name: &str) -> Result<()> {
        self.delete(name).await
    }

    async fn list_streams(&self) -> Result<Vec<String>> {
        self.list_stream_names().await
    }

    async fn describe_stream(&self, name: &str) -> Result<StreamDescription> {
        self.describe(name).await
    }

    async fn list_shards(&self, name: &str) -> Result<Vec<ShardDescription>> {
        self.list_all_shards(name).await
    }

    async fn put_records(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> Result<Vec<PutRecordResult>> {
        self.put_with_retries(name, entries).await
    }

    async fn get_shard_iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> Result<ShardIterator> {
        self.iterator(name, shard, position).await
    }

    async fn get_records(
        &self,
        iterator: &ShardIterator,
        limit: usize,
    ) -> Result<GetRecordsOutput> {
        self.read(iterator, limit).await
    }

    async fn child_shards(&self, name: &str, shard: ShardId) -> Result<Vec<ShardId>> {
        let known = self
            .children
            .lock()
            .ok()
            .and_then(|c| c.get(&(name.to_string(), shard)).cloned());
        match known {
            Some(children) => Ok(children),
            None => Ok(shards::children_in(
                &self.list_all_shards(name).await?,
                shard,
            )),
        }
    }
}
