//! PutRecords in JSON without the request document: the common request (a stream name, 1 to
//! 500 records with a partition key and base64 data, nothing unusual) read straight into the
//! log's entries.
//!
//! Invariant: [`FastPut::parse`] accepts a body only when the general path (decode to a
//! [`crate::value::Value`], type checks, constraints, then the action) would accept it and
//! build the same entries for the same stream; anything else (`None`) goes the general way,
//! which gives every error its wording. So it declines a `StreamARN`, an `ExplicitHashKey`, a
//! repeated member, a partition key that is not 1 to 256 ASCII characters, a stream name
//! outside `[a-zA-Z0-9_.-]{1,128}`, data that is not canonical base64 or over 1 MiB, and a
//! record count outside 1 to 500; the size limits of the whole request are checked as on the
//! general path.

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use shardline_core::stream::PutRecordsEntry;
use std::borrow::Cow;

use crate::shape::Pattern;

/// A PutRecords request read the direct way.
#[derive(Debug)]
pub(crate) struct FastPut {
    pub(crate) stream: String,
    pub(crate) entries: Vec<PutRecordsEntry>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(rename = "StreamName", borrow)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow)]
    stream_arn: Option<Cow<'a, str>>,
    #[serde(rename = "Records", borrow)]
    records: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(rename = "Data", borrow)]
    data: Cow<'a, str>,
    #[serde(rename = "PartitionKey", borrow)]
    partition_key: Cow<'a, str>,
    #[serde(rename = "ExplicitHashKey", borrow)]
    explicit_hash_key: Option<Cow<'a, str>>,
}

/// The longest record data the general path's constraints accept.
const MAX_DATA: usize = 1_048_576;

impl FastPut {
    /// The request in `body`, when it is of the common kind (see the module docs).
    pub(crate) fn parse(body: &[u8]) -> Option<FastPut> {
        // An array would deserialize as the structure's members in order: only objects.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        let b: Body<'_> = serde_json::from_slice(body).ok()?;
        if b.stream_arn.is_some() {
            return None;
        }
        let stream = b.stream_name?;
        if stream.len() > 128 || !Pattern::Name.matches(&stream) {
            return None;
        }
        if b.records.is_empty() || b.records.len() > 500 {
            return None;
        }
        let mut entries = Vec::with_capacity(b.records.len());
        for r in b.records {
            let key = &r.partition_key;
            if r.explicit_hash_key.is_some()
                || key.is_empty()
                || key.len() > 256
                || !key.is_ascii()
                || r.data.len() > MAX_DATA.div_ceil(3) * 4
            {
                return None;
            }
            let data = base64::engine::general_purpose::STANDARD
                .decode(r.data.as_bytes())
                .ok()?;
            if data.len() > MAX_DATA {
                return None;
            }
            entries.push(PutRecordsEntry {
                partition_key: r.partition_key.into_owned(),
                explicit_hash_key: None,
                data: Bytes::from(data),
            });
        }
        Some(FastPut {
            stream: stream.into_owned(),
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::records;
    use crate::shape;
    use crate::validate;
    use crate::value;

    /// What the general path builds from `body`, or `None` when it refuses it.
    fn general(body: &[u8]) -> Option<(String, Vec<PutRecordsEntry>)> {
        let v = value::from_json(body)?;
        let members = shape::request("PutRecords")?;
        let typed = validate::check_types(&v, members).ok()?;
        validate::check_constraints(&typed, members).ok()?;
        records::request_entries(&typed).ok()
    }

    #[test]
    fn the_common_request_reads_as_the_general_path_reads_it() {
        let body = br#"{"StreamName":"bench","Records":[
            {"Data":"aGVsbG8=","PartitionKey":"i-000001"},
            {"PartitionKey":"k","Data":"AAEC\/w==","Unknown":1},
            {"Data":"","PartitionKey":"x"}],"Extra":{"a":[1]}}"#;
        let fast = FastPut::parse(body).expect("fast");
        let (stream, entries) = general(body).expect("general");
        assert_eq!(fast.stream, stream);
        assert_eq!(fast.entries, entries);
        assert_eq!(&fast.entries[1].data[..], &[0, 1, 2, 255]);
    }

    #[test]
    fn anything_unusual_goes_the_general_way() {
        let long_key = format!(
            r#"{{"StreamName":"s","Records":[{{"Data":"","PartitionKey":"{}"}}]}}"#,
            "k".repeat(257)
        );
        let unusual: Vec<Vec<u8>> = vec![
            br#"["s",[]]"#.to_vec(),
            br#"{"StreamName":"s","Records":[]}"#.to_vec(),
            br#"{"StreamName":"s","StreamName":"t","Records":[{"Data":"","PartitionKey":"k"}]}"#
                .to_vec(),
            br#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","Records":[{"Data":"","PartitionKey":"k"}]}"#.to_vec(),
            br#"{"StreamName":"bad name","Records":[{"Data":"","PartitionKey":"k"}]}"#.to_vec(),
            br#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":""}]}"#.to_vec(),
            br#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":"\u00e9"}]}"#.to_vec(),
            br#"{"StreamName":"s","Records":[{"Data":"abc","PartitionKey":"k"}]}"#.to_vec(),
            br#"{"StreamName":"s","Records":[{"Data":"ab=c","PartitionKey":"k"}]}"#.to_vec(),
            br#"{"StreamName":"s","Records":[{"Data":null,"PartitionKey":"k"}]}"#.to_vec(),
            br#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":"k","ExplicitHashKey":"1"}]}"#
                .to_vec(),
            br#"{"StreamName":"s","Records":[{"Data":5,"PartitionKey":"k"}]}"#.to_vec(),
            long_key.into_bytes(),
        ];
        for body in &unusual {
            assert!(
                FastPut::parse(body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let many = format!(
            r#"{{"StreamName":"s","Records":[{}]}}"#,
            vec![r#"{"Data":"","PartitionKey":"k"}"#; 501].join(",")
        );
        assert!(FastPut::parse(many.as_bytes()).is_none());
        let most = many.replacen(r#"{"Data":"","PartitionKey":"k"},"#, "", 1);
        let fast = FastPut::parse(most.as_bytes()).expect("500 records");
        assert_eq!(fast.entries.len(), 500);
        assert_eq!(Some(fast.entries), general(most.as_bytes()).map(|(_, e)| e));
    }
}
