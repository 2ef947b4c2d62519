//! Enhanced fan-out with aws-sdk-rust: register, describe, list, SubscribeToShard pushing
//! records with continuation sequence numbers, ChildShards at a split, one subscription per
//! consumer and shard, deregister; and the event stream over HTTP/2 (h2c) with a raw client.

use std::time::Duration;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, StartingPosition, SubscribeToShardEvent,
    SubscribeToShardEventStream,
};
use shardline_kinesis_api::eventstream;

use crate::support::Served;

const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/fan";

async fn put(c: &aws_sdk_kinesis::Client, tag: &str, n: usize) {
    let entries: Vec<_> = (0..n)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{i}"))
                .data(Blob::new(format!("{tag}-{i}")))
                .build()
                .expect("entry")
        })
        .collect();
    let r = c
        .put_records()
        .stream_name("fan")
        .set_records(Some(entries))
        .send()
        .await
        .expect("put");
    assert_eq!(r.failed_record_count, Some(0));
}

async fn next_event(
    s: &mut aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput,
) -> Option<SubscribeToShardEvent> {
    let got = tokio::time::timeout(Duration::from_secs(30), s.event_stream.recv())
        .await
        .expect("an event within 30 s")
        .expect("a well-formed event");
    match got? {
        SubscribeToShardEventStream::SubscribeToShardEvent(e) => Some(e),
        other => panic!("unexpected {other:?}"),
    }
}

/// Events until `want` records arrived (or the stream ended); the records' data and the last
/// continuation number.
async fn collect(
    s: &mut aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput,
    want: usize,
) -> (Vec<String>, String, Vec<String>) {
    let mut data = Vec::new();
    let mut cont = String::new();
    let mut kids = Vec::new();
    while data.len() < want {
        let Some(e) = next_event(s).await else { break };
        data.extend(
            e.records
                .iter()
                .map(|r| String::from_utf8_lossy(r.data.as_ref()).into_owned()),
        );
        cont = e.continuation_sequence_number.clone();
        if let Some(c) = e.child_shards {
            kids.extend(c.into_iter().map(|c| c.shard_id));
            break;
        }
    }
    (data, cont, kids)
}

