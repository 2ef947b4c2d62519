//! ListShards with pagination, the shard lineage, and a short-lived cache of the listing.
//!
//! The first ListShards call names the stream; the following ones pass only the NextToken
//! (Kinesis refuses both together). The cache is used only to decide whether a shard that
//! reads empty is closed; callers of `list_shards` always get a fresh listing.

use aws_sdk_kinesis::types::Shard;
use shardline_core::stream::{HashKeyRange, ShardDescription};
use shardline_core::{Error, Result, SequenceNumber, ShardId};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::KinesisStream;
use crate::error::map_sdk_error;

/// A stream's shards as listed at a time.
#[derive(Debug, Clone)]
pub(super) struct Listing {
    at: Instant,
    shards: Vec<ShardDescription>,
}

/// The shards whose parent (or adjacent parent) is `shard`.
pub(super) fn children_in(shards: &[ShardDescription], shard: ShardId) -> Vec<ShardId> {
    let mut out: Vec<ShardId> = shards
        .iter()
        .filter(|s| s.parent_shard_id == Some(shard) || s.adjacent_parent_shard_id == Some(shard))
        .map(|s| s.shard_id)
        .collect();
    out.sort();
    out
}

fn parse_shard_id(text: &str, stream: &str) -> Result<ShardId> {
    text.parse().map_err(|_| {
        Error::Internal(format!(
            "Kinesis ListShards on stream \"{stream}\": shard id `{text}` is not of the form shardId-NNNNNNNNNNNN"
        ))
    })
}

fn parse_u128(text: &str, stream: &str) -> Result<u128> {
    text.parse().map_err(|_| {
        Error::Internal(format!(
            "Kinesis ListShards on stream \"{stream}\": hash key `{text}` is not a 128-bit number"
        ))
    })
}

fn describe(shard: &Shard, stream: &str) -> Result<ShardDescription> {
    let range = shard.hash_key_range().ok_or_else(|| {
        Error::Internal(format!(
            "Kinesis ListShards on stream \"{stream}\": shard {} has no hash key range",
            shard.shard_id()
        ))
    })?;
    let seqs = shard.sequence_number_range().ok_or_else(|| {
        Error::Internal(format!(
            "Kinesis ListShards on stream \"{stream}\": shard {} has no sequence number range",
            shard.shard_id()
        ))
    })?;
    Ok(ShardDescription {
        shard_id: parse_shard_id(shard.shard_id(), stream)?,
        hash_key_range: HashKeyRange {
            start: parse_u128(range.starting_hash_key(), stream)?,
            end: parse_u128(range.ending_hash_key(), stream)?,
        },
        parent_shard_id: shard
            .parent_shard_id()
            .map(|p| parse_shard_id(p, stream))
            .transpose()?,
        adjacent_parent_shard_id: shard
            .adjacent_parent_shard_id()
            .map(|p| parse_shard_id(p, stream))
            .transpose()?,
        starting_sequence_number: seqs.starting_sequence_number().parse::<SequenceNumber>()?,
        ending_sequence_number: seqs
            .ending_sequence_number()
            .map(str::parse::<SequenceNumber>)
            .transpose()?,
    })
}

impl KinesisStream {
    /// One page of ListShards: the first names the stream, the next ones pass only the token,
    /// as Kinesis requires. An endpoint that cannot find the stream from the token alone
    /// (moto) is asked again with both, and from then on always with both.
    async fn list_shards_page(
        &self,
        name: &str,
        token: Option<&str>,
    ) -> Result<aws_sdk_kinesis::operation::list_shards::ListShardsOutput> {
        let send = |with_name: bool| {
            let request = self.client.list_shards().max_results(self.list_page);
            let request = match token {
                None => request.stream_name(name),
                Some(t) if with_name => request.stream_name(name).next_token(t),
                Some(t) => request.next_token(t),
            };
            request.send()
        };
        let both = self.token_with_name.load(Ordering::Relaxed);
        match send(token.is_none() || both).await {
            Ok(out) => Ok(out),
            Err(e) => {
                let err = map_sdk_error(&self.call("ListShards", name), e);
                let retry_with_name = token.is_some()
                    && !both
                    && matches!(err, Error::NotFound { .. } | Error::InvalidArgument(_));
                if !retry_with_name {
                    return Err(err);
                }
                let out = send(true)
                    .await
                    .map_err(|e| map_sdk_error(&self.call("ListShards", name), e))?;
                self.token_with_name.store(true, Ordering::Relaxed);
                Ok(out)
            }
        }
    }

    /// Every shard of the stream, open and closed, sorted by id (all pages).
    pub(super) async fn list_all_shards(&self, name: &str) -> Result<Vec<ShardDescription>> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self.list_shards_page(name, token.as_deref()).await?;
            for shard in out.shards() {
                shards.push(describe(shard, name)?);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                    token = Some(t.to_string());
                }
                _ => break,
            }
        }
        shards.sort_by_key(|s| s.shard_id);
        shards.dedup_by_key(|s| s.shard_id);
        if let Ok(mut cache) = self.shard_cache.lock() {
            cache.insert(
                name.to_string(),
                Listing {
                    at: Instant::now(),
                    shards: shards.clone(),
                },
            );
        }
        Ok(shards)
    }

    /// Whether `shard` is closed, from a listing at most `shard_cache_ttl` old; with its
    /// children when it is.
    pub(super) async fn closed_with_children(
        &self,
        name: &str,
        shard: ShardId,
    ) -> Result<Option<Vec<ShardId>>> {
        let cached = self.shard_cache.lock().ok().and_then(|c| {
            c.get(name)
                .filter(|l| l.at.elapsed() < self.shard_cache_ttl)
                .map(|l| l.shards.clone())
        });
        let shards = match cached {
            Some(s) => s,
            None => self.list_all_shards(name).await?,
        };
        let closed = shards
            .iter()
            .any(|s| s.shard_id == shard && s.ending_sequence_number.is_some());
        Ok(closed.then(|| children_in(&shards, shard)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: u32, parent: Option<u32>, adjacent: Option<u32>) -> ShardDescription {
        ShardDescription {
            shard_id: ShardId(id),
            hash_key_range: HashKeyRange { start: 0, end: 1 },
            parent_shard_id: parent.map(ShardId),
            adjacent_parent_shard_id: adjacent.map(ShardId),
            starting_sequence_number: SequenceNumber::before_all(),
            ending_sequence_number: None,
        }
    }

    #[test]
    fn lineage_names_split_and_merge_children() {
        let shards = vec![
            shard(0, None, None),
            shard(1, None, None),
            shard(2, Some(0), None),
            shard(3, Some(0), None),
            shard(4, Some(3), Some(1)),
        ];
        assert_eq!(
            children_in(&shards, ShardId(0)),
            vec![ShardId(2), ShardId(3)]
        );
        assert_eq!(children_in(&shards, ShardId(1)), vec![ShardId(4)]);
        assert_eq!(children_in(&shards, ShardId(3)), vec![ShardId(4)]);
        assert!(children_in(&shards, ShardId(4)).is_empty());
    }
}
