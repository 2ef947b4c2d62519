//! The [`shardline_core::ports::Stream`] port over [`Log`]: describing, iterators, reads.
//! (Appends are in `put`, resharding in `reshard`.)
//!
//! A closed shard (split or merged) describes its ending sequence number: the number of its
//! last offset at its closing second, at or above every record's. Reading a closed shard up to
//! its end returns no next iterator; the caller goes on with the children
//! ([`Log::children`]). In the opt-in limits mode each shard serves 5 reads a second and
//! 2 MiB/s (see `throttle`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shardline_core::ports::Stream;
use shardline_core::stream::{
    GetRecordsOutput, PutRecordResult, PutRecordsEntry, Record, SequenceParts, ShardDescription,
    ShardId, ShardIterator, StartingPosition, StreamDescription, StreamStatus, limits,
};

use crate::error::LogError;
use crate::iterator::Position;
use crate::log::{Log, StreamHandle, lock};
use crate::meta::ShardMeta;
use crate::put::parts;
use crate::seqrun::SeqRun;
use crate::shard::Shard;

/// The ending sequence number of a closed shard: its last offset at its closing second.
pub(crate) fn ending_sequence(sm: &ShardMeta) -> Option<shardline_core::SequenceNumber> {
    sm.closed.map(|c| {
        SequenceParts {
            shard_index: sm.shard_id.index(),
            offset: c.end_offset.saturating_sub(1),
            shard_created_secs: sm.created_secs,
            arrival_secs: u64::try_from(c.closed_ms.div_euclid(1000)).unwrap_or(0),
        }
        .encode()
    })
}

pub(crate) fn describe_shard(sm: &ShardMeta) -> ShardDescription {
    ShardDescription {
        shard_id: sm.shard_id,
        hash_key_range: sm.hash_key_range,
        parent_shard_id: sm.parent_shard_id,
        adjacent_parent_shard_id: sm.adjacent_parent_shard_id,
        starting_sequence_number: SequenceParts {
            shard_index: sm.shard_id.index(),
            offset: 0,
            shard_created_secs: sm.created_secs,
            arrival_secs: sm.created_secs,
        }
        .encode(),
        ending_sequence_number: ending_sequence(sm),
    }
}

fn describe_shards(s: &StreamHandle) -> Vec<ShardDescription> {
    s.meta.shards.iter().map(describe_shard).collect()
}

impl Log {
    pub(crate) fn shard_of(
        &self,
        s: &StreamHandle,
        shard: ShardId,
    ) -> Result<(Arc<Shard>, ShardMeta), LogError> {
        s.position(shard)
            .map(|i| (s.shards[i].shard.clone(), s.meta.shards[i].clone()))
            .ok_or_else(|| LogError::ShardNotFound {
                stream: s.meta.name.clone(),
                shard: shard.to_string(),
            })
    }

    /// The shards created from `shard` by a split or merge (empty while it is open).
    ///
    /// # Errors
    /// Unknown stream.
    pub fn children(&self, name: &str, shard: ShardId) -> Result<Vec<ShardDescription>, LogError> {
        let s = self.inner.stream(name)?;
        Ok(s.meta
            .shards
            .iter()
            .filter(|c| {
                c.parent_shard_id == Some(shard) || c.adjacent_parent_shard_id == Some(shard)
            })
            .map(describe_shard)
            .collect())
    }

