//! The [`shardline_core::ports::Stream`] port over [`Log`]: validation, routing, iterators.
//!
//! put_records checks whole-call limits first (more than 500 records or 5 MiB fails the
//! call), then each record: a record breaking a per-record limit, or refused by the
//! opt-in throughput limits, gets a positional `Err` result and the others go on. Records are
//! routed to the shard whose inclusive hash-key range holds MD5(partition key) (or the
//! explicit hash key), sent to the shards' writers as one request per shard, and acknowledged
//! after their group commit.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shardline_core::ports::Stream;
use shardline_core::stream::{
    GetRecordsOutput, PutRecordResult, PutRecordsEntry, Record, SequenceParts, ShardDescription,
    ShardId, ShardIterator, StartingPosition, StreamDescription, StreamStatus, check_record_limits,
    hash_key, limits,
};
use tokio::sync::oneshot;

use crate::error::LogError;
use crate::iterator::Position;
use crate::log::{Log, StreamHandle, lock};
use crate::seqrun::SeqRun;
use crate::shard::Shard;
use crate::writer::AppendRequest;

fn seq(shard: &Shard, offset: u64, arrival_ms: i64) -> shardline_core::SequenceNumber {
    parts(shard, offset, arrival_ms).encode()
}

fn parts(shard: &Shard, offset: u64, arrival_ms: i64) -> SequenceParts {
    SequenceParts {
        shard_index: shard.id.index(),
        offset,
        shard_created_secs: shard.created_secs,
        arrival_secs: u64::try_from(arrival_ms.div_euclid(1000)).unwrap_or(0),
    }
}

fn describe_shards(s: &StreamHandle) -> Vec<ShardDescription> {
    s.shards
        .iter()
        .map(|h| ShardDescription {
            shard_id: h.shard.id,
            hash_key_range: h.shard.range,
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            starting_sequence_number: seq(&h.shard, 0, h.shard.created_secs as i64 * 1000),
            ending_sequence_number: None,
        })
        .collect()
}

impl Log {
    fn shard_of(&self, s: &StreamHandle, shard: ShardId) -> Result<Arc<Shard>, LogError> {
        s.shards
            .get(shard.index() as usize)
            .map(|h| h.shard.clone())
            .ok_or_else(|| LogError::ShardNotFound {
                stream: s.meta.name.clone(),
                shard: shard.to_string(),
            })
    }

