//! The actions, on a request that passed validation.
//!
//! Every action that names a stream accepts `StreamName`, `StreamARN` or both (they must agree).
//! Checks Kinesis makes beyond the shapes (shard ids, sequence numbers, hash keys, limits) are
//! made here first, so their messages are Kinesis's; what is left to the log is reported with
//! the log's own wording under Kinesis's error type.
//!
//! - `streams`: create, delete, describe, summary, list, limits, retention, tags.
//! - `records`: PutRecord, PutRecords, GetShardIterator, GetRecords; JSON written straight
//!   from the records for PutRecords and GetRecords.
//! - `fast_put`: the common PutRecords request in JSON read without its document.
//! - `shards`: ListShards, SplitShard, MergeShards, UpdateShardCount.
//! - `consumers`: Register/Describe/List/DeregisterStreamConsumer (enhanced fan-out).

pub(crate) mod consumers;
pub(crate) mod fast_put;
pub(crate) mod records;
mod shards;
mod streams;

use shardline_core::stream::{Record, ShardDescription, ShardId};

use crate::dispatch::Endpoint;
use crate::error::ApiError;
use crate::shape::arn_resource;
use crate::value::Value;

/// Runs `action` on a validated request.
pub(crate) async fn run(ep: &Endpoint, action: &str, req: &Value) -> Result<Value, ApiError> {
    match action {
        "CreateStream" => streams::create(ep, req).await,
        "DeleteStream" => streams::delete(ep, req).await,
        "DescribeStream" => streams::describe(ep, req),
        "DescribeStreamSummary" => streams::summary(ep, req),
        "DescribeLimits" => streams::limits(ep),
        "ListStreams" => streams::list(ep, req),
        "IncreaseStreamRetentionPeriod" => streams::retention(ep, req, true).await,
        "DecreaseStreamRetentionPeriod" => streams::retention(ep, req, false).await,
        "AddTagsToStream" => streams::add_tags(ep, req).await,
        "RemoveTagsFromStream" => streams::remove_tags(ep, req).await,
        "ListTagsForStream" => streams::list_tags(ep, req),
        "PutRecord" => records::put_record(ep, req).await,
        "PutRecords" => records::put_records(ep, req).await,
        "GetShardIterator" => records::get_shard_iterator(ep, req).await,
        "GetRecords" => records::get_records(ep, req).await,
        "ListShards" => shards::list(ep, req),
        "SplitShard" => shards::split(ep, req).await,
        "MergeShards" => shards::merge(ep, req).await,
        "UpdateShardCount" => shards::update_count(ep, req).await,
        "RegisterStreamConsumer" => consumers::register(ep, req).await,
        "DescribeStreamConsumer" => consumers::describe_one(ep, req),
        "ListStreamConsumers" => consumers::list(ep, req),
        "DeregisterStreamConsumer" => consumers::deregister(ep, req).await,
        _ => Err(ApiError::bare("UnknownOperationException")),
    }
}

/// The actions [`run_json`] answers (in JSON) without building the answer's document.
pub(crate) const DIRECT_JSON: &[&str] = &["PutRecords", "GetRecords"];

/// Runs one of [`DIRECT_JSON`]'s actions on a validated request; its JSON answer, the bytes
/// [`run`]'s document would be written as.
pub(crate) async fn run_json(
    ep: &Endpoint,
    action: &str,
    req: &Value,
) -> Result<Vec<u8>, ApiError> {
    match action {
        "PutRecords" => records::put_records_json(ep, req).await,
        "GetRecords" => records::get_records_json(ep, req).await,
        _ => Err(ApiError::bare("UnknownOperationException")),
    }
}

/// The stream a request names by `StreamName` and/or `StreamARN`.
pub(crate) fn stream_name(req: &Value) -> Result<String, ApiError> {
    let from_arn = match req.str("StreamARN") {
        Some(arn) => Some(
            arn_resource(arn)
                .and_then(|r| r.strip_prefix("stream/"))
                .filter(|n| crate::shape::Pattern::Name.matches(n))
                .ok_or_else(|| {
                    ApiError::invalid(format!("StreamARN {arn} does not name a Kinesis stream."))
                })?
                .to_string(),
        ),
        None => None,
    };
    match (req.str("StreamName"), from_arn) {
        (Some(n), Some(a)) if n != a => Err(ApiError::invalid(format!(
            "StreamName {n} and StreamARN (stream {a}) name different streams; give one of them."
        ))),
        (Some(n), _) => Ok(n.to_string()),
        (None, Some(a)) => Ok(a),
        (None, None) => Err(ApiError::invalid(
            "Either StreamName or StreamARN should be provided.",
        )),
    }
}

