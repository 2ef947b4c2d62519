//! Golden fixtures: AWS's documented Kinesis event, tumbling-window event and partial batch
//! response (fixtures/), parsed with aws_lambda_events and rebuilt byte-for-value here.

#![allow(clippy::unwrap_used)]

use super::response::{BatchVerdict, verdict, window_state};
use super::*;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use bytes::Bytes;
use serde_json::{Value, json};

const EVENT: &str = include_str!("../../fixtures/aws-kinesis-event.json");
const WINDOW_EVENT: &str = include_str!("../../fixtures/aws-kinesis-window-event.json");
const RESPONSE: &str = include_str!("../../fixtures/aws-kinesis-batch-response.json");

fn seq(s: &str) -> SequenceNumber {
    SequenceNumber::try_from(s.to_string()).unwrap()
}

fn record(s: &str, data: &str, arrival_ms: i64) -> Record {
    Record {
        sequence_number: seq(s),
        partition_key: "1".into(),
        explicit_hash_key: None,
        approximate_arrival_ms: arrival_ms,
        data: Bytes::from(data.to_string()),
    }
}

#[test]
fn aws_documented_example_parses_with_aws_lambda_events() {
    let event: KinesisEvent = serde_json::from_str(EVENT).unwrap();
    assert_eq!(event.records.len(), 2);
    let first = &event.records[0];
    assert_eq!(first.kinesis.data.0, b"Hello, this is a test.");
    assert_eq!(
        first
            .kinesis
            .approximate_arrival_timestamp
            .timestamp_millis(),
        1_545_084_650_987
    );
    assert_eq!(
        first.event_source_arn.as_deref(),
        Some("arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream")
    );
    let (shard, s) = parse_event_id(first.event_id.as_deref().unwrap()).unwrap();
    assert_eq!(shard, ShardId(6));
    assert_eq!(s.as_str(), first.kinesis.sequence_number);
    assert_eq!(event.records[1].kinesis.data.0, b"This is only a test.");
}

fn aws_example_source() -> EventSource {
    EventSource::new("lambda-stream", "us-east-2", "123456789012", "lambda-role")
}

#[test]
fn the_runner_builds_aws_documented_example_exactly() {
    let source = aws_example_source();
    let records = [
        record(
            "49590338271490256608559692538361571095921575989136588898",
            "Hello, this is a test.",
            1_545_084_650_987,
        ),
        record(
            "49590338271490256608559692540925702759324208523137515618",
            "This is only a test.",
            1_545_084_711_166,
        ),
    ];
    let encoded: Vec<EncodedRecord> = records
        .iter()
        .map(|r| EncodedRecord::new(&source, ShardId(6), r))
        .collect();
    let built = build_event(&encoded, None);
    assert_eq!(
        built.len(),
        event_size(&encoded),
        "size known before building"
    );
    let built: Value = serde_json::from_slice(&built).unwrap();
    let expected: Value = serde_json::from_str(EVENT).unwrap();
    assert_eq!(built, expected);
    assert!(
        built["Records"][0]["kinesis"]["approximateArrivalTimestamp"].is_number(),
        "a number, as AWS sends it (aws_lambda_events would write a string)"
    );
    // And functions parse what the runner builds.
    let parsed: KinesisEvent = serde_json::from_value(built).unwrap();
    assert_eq!(parsed.records[1].kinesis.data.0, b"This is only a test.");
}

#[test]
fn the_runner_builds_aws_documented_window_event_exactly() {
    let source = EventSource::new(
        "lambda-stream",
        "us-east-1",
        "123456789012",
        "lambda-kinesis-role",
    );
    let r = record(
        "49590338271490256608559692538361571095921575989136588898",
        "Hello, this is a test.",
        1_607_497_475_000,
    );
    let encoded = [EncodedRecord::new(&source, ShardId(6), &r)];
    let mut state = serde_json::Map::new();
    state.insert("1".into(), json!(282));
    state.insert("2".into(), json!(715));
    let window = WindowFields {
        window: Window {
            start: "2020-12-09T07:04:00Z".into(),
            end: "2020-12-09T07:06:00Z".into(),
        },
        state,
        shard_id: "shardId-000000000006".into(),
        event_source_arn: source.stream_arn.clone(),
        is_final_invoke_for_window: false,
        is_window_terminated_early: false,
    };
    let built: Value = serde_json::from_slice(&build_event(&encoded, Some(&window))).unwrap();
    let expected: Value = serde_json::from_str(WINDOW_EVENT).unwrap();
    assert_eq!(built, expected);
    assert_eq!(
        window_state(br#"{"state": {"1": 282, "2": 715}, "batchItemFailures": []}"#),
        window.state
    );
    assert!(window_state(b"not json").is_empty());
}

#[test]
fn responses_serialize_to_aws_documented_shape() {
    let mut response = KinesisEventResponse::default();
    response.add_failure("49590338271490256608559692540925702759324208523137515618");
    let expected: Value = serde_json::from_str(RESPONSE).unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap(), expected);
    assert_eq!(
        serde_json::to_value(KinesisEventResponse::default()).unwrap(),
        json!({"batchItemFailures": []})
    );
}

