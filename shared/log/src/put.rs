//! put_records: whole-call limits, per-record limits and throttling, routing, group commit.
//!
//! put_records checks whole-call limits first (more than 500 records or 5 MiB fails the
//! call), then each record: a record breaking a per-record limit, or refused by the
//! opt-in throughput limits, gets a positional `Err` result and the others go on. Records are
//! routed to the open shard whose inclusive hash-key range holds MD5(partition key) (or the
//! explicit hash key), sent to the shards' writers as one request per shard, and acknowledged
//! after their group commit.
//!
//! Resharding closes shards while puts are in flight. A shard's writer stops only after
//! acknowledging everything already queued, so a request either lands in the old shard before
//! it closes or finds the shard closed and is routed again, whole and in order, over the
//! stream's new shards (after the reshard that closed it has committed). So per partition key,
//! the records of one call keep their order, and a record is never in two shards.

use shardline_core::stream::{
    PutRecordResult, PutRecordsEntry, SequenceParts, check_record_limits, hash_key, limits,
};
use tokio::sync::oneshot;

use crate::error::LogError;
use crate::log::{Log, lock};
use crate::seqrun::SeqRun;
use crate::shard::Shard;
use crate::writer::AppendRequest;

/// How often records that met a closing shard are routed again before they fail.
const REROUTES: usize = 4;

pub(crate) fn parts(shard: &Shard, offset: u64, arrival_ms: i64) -> SequenceParts {
    SequenceParts {
        shard_index: shard.id.index(),
        offset,
        shard_created_secs: shard.created_secs,
        arrival_secs: u64::try_from(arrival_ms.div_euclid(1000)).unwrap_or(0),
    }
}

impl Log {
    /// put_records with the log's own error type.
    ///
    /// # Errors
    /// Whole-call limits, unknown stream, a closed log.
    pub async fn put(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> Result<Vec<PutRecordResult>, LogError> {
        self.inner.stream(name)?;
        if entries.len() > limits::MAX_RECORDS_PER_PUT {
            return Err(LogError::InvalidArgument(format!(
                "put_records to \"{name}\" has {} records; at most 500 per call",
                entries.len()
            )));
        }
        let total: usize = entries
            .iter()
            .map(|e| e.data.len() + e.partition_key.len())
            .sum();
        if total > limits::MAX_BYTES_PER_PUT {
            return Err(LogError::InvalidArgument(format!(
                "put_records to \"{name}\" carries {total} bytes; at most 5 MiB per call"
            )));
        }
        let n = entries.len();
        let mut results: Vec<Option<PutRecordResult>> = vec![None; n];
        let mut todo: Vec<(usize, PutRecordsEntry)> = Vec::with_capacity(n);
        for (i, e) in entries.into_iter().enumerate() {
            match check_record_limits(&e.partition_key, e.data.len()) {
                Ok(()) => todo.push((i, e)),
                Err(msg) => {
                    results[i] = Some(PutRecordResult::Err {
                        error_code: "ValidationException".into(),
                        error_message: msg,
                    })
                }
            }
        }
        let mut throttled = false;
        for round in 0..REROUTES {
            if todo.is_empty() {
                break;
            }
            if round > 0 {
                // A reshard closed a shard under us: once it has committed, route again.
                drop(self.inner.admin.lock().await);
            }
            todo = self
                .put_round(name, todo, &mut results, &mut throttled)
                .await?;
        }
        for (i, _) in todo {
            results[i] = Some(PutRecordResult::Err {
                error_code: "InternalFailure".into(),
                error_message: format!(
                    "the shards of stream \"{name}\" kept closing under this put; retry"
                ),
            });
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| PutRecordResult::Err {
                    error_code: "InternalFailure".into(),
                    error_message: "record was not routed".into(),
                })
            })
            .collect())
    }

    /// Routes `todo` over the stream's current open shards and appends; returns the records
    /// that met a closed shard (to be routed again).
    async fn put_round(
        &self,
        name: &str,
        todo: Vec<(usize, PutRecordsEntry)>,
        results: &mut [Option<PutRecordResult>],
        throttled_once: &mut bool,
    ) -> Result<Vec<(usize, PutRecordsEntry)>, LogError> {
        let s = self.inner.stream(name)?;
        let shards = &s.shards;
        let mut groups: Vec<(Vec<usize>, Vec<PutRecordsEntry>)> = (0..shards.len())
            .map(|_| (Vec::new(), Vec::new()))
            .collect();
        let limits_on = self.inner.options.enforce_throughput_limits && !*throttled_once;
        let now = self.inner.options.clock.now_ms();
        for (i, e) in todo {
            let key = e
                .explicit_hash_key
                .unwrap_or_else(|| hash_key(&e.partition_key));
            let idx = s.route(key);
            if limits_on {
                let bytes = (e.data.len() + e.partition_key.len()) as u64;
                if let Err(msg) = lock(&shards[idx].shard.throttle).admit(now, bytes) {
                    results[i] = Some(PutRecordResult::Err {
                        error_code: "ProvisionedThroughputExceededException".into(),
                        error_message: format!(
                            "{msg} ({} of stream \"{name}\")",
                            shards[idx].shard.id
                        ),
                    });
                    continue;
                }
            }
            groups[idx].0.push(i);
            groups[idx].1.push(e);
        }
        // Records routed again were admitted by the throttle once already.
        *throttled_once = true;
        let mut again = Vec::new();
        let mut pending = Vec::new();
        for (idx, (positions, entries)) in groups.into_iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let sender = lock(&shards[idx].sender).clone();
            let request = AppendRequest { entries, ack: tx };
            let unsent = match sender {
                Some(sender) => sender.send(request).await.err().map(|e| e.0),
                None => Some(request),
            };
            if let Some(request) = unsent {
                // The shard closed (resharding) or the log is closing: route these again.
                again.extend(positions.into_iter().zip(request.entries));
                continue;
            }
            pending.push((idx, positions, rx));
        }
        for (idx, positions, rx) in pending {
            let shard = &shards[idx].shard;
            let outcome = rx.await.unwrap_or_else(|_| {
                Err(LogError::Unavailable(
                    "writer stopped before acknowledging".into(),
                ))
            });
            match outcome {
                Ok(ack) => {
                    let mut run = SeqRun::default();
                    for (k, &i) in positions.iter().enumerate() {
                        let p = parts(shard, ack.first_offset + k as u64, ack.arrival_ms);
                        results[i] = Some(PutRecordResult::Ok {
                            shard_id: shard.id,
                            sequence_number: run.encode(&p),
                        });
                    }
                }
                Err(e) => {
                    for &i in &positions {
                        results[i] = Some(PutRecordResult::Err {
                            error_code: "InternalFailure".into(),
                            error_message: e.to_string(),
                        });
                    }
                }
            }
        }
        if !again.is_empty() {
            self.inner.stream(name)?;
        }
        Ok(again)
    }
}
