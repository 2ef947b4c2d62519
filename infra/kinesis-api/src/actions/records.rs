//! Record actions: PutRecord, PutRecords, GetShardIterator, GetRecords.
//!
//! PutRecords reports each record's outcome in place (`ErrorCode`
//! `ProvisionedThroughputExceededException` when the limits mode throttles it, `InternalFailure`
//! when the log could not store it) and counts the failures; the other records are stored.
//! GetRecords at the end of a closed shard returns no `NextShardIterator` and the shard's
//! `ChildShards`.

use bytes::Bytes;
use shardline_core::stream::{
    PutRecordResult, PutRecordsEntry, SequenceNumber, ShardIterator, StartingPosition, limits,
};

use super::{resolve_shard, stream_name};
use crate::dispatch::Endpoint;
use crate::error::ApiError;
use crate::value::Value;

fn entry(v: &Value) -> Result<PutRecordsEntry, ApiError> {
    let explicit_hash_key = match v.str("ExplicitHashKey") {
        Some(k) => Some(k.parse::<u128>().map_err(|_| {
            ApiError::invalid(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
                 Specified value was {k}"
            ))
        })?),
        None => None,
    };
    let data = match v.get("Data") {
        Some(Value::Bytes(b)) => Bytes::copy_from_slice(b),
        _ => Bytes::new(),
    };
    Ok(PutRecordsEntry {
        partition_key: v.str("PartitionKey").unwrap_or_default().to_string(),
        explicit_hash_key,
        data,
    })
}

fn check_sizes(entries: &[PutRecordsEntry]) -> Result<(), ApiError> {
    let mut total = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let size = e.data.len() + e.partition_key.len();
        if size > limits::MAX_RECORD_BYTES {
            return Err(ApiError::invalid(format!(
                "Record {} is {size} bytes (data plus partition key); at most {} per record.",
                i + 1,
                limits::MAX_RECORD_BYTES
            )));
        }
        total += size;
    }
    if total > limits::MAX_BYTES_PER_PUT {
        return Err(ApiError::invalid(format!(
            "The records of this request total {total} bytes (data plus partition keys); at \
             most {} per PutRecords request.",
            limits::MAX_BYTES_PER_PUT
        )));
    }
    Ok(())
}

pub(crate) async fn put_record(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    if let Some(seq) = req.str("SequenceNumberForOrdering") {
        let ok = seq
            .parse::<SequenceNumber>()
            .ok()
            .and_then(|s| s.parts().ok())
            .is_some_and(|p| p.arrival_secs * 1000 <= ep.clock.now_ms() as u64);
        if !ok {
            return Err(ApiError::invalid(format!(
                "ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {name} under \
                 account {} is invalid.",
                ep.account.id
            )));
        }
    }
    let e = entry(req)?;
    check_sizes(std::slice::from_ref(&e))?;
    let mut results = ep
        .log
        .put(&name, vec![e])
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    match results.pop() {
        Some(PutRecordResult::Ok {
            shard_id,
            sequence_number,
        }) => Ok(Value::map([
            ("ShardId", Value::s(shard_id.to_string())),
            ("SequenceNumber", Value::s(sequence_number.to_string())),
        ])),
        Some(PutRecordResult::Err {
            error_code,
            error_message,
        }) if error_code == "ProvisionedThroughputExceededException" => Err(ApiError::client(
            "ProvisionedThroughputExceededException",
            error_message,
        )),
        Some(PutRecordResult::Err { error_message, .. }) => Err(ApiError::internal(error_message)),
        None => Err(ApiError::internal("the log returned no result")),
    }
}

