//! SubscribeToShard: a shard pushed to a registered consumer over an event stream (HTTP/2, or
//! HTTP/1.1 chunked), for five minutes.
//!
//! The answer is `application/vnd.amazon.eventstream`: an `initial-response` event, then
//! `SubscribeToShardEvent`s carrying records (up to 10,000 and 10 MiB each), the
//! `ContinuationSequenceNumber` to resubscribe from (AFTER_SEQUENCE_NUMBER, or
//! AT_SEQUENCE_NUMBER on a marker that stands before the position: see the log's iterator
//! rules) and `MillisBehindLatest`. With no new records, an empty event goes out every
//! [`HEARTBEAT`]. At a closed shard's end the last event carries `ChildShards` and the stream
//! ends; otherwise it ends after [`SUBSCRIPTION`], and the client subscribes again from the
//! continuation number. Event payloads use the request's encoding (JSON or CBOR).
//!
//! One subscription per consumer and shard at a time: another one meanwhile is refused with
//! `ResourceInUseException`. Reads on behalf of a subscription do not count against the
//! shard's shared GetRecords limits (enhanced fan-out has its own throughput on Kinesis).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use shardline_core::stream::{SequenceNumber, ShardId, ShardIterator, StartingPosition};
use tokio::sync::mpsc;

use crate::actions::{self, consumers, resolve_shard};
use crate::dispatch::{Encoding, Endpoint, Response};
use crate::error::ApiError;
use crate::eventstream;
use crate::value::Value;

/// How long a subscription lasts.
pub const SUBSCRIPTION: Duration = Duration::from_secs(300);
/// How often an event goes out when there is nothing new.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often the shard is polled for new records while caught up.
const POLL: Duration = Duration::from_millis(100);

/// Subscriptions in progress: (consumer ARN, shard).
#[derive(Debug, Default)]
pub struct Subscriptions(Mutex<HashSet<(String, ShardId)>>);

struct Active {
    set: Arc<Subscriptions>,
    key: (String, ShardId),
}

impl Drop for Active {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.0.lock() {
            s.remove(&self.key);
        }
    }
}

fn payload(enc: Encoding, v: &Value) -> Vec<u8> {
    match enc {
        Encoding::Json => crate::value::to_json(v),
        Encoding::Cbor => crate::cbor::encode(v),
    }
}

fn event(enc: Encoding, kind: &str, v: &Value) -> Bytes {
    let body = payload(enc, v);
    Bytes::from(eventstream::encode(
        &[
            (":message-type", "event"),
            (":event-type", kind),
            (":content-type", enc.content_type()),
        ],
        &body,
    ))
}

fn exception(enc: Encoding, e: &ApiError) -> Bytes {
    let v = Value::map([("message", Value::s(e.message.clone().unwrap_or_default()))]);
    let body = payload(enc, &v);
    Bytes::from(eventstream::encode(
        &[
            (":message-type", "exception"),
            (":exception-type", e.kind),
            (":content-type", enc.content_type()),
        ],
        &body,
    ))
}

