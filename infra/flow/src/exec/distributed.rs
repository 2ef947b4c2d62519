//! A distributed Map's object-store parts: `ItemReader`, `ItemBatcher` and `ResultWriter`,
//! written against the `ObjectStore` port (the embedded store locally, S3 through the AWS
//! adapter), with AWS's shapes:
//! - `s3:listObjectsV2` yields `{"Etag", "Key", "LastModified", "Size", "StorageClass"}` per
//!   object under `Prefix` (sorted by key);
//! - `s3:getObject` reads one object: `JSON` (an array), `JSONL` (a value per line) or `CSV`
//!   (an object of strings per row, keyed by the first row or `CSVHeaders`; duplicate
//!   headers fail with `States.ItemReaderFailed`);
//! - `ItemBatcher` packs items into `{"Items": [...], "BatchInput": ...}` of at most
//!   `MaxItemsPerBatch` items and `MaxInputBytesPerBatch` bytes;
//! - `ResultWriter` writes `<Prefix>/<map run id>/SUCCEEDED_0.json`, `FAILED_0.json` (each an
//!   array of child-execution records) and `manifest.json`, and the Map's result becomes
//!   `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}`.
//!
//! Failures to read are `States.ItemReaderFailed`, failures to write `States.ResultWriterFailed`.

use crate::asl::ReaderFormat;
use crate::registry::TaskError;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use shardline_core::ports::ObjectStore;
use std::sync::Arc;

fn text(params: &Value, key: &str) -> Option<String> {
    params.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Reads the items an `ItemReader` names; `params` is its rendered Parameters/Arguments.
pub(super) async fn read_items(
    store: &Arc<dyn ObjectStore>,
    format: &ReaderFormat,
    params: &Value,
    max_items: Option<u64>,
) -> Result<Vec<Value>, TaskError> {
    let failed = |m: String| TaskError::new("States.ItemReaderFailed", m);
    let bucket =
        text(params, "Bucket").ok_or_else(|| failed("ItemReader needs a Bucket".into()))?;
    let mut items = match format {
        ReaderFormat::ListObjects => {
            let prefix = text(params, "Prefix").unwrap_or_default();
            let list = store
                .list(&bucket, &prefix)
                .await
                .map_err(|e| failed(format!("cannot list s3://{bucket}/{prefix}: {e}")))?;
            list.into_iter()
                .map(|o| {
                    json!({
                        "Etag": format!("\"{:x}-{}\"", o.last_modified_ms, o.size),
                        "Key": o.key,
                        "LastModified": crate::clock::format_ms(o.last_modified_ms),
                        "Size": o.size,
                        "StorageClass": "STANDARD",
                    })
                })
                .collect()
        }
        _ => {
            let key = text(params, "Key").ok_or_else(|| failed("ItemReader needs a Key".into()))?;
            let body = store
                .get(&bucket, &key)
                .await
                .map_err(|e| failed(format!("cannot read s3://{bucket}/{key}: {e}")))?
                .ok_or_else(|| failed("The specified key does not exist.".to_string()))?;
            let body = String::from_utf8_lossy(&body);
            parse_object(format, &body).map_err(|m| failed(format!("s3://{bucket}/{key}: {m}")))?
        }
    };
    if let Some(n) = max_items {
        items.truncate(n as usize);
    }
    Ok(items)
}

fn parse_object(format: &ReaderFormat, body: &str) -> Result<Vec<Value>, String> {
    match format {
        ReaderFormat::Json => match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(a)) => Ok(a),
            Ok(_) => Err("Attempting to map over non-iterable node.".to_string()),
            Err(e) => Err(format!("the object is not JSON: {e}")),
        },
        ReaderFormat::JsonLines => body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| format!("line {} is not JSON: {e}", i + 1))
            })
            .collect(),
        ReaderFormat::Csv { headers, delimiter } => csv_rows(body, headers.as_deref(), *delimiter),
        ReaderFormat::ListObjects => Ok(Vec::new()),
    }
}

/// Splits one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str, delimiter: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, c) if c == delimiter => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn csv_rows(body: &str, given: Option<&[String]>, delimiter: char) -> Result<Vec<Value>, String> {
    let mut lines = body
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty());
    let headers: Vec<String> = match given {
        Some(h) => h.to_vec(),
        None => lines
            .next()
            .map(|l| csv_fields(l, delimiter))
            .unwrap_or_default(),
    };
    let mut seen = std::collections::BTreeSet::new();
    if headers.iter().any(|h| !seen.insert(h)) {
        return Err("CSV headers cannot contain duplicates.".to_string());
    }
    Ok(lines
        .map(|l| {
            let fields = csv_fields(l, delimiter);
            let row: Map<String, Value> = headers
                .iter()
                .zip(fields.into_iter().map(Value::String))
                .map(|(h, v)| (h.clone(), v))
                .collect();
            Value::Object(row)
        })
        .collect())
}

