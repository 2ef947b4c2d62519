//! The ports: one trait per external service the pipeline talks to.
//!
//! | port | embedded (`shardline-log`, `shardline-local`) | AWS |
//! |---|---|---|
//! | [`Stream`] | the embedded log | Kinesis Data Streams |
//! | [`CheckpointStore`] | redb table | DynamoDB lease table |
//! | [`ObjectStore`] | directory tree `<root>/<bucket>/<key>` | S3 |
//! | [`ItemTable`] | LSM tree (fjall) | DynamoDB |
//! | [`MetricPublisher`] | embedded metric store | CloudWatch |
//! | [`Notifier`] | stdout / JSON Lines outbox / webhook | SNS |
//! | [`DeadLetterStore`] | redb | S3 objects |
//! | [`StateStore`] | redb | DynamoDB |
//! | [`crate::lease::LeaseStore`] | redb table (in memory for tests) | DynamoDB lease table (KCL schema) |
//!
//! [`objects`] holds the object store's conditional-write, ranged-read and one-level-listing
//! types.
//!
//! Every method is async and returns [`crate::Error`], whose retry class tells the caller
//! whether to try again. Implementations are `Send + Sync` and shared behind `Arc<dyn _>`.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub mod objects;

pub use objects::{ByteRange, ObjectLevel, PutCondition, RangedObject};

use crate::error::Result;
use crate::stream::{
    GetRecordsOutput, PutRecordResult, PutRecordsEntry, SequenceNumber, ShardDescription, ShardId,
    ShardIterator, StartingPosition, StreamDescription,
};

mod dead_letter;

/// A Kinesis-style sharded log.
#[async_trait]
pub trait Stream: Send + Sync {
    /// Creates a stream of `shards` shards splitting the hash-key space evenly.
    async fn create_stream(&self, name: &str, shards: u32, retention: Duration) -> Result<()>;
    /// Deletes a stream and its data.
    async fn delete_stream(&self, name: &str) -> Result<()>;
    /// Names of all streams, sorted.
    async fn list_streams(&self) -> Result<Vec<String>>;
    /// Describes a stream and its shards.
    async fn describe_stream(&self, name: &str) -> Result<StreamDescription>;
    /// The stream's shards, open and closed.
    async fn list_shards(&self, name: &str) -> Result<Vec<ShardDescription>>;
    /// Appends up to 500 records (5 MiB). Results are positional: one per entry, and a failed
    /// entry does not fail the others. A whole-call error means nothing was appended.
    async fn put_records(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> Result<Vec<PutRecordResult>>;
    /// Resolves a starting position in one shard to an iterator.
    async fn get_shard_iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> Result<ShardIterator>;
    /// Reads up to `limit` records (at most 10,000 and 10 MiB) from an iterator.
    async fn get_records(&self, iterator: &ShardIterator, limit: usize)
    -> Result<GetRecordsOutput>;
    /// The shards that continue `shard` once it is closed (two after a split, one after a
    /// merge); empty while it is open. By default read from the lineage in
    /// [`Stream::list_shards`]; a backend that learns the children as a reader reaches the
    /// shard's end (Kinesis's ChildShards) answers from that.
    async fn child_shards(&self, name: &str, shard: ShardId) -> Result<Vec<ShardId>> {
        Ok(self
            .list_shards(name)
            .await?
            .into_iter()
            .filter(|s| {
                s.parent_shard_id == Some(shard) || s.adjacent_parent_shard_id == Some(shard)
            })
            .map(|s| s.shard_id)
            .collect())
    }
}

/// Identifies one consumer's progress in one shard of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckpointKey {
    /// The consumer (application) name.
    pub consumer: String,
    /// The stream.
    pub stream: String,
    /// The shard.
    pub shard: ShardId,
}

/// A consumer's progress in a shard, stored in the shape of a KCL lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last sequence number the consumer fully processed.
    pub sequence_number: SequenceNumber,
    /// The worker holding the lease, if any.
    pub lease_owner: Option<String>,
    /// Bumped on every write; conditional writes compare it.
    pub lease_counter: u64,
    /// When it was written, epoch milliseconds.
    pub updated_ms: i64,
}