/// A shard id as Kinesis reads it: `shardId-000000000001`, `shardId-1` or `1`.
pub(crate) fn resolve_shard(id: &str) -> Option<ShardId> {
    let digits = id.split('-').nth(1).unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= i32::MAX as u64)
        .map(|n| ShardId(n as u32))
}

/// A shard as DescribeStream and ListShards show it.
pub(crate) fn shard_value(s: &ShardDescription) -> Value {
    let range = Value::map([
        (
            "StartingSequenceNumber",
            Value::s(s.starting_sequence_number.to_string()),
        ),
        (
            "EndingSequenceNumber",
            s.ending_sequence_number
                .as_ref()
                .map_or(Value::Null, |e| Value::s(e.to_string())),
        ),
    ]);
    Value::map([
        ("ShardId", Value::s(s.shard_id.to_string())),
        (
            "ParentShardId",
            s.parent_shard_id
                .map_or(Value::Null, |p| Value::s(p.to_string())),
        ),
        (
            "AdjacentParentShardId",
            s.adjacent_parent_shard_id
                .map_or(Value::Null, |p| Value::s(p.to_string())),
        ),
        ("HashKeyRange", hash_range(s)),
        ("SequenceNumberRange", range),
    ])
}

pub(crate) fn hash_range(s: &ShardDescription) -> Value {
    Value::map([
        (
            "StartingHashKey",
            Value::s(s.hash_key_range.start.to_string()),
        ),
        ("EndingHashKey", Value::s(s.hash_key_range.end.to_string())),
    ])
}

/// A record as GetRecords and SubscribeToShard show it.
pub(crate) fn record_value(r: &Record) -> Value {
    Value::map([
        ("SequenceNumber", Value::s(r.sequence_number.to_string())),
        (
            "ApproximateArrivalTimestamp",
            Value::Timestamp(r.approximate_arrival_ms),
        ),
        ("Data", Value::Bytes(r.data.to_vec())),
        ("PartitionKey", Value::s(r.partition_key.clone())),
    ])
}

/// The `ChildShards` of a closed shard's last answer.
pub(crate) fn child_shards(kids: &[ShardDescription]) -> Value {
    Value::Array(
        kids.iter()
            .map(|c| {
                let parents = c
                    .parent_shard_id
                    .iter()
                    .chain(&c.adjacent_parent_shard_id)
                    .map(|p| Value::s(p.to_string()))
                    .collect();
                Value::map([
                    ("ShardId", Value::s(c.shard_id.to_string())),
                    ("ParentShards", Value::Array(parents)),
                    ("HashKeyRange", hash_range(c)),
                ])
            })
            .collect(),
    )
}

/// The empty answer of actions that return nothing.
pub(crate) fn empty() -> Value {
    Value::Map(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_resolve_like_kinesis() {
        assert_eq!(resolve_shard("shardId-000000000012"), Some(ShardId(12)));
        assert_eq!(resolve_shard("shardId-3"), Some(ShardId(3)));
        assert_eq!(resolve_shard("7"), Some(ShardId(7)));
        assert_eq!(resolve_shard("shardId-x"), None);
        assert_eq!(resolve_shard("shardId-2147483648"), None);
    }

    #[test]
    fn names_and_arns_must_agree() {
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/a";
        let both = |n: &str| {
            Value::Map(vec![
                ("StreamName".into(), Value::s(n)),
                ("StreamARN".into(), Value::s(arn)),
            ])
        };
        assert_eq!(stream_name(&both("a")).ok().as_deref(), Some("a"));
        assert!(stream_name(&both("b")).is_err());
        assert!(stream_name(&Value::Map(vec![])).is_err());
    }
}