#[test]
fn partial_batch_response_rules() {
    let batch = [seq("10"), seq("20"), seq("30")];
    let v = |answer: &str| verdict(answer.as_bytes(), &batch, true);
    for ok in [
        "",
        "null",
        "{}",
        r#"{"batchItemFailures": null}"#,
        r#"{"batchItemFailures": []}"#,
        r#"{"statusCode": 200}"#,
    ] {
        assert_eq!(v(ok), BatchVerdict::Success, "{ok:?}");
    }
    assert_eq!(
        v(r#"{"batchItemFailures": [{"itemIdentifier": "30"}, {"itemIdentifier": "20"}]}"#),
        BatchVerdict::FailedFrom(seq("20")),
        "checkpoint at the lowest failed sequence number"
    );
    for whole in [
        r#"{"batchItemFailures": [{"itemIdentifier": null}]}"#,
        r#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#,
        r#"{"batchItemFailures": [{"itemId": "20"}]}"#,
        r#"{"batchItemFailures": [{"itemIdentifier": "25"}]}"#,
        r#"{"batchItemFailures": [{"itemIdentifier": "20"}, {"itemIdentifier": null}]}"#,
        r#"{"batchItemFailures": "20"}"#,
        "[1, 2]",
        "{not json",
    ] {
        assert!(
            matches!(v(whole), BatchVerdict::Failed(_)),
            "{whole:?}: {:?}",
            v(whole)
        );
    }
    assert_eq!(
        verdict(b"{not json", &batch, false),
        BatchVerdict::Success,
        "without ReportBatchItemFailures the answer is not read"
    );
}

/// The hand-written encoder gives exactly the bytes serde gives for the entry's struct,
/// whatever the partition key, data and arrival time hold (escapes, Unicode, empty data,
/// whole and fractional seconds).
#[test]
fn the_record_encoder_writes_what_serde_writes() {
    use base64::Engine as _;
    let source = aws_example_source();
    let keys = [
        "1",
        "",
        "i-0abc\"quoted\\\"",
        "line\nbreak\ttab",
        "ünïcödé ✓",
        "\u{1}ctl",
    ];
    let datas: [&[u8]; 4] = [b"", b"{\"metric\":1}", &[0xff, 0x00, 0xfe], &[b'x'; 1000]];
    for (i, key) in keys.iter().enumerate() {
        for (j, data) in datas.iter().enumerate() {
            let r = Record {
                sequence_number: seq(&format!(
                    "4959{i}{j}0000000000000000000000000000000000000000"
                )),
                partition_key: (*key).to_string(),
                explicit_hash_key: None,
                approximate_arrival_ms: 1_545_084_650_987 + (i * 7 + j) as i64 * 333,
                data: Bytes::copy_from_slice(data),
            };
            let seq_text = r.sequence_number.as_str();
            let expected = serde_json::to_vec(&RecordOut {
                kinesis: KinesisData {
                    kinesis_schema_version: "1.0",
                    partition_key: &r.partition_key,
                    sequence_number: seq_text,
                    data: base64::engine::general_purpose::STANDARD.encode(&r.data),
                    approximate_arrival_timestamp: r.approximate_arrival_ms as f64 / 1000.0,
                },
                event_source: "aws:kinesis",
                event_version: "1.0",
                event_id: format!("{}:{seq_text}", ShardId(3)),
                event_name: "aws:kinesis:record",
                invoke_identity_arn: &source.invoke_identity_arn,
                aws_region: &source.region,
                event_source_arn: &source.stream_arn,
            })
            .unwrap();
            let got = EncodedRecord::new(&source, ShardId(3), &r).json;
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "key {key:?}, data {j}"
            );
        }
    }
}