#[tokio::test]
async fn consumers_subscribe_resume_and_follow_a_split() {
    let s = Served::start().await;
    let c = s.sdk();
    c.create_stream()
        .stream_name("fan")
        .shard_count(1)
        .send()
        .await
        .expect("create");
    let reg = c
        .register_stream_consumer()
        .stream_arn(ARN)
        .consumer_name("app")
        .send()
        .await
        .expect("register");
    let consumer = reg.consumer.expect("consumer");
    assert!(
        consumer
            .consumer_arn
            .starts_with(&format!("{ARN}/consumer/app:")),
        "{}",
        consumer.consumer_arn
    );
    let e = c
        .register_stream_consumer()
        .stream_arn(ARN)
        .consumer_name("app")
        .send()
        .await
        .expect_err("twice");
    assert_eq!(
        e.as_service_error().and_then(|e| e.code()),
        Some("ResourceInUseException")
    );
    let d = c
        .describe_stream_consumer()
        .consumer_arn(&consumer.consumer_arn)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        d.consumer_description
            .expect("description")
            .consumer_status
            .as_str(),
        "ACTIVE"
    );
    let listed = c
        .list_stream_consumers()
        .stream_arn(ARN)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.consumers.unwrap_or_default().len(), 1);

    put(&c, "a", 30).await;
    let sub = |pos: StartingPosition| {
        c.subscribe_to_shard()
            .consumer_arn(&consumer.consumer_arn)
            .shard_id("shardId-000000000000")
            .starting_position(pos)
            .send()
    };
    let mut first = sub(StartingPosition::builder()
        .r#type(ShardIteratorType::TrimHorizon)
        .build()
        .expect("pos"))
    .await
    .expect("subscribe");
    let e = sub(StartingPosition::builder()
        .r#type(ShardIteratorType::TrimHorizon)
        .build()
        .expect("pos"))
    .await
    .expect_err("one subscription per consumer and shard");
    assert_eq!(
        e.as_service_error().and_then(|e| e.code()),
        Some("ResourceInUseException")
    );
    let (data, cont, _) = collect(&mut first, 30).await;
    assert_eq!(data, (0..30).map(|i| format!("a-{i}")).collect::<Vec<_>>());
    put(&c, "b", 20).await;
    let (more, cont2, _) = collect(&mut first, 20).await;
    assert_eq!(
        more.len(),
        20,
        "records written while subscribed are pushed"
    );
    assert_ne!(cont, cont2);
    drop(first);
    // Resuming after the continuation number reads on exactly where the last event ended.
    put(&c, "c", 5).await;
    let mut resumed = None;
    for _ in 0..100 {
        match sub(StartingPosition::builder()
            .r#type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(&cont2)
            .build()
            .expect("pos"))
        .await
        {
            Ok(s) => {
                resumed = Some(s);
                break;
            }
            // The dropped subscription lets go of the shard once its task notices.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut resumed = resumed.expect("resubscribed");
    let (after, _, _) = collect(&mut resumed, 5).await;
    assert_eq!(after, (0..5).map(|i| format!("c-{i}")).collect::<Vec<_>>());
    // A split ends the parent's subscription with its children.
    c.split_shard()
        .stream_name("fan")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("2000")
        .send()
        .await
        .expect("split");
    let (_, _, kids) = collect(&mut resumed, usize::MAX).await;
    assert_eq!(
        kids,
        vec![
            "shardId-000000000001".to_string(),
            "shardId-000000000002".to_string()
        ]
    );
    assert!(
        next_event(&mut resumed).await.is_none(),
        "the stream ends after ChildShards"
    );
    // A fresh subscription from TRIM_HORIZON before any record: its continuation number
    // resumes without skipping the first record.
    let mut child = c
        .subscribe_to_shard()
        .consumer_arn(&consumer.consumer_arn)
        .shard_id("shardId-000000000001")
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .expect("pos"),
        )
        .send()
        .await
        .expect("subscribe child");
    let empty = next_event(&mut child).await.expect("heartbeat event");
    assert!(empty.records.is_empty());
    drop(child);
    let e = c
        .delete_stream()
        .stream_name("fan")
        .send()
        .await
        .expect_err("consumers registered");
    assert_eq!(
        e.as_service_error().and_then(|e| e.code()),
        Some("ResourceInUseException")
    );
    c.deregister_stream_consumer()
        .consumer_arn(&consumer.consumer_arn)
        .send()
        .await
        .expect("deregister");
    assert!(
        c.list_stream_consumers()
            .stream_arn(ARN)
            .send()
            .await
            .expect("list")
            .consumers
            .unwrap_or_default()
            .is_empty()
    );
    c.delete_stream()
        .stream_name("fan")
        .send()
        .await
        .expect("delete");
    s.stop().await;
}

#[tokio::test]
async fn the_event_stream_flows_over_http2() {
    use http_body_util::BodyExt;
    let s = Served::start().await;
    let c = s.sdk();
    c.create_stream()
        .stream_name("fan")
        .shard_count(1)
        .send()
        .await
        .expect("create");
    let reg = c
        .register_stream_consumer()
        .stream_arn(ARN)
        .consumer_name("h2")
        .send()
        .await
        .expect("register");
    let arn = reg.consumer.expect("consumer").consumer_arn;
    put(&c, "h", 3).await;
    let tcp = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2c prior knowledge");
    tokio::spawn(conn);
    let body = serde_json::json!({
        "ConsumerARN": arn,
        "ShardId": "shardId-000000000000",
        "StartingPosition": {"Type": "TRIM_HORIZON"}
    });
    let req = http::Request::post(format!("http://{}/", s.addr))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.SubscribeToShard")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    while events
        .iter()
        .all(|m: &eventstream::Message| m.header(":event-type") != Some("SubscribeToShardEvent"))
    {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("a frame within 30 s")
            .expect("body open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
        if let Some(msgs) = eventstream::decode(&buf) {
            events = msgs;
        }
    }
    assert_eq!(events[0].header(":event-type"), Some("initial-response"));
    let e: serde_json::Value = serde_json::from_slice(&events[1].payload).expect("json payload");
    assert_eq!(e["Records"].as_array().map(Vec::len), Some(3), "{e}");
    s.stop().await;
}
