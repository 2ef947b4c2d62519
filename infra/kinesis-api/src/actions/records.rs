//! Record actions: PutRecord, PutRecords, GetShardIterator, GetRecords.
//!
//! PutRecords and GetRecords in JSON are answered with JSON written straight from the records
//! (the bytes their documents would be written as), and a PutRecords request of the common
//! kind is read without its document (see `fast_put`).
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

use super::fast_put::FastPut;
use super::{resolve_shard, stream_name};
use crate::dispatch::Endpoint;
use crate::error::ApiError;
use crate::value::{self, Value};

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
    Ok(put_records_value(put_results(ep, req).await?))
}

/// PutRecords answered as JSON written straight from the results: the bytes
/// `value::to_json(&put_records(..))` would write, without the document in between.
pub(crate) async fn put_records_json(ep: &Endpoint, req: &Value) -> Result<Vec<u8>, ApiError> {
    Ok(put_records_json_of(&put_results(ep, req).await?))
}

/// A PutRecords request [`FastPut::parse`] read, answered as [`put_records_json`] does.
pub(crate) async fn put_fast(ep: &Endpoint, put: FastPut) -> Result<Vec<u8>, ApiError> {
    Ok(put_records_json_of(
        &store(ep, put.stream, put.entries).await?,
    ))
}

/// The stream and entries of a validated PutRecords request.
pub(crate) fn request_entries(req: &Value) -> Result<(String, Vec<PutRecordsEntry>), ApiError> {
    let name = stream_name(req)?;
    let entries = match req.get("Records") {
        Some(Value::Array(items)) => items.iter().map(entry).collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok((name, entries))
}

/// Stores a PutRecords request's records; each one's outcome in order.
async fn put_results(ep: &Endpoint, req: &Value) -> Result<Vec<PutRecordResult>, ApiError> {
    let (name, entries) = request_entries(req)?;
    store(ep, name, entries).await
}

async fn store(
    ep: &Endpoint,
    name: String,
    entries: Vec<PutRecordsEntry>,
) -> Result<Vec<PutRecordResult>, ApiError> {
    check_sizes(&entries)?;
    ep.log
        .put(&name, entries)
        .await
        .map_err(|e| ep.account.map(&name, e))
}

/// A failed record's `ErrorCode`: throttling as such, anything else `InternalFailure`.
fn error_code(code: &str) -> &str {
    if code == "ProvisionedThroughputExceededException" {
        code
    } else {
        "InternalFailure"
    }
}

fn put_records_value(results: Vec<PutRecordResult>) -> Value {
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
                error_code: code,
                error_message,
            } => {
                failed += 1;
                Value::map([
                    ("ErrorCode", Value::s(error_code(&code))),
                    ("ErrorMessage", Value::s(error_message)),
                ])
            }
        })
        .collect();
    Value::map([
        ("FailedRecordCount", Value::Int(failed)),
        ("Records", Value::Array(records)),
    ])
}

