//! Messages as kinesalite's test suite recorded them from Kinesis.

use super::*;
use crate::shape;
use crate::value::from_json;

fn run(action: &str, json: &str) -> Result<Value, ApiError> {
    let members = shape::request(action).expect("shape");
    let v = from_json(json.as_bytes()).expect("json");
    let typed = check_types(&v, members)?;
    check_constraints(&typed, members)?;
    Ok(typed)
}

fn validation(action: &str, json: &str) -> String {
    let e = run(action, json).expect_err("refused");
    assert_eq!(e.kind, "ValidationException", "{e}");
    e.message.expect("message")
}

fn serialization(action: &str, json: &str) -> String {
    let e = run(action, json).expect_err("refused");
    assert_eq!(
        (e.kind, e.capital_message),
        ("SerializationException", true),
        "{e}"
    );
    e.message.expect("message")
}

#[test]
fn type_mismatches_name_the_java_class() {
    let cases = [
        (
            r#"{"StreamName":true}"#,
            "class java.lang.Boolean can not be converted to an String",
        ),
        (
            r#"{"StreamName":23}"#,
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
        ),
        (
            r#"{"StreamName":[]}"#,
            "Start of list found where not expected",
        ),
        (
            r#"{"StreamName":{}}"#,
            "Start of structure or map found where not expected.",
        ),
        (r#"{"Records":"23"}"#, "Expected list or null"),
        (
            r#"{"Records":{}}"#,
            "Start of structure or map found where not expected.",
        ),
        (r#"{"Records":[23]}"#, "Expected null"),
        (
            r#"{"Records":[{"Data":true}]}"#,
            "class java.lang.Boolean can not be converted to a Blob",
        ),
        (
            r#"{"Records":[{"Data":"23456"}]}"#,
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5",
        ),
        (
            r#"{"Records":[{"Data":"=+/="}]}"#,
            "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='",
        ),
        (
            r#"{"Records":[{"Data":"+/+="}]}"#,
            "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(serialization("PutRecords", json), want, "{json}");
    }
    assert_eq!(
        serialization("CreateStream", r#"{"ShardCount":"23"}"#),
        "class java.lang.String can not be converted to an Integer"
    );
    assert_eq!(
        serialization("GetShardIterator", r#"{"Timestamp":true}"#),
        "class java.lang.Boolean can not be converted to milliseconds since epoch"
    );
    assert_eq!(
        serialization("AddTagsToStream", r#"{"Tags":[]}"#),
        "Start of list found where not expected"
    );
    assert_eq!(
        serialization("AddTagsToStream", r#"{"Tags":1}"#),
        "Expected map or null"
    );
}

#[test]
fn put_records_validation_matches_kinesis() {
    assert_eq!(
        validation("PutRecords", "{}"),
        "2 validation errors detected: Value null at 'records' failed to satisfy constraint: \
         Member must not be null; Value null at 'streamName' failed to satisfy constraint: \
         Member must not be null"
    );
    assert_eq!(
        validation(
            "PutRecords",
            r#"{"StreamName":"","Records":[{"PartitionKey":"","Data":"","ExplicitHashKey":""}]}"#
        ),
        "4 validation errors detected: \
         Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1; \
         Value '' at 'records.1.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38}); \
         Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
         Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 1_048_577]);
    let msg = validation(
        "PutRecords",
        &format!(r#"{{"StreamName":"s","Records":[{{"PartitionKey":"k","Data":"{big}"}}]}}"#),
    );
    assert_eq!(
        msg,
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' \
         at 'records.1.member.data' failed to satisfy constraint: Member must have length less than or equal to 1048576"
    );
    let many = vec![r#"{"PartitionKey":"","Data":""}"#; 501].join(",");
    let msg = validation(
        "PutRecords",
        &format!(r#"{{"StreamName":"","Records":[{many}]}}"#),
    );
    assert!(msg.starts_with("10 validation errors detected: Value '[com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310, "), "{msg}");
    assert!(msg.contains("at 'records' failed to satisfy constraint: Member must have length less than or equal to 500; Value '' at 'records.1.member.partitionKey'"), "{msg}");
    assert!(msg.ends_with("'records.9.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{msg}");
}

#[test]
fn create_stream_clamps_and_checks_in_order() {
    assert_eq!(
        validation("CreateStream", "{}"),
        "2 validation errors detected: Value null at 'shardCount' failed to satisfy constraint: \
         Member must not be null; Value null at 'streamName' failed to satisfy constraint: \
         Member must not be null"
    );
    let name = "a".repeat(129);
    assert_eq!(
        validation(
            "CreateStream",
            &format!(r#"{{"StreamName":"{name}","ShardCount":100000000000}}"#)
        ),
        format!(
            "2 validation errors detected: Value '2147483647' at 'shardCount' failed to satisfy \
             constraint: Member must have value less than or equal to 100000; Value '{name}' at \
             'streamName' failed to satisfy constraint: Member must have length less than or equal to 128"
        )
    );
    let ok = run(
        "CreateStream",
        r#"{"StreamName":"s","StreamModeDetails":{"StreamMode":"ON_DEMAND"}}"#,
    );
    assert!(ok.is_ok(), "on-demand streams need no shard count: {ok:?}");
}

#[test]
fn tags_enums_and_stream_arns() {
    let msg = validation("AddTagsToStream", r#"{"StreamName":"s","Tags":{"":"v"}}"#);
    assert_eq!(
        msg,
        "1 validation error detected: Value '{=v}' at 'tags' failed to satisfy constraint: Map keys \
         must satisfy constraint: [Member must have length less than or equal to 128, Member must \
         have length greater than or equal to 1]"
    );
    let msg = validation(
        "GetShardIterator",
        r#"{"StreamName":"s","ShardId":"shardId-0","ShardIteratorType":"SOMEWHERE"}"#,
    );
    assert!(msg.ends_with("Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"), "{msg}");
    let arn = r#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}"#;
    assert!(
        run("DescribeStreamSummary", arn).is_ok(),
        "an ARN stands in for the name"
    );
    let msg = validation("DescribeStreamSummary", r#"{"StreamARN":"nope"}"#);
    assert!(msg.contains("at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+"), "{msg}");
    let typed = run("GetShardIterator", r#"{"StreamName":"s","ShardId":"0","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1700000000.5,"Unknown":1}"#).expect("valid");
    assert_eq!(
        typed.get("Timestamp"),
        Some(&Value::Timestamp(1_700_000_000_500))
    );
    assert!(
        typed.get("Unknown").is_none(),
        "unknown members are dropped"
    );
}