/// Packs items into batches of at most `max_items` items and `max_bytes` bytes of JSON.
pub(super) fn batches(
    items: Vec<Value>,
    max_items: Option<u64>,
    max_bytes: Option<u64>,
    batch_input: Option<Value>,
) -> Vec<Value> {
    let max_items = max_items.filter(|n| *n > 0).unwrap_or(u64::MAX) as usize;
    let max_bytes = max_bytes.filter(|n| *n > 0).unwrap_or(u64::MAX) as usize;
    let mut out = Vec::new();
    let mut cur: Vec<Value> = Vec::new();
    let mut cur_bytes = 0usize;
    for item in items {
        let len = serde_json::to_vec(&item).map(|b| b.len()).unwrap_or(0);
        if !cur.is_empty() && (cur.len() >= max_items || cur_bytes + len > max_bytes) {
            out.push(std::mem::take(&mut cur));
            cur_bytes = 0;
        }
        cur_bytes += len;
        cur.push(item);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.into_iter()
        .map(|items| {
            let mut b = json!({ "Items": items });
            if let (Some(bi), Some(obj)) = (&batch_input, b.as_object_mut()) {
                obj.insert("BatchInput".into(), bi.clone());
            }
            b
        })
        .collect()
}

/// One child execution's record in a result file.
pub(super) struct ChildRecord {
    pub index: usize,
    pub input: Value,
    pub outcome: Result<Value, TaskError>,
    pub start: String,
    pub stop: String,
}

/// Writes the result files and returns the Map's result.
pub(super) async fn write_results(
    store: &Arc<dyn ObjectStore>,
    params: &Value,
    map_run_arn: &str,
    state_machine_arn: &str,
    records: &[ChildRecord],
) -> Result<Value, TaskError> {
    let failed = |m: String| TaskError::new("States.ResultWriterFailed", m);
    let bucket =
        text(params, "Bucket").ok_or_else(|| failed("ResultWriter needs a Bucket".into()))?;
    let prefix = text(params, "Prefix").unwrap_or_default();
    let run_id = map_run_arn.rsplit(':').next().unwrap_or("run");
    let base = if prefix.is_empty() {
        run_id.to_string()
    } else {
        format!("{}/{run_id}", prefix.trim_end_matches('/'))
    };
    let record = |r: &ChildRecord| {
        let (status, output) = match &r.outcome {
            Ok(v) => ("SUCCEEDED", json!({"Output": v.to_string()})),
            Err(e) => ("FAILED", json!({"Error": e.error, "Cause": e.cause})),
        };
        let mut rec = json!({
            "ExecutionArn": format!("{map_run_arn}:{}", r.index),
            "Input": r.input.to_string(),
            "InputDetails": {"Included": true},
            "Name": format!("{run_id}:{}", r.index),
            "RedriveCount": 0,
            "RedriveStatus": "NOT_REDRIVABLE",
            "StartDate": r.start,
            "StateMachineArn": state_machine_arn,
            "Status": status,
            "StopDate": r.stop,
        });
        if let (Some(obj), Some(extra)) = (rec.as_object_mut(), output.as_object()) {
            obj.extend(extra.clone());
        }
        rec
    };
    store
        .ensure_bucket(&bucket)
        .await
        .map_err(|e| failed(format!("cannot create bucket {bucket}: {e}")))?;
    let mut files = json!({"FAILED": [], "PENDING": [], "SUCCEEDED": []});
    for (status, ok) in [("SUCCEEDED", true), ("FAILED", false)] {
        let recs: Vec<Value> = records
            .iter()
            .filter(|r| r.outcome.is_ok() == ok)
            .map(record)
            .collect();
        if recs.is_empty() {
            continue;
        }
        let key = format!("{base}/{status}_0.json");
        let body = serde_json::to_vec(&recs).unwrap_or_default();
        let size = body.len();
        store
            .put(&bucket, &key, Bytes::from(body), "application/json")
            .await
            .map_err(|e| failed(format!("cannot write s3://{bucket}/{key}: {e}")))?;
        if let Some(list) = files.get_mut(status).and_then(Value::as_array_mut) {
            list.push(json!({"Key": key, "Size": size}));
        }
    }
    let manifest_key = format!("{base}/manifest.json");
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": map_run_arn,
        "ResultFiles": files,
    });
    store
        .put(
            &bucket,
            &manifest_key,
            Bytes::from(manifest.to_string()),
            "application/json",
        )
        .await
        .map_err(|e| failed(format!("cannot write s3://{bucket}/{manifest_key}: {e}")))?;
    Ok(json!({
        "MapRunArn": map_run_arn,
        "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_follow_the_header_and_quoting() {
        let rows = csv_rows("a,b\n1,\"x,y\"\n2,\"q\"\"q\"\n", None, ',');
        assert_eq!(
            rows,
            Ok(vec![
                json!({"a": "1", "b": "x,y"}),
                json!({"a": "2", "b": "q\"q"})
            ])
        );
        assert!(csv_rows("a,a\n1,2", None, ',').is_err());
        let given = csv_rows("1|2", Some(&["x".into(), "y".into()]), '|');
        assert_eq!(given, Ok(vec![json!({"x": "1", "y": "2"})]));
    }

    #[test]
    fn batches_respect_item_and_byte_limits() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let out = batches(items.clone(), Some(2), None, Some(json!({"k": 1})));
        assert_eq!(out.len(), 3);
        assert_eq!(out[2], json!({"Items": [4], "BatchInput": {"k": 1}}));
        // Each item is one byte of JSON: two fit in two bytes.
        let by_bytes = batches(items, None, Some(2), None);
        assert_eq!(by_bytes.len(), 3);
    }
}