    /// get_shard_iterator with the log's own error type.
    ///
    /// # Errors
    /// Unknown stream or shard; a sequence number of another shard or past the end.
    pub async fn iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> Result<ShardIterator, LogError> {
        let s = self.inner.stream(name)?;
        let (sh, _) = self.shard_of(&s, shard)?;
        let (trim, next) = {
            let v = sh.read_view();
            (v.trim_offset(), v.next_offset())
        };
        // A sequence number whose arrival second is before its shard's creation is a marker
        // (see `position_marker`): it stands just before its offset, which AT and AFTER both
        // resolve to. Any other resolves to its record: AT at it, AFTER just past it.
        let at_seq = |q: &shardline_core::SequenceNumber| -> Result<(u64, bool), LogError> {
            let p = q
                .parts()
                .map_err(|e| LogError::InvalidArgument(e.to_string()))?;
            if p.shard_index != shard.index() {
                return Err(LogError::InvalidArgument(format!(
                    "sequence number {q} belongs to shardId-{:012}, not {shard}",
                    p.shard_index
                )));
            }
            let marker = p.arrival_secs < sh.created_secs;
            if p.offset > next || (p.offset == next && !marker) {
                return Err(LogError::InvalidArgument(format!(
                    "sequence number {q} is past the newest record of {shard} in \"{name}\""
                )));
            }
            Ok((p.offset, marker))
        };
        let offset = match position {
            StartingPosition::TrimHorizon => trim,
            StartingPosition::Latest => next,
            StartingPosition::AtSequenceNumber(q) => at_seq(q)?.0.max(trim),
            StartingPosition::AfterSequenceNumber(q) => {
                let (o, marker) = at_seq(q)?;
                (if marker { o } else { o + 1 }).max(trim)
            }
            StartingPosition::AtTimestamp(ms) => {
                let (sh2, ms) = (sh.clone(), *ms);
                tokio::task::spawn_blocking(move || sh2.offset_at_time(ms))
                    .await
                    .map_err(|e| LogError::Unavailable(format!("seek task failed: {e}")))??
            }
        };
        Ok(Position {
            stream: name.to_string(),
            shard: shard.index(),
            offset,
            stream_created_ms: s.meta.created_ms,
            issued_ms: self.inner.options.clock.now_ms(),
        }
        .encode(&self.inner.iterator_key))
    }

    /// get_records with the log's own error type.
    ///
    /// # Errors
    /// A bad iterator, a deleted stream, corrupt data.
    pub async fn read(
        &self,
        iterator: &ShardIterator,
        limit: usize,
    ) -> Result<GetRecordsOutput, LogError> {
        self.read_with(iterator, limit, true).await
    }

    /// get_records for an enhanced fan-out subscription: like [`Log::read`], but not counted
    /// against the shard's shared read limits (each subscriber has its own throughput).
    ///
    /// # Errors
    /// As [`Log::read`].
    pub async fn read_dedicated(
        &self,
        iterator: &ShardIterator,
        limit: usize,
    ) -> Result<GetRecordsOutput, LogError> {
        self.read_with(iterator, limit, false).await
    }

    /// A sequence number standing just before the position of `iterator`: AT_SEQUENCE_NUMBER
    /// and AFTER_SEQUENCE_NUMBER on it both resolve to that position (its arrival second is
    /// one before the shard's creation, which no record's is). What a subscription reports as
    /// its continuation before it has sent a record.
    ///
    /// # Errors
    /// [`LogError::BadIterator`], [`LogError::ExpiredIterator`], unknown stream or shard.
    pub fn position_marker(
        &self,
        iterator: &ShardIterator,
    ) -> Result<shardline_core::SequenceNumber, LogError> {
        let now = self.inner.options.clock.now_ms();
        let pos = Position::decode(iterator, &self.inner.iterator_key, now)?;
        let s = self.inner.stream(&pos.stream)?;
        let (sh, _) = self.shard_of(&s, ShardId(pos.shard))?;
        Ok(SequenceParts {
            shard_index: pos.shard,
            offset: pos.offset,
            shard_created_secs: sh.created_secs,
            arrival_secs: sh.created_secs.saturating_sub(1),
        }
        .encode())
    }

