//! The OnFailure destination: where a mapping describes a batch it gave up on.
//!
//! The record is AWS's (Lambda developer guide, "Retain discarded batch records for a Kinesis
//! Data Streams event source"):
//! ```json
//! {"requestContext": {"requestId": "...", "functionArn": "arn:aws:lambda:...:function:f",
//!                     "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
//!  "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
//!  "version": "1.0", "timestamp": "2026-02-19T00:00:00.000Z",
//!  "KinesisBatchInfo": {"shardId": "shardId-000000000001", "startSequenceNumber": "...",
//!                       "endSequenceNumber": "...", "approximateArrivalOfFirstRecord": "...",
//!                       "approximateArrivalOfLastRecord": "...", "batchSize": 1,
//!                       "streamArn": "arn:aws:kinesis:...:stream/metrics"}}
//! ```
//! Conditions: `RetryAttemptsExhausted`, `RecordAgeExceeded`. An S3 destination also gets
//! the invocation's event as `payload`, under
//! `aws/lambda/<mapping UUID>/<shard id>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<UUID>`; SNS gets the
//! record as the message; a local directory gets one file per record.
//!
//! Decided here where AWS does not say: a batch expired before it was ever invoked has an
//! `approximateInvokeCount` of 0 and no `responseContext`.

use bytes::Bytes;
use serde_json::{Value, json};
use shardline_core::ports::{Notification, Notifier, ObjectStore};
use shardline_core::time::format_rfc3339_ms;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::kinesis::EncodedRecord;

/// Why a batch was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `MaximumRetryAttempts` reached.
    RetryAttemptsExhausted,
    /// Records older than `MaximumRecordAgeInSeconds`.
    RecordAgeExceeded,
}

impl Condition {
    /// AWS's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// A destination.
#[derive(Clone)]
pub enum Destination {
    /// One JSON file per record in this directory.
    Directory(PathBuf),
    /// An SNS topic, through the Notifier port.
    Sns {
        /// The topic's ARN.
        topic_arn: String,
        /// The notifier.
        notifier: Arc<dyn Notifier>,
    },
    /// An S3 bucket, through the ObjectStore port.
    S3 {
        /// The bucket.
        bucket: String,
        /// The store.
        store: Arc<dyn ObjectStore>,
    },
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Directory(d) => write!(f, "Directory({})", d.display()),
            Destination::Sns { topic_arn, .. } => write!(f, "Sns({topic_arn})"),
            Destination::S3 { bucket, .. } => write!(f, "S3({bucket})"),
        }
    }
}

/// What the record says about the batch.
pub struct FailedBatch<'a> {
    /// The records given up on (one shard's, in order; at least one).
    pub records: &'a [EncodedRecord],
    /// Why.
    pub condition: Condition,
    /// Invocations made with these records.
    pub invoke_count: u32,
    /// The last invocation's `errorType`, if it failed with one.
    pub function_error: Option<String>,
    /// The event of the last invocation (S3 keeps it as `payload`).
    pub payload: Option<&'a [u8]>,
}

/// The mapping's identity, as records name it.
#[derive(Debug, Clone)]
pub struct MappingIdentity {
    /// The mapping's UUID.
    pub uuid: String,
    /// The function's ARN.
    pub function_arn: String,
    /// The stream's ARN.
    pub stream_arn: String,
}

/// AWS's OnFailure record for `batch` at `now_ms`.
pub fn failure_record(id: &MappingIdentity, batch: &FailedBatch<'_>, now_ms: i64) -> Value {
    let first = &batch.records[0];
    let last = &batch.records[batch.records.len() - 1];
    let mut record = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": id.function_arn,
            "condition": batch.condition.as_str(),
            "approximateInvokeCount": batch.invoke_count,
        },
        "version": "1.0",
        "timestamp": format_rfc3339_ms(now_ms),
        "KinesisBatchInfo": {
            "shardId": first.shard.to_string(),
            "startSequenceNumber": first.sequence_number.as_str(),
            "endSequenceNumber": last.sequence_number.as_str(),
            "approximateArrivalOfFirstRecord": format_rfc3339_ms(first.arrival_ms),
            "approximateArrivalOfLastRecord": format_rfc3339_ms(last.arrival_ms),
            "batchSize": batch.records.len(),
            "streamArn": id.stream_arn,
        }
    });
    if batch.invoke_count > 0 {
        let mut response = json!({"statusCode": 200, "executedVersion": "$LATEST"});
        if batch.function_error.is_some() {
            response["functionError"] = json!("Unhandled");
        }
        record["responseContext"] = response;
    }
    record
}

impl Destination {
    /// Sends `record` (with the batch's `payload` to S3).
    ///
    /// # Errors
    /// What failed, naming the destination.
    pub async fn send(
        &self,
        id: &MappingIdentity,
        shard: &str,
        record: &Value,
        payload: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<(), String> {
        let time = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        match self {
            Destination::Directory(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let name = format!(
                    "{}-{shard}-{}.json",
                    time.format("%Y%m%dT%H%M%S%.3fZ"),
                    record["KinesisBatchInfo"]["startSequenceNumber"]
                        .as_str()
                        .unwrap_or("")
                );
                let path = dir.join(name);
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, serde_json::to_vec_pretty(record).unwrap_or_default())
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
            Destination::Sns {
                topic_arn,
                notifier,
            } => notifier
                .publish(&Notification {
                    topic: topic_arn.clone(),
                    subject: "Lambda event source mapping OnFailure".into(),
                    message: record.to_string(),
                    attributes: BTreeMap::new(),
                    deduplication_id: record["requestContext"]["requestId"]
                        .as_str()
                        .map(str::to_string),
                })
                .await
                .map(|_| ())
                .map_err(|e| format!("cannot publish to {topic_arn}: {e}")),
            Destination::S3 { bucket, store } => {
                let mut body = record.clone();
                if let Some(p) = payload {
                    body["payload"] = serde_json::from_slice(p).unwrap_or(Value::Null);
                }
                let key = format!(
                    "aws/lambda/{}/{shard}/{}/{}-{}",
                    id.uuid,
                    time.format("%Y/%m/%d"),
                    time.format("%Y-%m-%dT%H.%M.%S"),
                    uuid::Uuid::new_v4()
                );
                store
                    .ensure_bucket(bucket)
                    .await
                    .map_err(|e| format!("cannot use bucket {bucket}: {e}"))?;
                store
                    .put(
                        bucket,
                        &key,
                        Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
                        "application/json",
                    )
                    .await
                    .map_err(|e| format!("cannot put s3://{bucket}/{key}: {e}"))
            }
        }
    }
}
