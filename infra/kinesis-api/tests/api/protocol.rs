//! The protocol as Kinesis answers it (kinesalite's connection tests recorded these answers):
//! methods, content types, targets, bodies, CBOR, and SigV4 when keys are configured.

use serde_json::json;
use shardline_kinesis_api::{ServeConfig, cbor, value::Value};
use shardline_log::LogOptions;

use crate::support::{Served, keys};

const JSON: &str = "application/x-amz-json-1.1";
const CBOR: &str = "application/x-amz-cbor-1.1";

#[tokio::test]
async fn methods_content_types_and_targets_get_kinesis_answers() {
    let s = Served::start().await;
    let r = s.request("GET", &[], b"").await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n"
    );
    // No body: CBOR unless the request said JSON.
    let r = s.post(&[], b"").await;
    assert_eq!((r.status, r.header("content-type")), (400, Some(CBOR)));
    assert_eq!(
        cbor::decode(&r.body),
        Some(Value::Map(vec![(
            "__type".into(),
            Value::s("UnknownOperationException")
        )]))
    );
    let r = s
        .post(
            &[
                ("content-type", JSON),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
            ],
            b"",
        )
        .await;
    assert_eq!(r.json(), json!({"__type": "SerializationException"}));
    assert_eq!(r.header("x-amzn-errortype"), Some("SerializationException"));
    // A body without a content type: AccessDenied without a target, UnknownOperation with one.
    let r = s.post(&[], b"{}").await;
    assert_eq!(r.status, 403);
    let r = s
        .post(&[("x-amz-target", "Kinesis_20131202.ListStreams")], b"{}")
        .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "<UnknownOperationException/>\n")
    );
    // application/json is the deprecated form.
    let r = s
        .post(
            &[
                ("content-type", "application/json"),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"Output": {"__type": "com.amazon.coral.service#UnknownOperationException"}, "Version": "1.0"})
    );
    let r = s
        .post(
            &[
                ("content-type", "application/json"),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
            ],
            b"hello",
        )
        .await;
    assert_eq!(
        r.json()["Output"]["__type"],
        "com.amazon.coral.service#SerializationException"
    );
    for body in [&b"hello"[..], b"true", b"null", b"[1]"] {
        let r = s
            .post(
                &[
                    ("content-type", JSON),
                    ("x-amz-target", "Kinesis_20131202.ListStreams"),
                ],
                body,
            )
            .await;
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"__type": "SerializationException"})),
            "{body:?}"
        );
    }
    for target in [
        "Whatever",
        "Kinesis_20131202.",
        "Kinesis_20131202.Whatever",
        "Whatever.ListStreams",
        "Kinesis_20131202.ListStream",
    ] {
        let r = s
            .post(&[("content-type", JSON), ("x-amz-target", target)], b"{}")
            .await;
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"__type": "UnknownOperationException"})),
            "{target}"
        );
    }
    let r = s
        .post(
            &[
                ("content-type", JSON),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"StreamNames": [], "HasMoreStreams": false, "StreamSummaries": []})
    );
    assert!(
        r.header("x-amzn-requestid")
            .is_some_and(|id| id.len() == 36)
    );
    s.stop().await;
}