/// Where each consumer got to in each shard.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The checkpoint for a key, if one was written.
    async fn get(&self, key: &CheckpointKey) -> Result<Option<Checkpoint>>;
    /// Atomically records `sequence_number` as processed for `key`.
    ///
    /// With `expected_counter`, the write happens only if the stored lease counter equals it
    /// (no checkpoint counts as 0); otherwise it fails with [`crate::Error::Conflict`].
    /// Returns the stored checkpoint with its new counter.
    async fn put(
        &self,
        key: &CheckpointKey,
        sequence_number: &SequenceNumber,
        owner: Option<&str>,
        expected_counter: Option<u64>,
    ) -> Result<Checkpoint>;
    /// Every checkpoint, optionally of one consumer, sorted by key.
    async fn list(&self, consumer: Option<&str>) -> Result<Vec<(CheckpointKey, Checkpoint)>>;
    /// Removes a consumer's checkpoints (all shards); returns how many were removed.
    async fn reset(&self, consumer: &str, stream: &str) -> Result<usize>;
}

/// An object's listing entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Its key within the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, epoch milliseconds.
    pub last_modified_ms: i64,
}

/// An S3-style object store.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Creates the bucket if it does not exist.
    async fn ensure_bucket(&self, bucket: &str) -> Result<()>;
    /// Writes a whole object atomically: readers see the old object or the new one, never part.
    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<()>;
    /// Reads a whole object; `None` if there is none.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>>;
    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, bucket: &str, key: &str) -> Result<()>;
    /// A local filesystem path for `bucket/key` when the store is a directory tree
    /// (so query engines can read it in place); `None` for remote stores.
    fn local_path(&self, bucket: &str, key: &str) -> Option<std::path::PathBuf> {
        let _ = (bucket, key);
        None
    }
    /// Reads a whole object with its version tag (S3's ETag); `None` if there is none.
    /// The default tags the bytes with [`objects::content_tag`].
    async fn get_versioned(&self, bucket: &str, key: &str) -> Result<Option<(Bytes, String)>> {
        Ok(self.get(bucket, key).await?.map(|body| {
            let tag = objects::content_tag(&body);
            (body, tag)
        }))
    }
    /// Writes a whole object only if `condition` holds, and returns its new version tag. A
    /// condition that does not hold changes nothing and fails with [`crate::Error::Conflict`].
    ///
    /// Backends make the check and the write one atomic step (S3's conditional PutObject;
    /// the embedded store under its lock). The default reads, compares and writes: atomic
    /// only when nothing else writes the key, which is what wrappers in tests rely on.
    async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<String> {
        objects::compare_and_put(self, bucket, key, body, content_type, &condition).await
    }
    /// Reads part of an object; `None` if there is none. The default reads the whole object.
    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: ByteRange,
    ) -> Result<Option<RangedObject>> {
        let Some(body) = self.get(bucket, key).await? else {
            return Ok(None);
        };
        let size = body.len() as u64;
        let r = range.resolve(size)?;
        Ok(Some(RangedObject {
            bytes: body.slice(r.start as usize..r.end as usize),
            start: r.start,
            size,
            last_modified_ms: 0,
        }))
    }
    /// One level of the objects under `prefix` (which ends with `/` or is empty): the
    /// objects directly under it and the prefixes one `/` deeper, as S3's ListObjectsV2 with
    /// a delimiter. The default derives it from [`ObjectStore::list`].
    async fn list_level(&self, bucket: &str, prefix: &str) -> Result<ObjectLevel> {
        Ok(ObjectLevel::from_listing(
            prefix,
            self.list(bucket, prefix).await?,
        ))
    }
}

/// A DynamoDB attribute value (the subset the pipeline uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttributeValue {
    /// String.
    S(String),
    /// Number, as its decimal text (DynamoDB keeps numbers as text).
    N(String),
    /// Binary.
    B(Vec<u8>),
    /// Boolean.
    Bool(bool),
    /// Null.
    Null,
}

impl AttributeValue {
    /// The string, if this is an `S`.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            AttributeValue::S(s) => Some(s),
            _ => None,
        }
    }

    /// The number as f64, if this is an `N`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttributeValue::N(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// The number as i64, if this is an integral `N`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttributeValue::N(n) => n.parse().ok(),
            _ => None,
        }
    }
}

pub use crate::item::{AttrName, Item};

/// Key attribute types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    /// String key.
    S,
    /// Number key (ordered numerically).
    N,
}

/// A table's key schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    /// Table name.
    pub name: String,
    /// Partition (hash) key attribute name and type.
    pub partition_key: (String, KeyType),
    /// Sort (range) key attribute name and type.
    pub sort_key: Option<(String, KeyType)>,
}

