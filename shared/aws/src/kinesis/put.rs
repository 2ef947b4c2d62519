//! PutRecords, retrying only the failed entries.
//!
//! A call is checked against Kinesis's limits before anything is sent (500 records, 5 MiB,
//! 1 MiB and a 1-256 character partition key per record), so bad input fails whole with one
//! line naming the entry. Then rounds: send the pending entries in their original order; keep
//! the results of those that landed; entries that failed with `ProvisionedThroughputExceeded`
//! or `InternalFailure` stay pending for the next round, after a backoff with full jitter;
//! any other entry error is final. After `retry.max_rounds` rounds the entries still pending
//! are returned with their last error, so the caller decides (the port's contract: a failed
//! entry does not fail the others).
//!
//! # Order per partition key
//! Retried entries keep their relative order, and `put_records` returns only when every entry
//! has landed or failed for good, so a later call never overtakes a retried entry. Inside one
//! request Kinesis may still accept a later entry of a key after rejecting an earlier one; no
//! PutRecords client can undo that (AWS documents PutRecord with SequenceNumberForOrdering for
//! strict order). Such keys are counted (`keys_reordered`) and logged, never hidden.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use serde::Serialize;
use shardline_core::stream::{PutRecordResult, PutRecordsEntry, check_record_limits, limits};
use shardline_core::{Error, Result, RetryClass, SequenceNumber, ShardId};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use tracing::{debug, warn};

use super::KinesisStream;
use crate::backoff;
use crate::error::map_sdk_error;

/// Entry error codes worth sending again.
const RETRYABLE: &[&str] = &["ProvisionedThroughputExceededException", "InternalFailure"];

/// Counts of what the adapter retried (see [`super::KinesisStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PutStats {
    /// PutRecords entries sent again after failing.
    pub entries_retried: u64,
    /// PutRecords requests after the first of a `put_records` call.
    pub put_retry_rounds: u64,
    /// Keys whose later entry landed before an earlier failed one.
    pub keys_reordered: u64,
    /// Expired iterators renewed.
    pub iterators_renewed: u64,
    /// GetRecords calls retried after throttling.
    pub read_throttles: u64,
}

fn check_call(name: &str, entries: &[PutRecordsEntry]) -> Result<()> {
    if entries.len() > limits::MAX_RECORDS_PER_PUT {
        return Err(Error::InvalidArgument(format!(
            "Kinesis PutRecords on stream \"{name}\": {} records exceed the 500-record limit; split the batch",
            entries.len()
        )));
    }
    let mut total = 0usize;
    for (i, e) in entries.iter().enumerate() {
        check_record_limits(&e.partition_key, e.data.len()).map_err(|why| {
            Error::InvalidArgument(format!(
                "Kinesis PutRecords on stream \"{name}\": record {i} (partition key {:?}): {why}",
                e.partition_key.chars().take(40).collect::<String>()
            ))
        })?;
        total += e.partition_key.len() + e.data.len();
    }
    if total > limits::MAX_BYTES_PER_PUT {
        return Err(Error::InvalidArgument(format!(
            "Kinesis PutRecords on stream \"{name}\": {total} bytes exceed the 5 MiB per-call limit; split the batch"
        )));
    }
    Ok(())
}

fn request_entry(e: &PutRecordsEntry) -> Result<PutRecordsRequestEntry> {
    PutRecordsRequestEntry::builder()
        .data(Blob::new(e.data.to_vec()))
        .partition_key(&e.partition_key)
        .set_explicit_hash_key(e.explicit_hash_key.map(|k| k.to_string()))
        .build()
        .map_err(|err| Error::InvalidArgument(format!("Kinesis PutRecords entry: {err}")))
}

