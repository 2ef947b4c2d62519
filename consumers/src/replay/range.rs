//! [`ReplayRange`] and [`RangeStream`]: the part of a stream a replay reads.
//!
//! Bounds follow Kinesis: a time is a record's arrival time (what AT_TIMESTAMP seeks by), a
//! sequence number belongs to one shard. The start is inclusive (AT_TIMESTAMP,
//! AT_SEQUENCE_NUMBER), and so is the end: a shard's range ends with its last record that
//! arrived at or before the end time, or at the end sequence number. Past its end a shard reads
//! as a closed shard read to its end (no next iterator).
//!
//! Iterators handed out are the inner stream's, prefixed with the shard index (`<index>:`), so
//! [`RangeStream::get_records`] knows which shard's end applies.

use async_trait::async_trait;
use shardline_core::ports::Stream;
use shardline_core::stream::{
    GetRecordsOutput, PutRecordResult, PutRecordsEntry, ShardDescription, StreamDescription,
};
use shardline_core::{Error, Result, SequenceNumber, ShardId, ShardIterator, StartingPosition};
use std::sync::Arc;
use std::time::Duration;

/// Where a replay starts in each shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeStart {
    /// The oldest retained record.
    TrimHorizon,
    /// The first record that arrived at or after this time (epoch ms).
    Time(i64),
    /// This record (of its shard; other shards are not read).
    Sequence(SequenceNumber),
}

/// Where a replay ends, inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeEnd {
    /// After the last record that arrived at or before this time (epoch ms).
    Time(i64),
    /// After this record (of its shard).
    Sequence(SequenceNumber),
}

/// The records a replay reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRange {
    /// Start in every shard read.
    pub start: RangeStart,
    /// End in every shard read.
    pub end: RangeEnd,
    /// Only these shards (all when `None`).
    pub shards: Option<Vec<ShardId>>,
}

impl ReplayRange {
    /// Whether shard `id` is read.
    pub fn includes(&self, id: ShardId) -> bool {
        self.shards.as_ref().is_none_or(|s| s.contains(&id))
    }

    /// The starting position in shard `id`.
    pub fn start_position(&self) -> StartingPosition {
        match &self.start {
            RangeStart::TrimHorizon => StartingPosition::TrimHorizon,
            RangeStart::Time(ms) => StartingPosition::AtTimestamp(*ms),
            RangeStart::Sequence(s) => StartingPosition::AtSequenceNumber(s.clone()),
        }
    }

    /// Whether a record is past the end.
    fn past_end(&self, seq: &SequenceNumber, arrival_ms: i64) -> bool {
        match &self.end {
            RangeEnd::Time(ms) => arrival_ms > *ms,
            RangeEnd::Sequence(s) => seq > s,
        }
    }
}

/// A stream seen through a [`ReplayRange`]; writes are refused.
pub struct RangeStream {
    inner: Arc<dyn Stream>,
    range: ReplayRange,
}

impl RangeStream {
    /// `inner` bounded by `range`.
    pub fn new(inner: Arc<dyn Stream>, range: ReplayRange) -> Self {
        Self { inner, range }
    }
}

fn wrap(shard: ShardId, it: ShardIterator) -> ShardIterator {
    ShardIterator(format!("{}:{}", shard.index(), it.0))
}

fn unwrap(it: &ShardIterator) -> Result<(ShardId, ShardIterator)> {
    let (idx, inner) =
        it.0.split_once(':')
            .ok_or_else(|| Error::InvalidArgument("not a replay iterator".into()))?;
    let idx: u32 = idx
        .parse()
        .map_err(|_| Error::InvalidArgument("not a replay iterator".into()))?;
    Ok((ShardId(idx), ShardIterator(inner.to_string())))
}

#[async_trait]
impl Stream for RangeStream {
    async fn create_stream(&self, _: &str, _: u32, _: Duration) -> Result<()> {
        Err(Error::InvalidArgument(
            "a replay does not create streams".into(),
        ))
    }

    async fn delete_stream(&self, _: &str) -> Result<()> {
        Err(Error::InvalidArgument(
            "a replay does not delete streams".into(),
        ))
    }

    async fn list_streams(&self) -> Result<Vec<String>> {
        self.inner.list_streams().await
    }

    async fn describe_stream(&self, name: &str) -> Result<StreamDescription> {
        self.inner.describe_stream(name).await
    }

    async fn list_shards(&self, name: &str) -> Result<Vec<ShardDescription>> {
        let mut shards = self.inner.list_shards(name).await?;
        shards.retain(|s| self.range.includes(s.shard_id));
        // Parents left out of the range must not hold their children back.
        let ids: Vec<ShardId> = shards.iter().map(|s| s.shard_id).collect();
        for s in &mut shards {
            s.parent_shard_id = s.parent_shard_id.filter(|p| ids.contains(p));
            s.adjacent_parent_shard_id = s.adjacent_parent_shard_id.filter(|p| ids.contains(p));
        }
        Ok(shards)
    }

    async fn put_records(&self, _: &str, _: Vec<PutRecordsEntry>) -> Result<Vec<PutRecordResult>> {
        Err(Error::InvalidArgument("a replay does not append".into()))
    }

    async fn get_shard_iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> Result<ShardIterator> {
        // The consumer asks for its starting position (TRIM_HORIZON) only where it has no
        // position yet: that is the range's start.
        let position = match position {
            StartingPosition::TrimHorizon => self.range.start_position(),
            other => other.clone(),
        };
        let it = self
            .inner
            .get_shard_iterator(name, shard, &position)
            .await?;
        Ok(wrap(shard, it))
    }

    async fn get_records(
        &self,
        iterator: &ShardIterator,
        limit: usize,
    ) -> Result<GetRecordsOutput> {
        let (shard, inner) = unwrap(iterator)?;
        let mut out = self.inner.get_records(&inner, limit).await?;
        if let Some(cut) = out.records.iter().position(|r| {
            self.range
                .past_end(&r.sequence_number, r.approximate_arrival_ms)
        }) {
            out.records.truncate(cut);
            out.next_iterator = None;
            out.millis_behind_latest = 0;
        } else if let (RangeEnd::Sequence(end), Some(last)) = (&self.range.end, out.records.last())
            && last.sequence_number >= *end
        {
            out.next_iterator = None;
            out.millis_behind_latest = 0;
        }
        out.next_iterator = out.next_iterator.map(|it| wrap(shard, it));
        Ok(out)
    }
}
