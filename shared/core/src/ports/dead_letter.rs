//! [`DeadLetter`]: a record that could not be processed, with its exact bytes.
//!
//! # JSON form
//! The letter's fields, with the record's data as `data`: the text itself when the bytes are
//! UTF-8, else their standard base64 with `"data_encoding": "base64"` beside it. Letters written
//! before `data_encoding` existed have text `data` and no marker, and read as before. Reading
//! back gives the exact bytes in both cases.

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::stream::{SequenceNumber, ShardId};

/// A record that could not be processed, kept with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub struct DeadLetter {
    /// The consumer that rejected it.
    pub consumer: String,
    /// Its stream.
    pub stream: String,
    /// Its shard.
    pub shard: ShardId,
    /// Its sequence number.
    pub sequence_number: SequenceNumber,
    /// Its partition key.
    pub partition_key: String,
    /// Why it was rejected.
    pub reason: String,
    /// The record's data, exactly as received.
    pub data: Bytes,
    /// When it was dead-lettered, epoch milliseconds.
    pub at_ms: i64,
}

/// How `data` is written in a letter's JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataEncoding {
    /// Standard base64 (the bytes are not UTF-8).
    Base64,
}

impl DeadLetter {
    /// The data as it is written in the JSON form: the text when it is UTF-8 (`None`), else
    /// base64 (`Some(DataEncoding::Base64)`).
    pub fn data_text(&self) -> (std::borrow::Cow<'_, str>, Option<DataEncoding>) {
        match std::str::from_utf8(&self.data) {
            Ok(text) => (text.into(), None),
            Err(_) => (
                base64::engine::general_purpose::STANDARD
                    .encode(&self.data)
                    .into(),
                Some(DataEncoding::Base64),
            ),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    consumer: String,
    stream: String,
    shard: ShardId,
    sequence_number: SequenceNumber,
    partition_key: String,
    reason: String,
    data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_encoding: Option<DataEncoding>,
    at_ms: i64,
}

impl From<DeadLetter> for Wire {
    fn from(l: DeadLetter) -> Self {
        let (data, data_encoding) = l.data_text();
        let data = data.into_owned();
        Wire {
            consumer: l.consumer,
            stream: l.stream,
            shard: l.shard,
            sequence_number: l.sequence_number,
            partition_key: l.partition_key,
            reason: l.reason,
            data,
            data_encoding,
            at_ms: l.at_ms,
        }
    }
}

impl TryFrom<Wire> for DeadLetter {
    type Error = String;
    fn try_from(w: Wire) -> Result<Self, String> {
        let data = match w.data_encoding {
            None => Bytes::from(w.data),
            Some(DataEncoding::Base64) => Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(w.data.as_bytes())
                    .map_err(|e| format!("dead letter data is not base64: {e}"))?,
            ),
        };
        Ok(DeadLetter {
            consumer: w.consumer,
            stream: w.stream,
            shard: w.shard,
            sequence_number: w.sequence_number,
            partition_key: w.partition_key,
            reason: w.reason,
            data,
            at_ms: w.at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(data: &[u8]) -> DeadLetter {
        DeadLetter {
            consumer: "s3".into(),
            stream: "metrics".into(),
            shard: ShardId(1),
            sequence_number: SequenceNumber::try_from("49600".to_string()).expect("decimal"),
            partition_key: "i-1".into(),
            reason: "malformed: not a metric event".into(),
            data: Bytes::copy_from_slice(data),
            at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn exact_bytes_round_trip_text_as_text_and_the_rest_as_base64() {
        let text = letter("{\"v\":\"caf\u{e9}\\n\u{1}\"}".as_bytes());
        let json = serde_json::to_value(&text).expect("json");
        assert_eq!(json["data"], "{\"v\":\"caf\u{e9}\\n\u{1}\"}");
        assert!(json.get("data_encoding").is_none(), "{json}");
        assert_eq!(
            serde_json::from_value::<DeadLetter>(json).expect("back"),
            text
        );

        let binary = letter(b"{\"v\":\"\xff\xfe\x00\"}");
        let json = serde_json::to_value(&binary).expect("json");
        assert_eq!(json["data_encoding"], "base64");
        assert_eq!(json["data"], "eyJ2Ijoi//4AIn0=");
        assert_eq!(
            serde_json::from_value::<DeadLetter>(json).expect("back"),
            binary
        );
    }

    #[test]
    fn letters_stored_before_the_marker_read_as_text() {
        let old = r#"{"consumer":"s3","stream":"metrics","shard":"shardId-000000000001",
            "sequence_number":"49600","partition_key":"i-1","reason":"not a metric event",
            "data":"{\"bad\":1}","at_ms":1700000000000}"#;
        let l: DeadLetter = serde_json::from_str(old).expect("old letters read");
        assert_eq!(l.data.as_ref(), b"{\"bad\":1}");
        let bad = old.replace("\"at_ms\"", "\"data_encoding\":\"base64\",\"at_ms\"");
        let err = serde_json::from_str::<DeadLetter>(&bad).expect_err("not base64");
        assert!(err.to_string().contains("not base64"), "{err}");
    }
}
