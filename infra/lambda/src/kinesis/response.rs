//! Reading a function's answer to a Kinesis batch, as an event source mapping does.
//!
//! AWS's rules for `FunctionResponseTypes: ["ReportBatchItemFailures"]` (Lambda developer
//! guide, "Configuring partial batch response with Kinesis Data Streams"):
//! - **Success** when the answer is `null`, `{}`, or its `batchItemFailures` is missing, `null`
//!   or `[]`.
//! - **Partial failure** when every entry names a record of the batch: the mapping checkpoints
//!   before the lowest failed sequence number and retries from it.
//! - **Whole-batch failure** when an entry's `itemIdentifier` is `null`, empty or missing (a
//!   bad key name).
//!
//! Without `ReportBatchItemFailures` the mapping does not read the answer: any answer is success.
//!
//! Not documented by AWS, decided here: an identifier that is not a sequence number of the
//! batch fails the whole batch (it cannot be checkpointed), and so does an answer that is not
//! JSON (the "malformed JSON": Lambda cannot read a partial response from it).

use serde_json::Value;
use shardline_core::SequenceNumber;

/// What a batch's invocation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Every record is done.
    Success,
    /// Records before this sequence number are done; it and those after it failed.
    FailedFrom(SequenceNumber),
    /// The whole batch failed; the reason.
    Failed(String),
}

/// Reads `answer` to a batch of `sequence_numbers` (in order).
pub fn verdict(
    answer: &[u8],
    sequence_numbers: &[SequenceNumber],
    report_batch_item_failures: bool,
) -> BatchVerdict {
    if !report_batch_item_failures {
        return BatchVerdict::Success;
    }
    let value: Value = match serde_json::from_slice(answer) {
        Ok(v) => v,
        Err(_) if answer.iter().all(u8::is_ascii_whitespace) => return BatchVerdict::Success,
        Err(e) => {
            return BatchVerdict::Failed(format!("the function's answer is not JSON: {e}"));
        }
    };
    let failures = match &value {
        Value::Null => return BatchVerdict::Success,
        Value::Object(o) => match o.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchVerdict::Success,
            Some(Value::Array(a)) => a,
            Some(other) => {
                return BatchVerdict::Failed(format!("batchItemFailures is not a list: {other}"));
            }
        },
        other => {
            return BatchVerdict::Failed(format!(
                "the answer is not a batch response object: {other}"
            ));
        }
    };
    let mut lowest: Option<usize> = None;
    for entry in failures {
        let id = match entry.get("itemIdentifier") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Null) | None => {
                return BatchVerdict::Failed(format!(
                    "a batchItemFailures entry has no itemIdentifier: {entry}"
                ));
            }
            Some(other) => {
                return BatchVerdict::Failed(format!(
                    "a batchItemFailures entry's itemIdentifier is empty or not a string: {other}"
                ));
            }
        };
        let Some(index) = sequence_numbers.iter().position(|s| s.as_str() == id) else {
            return BatchVerdict::Failed(format!(
                "itemIdentifier {id} is not a sequence number of the batch"
            ));
        };
        lowest = Some(lowest.map_or(index, |l| l.min(index)));
    }
    match lowest {
        None => BatchVerdict::Success,
        Some(i) => BatchVerdict::FailedFrom(sequence_numbers[i].clone()),
    }
}

/// The `state` of a tumbling window's answer (`{}` when absent).
pub fn window_state(answer: &[u8]) -> serde_json::Map<String, Value> {
    match serde_json::from_slice::<Value>(answer) {
        Ok(Value::Object(mut o)) => match o.remove("state") {
            Some(Value::Object(state)) => state,
            _ => serde_json::Map::new(),
        },
        _ => serde_json::Map::new(),
    }
}