/// A query on one partition, optionally bounded on the sort key (inclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemQuery {
    /// Table name.
    pub table: String,
    /// The partition key value.
    pub partition: AttributeValue,
    /// Lowest sort key, inclusive.
    pub sort_from: Option<AttributeValue>,
    /// Highest sort key, inclusive.
    pub sort_to: Option<AttributeValue>,
    /// Most items to return.
    pub limit: Option<usize>,
}

/// The items of one [`ItemTable::batch_put_iter`].
pub type ItemIter = Box<dyn Iterator<Item = Item> + Send>;

/// An attribute value lent to a table: the text of a string, or the decimal text of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrRef<'a> {
    /// String.
    S(&'a str),
    /// Number, as its decimal text.
    N(&'a str),
}

impl AttrRef<'_> {
    /// The owned value.
    pub fn to_value(self) -> AttributeValue {
        match self {
            AttrRef::S(s) => AttributeValue::S(s.to_string()),
            AttrRef::N(n) => AttributeValue::N(n.to_string()),
        }
    }
}

impl AttributeValue {
    /// The value lent as an [`AttrRef`], for strings and numbers.
    pub fn attr_ref(&self) -> Option<AttrRef<'_>> {
        match self {
            AttributeValue::S(s) => Some(AttrRef::S(s)),
            AttributeValue::N(n) => Some(AttrRef::N(n)),
            AttributeValue::B(_) | AttributeValue::Bool(_) | AttributeValue::Null => None,
        }
    }
}

/// Items a table can read attribute by attribute, so a backend that encodes items itself
/// (the embedded table) does not build an [`Item`] (a string per attribute) for each.
pub trait ItemSource: Send + Sync {
    /// How many items.
    fn len(&self) -> usize;

    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with every attribute of item `i` (`i < len()`), in name order (the order an
    /// [`Item`] keeps), each name once.
    fn visit(&self, i: usize, f: &mut dyn FnMut(&str, AttrRef<'_>));

    /// Item `i` built whole, from the same attributes [`ItemSource::visit`] gives.
    fn item(&self, i: usize) -> Item {
        let mut item = Item::with_capacity(16);
        self.visit(i, &mut |name, value| {
            item.insert(AttrName::from(name.to_string()), value.to_value());
        });
        item
    }
}

/// A DynamoDB-style table.
#[async_trait]
pub trait ItemTable: Send + Sync {
    /// Creates the table with this schema if missing; an existing table must match.
    async fn ensure_table(&self, schema: &TableSchema) -> Result<()>;
    /// Puts items (replacing any with the same key). Any number of items: implementations
    /// chunk into 25-item batches and retry unprocessed items.
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<()>;
    /// [`ItemTable::batch_put`] with the items made as the table takes them, so a large batch
    /// is never held whole as [`Item`]s (each can be encoded and dropped in turn).
    async fn batch_put_iter(&self, table: &str, items: ItemIter) -> Result<()> {
        self.batch_put(table, items.collect()).await
    }
    /// [`ItemTable::batch_put`] of the items of `items`; a backend that encodes items itself
    /// reads them attribute by attribute (by default each is built as an [`Item`]).
    async fn batch_put_source(
        &self,
        table: &str,
        items: std::sync::Arc<dyn ItemSource>,
    ) -> Result<()> {
        let n = items.len();
        self.batch_put_iter(table, Box::new((0..n).map(move |i| items.item(i))))
            .await
    }
    /// Items of one partition in sort-key order.
    async fn query(&self, query: &ItemQuery) -> Result<Vec<Item>>;
    /// How many items the table holds (a full scan on remote backends).
    async fn count(&self, table: &str) -> Result<u64>;
}

/// CloudWatch's statistic set: a pre-aggregated group of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatisticSet {
    /// How many samples.
    pub sample_count: f64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub minimum: f64,
    /// The largest.
    pub maximum: f64,
}

/// One datum for put_metric_data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDatum {
    /// Metric name (the metric type).
    pub metric_name: String,
    /// Dimensions, name to value (`Region`, `InstanceID`).
    pub dimensions: BTreeMap<String, String>,
    /// Time of the aggregation period, epoch milliseconds.
    pub timestamp_ms: i64,
    /// CloudWatch unit (`Percent`, `Megabits/Second`).
    pub unit: String,
    /// The samples.
    pub values: StatisticSet,
}

/// A get_metric_statistics request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatisticsQuery {
    /// Namespace (`InfraMonitoring`).
    pub namespace: String,
    /// Metric name.
    pub metric_name: String,
    /// Exact dimensions to match.
    pub dimensions: BTreeMap<String, String>,
    /// Start, inclusive, epoch milliseconds.
    pub start_ms: i64,
    /// End, exclusive, epoch milliseconds.
    pub end_ms: i64,
    /// Period, seconds (a multiple of 60).
    pub period_secs: u32,
}

