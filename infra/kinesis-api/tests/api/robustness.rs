//! Bad input never corrupts the log or stops the server: malformed bodies, wrong types,
//! oversize bodies, unknown actions, slow clients and arbitrary bytes each get an answer (or a
//! closed connection) and the server keeps serving others.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use shardline_core::units::ByteSize;
use shardline_kinesis_api::ServeConfig;
use shardline_log::LogOptions;

use crate::support::Served;

const JSON: &str = "application/x-amz-json-1.1";

async fn still_serves(s: &Served) {
    let r = s.json("ListStreams", "{}").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn malformed_and_mistyped_requests_get_errors_and_leave_the_log_alone() {
    let s = Served::start().await;
    assert_eq!(
        s.json("CreateStream", r#"{"StreamName":"ok","ShardCount":1}"#)
            .await
            .status,
        200
    );
    let cases = [
        (
            "PutRecords",
            r#"{"StreamName":"ok","Records":[{"PartitionKey":"k","Data":"%%%%"}]}"#,
            "SerializationException",
        ),
        (
            "PutRecords",
            r#"{"StreamName":"ok","Records":{}}"#,
            "SerializationException",
        ),
        (
            "PutRecords",
            r#"{"StreamName":"ok","Records":[]}"#,
            "ValidationException",
        ),
        (
            "PutRecord",
            r#"{"StreamName":"ok","PartitionKey":"k","Data":"AA==","ExplicitHashKey":"340282366920938463463374607431768211456"}"#,
            "InvalidArgumentException",
        ),
        (
            "PutRecord",
            r#"{"StreamName":"ok","PartitionKey":"k","Data":"AA==""#,
            "SerializationException",
        ),
        (
            "GetRecords",
            r#"{"ShardIterator":"AAAA"}"#,
            "InvalidArgumentException",
        ),
        (
            "CreateStream",
            r#"{"StreamName":"ok","ShardCount":1000000}"#,
            "ValidationException",
        ),
        (
            "CreateStream",
            r#"{"StreamName":"big","ShardCount":5000}"#,
            "LimitExceededException",
        ),
    ];
    for (action, body, kind) in cases {
        let r = s.json(action, body).await;
        assert_eq!(
            (r.status, r.json()["__type"].as_str()),
            (400, Some(kind)),
            "{action} {body}: {}",
            r.text()
        );
        assert_eq!(r.header("x-amzn-errortype"), Some(kind));
    }
    let r = s
        .json(
            "PutRecord",
            r#"{"StreamName":"ok","PartitionKey":"k","Data":"aGk="}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    let stats = s.log.shard_stats("ok").await.expect("stats");
    assert_eq!(
        stats[0].next_offset, 1,
        "only the valid record was appended"
    );
    s.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_refused_before_they_are_read() {
    let config = ServeConfig {
        max_request_size: ByteSize(64 * 1024),
        ..ServeConfig::default()
    };
    let s = Served::with(config, LogOptions::default()).await;
    // Declared too large: refused on the headers alone.
    let r = s
        .raw(format!("POST / HTTP/1.1\r\nhost: x\r\ncontent-type: {JSON}\r\nx-amz-target: Kinesis_20131202.ListStreams\r\ncontent-length: 99999999\r\n\r\n").into_bytes())
        .await;
    assert_eq!(r.status, 413);
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_request_size")),
        "{}",
        r.text()
    );
    // Streamed too large (chunked, no length): refused as it arrives.
    let mut req = format!("POST / HTTP/1.1\r\nhost: x\r\ncontent-type: {JSON}\r\nx-amz-target: Kinesis_20131202.ListStreams\r\ntransfer-encoding: chunked\r\n\r\n").into_bytes();
    for _ in 0..20 {
        req.extend_from_slice(format!("{:x}\r\n{}\r\n", 8192, "a".repeat(8192)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = s.raw(req).await;
    assert_eq!(r.status, 413);
    still_serves(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn slow_clients_time_out_without_holding_up_others() {
    let config = ServeConfig {
        request_timeout: Duration::from_millis(300),
        ..ServeConfig::default()
    };
    let s = Served::with(config, LogOptions::default()).await;
    let addr = s.addr;
    // Headers that never finish.
    let mut slow_headers = TcpStream::connect(addr).expect("connect");
    slow_headers
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\n")
        .expect("write");
    // A body that never arrives.
    let mut slow_body = TcpStream::connect(addr).expect("connect");
    slow_body
        .write_all(format!("POST / HTTP/1.1\r\nhost: x\r\ncontent-type: {JSON}\r\nx-amz-target: Kinesis_20131202.ListStreams\r\ncontent-length: 100\r\n\r\n{{").as_bytes())
        .expect("write");
    still_serves(&s).await;
    let body_answer = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        slow_body
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        let n = slow_body.read(&mut buf).expect("read");
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .expect("join");
    assert!(body_answer.starts_with("HTTP/1.1 408"), "{body_answer}");
    let closed = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        slow_headers
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        // hyper answers 408 or just closes; either way the connection ends.
        loop {
            match slow_headers.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    })
    .await
    .expect("join");
    assert!(closed, "the slow connection was closed");
    still_serves(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn unknown_actions_get_unknown_operation() {
    let s = Served::start().await;
    let r = s.json("EnableEnhancedMonitoring", "{}").await;
    assert_eq!(r.json(), json!({"__type": "UnknownOperationException"}));
    still_serves(&s).await;
    s.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever bytes arrive on a connection, the server answers or closes that connection and
    /// then serves a valid request as before.
    #[test]
    fn arbitrary_bytes_never_stop_the_server(
        garbage in proptest::collection::vec(any::<u8>(), 0..2048),
        prefix in prop_oneof![Just(Vec::new()), Just(b"POST / HTTP/1.1\r\nhost: x\r\n".to_vec()),
            Just(format!("POST / HTTP/1.1\r\nhost: x\r\ncontent-type: {JSON}\r\nx-amz-target: Kinesis_20131202.PutRecords\r\n").into_bytes())],
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async {
            let s = Served::with(
                ServeConfig { request_timeout: Duration::from_millis(200), ..ServeConfig::default() },
                LogOptions::default(),
            ).await;
            let addr = s.addr;
            let mut bytes = prefix.clone();
            bytes.extend_from_slice(&garbage);
            tokio::task::spawn_blocking(move || {
                use std::io::Read;
                if let Ok(mut c) = TcpStream::connect(addr) {
                    let _ = c.write_all(&bytes);
                    let _ = c.shutdown(std::net::Shutdown::Write);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut sink = Vec::new();
                    let _ = c.read_to_end(&mut sink);
                }
            }).await.expect("join");
            still_serves(&s).await;
            s.stop().await;
        });
    }
}

/// Arbitrary documents of the shapes requests have: maps of known and unknown members holding
/// every type.
fn document() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("shardId-000000000000"),
            Just("s"),
            Just("AAAA"),
            Just("TRIM_HORIZON"),
            Just("0")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let names = prop_oneof![
            Just("StreamName".to_string()),
            Just("ShardCount".to_string()),
            Just("Records".to_string()),
            Just("Data".to_string()),
            Just("PartitionKey".to_string()),
            Just("ShardId".to_string()),
            Just("ShardIteratorType".to_string()),
            Just("ShardIterator".to_string()),
            Just("Tags".to_string()),
            Just("StreamARN".to_string()),
            Just("ShardFilter".to_string()),
            Just("Type".to_string()),
            "[a-zA-Z]{1,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(names, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The request pipeline (method, content type, target, JSON or CBOR body) answers every
    /// input with a well-formed Kinesis answer in the request's encoding, and never panics.
    #[test]
    fn every_request_gets_a_well_formed_answer(
        method in prop_oneof![Just("POST"), Just("GET"), Just("PUT"), Just("OPTIONS")],
        content_type in prop_oneof![Just(JSON), Just("application/x-amz-cbor-1.1"), Just("application/json"), Just(""), Just("text/plain")],
        action in prop_oneof![
            proptest::sample::select(shardline_kinesis_api::ACTIONS.to_vec()).prop_map(str::to_string),
            "[A-Za-z]{0,12}",
        ],
        doc in document(),
        raw in proptest::collection::vec(any::<u8>(), 0..64),
        use_raw in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
            let log = std::sync::Arc::new(shardline_log::Log::open(dir.path(), LogOptions::default()).await.expect("open"));
            log.create("s", 1, Duration::from_secs(3600)).await.expect("create");
            let ep = shardline_kinesis_api::Endpoint::new(log.clone(), ServeConfig::default()).expect("endpoint");
            let body = if use_raw {
                raw.clone()
            } else if content_type == "application/x-amz-cbor-1.1" {
                let v: shardline_kinesis_api::value::Value =
                    serde_json::from_value(doc.clone()).expect("json into value");
                shardline_kinesis_api::cbor::encode(&v)
            } else {
                doc.to_string().into_bytes()
            };
            let mut headers = http::HeaderMap::new();
            if !content_type.is_empty() {
                headers.insert("content-type", content_type.parse().expect("header"));
            }
            headers.insert("x-amz-target", format!("Kinesis_20131202.{action}").parse().expect("header"));
            let r = ep
                .respond(&shardline_kinesis_api::Request {
                    method, path: "/", query: None, authority: None, headers: &headers, body: &body,
                })
                .await;
            assert!([200, 400, 403, 404, 500].contains(&r.status), "status {}", r.status);
            let ctype = r.headers.iter().find(|(k, _)| *k == "content-type").map(|(_, v)| v.clone());
            if r.stream.is_none() {
                match ctype.as_deref() {
                    Some("application/x-amz-json-1.1") | Some("application/json") => {
                        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON answer");
                        if r.status >= 400 {
                            assert!(v["__type"].is_string() || v["Output"]["__type"].is_string(), "{v}");
                        }
                    }
                    Some("application/x-amz-cbor-1.1") => {
                        let v = shardline_kinesis_api::cbor::decode(&r.body).expect("CBOR answer");
                        if r.status >= 400 {
                            assert!(v.str("__type").is_some(), "{v:?}");
                        }
                    }
                    _ => {}
                }
            }
            log.close().await.expect("close");
        });
    }
}