pub(crate) async fn put_records(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let entries = match req.get("Records") {
        Some(Value::Array(items)) => items.iter().map(entry).collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    check_sizes(&entries)?;
    let results = ep
        .log
        .put(&name, entries)
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    let mut failed = 0i64;
    let records = results
        .into_iter()
        .map(|r| match r {
            PutRecordResult::Ok {
                shard_id,
                sequence_number,
            } => Value::map([
                ("SequenceNumber", Value::s(sequence_number.to_string())),
                ("ShardId", Value::s(shard_id.to_string())),
            ]),
            PutRecordResult::Err {
                error_code,
                error_message,
            } => {
                failed += 1;
                let code = if error_code == "ProvisionedThroughputExceededException" {
                    error_code
                } else {
                    "InternalFailure".to_string()
                };
                Value::map([
                    ("ErrorCode", Value::s(code)),
                    ("ErrorMessage", Value::s(error_message)),
                ])
            }
        })
        .collect();
    Ok(Value::map([
        ("FailedRecordCount", Value::Int(failed)),
        ("Records", Value::Array(records)),
    ]))
}

pub(crate) async fn get_shard_iterator(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let acct = &ep.account.id;
    let raw_shard = req.str("ShardId").unwrap_or_default();
    let shard = resolve_shard(raw_shard).ok_or_else(|| {
        ApiError::not_found(format!(
            "Could not find shard {raw_shard} in stream {name} under account {acct}."
        ))
    })?;
    let missing = || {
        ApiError::not_found(format!(
            "Shard {shard} in stream {name} under account {acct} does not exist"
        ))
    };
    let d = ep.log.describe(&name).map_err(|_| missing())?;
    let desc = d
        .shards
        .iter()
        .find(|s| s.shard_id == shard)
        .ok_or_else(missing)?;
    let kind = req.str("ShardIteratorType").unwrap_or_default();
    let must = |what: &str| {
        ApiError::invalid(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and \
             StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. \
             Request specified {kind} and {what} StartingSequenceNumber."
        ))
    };
    let seq = req.str("StartingSequenceNumber");
    let position = match (kind, seq) {
        ("TRIM_HORIZON" | "LATEST", Some(_)) => return Err(must("also a")),
        ("TRIM_HORIZON", None) => StartingPosition::TrimHorizon,
        ("LATEST", None) => StartingPosition::Latest,
        ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", None) => return Err(must("no")),
        ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", Some(text)) => {
            let invalid = |why: &str| {
                ApiError::invalid(format!(
                    "StartingSequenceNumber {text} used in GetShardIterator on shard {shard} in \
                     stream {name} under account {acct} is invalid{why}."
                ))
            };
            let seq: SequenceNumber = text.parse().map_err(|_| invalid(""))?;
            let parts = seq.parts().map_err(|_| invalid(""))?;
            if parts.shard_index != shard.index() {
                return Err(ApiError::invalid(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call \
                     to a shard with {shard}",
                    shardline_core::stream::ShardId(parts.shard_index)
                )));
            }
            let created = desc
                .starting_sequence_number
                .parts()
                .map(|p| p.shard_created_secs)
                .unwrap_or(0);
            if parts.shard_created_secs != created {
                return Err(invalid(" because it did not come from this stream"));
            }
            if kind == "AT_SEQUENCE_NUMBER" {
                StartingPosition::AtSequenceNumber(seq)
            } else {
                StartingPosition::AfterSequenceNumber(seq)
            }
        }
        ("AT_TIMESTAMP", _) => {
            let Some(Value::Timestamp(ms)) = req.get("Timestamp") else {
                return Err(ApiError::invalid(
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. \
                     Current request has no timestamp parameter.",
                ));
            };
            let now = ep.clock.now_ms();
            if *ms > now {
                return Err(ApiError::invalid(format!(
                    "The timestampInMillis parameter cannot be greater than the \
                     currentTimestampInMillis. timestampInMillis: {ms}, currentTimestampInMillis: \
                     {now}"
                )));
            }
            StartingPosition::AtTimestamp(*ms)
        }
        _ => return Err(must("no")),
    };
    let it = ep
        .log
        .iterator(&name, shard, &position)
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    Ok(Value::map([("ShardIterator", Value::s(it.0))]))
}

pub(crate) async fn get_records(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let it = ShardIterator(req.str("ShardIterator").unwrap_or_default().to_string());
    let limit = req.int("Limit").unwrap_or(10_000).clamp(1, 10_000) as usize;
    let (stream, shard) = ep
        .log
        .iterator_target(&it)
        .map_err(|e| ep.account.map("", e))?;
    let out = ep.log.read(&it, limit).await.map_err(|e| match e {
        shardline_log::LogError::StreamNotFound(_)
        | shardline_log::LogError::ShardNotFound { .. } => ApiError::not_found(format!(
            "Shard {shard} in stream {stream} under account {} does not exist",
            ep.account.id
        )),
        e => ep.account.map(&stream, e),
    })?;
    let records = out.records.iter().map(super::record_value).collect();
    let children = match &out.next_iterator {
        Some(_) => Value::Null,
        None => super::child_shards(
            &ep.log
                .children(&stream, shard)
                .map_err(|e| ep.account.map(&stream, e))?,
        ),
    };
    Ok(Value::map([
        ("Records", Value::Array(records)),
        (
            "NextShardIterator",
            out.next_iterator.map_or(Value::Null, |i| Value::s(i.0)),
        ),
        (
            "MillisBehindLatest",
            Value::Int(out.millis_behind_latest as i64),
        ),
        ("ChildShards", children),
    ]))
}
