//! Lambda's Kinesis event and partial batch response, in AWS's exact JSON shape.
//!
//! Functions parse events with `aws_lambda_events` (its `KinesisEvent` accepts AWS's shape).
//! The runner builds events itself, because `aws_lambda_events` serializes
//! `approximateArrivalTimestamp` as a string where AWS sends a number, and its tumbling-window
//! types neither carry `batchItemFailures` nor accept a state whose values are not strings.
//!
//! # Shape (AWS's documented example, `fixtures/aws-kinesis-event.json`)
//! ```json
//! {"Records": [{
//!   "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1",
//!               "sequenceNumber": "4959...", "data": "SGVsbG8=",
//!               "approximateArrivalTimestamp": 1545084650.987},
//!   "eventSource": "aws:kinesis", "eventVersion": "1.0",
//!   "eventID": "shardId-000000000006:4959...", "eventName": "aws:kinesis:record",
//!   "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
//!   "awsRegion": "us-east-2",
//!   "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"}]}
//! ```
//! With a tumbling window the event also carries `window` (`start`, `end`, RFC 3339),
//! `state`, `shardId`, `eventSourceARN`, `isFinalInvokeForWindow` and
//! `isWindowTerminatedEarly`.
//!
//! # Invariants
//! - `eventID` is `<shard id>:<sequence number>`; `data` is standard base64 with padding;
//!   `approximateArrivalTimestamp` is epoch seconds with the milliseconds as the fraction.
//! - A record is encoded once ([`EncodedRecord`]); an event is its records' bytes joined, so
//!   its size is known exactly before it is sent (the 6 MB payload cap).
//!
//! # Layout
//! - this file: [`EventSource`], [`EncodedRecord`], [`WindowFields`], [`build_event`].
//! - [`response`]: reading a function's answer under the partial batch response rules.

pub mod response;

use serde::{Deserialize, Serialize};
use shardline_core::stream::Record;
use shardline_core::{SequenceNumber, ShardId};

/// Lambda's limit on a synchronous invocation's payload, request and response: 6 MB.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// Where the records come from, as the event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSource {
    /// `eventSourceARN`: the stream's ARN.
    pub stream_arn: String,
    /// `awsRegion`.
    pub region: String,
    /// `invokeIdentityArn`: the function's execution role.
    pub invoke_identity_arn: String,
}

impl EventSource {
    /// The source of stream `stream` in `region` of `account`, invoked as `role`.
    pub fn new(stream: &str, region: &str, account: &str, role: &str) -> Self {
        Self {
            stream_arn: stream_arn(region, account, stream),
            region: region.to_string(),
            invoke_identity_arn: format!("arn:aws:iam::{account}:role/{role}"),
        }
    }
}

/// The ARN of Kinesis stream `stream`.
pub fn stream_arn(region: &str, account: &str, stream: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account}:stream/{stream}")
}

#[cfg(test)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KinesisData<'a> {
    kinesis_schema_version: &'static str,
    partition_key: &'a str,
    sequence_number: &'a str,
    data: String,
    approximate_arrival_timestamp: f64,
}

#[cfg(test)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordOut<'a> {
    kinesis: KinesisData<'a>,
    event_source: &'static str,
    event_version: &'static str,
    #[serde(rename = "eventID")]
    event_id: String,
    event_name: &'static str,
    invoke_identity_arn: &'a str,
    aws_region: &'a str,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: &'a str,
}

/// One stream record, encoded as an entry of an event's `Records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecord {
    /// Its shard.
    pub shard: ShardId,
    /// Its sequence number.
    pub sequence_number: SequenceNumber,
    /// Its partition key.
    pub partition_key: String,
    /// When the stream accepted it, epoch milliseconds.
    pub arrival_ms: i64,
    /// The entry's JSON.
    pub json: Vec<u8>,
}

impl EncodedRecord {
    /// Encodes `record` of `shard` as Lambda delivers it.
    pub fn new(source: &EventSource, shard: ShardId, record: &Record) -> Self {
        Self {
            shard,
            sequence_number: record.sequence_number.clone(),
            partition_key: record.partition_key.clone(),
            arrival_ms: record.approximate_arrival_ms,
            json: encode_record(source, shard, record),
        }
    }
}

