//! Shard iterators and GetRecords.
//!
//! Iterators handed out carry where to resume (see the module invariants in `kinesis`), so:
//! - an `ExpiredIteratorException` (Kinesis iterators live 5 minutes) is answered by getting
//!   a new iterator after the last record returned (or at the original position when none
//!   was) and reading again, once per call;
//! - throttling that outlasts the SDK's own attempts is retried here with backoff and jitter,
//!   up to `retry.max_rounds`, then reported as [`Error::Throttled`];
//! - a closed shard ends with `next_iterator: None`: Kinesis returns no next iterator there
//!   and names the ChildShards, which are remembered for `child_shards`. An endpoint that never
//!   ends the iterator (moto) is recognised instead by an empty, caught-up read of a shard the
//!   listing shows closed; the children then come from the ListShards lineage.

use aws_sdk_kinesis::operation::get_records::GetRecordsOutput as AwsOutput;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;
use shardline_core::stream::{GetRecordsOutput, Record, limits};
use shardline_core::{Error, Result, SequenceNumber, ShardId, ShardIterator, StartingPosition};
use std::sync::atomic::Ordering;
use tracing::{debug, info};

use super::KinesisStream;
use crate::backoff;
use crate::error::map_sdk_error;

/// An iterator as the adapter hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Wrapped {
    pub stream: String,
    pub shard: ShardId,
    pub resume: StartingPosition,
    pub aws: String,
}

const PREFIX: &str = "sl1";

fn encode_position(p: &StartingPosition) -> String {
    match p {
        StartingPosition::TrimHorizon => "T".into(),
        StartingPosition::Latest => "L".into(),
        StartingPosition::AtSequenceNumber(s) => format!("S{s}"),
        StartingPosition::AfterSequenceNumber(s) => format!("A{s}"),
        StartingPosition::AtTimestamp(ms) => format!("Z{ms}"),
    }
}

fn decode_position(text: &str) -> Option<StartingPosition> {
    let (kind, rest) = text.split_at_checked(1)?;
    Some(match kind {
        "T" => StartingPosition::TrimHorizon,
        "L" => StartingPosition::Latest,
        "S" => StartingPosition::AtSequenceNumber(rest.parse().ok()?),
        "A" => StartingPosition::AfterSequenceNumber(rest.parse().ok()?),
        "Z" => StartingPosition::AtTimestamp(rest.parse().ok()?),
        _ => return None,
    })
}

impl Wrapped {
    pub fn encode(&self) -> ShardIterator {
        ShardIterator(format!(
            "{PREFIX}:{}:{}:{}:{}",
            self.stream,
            self.shard.0,
            encode_position(&self.resume),
            self.aws
        ))
    }

    pub fn decode(it: &ShardIterator) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(
                "shard iterator was not made by the Kinesis adapter (get a new one with get_shard_iterator)"
                    .into(),
            )
        };
        let mut parts = it.0.splitn(5, ':');
        if parts.next() != Some(PREFIX) {
            return Err(bad());
        }
        let stream = parts.next().ok_or_else(bad)?.to_string();
        let shard = ShardId(parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?);
        let resume = parts.next().and_then(decode_position).ok_or_else(bad)?;
        let aws = parts
            .next()
            .filter(|a| !a.is_empty())
            .ok_or_else(bad)?
            .to_string();
        Ok(Wrapped {
            stream,
            shard,
            resume,
            aws,
        })
    }
}

