//! A fault-injecting HTTP layer between the SDK and moto.
//!
//! It wraps the SDK's own HTTP client and, by plan:
//! - fails chosen entries of a PutRecords request: they are taken out of the request before
//!   it goes to moto (so they are not appended) and put back into moto's answer, at their
//!   positions, as `ProvisionedThroughputExceededException` results;
//! - takes chosen items out of a BatchWriteItem request and returns them as UnprocessedItems;
//! - answers a request with a throttling error (HTTP 400,
//!   `ProvisionedThroughputExceededException`) without sending it;
//! - answers a GetRecords with `ExpiredIteratorException`.
//!
//! Everything else passes through unchanged. Counters say what was injected.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the next matching requests get.
#[derive(Debug, Default)]
pub struct Plan {
    /// One entry per coming PutRecords request: the positions to fail in it.
    pub put_records_failures: Mutex<VecDeque<Vec<usize>>>,
    /// One entry per coming BatchWriteItem request: how many of its last items to leave
    /// unprocessed.
    pub unprocessed: Mutex<VecDeque<usize>>,
    /// Operations (`Kinesis_20131202.GetRecords`, ...) to throttle, each entry one request.
    pub throttle: Mutex<VecDeque<String>>,
    /// GetRecords requests to answer with ExpiredIteratorException.
    pub expire_get_records: AtomicU64,
    /// When set, the next GetRecords is answered as Kinesis answers at a closed shard's end:
    /// no records, no NextShardIterator, and these ChildShards.
    pub end_with_children: Mutex<Option<Vec<String>>>,
    /// PutRecords entries failed so far.
    pub entries_failed: AtomicU64,
    /// Items left unprocessed so far.
    pub items_unprocessed: AtomicU64,
    /// Requests throttled so far.
    pub throttled: AtomicU64,
    /// Iterators expired so far.
    pub expired: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct FaultClient {
    inner: SharedHttpClient,
    plan: Arc<Plan>,
}

impl FaultClient {
    pub fn shared(plan: Arc<Plan>) -> SharedHttpClient {
        SharedHttpClient::new(FaultClient {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            plan,
        })
    }
}

impl HttpClient for FaultClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultConnector {
            inner: self.inner.http_connector(settings, components),
            plan: Arc::clone(&self.plan),
        })
    }
}

#[derive(Debug)]
struct FaultConnector {
    inner: SharedHttpConnector,
    plan: Arc<Plan>,
}

fn json_response(status: u16, body: &Value, content_type: &str) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(bytes.clone()),
    );
    r.headers_mut()
        .insert("content-type", content_type.to_string());
    r.headers_mut()
        .insert("content-length", bytes.len().to_string());
    r
}

fn error(code: &str, content_type: &str) -> HttpResponse {
    let mut r = json_response(
        400,
        &json!({"__type": code, "message": "injected by the test's fault layer"}),
        content_type,
    );
    r.headers_mut().insert("x-amzn-errortype", code.to_string());
    r
}

fn set_body(request: &mut HttpRequest, body: &Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    request
        .headers_mut()
        .insert("content-length", bytes.len().to_string());
    *request.body_mut() = SdkBody::from(bytes);
}

async fn body_json(response: HttpResponse) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = ByteStream::new(response.into_body())
        .collect()
        .await
        .unwrap()
        .into_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

impl FaultConnector {
    async fn handle(
        inner: SharedHttpConnector,
        plan: Arc<Plan>,
        mut request: HttpRequest,
    ) -> HttpResponse {
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or("")
            .to_string();
        let content_type = request
            .headers()
            .get("content-type")
            .unwrap_or("application/x-amz-json-1.1")
            .to_string();
        {
            let mut throttle = plan.throttle.lock().unwrap();
            if throttle.front() == Some(&target) {
                throttle.pop_front();
                plan.throttled.fetch_add(1, Ordering::Relaxed);
                return error("ProvisionedThroughputExceededException", &content_type);
            }
        }
        if target.ends_with(".GetRecords")
            && plan
                .expire_get_records
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        {
            plan.expired.fetch_add(1, Ordering::Relaxed);
            return error("ExpiredIteratorException", &content_type);
        }
        let children = if target.ends_with(".GetRecords") {
            plan.end_with_children.lock().unwrap().take()
        } else {
            None
        };
        if let Some(children) = children {
            let child_shards: Vec<Value> = children
                .iter()
                .map(|c| {
                    json!({"ShardId": c, "ParentShards": ["shardId-000000000000"],
                           "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"}})
                })
                .collect();
            return json_response(
                200,
                &json!({"Records": [], "MillisBehindLatest": 0, "ChildShards": child_shards}),
                &content_type,
            );
        }
        let body: Option<Value> = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok());
        let fail = if target.ends_with(".PutRecords") {
            plan.put_records_failures.lock().unwrap().pop_front()
        } else {
            None
        };
        if let Some(fail) = fail
            && let Some(mut body) = body.clone()
        {
            let records = body["Records"].as_array().cloned().unwrap_or_default();
            let kept: Vec<Value> = records
                .iter()
                .enumerate()
                .filter(|(i, _)| !fail.contains(i))
                .map(|(_, r)| r.clone())
                .collect();
            body["Records"] = Value::Array(kept);
            set_body(&mut request, &body);
            let (status, mut answer) = body_json(inner.call(request).await.unwrap()).await;
            assert_eq!(status, 200, "moto refused the thinned PutRecords: {answer}");
            let mut landed = answer["Records"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter();
            let merged: Vec<Value> = (0..records.len())
                .map(|i| {
                    if fail.contains(&i) {
                        json!({"ErrorCode": "ProvisionedThroughputExceededException",
                               "ErrorMessage": "Rate exceeded for shard (injected)"})
                    } else {
                        landed.next().unwrap()
                    }
                })
                .collect();
            plan.entries_failed
                .fetch_add(fail.len() as u64, Ordering::Relaxed);
            answer["FailedRecordCount"] = json!(fail.len());
            answer["Records"] = Value::Array(merged);
            return json_response(200, &answer, &content_type);
        }
        let leave = if target.ends_with(".BatchWriteItem") {
            plan.unprocessed.lock().unwrap().pop_front()
        } else {
            None
        };
        if let Some(leave) = leave
            && let Some(mut body) = body
        {
            let tables = body["RequestItems"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let mut unprocessed = serde_json::Map::new();
            for (table, requests) in tables {
                let mut requests = requests.as_array().cloned().unwrap_or_default();
                let split = requests.len().saturating_sub(leave);
                let left = requests.split_off(split);
                plan.items_unprocessed
                    .fetch_add(left.len() as u64, Ordering::Relaxed);
                body["RequestItems"][&table] = Value::Array(requests);
                unprocessed.insert(table, Value::Array(left));
            }
            set_body(&mut request, &body);
            let (status, mut answer) = body_json(inner.call(request).await.unwrap()).await;
            assert_eq!(
                status, 200,
                "moto refused the thinned BatchWriteItem: {answer}"
            );
            answer["UnprocessedItems"] = Value::Object(unprocessed);
            return json_response(200, &answer, &content_type);
        }
        inner.call(request).await.unwrap()
    }
}

impl HttpConnector for FaultConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, plan) = (self.inner.clone(), Arc::clone(&self.plan));
        HttpConnectorFuture::new(async move { Ok(Self::handle(inner, plan, request).await) })
    }
}