/// A JSON string (quoted and escaped) appended to `out`.
fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// The record's entry as Lambda's Kinesis event carries it, written field by field into one
/// buffer (the same bytes as serializing [`RecordOut`], which the tests hold it to; this
/// runs once per record the runner reads, and the base64 goes straight into the buffer).
fn encode_record(source: &EventSource, shard: ShardId, record: &Record) -> Vec<u8> {
    use base64::Engine as _;
    let seq = record.sequence_number.as_str();
    let b64 = base64::encoded_len(record.data.len(), true).unwrap_or(0);
    let mut out = Vec::with_capacity(
        320 + b64
            + record.partition_key.len()
            + 2 * seq.len()
            + source.invoke_identity_arn.len()
            + source.region.len()
            + source.stream_arn.len(),
    );
    out.extend_from_slice(b"{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":");
    push_str(&mut out, &record.partition_key);
    out.extend_from_slice(b",\"sequenceNumber\":");
    push_str(&mut out, seq);
    out.extend_from_slice(b",\"data\":\"");
    let start = out.len();
    out.resize(start + b64, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(&record.data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.extend_from_slice(b"\",\"approximateArrivalTimestamp\":");
    let _ = serde_json::to_writer(&mut out, &(record.approximate_arrival_ms as f64 / 1000.0));
    out.extend_from_slice(
        b"},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":",
    );
    push_str(&mut out, &format!("{shard}:{seq}"));
    out.extend_from_slice(b",\"eventName\":\"aws:kinesis:record\",\"invokeIdentityArn\":");
    push_str(&mut out, &source.invoke_identity_arn);
    out.extend_from_slice(b",\"awsRegion\":");
    push_str(&mut out, &source.region);
    out.extend_from_slice(b",\"eventSourceARN\":");
    push_str(&mut out, &source.stream_arn);
    out.push(b'}');
    out
}

/// A tumbling window's start and end, RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive start.
    pub start: String,
    /// Exclusive end.
    pub end: String,
}

/// The fields a tumbling window adds to an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowFields {
    /// The window.
    pub window: Window,
    /// The state the function returned last in this window (`{}` at its start).
    pub state: serde_json::Map<String, serde_json::Value>,
    /// The shard.
    pub shard_id: String,
    /// The stream's ARN.
    #[serde(rename = "eventSourceARN")]
    pub event_source_arn: String,
    /// The window's last invocation.
    pub is_final_invoke_for_window: bool,
    /// The window ended before its time because its state grew past 1 MB.
    pub is_window_terminated_early: bool,
}

/// Bytes of an event holding `records` with no window: `{"Records":[` + entries + `]}`.
pub fn event_size<'a>(records: impl IntoIterator<Item = &'a EncodedRecord>) -> usize {
    let mut n: usize = 0;
    let mut size = "{\"Records\":[]}".len();
    for r in records {
        size += r.json.len();
        n += 1;
    }
    size + n.saturating_sub(1)
}

/// The event holding `records` (and a tumbling window's fields), as JSON bytes.
pub fn build_event(records: &[EncodedRecord], window: Option<&WindowFields>) -> Vec<u8> {
    let mut out = Vec::with_capacity(event_size(records) + 512);
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&r.json);
    }
    out.push(b']');
    if let Some(w) = window
        && let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(w)
    {
        for (k, v) in fields {
            out.push(b',');
            out.extend_from_slice(&serde_json::to_vec(&k).unwrap_or_default());
            out.push(b':');
            out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
        }
    }
    out.push(b'}');
    out
}

/// The shard and sequence number of an `eventID` (`shardId-000000000000:<seq>`).
pub fn parse_event_id(event_id: &str) -> Option<(ShardId, SequenceNumber)> {
    let (shard, seq) = event_id.split_once(':')?;
    let shard: ShardId = shard.parse().ok()?;
    let seq = SequenceNumber::try_from(seq.to_string()).ok()?;
    Some((shard, seq))
}

#[cfg(test)]
mod tests;