/// Validates a SubscribeToShard request and starts pushing; the answer streams.
pub(crate) async fn subscribe(
    ep: &Endpoint,
    enc: Encoding,
    req: &Value,
) -> Result<Response, ApiError> {
    let arn = req.str("ConsumerARN").unwrap_or_default().to_string();
    let (stream, _) = consumers::find(ep, req)?;
    let raw = req.str("ShardId").unwrap_or_default();
    let shard = resolve_shard(raw).ok_or_else(|| {
        ApiError::not_found(format!(
            "Could not find shard {raw} in stream {stream} under account {}.",
            ep.account.id
        ))
    })?;
    let pos = req.get("StartingPosition");
    let kind = pos.and_then(|p| p.str("Type")).unwrap_or_default();
    let seq = pos.and_then(|p| p.str("SequenceNumber"));
    let position = match (kind, seq) {
        ("TRIM_HORIZON", _) => StartingPosition::TrimHorizon,
        ("LATEST", _) => StartingPosition::Latest,
        ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", Some(s)) => {
            let s: SequenceNumber = s.parse().map_err(|_| {
                ApiError::invalid(format!("StartingPosition.SequenceNumber {s} is invalid."))
            })?;
            if kind == "AT_SEQUENCE_NUMBER" {
                StartingPosition::AtSequenceNumber(s)
            } else {
                StartingPosition::AfterSequenceNumber(s)
            }
        }
        ("AT_TIMESTAMP", _) => match pos.and_then(|p| p.get("Timestamp")) {
            Some(Value::Timestamp(ms)) => StartingPosition::AtTimestamp(*ms),
            _ => {
                return Err(ApiError::invalid(
                    "StartingPosition of type AT_TIMESTAMP needs a Timestamp.",
                ));
            }
        },
        _ => {
            return Err(ApiError::invalid(format!(
                "StartingPosition of type {kind} needs a SequenceNumber."
            )));
        }
    };
    let it = ep
        .log
        .iterator(&stream, shard, &position)
        .await
        .map_err(|e| ep.account.map(&stream, e))?;
    let key = (arn.clone(), shard);
    {
        let mut active = ep
            .subscriptions
            .0
            .lock()
            .map_err(|_| ApiError::internal("subscription registry poisoned"))?;
        if !active.insert(key.clone()) {
            return Err(ApiError::client(
                "ResourceInUseException",
                format!("Another active subscription exists for consumer {arn} and shard {shard}."),
            ));
        }
    }
    let guard = Active {
        set: ep.subscriptions.clone(),
        key,
    };
    let (tx, rx) = mpsc::channel(4);
    let _ = tx.try_send(event(enc, "initial-response", &Value::Map(Vec::new())));
    let log = ep.log.clone();
    let account = ep.account.clone();
    tokio::spawn(async move {
        let _guard = guard;
        push(log, account, enc, stream, shard, it, tx).await;
    });
    Ok(Response {
        status: 200,
        headers: vec![("content-type", "application/vnd.amazon.eventstream".into())],
        body: Vec::new(),
        stream: Some(rx),
    })
}

async fn push(
    log: Arc<shardline_log::Log>,
    account: crate::error::Account,
    enc: Encoding,
    stream: String,
    shard: ShardId,
    mut it: ShardIterator,
    tx: mpsc::Sender<Bytes>,
) {
    let end = tokio::time::Instant::now() + SUBSCRIPTION;
    let mut continuation = match log.position_marker(&it) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(exception(enc, &account.map(&stream, e))).await;
            return;
        }
    };
    let mut last_event = tokio::time::Instant::now();
    while tokio::time::Instant::now() < end {
        let out = match log.read_dedicated(&it, 10_000).await {
            Ok(out) => out,
            Err(e) => {
                let _ = tx.send(exception(enc, &account.map(&stream, e))).await;
                return;
            }
        };
        if let Some(r) = out.records.last() {
            continuation = r.sequence_number.clone();
        }
        let closed = out.next_iterator.is_none();
        let due = !out.records.is_empty() || closed || last_event.elapsed() >= HEARTBEAT;
        if due {
            let children = if closed {
                match log.children(&stream, shard) {
                    Ok(kids) => actions::child_shards(&kids),
                    Err(e) => {
                        let _ = tx.send(exception(enc, &account.map(&stream, e))).await;
                        return;
                    }
                }
            } else {
                Value::Null
            };
            let v = Value::map([
                (
                    "Records",
                    Value::Array(out.records.iter().map(actions::record_value).collect()),
                ),
                (
                    "ContinuationSequenceNumber",
                    Value::s(continuation.to_string()),
                ),
                (
                    "MillisBehindLatest",
                    Value::Int(out.millis_behind_latest as i64),
                ),
                ("ChildShards", children),
            ]);
            if tx
                .send(event(enc, "SubscribeToShardEvent", &v))
                .await
                .is_err()
            {
                return; // The client went away.
            }
            last_event = tokio::time::Instant::now();
        }
        match out.next_iterator {
            None => return,
            Some(next) => it = next,
        }
        if out.records.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
}