impl KinesisStream {
    pub(super) async fn put_with_retries(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> Result<Vec<PutRecordResult>> {
        check_call(name, &entries)?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let request: Vec<PutRecordsRequestEntry> =
            entries.iter().map(request_entry).collect::<Result<_>>()?;
        let mut results: Vec<Option<PutRecordResult>> = vec![None; entries.len()];
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        let mut round = 0u32;
        loop {
            let sent: Vec<PutRecordsRequestEntry> =
                pending.iter().map(|&i| request[i].clone()).collect();
            let answer = self
                .client
                .put_records()
                .stream_name(name)
                .set_records(Some(sent))
                .send()
                .await;
            let out = match answer {
                Ok(out) => out,
                Err(e) => {
                    let err = map_sdk_error(&self.call("PutRecords", name), e);
                    if err.retry_class() == RetryClass::Retryable
                        && round + 1 < self.retry.max_rounds
                    {
                        debug!(stream = name, round, error = %err, "PutRecords failed whole; retrying");
                        backoff::wait(&self.retry, round).await;
                        round += 1;
                        self.stats.put_retry_rounds.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // Entries that landed in earlier rounds keep their results only if the
                    // first round had already succeeded; a whole-call error is the caller's.
                    if results.iter().all(Option::is_none) {
                        return Err(err);
                    }
                    let (code, message) = ("InternalFailure".to_string(), err.to_string());
                    for &i in &pending {
                        results[i] = Some(PutRecordResult::Err {
                            error_code: code.clone(),
                            error_message: message.clone(),
                        });
                    }
                    break;
                }
            };
            let answered = out.records();
            if answered.len() != pending.len() {
                return Err(Error::Internal(format!(
                    "Kinesis PutRecords on stream \"{name}\": {} results for {} records",
                    answered.len(),
                    pending.len()
                )));
            }
            let mut still = Vec::new();
            let mut failed_keys: HashSet<&str> = HashSet::new();
            let mut reordered: HashSet<&str> = HashSet::new();
            for (&i, r) in pending.iter().zip(answered) {
                let key = entries[i].partition_key.as_str();
                match (r.sequence_number(), r.shard_id(), r.error_code()) {
                    (Some(seq), Some(shard), None) => {
                        if failed_keys.contains(key) {
                            reordered.insert(key);
                        }
                        results[i] = Some(PutRecordResult::Ok {
                            shard_id: shard.parse::<ShardId>()?,
                            sequence_number: seq.parse::<SequenceNumber>()?,
                        });
                    }
                    (_, _, code) => {
                        let code = code.unwrap_or("InternalFailure");
                        if RETRYABLE.contains(&code) {
                            failed_keys.insert(key);
                            still.push(i);
                        }
                        results[i] = Some(PutRecordResult::Err {
                            error_code: code.to_string(),
                            error_message: r.error_message().unwrap_or("").to_string(),
                        });
                    }
                }
            }
            if !reordered.is_empty() {
                self.stats
                    .keys_reordered
                    .fetch_add(reordered.len() as u64, Ordering::Relaxed);
                warn!(
                    stream = name,
                    keys = reordered.len(),
                    "Kinesis accepted later records of a partition key after rejecting an earlier one; those keys are out of order"
                );
            }
            if still.is_empty() || round + 1 >= self.retry.max_rounds {
                if !still.is_empty() {
                    warn!(
                        stream = name,
                        records = still.len(),
                        rounds = round + 1,
                        "PutRecords entries still failing; returned as failed"
                    );
                }
                break;
            }
            self.stats
                .entries_retried
                .fetch_add(still.len() as u64, Ordering::Relaxed);
            self.stats.put_retry_rounds.fetch_add(1, Ordering::Relaxed);
            debug!(
                stream = name,
                round,
                failed = still.len(),
                "retrying failed PutRecords entries"
            );
            backoff::wait(&self.retry, round).await;
            round += 1;
            pending = still;
        }
        results
            .into_iter()
            .map(|r| {
                r.ok_or_else(|| {
                    Error::Internal("Kinesis PutRecords: an entry was left without a result".into())
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

    fn entry(key: &str, len: usize) -> PutRecordsEntry {
        PutRecordsEntry {
            partition_key: key.to_string(),
            explicit_hash_key: None,
            data: Bytes::from(vec![b'x'; len]),
        }
    }

    #[test]
    fn limits_are_checked_before_sending() {
        assert!(check_call("m", &vec![entry("k", 1); 500]).is_ok());
        let many = check_call("m", &vec![entry("k", 1); 501])
            .unwrap_err()
            .to_string();
        assert!(
            many.contains("500-record limit") && many.contains("\"m\""),
            "{many}"
        );
        let big = check_call("m", &[entry("k", 1), entry("big", 1024 * 1024)])
            .unwrap_err()
            .to_string();
        assert!(big.contains("record 1") && big.contains("1 MiB"), "{big}");
        let total = check_call("m", &vec![entry("k", 900 * 1024); 6])
            .unwrap_err()
            .to_string();
        assert!(total.contains("5 MiB"), "{total}");
        assert!(check_call("m", &[entry("", 1)]).is_err());
    }
}