/// One period's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    /// Start of the period, epoch milliseconds.
    pub timestamp_ms: i64,
    /// Samples aggregated over the period.
    pub values: StatisticSet,
}

impl Datapoint {
    /// Sum divided by sample count.
    pub fn average(&self) -> f64 {
        if self.values.sample_count > 0.0 {
            self.values.sum / self.values.sample_count
        } else {
            0.0
        }
    }
}

/// A named progress marker stored with published data: "everything up to this sequence
/// number of this shard has been applied". Sinks skip records at or below it on replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Whose progress, e.g. `cloudwatch/metrics/shardId-000000000000`.
    pub key: String,
    /// The last sequence number applied.
    pub sequence_number: SequenceNumber,
}

/// A CloudWatch-style metric store.
#[async_trait]
pub trait MetricPublisher: Send + Sync {
    /// Publishes data in one namespace (implementations chunk to 1,000 datums per call) and
    /// records `watermark` — atomically with the data where the backend allows (the embedded
    /// store does), else right after it.
    async fn put_metric_data(
        &self,
        namespace: &str,
        data: Vec<MetricDatum>,
        watermark: Option<&Watermark>,
    ) -> Result<()>;
    /// Most datums one `put_metric_data` should carry, given calls of at most `per_call`
    /// datums: what lands together with its watermark. Where each call is a request of its
    /// own (CloudWatch), one call's worth, the default. A backend that applies a whole put in
    /// one transaction (the embedded store) takes more, so a sink whose shard holds more
    /// series than one call carries still publishes many records per put.
    fn max_datums_per_put(&self, per_call: usize) -> usize {
        per_call
    }
    /// The last watermark stored under `key`.
    async fn watermark(&self, key: &str) -> Result<Option<SequenceNumber>>;
    /// Statistics per period, oldest first; periods with no data are left out.
    async fn get_metric_statistics(&self, query: &StatisticsQuery) -> Result<Vec<Datapoint>>;
}

/// A notification to publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The topic (an SNS topic ARN or name).
    pub topic: String,
    /// Subject line (at most 100 characters on SNS).
    pub subject: String,
    /// The message body.
    pub message: String,
    /// Message attributes.
    pub attributes: BTreeMap<String, String>,
    /// A deterministic id (SNS FIFO's MessageDeduplicationId): a notification whose id was
    /// already published is not sent again, so replays and restarts notify once.
    pub deduplication_id: Option<String>,
}

/// An SNS-style notifier.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Publishes and returns a message id.
    async fn publish(&self, notification: &Notification) -> Result<String>;
}

/// Small durable key-value state for sinks (alarm states, manifests' indexes, ledgers).
/// Keys are grouped in namespaces; values are opaque bytes (JSON by convention).
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The value under `namespace`/`key`.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Bytes>>;
    /// Writes several keys of one namespace atomically.
    async fn put_many(&self, namespace: &str, entries: Vec<(String, Bytes)>) -> Result<()>;
    /// Every entry of a namespace whose key starts with `prefix`, sorted by key.
    async fn list(&self, namespace: &str, prefix: &str) -> Result<Vec<(String, Bytes)>>;
    /// Removes a key; removing a missing key is not an error.
    async fn delete(&self, namespace: &str, key: &str) -> Result<()>;
    /// Removes several keys of one namespace (atomically where the store can; missing keys
    /// are not an error). The default removes them one by one.
    async fn delete_many(&self, namespace: &str, keys: Vec<String>) -> Result<()> {
        for key in &keys {
            self.delete(namespace, key).await?;
        }
        Ok(())
    }
}

pub use dead_letter::{DataEncoding, DeadLetter};

/// Where invalid records go. Writes are idempotent on (consumer, stream, shard, sequence number).
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Stores dead letters.
    async fn put(&self, letters: Vec<DeadLetter>) -> Result<()>;
    /// Dead letters, optionally of one consumer, oldest first.
    async fn list(&self, consumer: Option<&str>) -> Result<Vec<DeadLetter>>;
    /// How many dead letters, optionally of one consumer.
    async fn count(&self, consumer: Option<&str>) -> Result<u64>;
}