    /// put_records with the log's own error type.
    ///
    /// # Errors
    /// Whole-call limits, unknown stream, a closed log.
    pub async fn put(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> Result<Vec<PutRecordResult>, LogError> {
        let s = self.inner.stream(name)?;
        if entries.len() > limits::MAX_RECORDS_PER_PUT {
            return Err(LogError::InvalidArgument(format!(
                "put_records to \"{name}\" has {} records; at most 500 per call",
                entries.len()
            )));
        }
        let total: usize = entries
            .iter()
            .map(|e| e.data.len() + e.partition_key.len())
            .sum();
        if total > limits::MAX_BYTES_PER_PUT {
            return Err(LogError::InvalidArgument(format!(
                "put_records to \"{name}\" carries {total} bytes; at most 5 MiB per call"
            )));
        }
        let n = entries.len();
        let mut results: Vec<Option<PutRecordResult>> = vec![None; n];
        let shards = &s.shards;
        let mut groups: Vec<(Vec<usize>, Vec<PutRecordsEntry>)> = (0..shards.len())
            .map(|_| (Vec::new(), Vec::new()))
            .collect();
        let limits_on = self.inner.options.enforce_throughput_limits;
        let now = self.inner.options.clock.now_ms();
        for (i, e) in entries.into_iter().enumerate() {
            if let Err(msg) = check_record_limits(&e.partition_key, e.data.len()) {
                results[i] = Some(PutRecordResult::Err {
                    error_code: "ValidationException".into(),
                    error_message: msg,
                });
                continue;
            }
            let key = e
                .explicit_hash_key
                .unwrap_or_else(|| hash_key(&e.partition_key));
            let idx = shards
                .partition_point(|h| h.shard.range.end < key)
                .min(shards.len() - 1);
            if limits_on {
                let bytes = (e.data.len() + e.partition_key.len()) as u64;
                if let Err(msg) = lock(&shards[idx].shard.throttle).admit(now, bytes) {
                    results[i] = Some(PutRecordResult::Err {
                        error_code: "ProvisionedThroughputExceededException".into(),
                        error_message: format!(
                            "{msg} ({} of stream \"{name}\")",
                            shards[idx].shard.id
                        ),
                    });
                    continue;
                }
            }
            groups[idx].0.push(i);
            groups[idx].1.push(e);
        }
        let mut pending = Vec::new();
        for (idx, (positions, entries)) in groups.into_iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let sender = lock(&shards[idx].sender).clone();
            let sent = match sender {
                Some(sender) => sender
                    .send(AppendRequest { entries, ack: tx })
                    .await
                    .is_ok(),
                None => false,
            };
            if !sent {
                // Other shards' parts may already be queued, so fail these records, not the call.
                for &i in &positions {
                    results[i] = Some(PutRecordResult::Err {
                        error_code: "InternalFailure".into(),
                        error_message: format!(
                            "{} of stream \"{name}\" is closed; retry after reopening the log",
                            shards[idx].shard.id
                        ),
                    });
                }
                continue;
            }
            pending.push((idx, positions, rx));
        }
        for (idx, positions, rx) in pending {
            let shard = &shards[idx].shard;
            let outcome = rx.await.unwrap_or_else(|_| {
                Err(LogError::Unavailable(
                    "writer stopped before acknowledging".into(),
                ))
            });
            match outcome {
                Ok(ack) => {
                    let mut run = SeqRun::default();
                    for (k, &i) in positions.iter().enumerate() {
                        let p = parts(shard, ack.first_offset + k as u64, ack.arrival_ms);
                        results[i] = Some(PutRecordResult::Ok {
                            shard_id: shard.id,
                            sequence_number: run.encode(&p),
                        });
                    }
                }
                Err(e) => {
                    for &i in &positions {
                        results[i] = Some(PutRecordResult::Err {
                            error_code: "InternalFailure".into(),
                            error_message: e.to_string(),
                        });
                    }
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| PutRecordResult::Err {
                    error_code: "InternalFailure".into(),
                    error_message: "record was not routed".into(),
                })
            })
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
        let sh = self.shard_of(&s, shard)?;
        let (trim, next) = {
            let v = sh.read_view();
            (v.trim_offset(), v.next_offset())
        };
        let at_seq = |q: &shardline_core::SequenceNumber| -> Result<u64, LogError> {
            let p = q
                .parts()
                .map_err(|e| LogError::InvalidArgument(e.to_string()))?;
            if p.shard_index != shard.index() {
                return Err(LogError::InvalidArgument(format!(
                    "sequence number {q} belongs to shardId-{:012}, not {shard}",
                    p.shard_index
                )));
            }
            if p.offset >= next {
                return Err(LogError::InvalidArgument(format!(
                    "sequence number {q} is past the newest record of {shard} in \"{name}\""
                )));
            }
            Ok(p.offset)
        };
        let offset = match position {
            StartingPosition::TrimHorizon => trim,
            StartingPosition::Latest => next,
            StartingPosition::AtSequenceNumber(q) => at_seq(q)?.max(trim),
            StartingPosition::AfterSequenceNumber(q) => (at_seq(q)? + 1).max(trim),
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
        }
        .encode())
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
        let pos = Position::decode(iterator)?;
        let s = self.inner.stream(&pos.stream)?;
        if s.meta.created_ms != pos.stream_created_ms {
            return Err(LogError::BadIterator(format!(
                "stream \"{}\" was deleted and re-created since the iterator was issued",
                pos.stream
            )));
        }
        let sh = self.shard_of(&s, ShardId(pos.shard))?;
        let limit = limit.clamp(1, limits::MAX_GET_RECORDS);
        let sh2 = sh.clone();
        let r =
            tokio::task::spawn_blocking(move || sh2.read(pos.offset, limit, limits::MAX_GET_BYTES))
                .await
                .map_err(|e| LogError::Unavailable(format!("read task failed: {e}")))??;
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
        let next = Position {
            stream: pos.stream,
            shard: pos.shard,
            offset: r.next_offset,
            stream_created_ms: pos.stream_created_ms,
        };
        Ok(GetRecordsOutput {
            records,
            next_iterator: Some(next.encode()),
            millis_behind_latest: behind,
        })
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
            shards: describe_shards(s.deref()),
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
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(LogError::Unavailable("the log is closed".into()).into());
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