#[tokio::test]
async fn cors_preflight_and_origin() {
    let s = Served::start().await;
    let r = s
        .request(
            "OPTIONS",
            &[
                ("origin", "whatever"),
                ("access-control-request-headers", "a, b, c"),
                ("access-control-request-method", "d"),
            ],
            b"",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-headers"), Some("a, b, c"));
    assert_eq!(r.header("access-control-allow-methods"), Some("d"));
    assert_eq!(r.header("access-control-max-age"), Some("172800"));
    let r = s
        .post(
            &[
                ("origin", "x"),
                ("content-type", JSON),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    s.stop().await;
}

#[tokio::test]
async fn cbor_requests_get_cbor_answers() {
    let s = Served::start().await;
    let body = cbor::encode(&Value::map([
        ("StreamName", Value::s("c")),
        ("ShardCount", Value::Int(1)),
    ]));
    let r = s
        .post(
            &[
                ("content-type", CBOR),
                ("x-amz-target", "Kinesis_20131202.CreateStream"),
            ],
            &body,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", cbor::decode(&r.body));
    let put = cbor::encode(&Value::map([
        ("StreamName", Value::s("c")),
        ("Data", Value::Bytes(vec![0, 159, 146, 150, 255])),
        ("PartitionKey", Value::s("k")),
    ]));
    let r = s
        .post(
            &[
                ("content-type", CBOR),
                ("x-amz-target", "Kinesis_20131202.PutRecord"),
            ],
            &put,
        )
        .await;
    assert_eq!((r.status, r.header("content-type")), (200, Some(CBOR)));
    let v = cbor::decode(&r.body).expect("cbor answer");
    assert_eq!(v.str("ShardId"), Some("shardId-000000000000"));
    let it = cbor::encode(&Value::map([
        ("StreamName", Value::s("c")),
        ("ShardId", Value::s("shardId-000000000000")),
        ("ShardIteratorType", Value::s("TRIM_HORIZON")),
    ]));
    let r = s
        .post(
            &[
                ("content-type", CBOR),
                ("x-amz-target", "Kinesis_20131202.GetShardIterator"),
            ],
            &it,
        )
        .await;
    let it = cbor::decode(&r.body)
        .and_then(|v| v.str("ShardIterator").map(str::to_string))
        .expect("iterator");
    let get = cbor::encode(&Value::map([("ShardIterator", Value::s(it))]));
    let r = s
        .post(
            &[
                ("content-type", CBOR),
                ("x-amz-target", "Kinesis_20131202.GetRecords"),
            ],
            &get,
        )
        .await;
    let v = cbor::decode(&r.body).expect("cbor");
    let Some(Value::Array(records)) = v.get("Records") else {
        panic!("{v:?}")
    };
    assert_eq!(
        records[0].get("Data"),
        Some(&Value::Bytes(vec![0, 159, 146, 150, 255])),
        "bytes intact, as a CBOR byte string"
    );
    assert!(
        matches!(records[0].get("ApproximateArrivalTimestamp"), Some(Value::Timestamp(ms)) if *ms > 1_600_000_000_000),
        "tag 1 epoch milliseconds"
    );
    // A CBOR type error has the same wording as in JSON.
    let bad = cbor::encode(&Value::map([("StreamName", Value::Int(5))]));
    let r = s
        .post(
            &[
                ("content-type", CBOR),
                ("x-amz-target", "Kinesis_20131202.DeleteStream"),
            ],
            &bad,
        )
        .await;
    let v = cbor::decode(&r.body).expect("cbor");
    assert_eq!(v.str("__type"), Some("SerializationException"));
    s.stop().await;
}

#[tokio::test]
async fn with_access_keys_only_signed_requests_reach_the_log() {
    let config = ServeConfig {
        access_keys: keys(),
        ..ServeConfig::default()
    };
    let s = Served::with(config, LogOptions::default()).await;
    let r = s
        .json("CreateStream", r#"{"StreamName":"x","ShardCount":1}"#)
        .await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
        )
    );
    let r = s
        .post(
            &[
                ("content-type", JSON),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
                ("authorization", "a"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(r.json()["__type"], "IncompleteSignatureException");
    assert_eq!(
        r.json()["message"],
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=a"
    );
    assert!(
        s.log.stream_names().expect("names").is_empty(),
        "nothing unsigned got through"
    );
    // aws-sdk-rust's signature verifies; a wrong secret or an unknown key does not.
    s.sdk()
        .create_stream()
        .stream_name("x")
        .shard_count(1)
        .send()
        .await
        .expect("signed create");
    let wrong = crate::support::sdk_client(&s.url(), "AKIDTEST", "not-the-secret");
    let e = wrong.list_streams().send().await.expect_err("wrong secret");
    assert_eq!(
        e.as_service_error()
            .and_then(|e| aws_sdk_kinesis::error::ProvideErrorMetadata::code(e)),
        Some("InvalidSignatureException")
    );
    let unknown = crate::support::sdk_client(&s.url(), "AKIDOTHER", "secret-test");
    let e = unknown
        .list_streams()
        .send()
        .await
        .expect_err("unknown key");
    assert_eq!(
        e.as_service_error()
            .and_then(|e| aws_sdk_kinesis::error::ProvideErrorMetadata::code(e)),
        Some("UnrecognizedClientException")
    );
    assert_eq!(s.log.stream_names().expect("names"), vec!["x".to_string()]);
    s.stop().await;
}