fn put_records_json_of(results: &[PutRecordResult]) -> Vec<u8> {
    use std::io::Write as _;
    let failed = results
        .iter()
        .filter(|r| matches!(r, PutRecordResult::Err { .. }))
        .count();
    let mut out = Vec::with_capacity(64 + results.len() * 100);
    let _ = write!(out, r#"{{"FailedRecordCount":{failed},"Records":["#);
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match r {
            PutRecordResult::Ok {
                shard_id,
                sequence_number,
            } => {
                out.extend_from_slice(br#"{"SequenceNumber":"#);
                value::write_str(&mut out, sequence_number.as_str());
                out.extend_from_slice(br#","ShardId":"#);
                let _ = write!(out, "\"{shard_id}\"");
            }
            PutRecordResult::Err {
                error_code: code,
                error_message,
            } => {
                out.extend_from_slice(br#"{"ErrorCode":"#);
                value::write_str(&mut out, error_code(code));
                out.extend_from_slice(br#","ErrorMessage":"#);
                value::write_str(&mut out, error_message);
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
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
    let (out, children) = read_records(ep, req).await?;
    let records = out.records.iter().map(super::record_value).collect();
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

/// GetRecords answered as JSON written straight from the records: the bytes
/// `value::to_json(&get_records(..))` would write, without a document per record.
pub(crate) async fn get_records_json(ep: &Endpoint, req: &Value) -> Result<Vec<u8>, ApiError> {
    let (out, children) = read_records(ep, req).await?;
    Ok(get_records_json_of(&out, &children))
}

/// Reads a GetRecords request's records; with the `ChildShards` value at a closed shard's
/// end (`Null` elsewhere).
async fn read_records(
    ep: &Endpoint,
    req: &Value,
) -> Result<(shardline_core::stream::GetRecordsOutput, Value), ApiError> {
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
    let children = match &out.next_iterator {
        Some(_) => Value::Null,
        None => super::child_shards(
            &ep.log
                .children(&stream, shard)
                .map_err(|e| ep.account.map(&stream, e))?,
        ),
    };
    Ok((out, children))
}

fn get_records_json_of(
    out: &shardline_core::stream::GetRecordsOutput,
    children: &Value,
) -> Vec<u8> {
    use std::io::Write as _;
    let bytes: usize = out
        .records
        .iter()
        .map(|r| r.data.len() * 4 / 3 + r.partition_key.len() + 160)
        .sum();
    let mut o = Vec::with_capacity(bytes + 1024);
    o.extend_from_slice(br#"{"Records":["#);
    for (i, r) in out.records.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        o.extend_from_slice(br#"{"SequenceNumber":"#);
        value::write_str(&mut o, r.sequence_number.as_str());
        o.extend_from_slice(br#","ApproximateArrivalTimestamp":"#);
        value::write_timestamp(&mut o, r.approximate_arrival_ms);
        o.extend_from_slice(br#","Data":"#);
        value::write_base64(&mut o, &r.data);
        o.extend_from_slice(br#","PartitionKey":"#);
        value::write_str(&mut o, &r.partition_key);
        o.push(b'}');
    }
    o.push(b']');
    if let Some(it) = &out.next_iterator {
        o.extend_from_slice(br#","NextShardIterator":"#);
        value::write_str(&mut o, &it.0);
    }
    let _ = write!(
        o,
        r#","MillisBehindLatest":{}"#,
        out.millis_behind_latest as i64
    );
    if !matches!(children, Value::Null) {
        o.extend_from_slice(br#","ChildShards":"#);
        value::write_json(&mut o, children);
    }
    o.push(b'}');
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::stream::{GetRecordsOutput, Record, ShardId};

    fn seq(n: &str) -> SequenceNumber {
        n.parse().expect("sequence number")
    }

    #[test]
    fn put_records_json_is_the_documents_json() {
        let results = vec![
            PutRecordResult::Ok {
                shard_id: ShardId(3),
                sequence_number: seq("49650000000000000000000000000000000000000000000000000003"),
            },
            PutRecordResult::Err {
                error_code: "ProvisionedThroughputExceededException".into(),
                error_message: "Rate exceeded for shard \"x\"".into(),
            },
            PutRecordResult::Err {
                error_code: "AppendRefused".into(),
                error_message: "disk full\nretry".into(),
            },
            PutRecordResult::Ok {
                shard_id: ShardId(0),
                sequence_number: seq("7"),
            },
        ];
        let direct = put_records_json_of(&results);
        let via_value = value::to_json(&put_records_value(results));
        assert_eq!(
            String::from_utf8(direct).expect("utf8"),
            String::from_utf8(via_value).expect("utf8")
        );
        assert_eq!(
            String::from_utf8(put_records_json_of(&[])).expect("utf8"),
            r#"{"FailedRecordCount":0,"Records":[]}"#
        );
    }

    #[test]
    fn get_records_json_is_the_documents_json() {
        let record = |n: u8, key: &str, data: &[u8], ms: i64| Record {
            sequence_number: seq(&format!("4965000000000000000000000{n}")),
            partition_key: key.into(),
            explicit_hash_key: None,
            approximate_arrival_ms: ms,
            data: bytes::Bytes::copy_from_slice(data),
        };
        let children = Value::Array(vec![Value::map([
            ("ShardId", Value::s("shardId-000000000004")),
            (
                "ParentShards",
                Value::Array(vec![Value::s("shardId-000000000001")]),
            ),
        ])]);
        for (next, children) in [
            (Some(ShardIterator("AAAA/+==".into())), Value::Null),
            (None, children),
        ] {
            let out = GetRecordsOutput {
                records: vec![
                    record(1, "i-000001", b"{\"v\":1}", 1_700_000_000_005),
                    record(2, "key \"quoted\" \u{e9}", &[0, 255, 10, 13], -1_001),
                    record(3, "k", b"", 0),
                ],
                next_iterator: next.clone(),
                millis_behind_latest: 1234,
            };
            let direct = get_records_json_of(&out, &children);
            let via_value = value::to_json(&Value::map([
                (
                    "Records",
                    Value::Array(
                        out.records
                            .iter()
                            .map(crate::actions::record_value)
                            .collect(),
                    ),
                ),
                (
                    "NextShardIterator",
                    next.map_or(Value::Null, |i| Value::s(i.0)),
                ),
                ("MillisBehindLatest", Value::Int(1234)),
                ("ChildShards", children.clone()),
            ]));
            assert_eq!(
                String::from_utf8(direct).expect("utf8"),
                String::from_utf8(via_value).expect("utf8")
            );
        }
        let empty = GetRecordsOutput {
            records: Vec::new(),
            next_iterator: None,
            millis_behind_latest: 0,
        };
        assert_eq!(
            String::from_utf8(get_records_json_of(&empty, &Value::Array(Vec::new())))
                .expect("utf8"),
            r#"{"Records":[],"MillisBehindLatest":0,"ChildShards":[]}"#
        );
    }
}