    async fn read_with(
        &self,
        iterator: &ShardIterator,
        limit: usize,
        shared_limits: bool,
    ) -> Result<GetRecordsOutput, LogError> {
        let now = self.inner.options.clock.now_ms();
        let pos = Position::decode(iterator, &self.inner.iterator_key, now)?;
        let s = self.inner.stream(&pos.stream)?;
        if s.meta.created_ms != pos.stream_created_ms {
            return Err(LogError::BadIterator(format!(
                "stream \"{}\" was deleted and re-created since the iterator was issued",
                pos.stream
            )));
        }
        let (sh, sm) = self.shard_of(&s, ShardId(pos.shard))?;
        let limits_on = self.inner.options.enforce_throughput_limits && shared_limits;
        if limits_on {
            lock(&sh.read_throttle).admit(now).map_err(|msg| {
                LogError::Throttled(format!("{msg} ({} of stream \"{}\")", sh.id, pos.stream))
            })?;
        }
        let limit = limit.clamp(1, limits::MAX_GET_RECORDS);
        let sh2 = sh.clone();
        let r =
            tokio::task::spawn_blocking(move || sh2.read(pos.offset, limit, limits::MAX_GET_BYTES))
                .await
                .map_err(|e| LogError::Unavailable(format!("read task failed: {e}")))??;
        if limits_on {
            let bytes: usize = r
                .frames
                .iter()
                .map(|f| f.data.len() + f.partition_key.len())
                .sum();
            lock(&sh.read_throttle).charge(now, bytes as u64);
        }
        let behind = match (r.caught_up, r.frames.last(), r.shard_last_arrival_ms) {
            (false, Some(f), Some(newest)) => u64::try_from(newest - f.arrival_ms).unwrap_or(0),
            _ => 0,
        };
        let mut run = SeqRun::default();
        let records = r
            .frames
            .into_iter()
            .map(|f| Record {
                sequence_number: run.encode(&parts(&sh, f.offset, f.arrival_ms)),
                partition_key: f.partition_key,
                explicit_hash_key: f.explicit_hash_key,
                approximate_arrival_ms: f.arrival_ms,
                data: f.data,
            })
            .collect();
        // At a closed shard's end there is nothing more to read: no next iterator.
        let at_end = sm.closed.is_some_and(|c| r.next_offset >= c.end_offset);
        let next = (!at_end).then(|| {
            Position {
                stream: pos.stream,
                shard: pos.shard,
                offset: r.next_offset,
                stream_created_ms: pos.stream_created_ms,
                issued_ms: now,
            }
            .encode(&self.inner.iterator_key)
        });
        Ok(GetRecordsOutput {
            records,
            next_iterator: next,
            millis_behind_latest: behind,
        })
    }

    /// The stream and shard an iterator (issued by this log, not expired) reads.
    ///
    /// # Errors
    /// [`LogError::BadIterator`], [`LogError::ExpiredIterator`].
    pub fn iterator_target(&self, iterator: &ShardIterator) -> Result<(String, ShardId), LogError> {
        let now = self.inner.options.clock.now_ms();
        let pos = Position::decode(iterator, &self.inner.iterator_key, now)?;
        Ok((pos.stream, ShardId(pos.shard)))
    }

    /// Every stream's name, sorted.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] once the log is closed.
    pub fn stream_names(&self) -> Result<Vec<String>, LogError> {
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(LogError::Unavailable("the log is closed".into()));
        }
        Ok(self
            .inner
            .streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect())
    }

    /// describe_stream with the log's own error type.
    ///
    /// # Errors
    /// Unknown stream.
    pub fn describe(&self, name: &str) -> Result<StreamDescription, LogError> {
        let s = self.inner.stream(name)?;
        Ok(StreamDescription {
            name: s.meta.name.clone(),
            arn: format!("arn:aws:kinesis:local:000000000000:stream/{}", s.meta.name),
            status: StreamStatus::Active,
            retention_hours: s.retention_hours.load(std::sync::atomic::Ordering::Acquire),
            created_ms: s.meta.created_ms,
            shards: describe_shards(&s),
        })
    }
}

#[async_trait]
impl Stream for Log {
    async fn create_stream(
        &self,
        name: &str,
        shards: u32,
        retention: Duration,
    ) -> shardline_core::Result<()> {
        Ok(self.create(name, shards, retention).await?)
    }

    async fn delete_stream(&self, name: &str) -> shardline_core::Result<()> {
        Ok(self.delete(name).await?)
    }

    async fn list_streams(&self) -> shardline_core::Result<Vec<String>> {
        Ok(self.stream_names()?)
    }

    async fn describe_stream(&self, name: &str) -> shardline_core::Result<StreamDescription> {
        Ok(self.describe(name)?)
    }

    async fn list_shards(&self, name: &str) -> shardline_core::Result<Vec<ShardDescription>> {
        let s = self.inner.stream(name)?;
        Ok(describe_shards(&s))
    }

    async fn put_records(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> shardline_core::Result<Vec<PutRecordResult>> {
        Ok(self.put(name, entries).await?)
    }

    async fn get_shard_iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> shardline_core::Result<ShardIterator> {
        Ok(self.iterator(name, shard, position).await?)
    }

    async fn get_records(
        &self,
        iterator: &ShardIterator,
        limit: usize,
    ) -> shardline_core::Result<GetRecordsOutput> {
        Ok(self.read(iterator, limit).await?)
    }
}