impl KinesisStream {
    /// A Kinesis iterator for `position` (every iterator type).
    async fn aws_iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> Result<String> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(shard.to_string());
        let request = match position {
            StartingPosition::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            StartingPosition::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            StartingPosition::AtSequenceNumber(s) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(s.as_str()),
            StartingPosition::AfterSequenceNumber(s) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(s.as_str()),
            StartingPosition::AtTimestamp(ms) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*ms)),
        };
        let out = request.send().await.map_err(|e| {
            let mut call = self.call("GetShardIterator", name);
            call.target = format!("stream \"{name}\" {shard} at {position}");
            map_sdk_error(&call, e)
        })?;
        out.shard_iterator().map(str::to_string).ok_or_else(|| {
            Error::Internal(format!(
                "Kinesis GetShardIterator on stream \"{name}\" {shard}: no iterator in the answer"
            ))
        })
    }

    pub(super) async fn iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> Result<ShardIterator> {
        let aws = self.aws_iterator(name, shard, position).await?;
        Ok(Wrapped {
            stream: name.to_string(),
            shard,
            resume: position.clone(),
            aws,
        }
        .encode())
    }

    /// One GetRecords, renewing an expired iterator once and backing off on throttling.
    async fn fetch(&self, it: &mut Wrapped, limit: i32) -> Result<AwsOutput> {
        let mut renewed = false;
        let mut round = 0u32;
        loop {
            let answer = self
                .client
                .get_records()
                .shard_iterator(&it.aws)
                .limit(limit)
                .send()
                .await;
            let e = match answer {
                Ok(out) => return Ok(out),
                Err(e) => e,
            };
            let expired = e
                .as_service_error()
                .is_some_and(|s| s.is_expired_iterator_exception());
            if expired && !renewed {
                info!(stream = %it.stream, shard = %it.shard, resume = %it.resume, "shard iterator expired; renewing it from the last sequence number");
                it.aws = self.aws_iterator(&it.stream, it.shard, &it.resume).await?;
                renewed = true;
                self.stats.iterators_renewed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let mut call = self.call("GetRecords", &it.stream);
            call.target = format!("stream \"{}\" {}", it.stream, it.shard);
            let err = map_sdk_error(&call, e);
            if matches!(err, Error::Throttled(_)) && round + 1 < self.retry.max_rounds {
                debug!(stream = %it.stream, shard = %it.shard, round, "GetRecords throttled; backing off");
                self.stats.read_throttles.fetch_add(1, Ordering::Relaxed);
                backoff::wait(&self.retry, round).await;
                round += 1;
                continue;
            }
            return Err(err);
        }
    }

    pub(super) async fn read(
        &self,
        iterator: &ShardIterator,
        limit: usize,
    ) -> Result<GetRecordsOutput> {
        let mut it = Wrapped::decode(iterator)?;
        let limit = i32::try_from(limit.clamp(1, limits::MAX_GET_RECORDS)).unwrap_or(10_000);
        let out = self.fetch(&mut it, limit).await?;
        let mut records = Vec::with_capacity(out.records().len());
        for r in out.records() {
            records.push(Record {
                sequence_number: r.sequence_number().parse::<SequenceNumber>()?,
                partition_key: r.partition_key().to_string(),
                explicit_hash_key: None,
                approximate_arrival_ms: r
                    .approximate_arrival_timestamp()
                    .and_then(|t| t.to_millis().ok())
                    .unwrap_or(0),
                data: Bytes::copy_from_slice(r.data().as_ref()),
            });
        }
        let millis_behind_latest =
            u64::try_from(out.millis_behind_latest().unwrap_or(0)).unwrap_or(0);
        if let Some(last) = records.last() {
            it.resume = StartingPosition::AfterSequenceNumber(last.sequence_number.clone());
        }
        let next = match out.next_shard_iterator() {
            None => {
                let children: Vec<ShardId> = out
                    .child_shards()
                    .iter()
                    .filter_map(|c| c.shard_id().parse().ok())
                    .collect();
                let children = if children.is_empty() {
                    self.closed_with_children(&it.stream, it.shard)
                        .await?
                        .unwrap_or_default()
                } else {
                    children
                };
                self.remember_children(&it, children);
                None
            }
            Some(next) => {
                let caught_up_empty = records.is_empty() && millis_behind_latest == 0;
                match caught_up_empty {
                    true => match self.closed_with_children(&it.stream, it.shard).await? {
                        Some(children) => {
                            self.remember_children(&it, children);
                            None
                        }
                        None => Some(next.to_string()),
                    },
                    false => Some(next.to_string()),
                }
            }
        };
        Ok(GetRecordsOutput {
            records,
            next_iterator: next.map(|aws| Wrapped { aws, ..it }.encode()),
            millis_behind_latest,
        })
    }

    fn remember_children(&self, it: &Wrapped, children: Vec<ShardId>) {
        debug!(stream = %it.stream, shard = %it.shard, ?children, "closed shard fully read");
        if let Ok(mut known) = self.children.lock() {
            known.insert((it.stream.clone(), it.shard), children);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterators_round_trip_every_position() {
        let seq: SequenceNumber = "49590338271490256608559692538361571095921575989136588898"
            .parse()
            .expect("seq");
        for resume in [
            StartingPosition::TrimHorizon,
            StartingPosition::Latest,
            StartingPosition::AtSequenceNumber(seq.clone()),
            StartingPosition::AfterSequenceNumber(seq.clone()),
            StartingPosition::AtTimestamp(1_767_225_600_123),
        ] {
            let w = Wrapped {
                stream: "metrics".into(),
                shard: ShardId(7),
                resume,
                aws: "AAAAAAAAAAH/some+base64:with:colons==".into(),
            };
            assert_eq!(Wrapped::decode(&w.encode()).expect("decodes"), w);
        }
    }

    #[test]
    fn foreign_iterators_are_refused_with_a_hint() {
        for bad in [
            "AAAA",
            "sl1:metrics:x:T:abc",
            "sl1:metrics:1:Q:abc",
            "sl1:metrics:1:T:",
        ] {
            let e = Wrapped::decode(&ShardIterator(bad.into())).expect_err(bad);
            assert!(e.to_string().contains("get_shard_iterator"), "{e}");
        }
    }
}
