//! One batch, invoked until it is done: retries, partial batch responses, bisection, record
//! age and the OnFailure destination, as a Kinesis event source mapping does.
//!
//! Rules (AWS's, with the runner's choices where AWS does not document them):
//! - Before each invocation, records older than `maximum_record_age_in_seconds` (a prefix:
//!   arrival order is sequence order in a shard) go to OnFailure as `RecordAgeExceeded`.
//! - Success: the batch is done.
//! - Partial failure (`ReportBatchItemFailures`): records before the lowest failed sequence
//!   number are done; the rest is retried (the batch is "bisected at the returned sequence
//!   number"). This counts as a retry.
//! - Whole failure: with `bisect_batch_on_function_error` and more than one record, the batch
//!   is split in two halves retried in order, each with the retries counted so far (splitting
//!   does not consume the quota); otherwise it is retried as is.
//! - After `maximum_retry_attempts` retries (-1: never), the remaining records go to OnFailure
//!   as `RetryAttemptsExhausted` and the batch is done.
//! - Retries wait `retry_backoff`, doubled each time up to 30 s.

use bytes::Bytes;
use shardline_core::SequenceNumber;
use shardline_core::time::Clock;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

use super::config::MappingConfig;
use super::on_failure::{Condition, Destination, FailedBatch, MappingIdentity, failure_record};
use super::stats::EsmStats;
use crate::invoke::{Invocation, Invoker};
use crate::kinesis::response::{BatchVerdict, verdict, window_state};
use crate::kinesis::{EncodedRecord, WindowFields, build_event};

/// Everything a batch needs to run.
pub(super) struct BatchContext<'a> {
    pub config: &'a MappingConfig,
    pub invoker: &'a Arc<dyn Invoker>,
    pub on_failure: Option<&'a Destination>,
    pub identity: &'a MappingIdentity,
    pub clock: &'a Arc<dyn Clock>,
    pub stats: &'a EsmStats,
    /// Where a partial failure checkpoints the records before the failed one at once
    /// (one batch per shard at a time; with several slots the round checkpoints).
    pub checkpoint: Option<(&'a super::EsmRunner, shardline_core::ShardId)>,
}

/// A part of the batch still to do, with the retries it has had.
struct Part {
    records: Vec<EncodedRecord>,
    retries: i64,
    invocations: u32,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl BatchContext<'_> {
    /// Invokes `records` until every one is done (processed or given up on). With a
    /// tumbling window, `window` carries the state in and out.
    ///
    /// # Errors
    /// When the OnFailure destination cannot take a record: nothing past it may be
    /// checkpointed (the batch is not done).
    pub async fn run(
        &self,
        records: Vec<EncodedRecord>,
        mut window: Option<&mut WindowFields>,
    ) -> Result<(), String> {
        let mut work = VecDeque::from([Part {
            records,
            retries: 0,
            invocations: 0,
        }]);
        let report = self.config.reports_item_failures();
        while let Some(mut part) = work.pop_front() {
            loop {
                self.expire(&mut part).await?;
                if part.records.is_empty() {
                    break;
                }
                let event = build_event(&part.records, window.as_deref());
                let seqs: Vec<SequenceNumber> = part
                    .records
                    .iter()
                    .map(|r| r.sequence_number.clone())
                    .collect();
                self.stats.invocation(part.records.len());
                part.invocations += 1;
                let outcome = self
                    .invoker
                    .invoke(Bytes::from(event.clone()), self.config.function_timeout)
                    .await;
                let (verdict, function_error) = match &outcome {
                    Invocation::Answer(a) => (verdict(a, &seqs, report), None),
                    Invocation::Failed(e) => (
                        BatchVerdict::Failed(e.to_string()),
                        Some(e.error_type.clone()),
                    ),
                };
                match verdict {
                    BatchVerdict::Success => {
                        if let (Some(w), Invocation::Answer(a)) = (window.as_deref_mut(), &outcome)
                        {
                            w.state = window_state(a);
                        }
                        self.stats.done(part.records.len());
                        break;
                    }
                    BatchVerdict::FailedFrom(seq) => {
                        let from = seqs.iter().position(|s| *s == seq).unwrap_or(0);
                        debug!(failed_from = %seq, done = from, "partial batch failure");
                        self.stats.done(from);
                        if let (Some((runner, shard)), Some(before)) =
                            (self.checkpoint, from.checked_sub(1).map(|i| &seqs[i]))
                        {
                            runner
                                .put_checkpoint(shard, before.clone())
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                        part.records.drain(..from);
                        if let (Some(w), Invocation::Answer(a)) = (window.as_deref_mut(), &outcome)
                        {
                            w.state = window_state(a);
                        }
                        if self.give_up_after_retry(&mut part, None, &event).await? {
                            break;
                        }
                    }
                    BatchVerdict::Failed(reason) => {
                        warn!(function = %self.config.function, records = part.records.len(), reason = %reason, "batch failed");
                        if self.config.bisect_batch_on_function_error && part.records.len() > 1 {
                            let second = part.records.split_off(part.records.len() / 2);
                            self.stats.bisect();
                            work.push_front(Part {
                                records: second,
                                retries: part.retries,
                                invocations: part.invocations,
                            });
                            work.push_front(Part {
                                records: std::mem::take(&mut part.records),
                                retries: part.retries,
                                invocations: part.invocations,
                            });
                            break;
                        }
                        if self
                            .give_up_after_retry(&mut part, function_error, &event)
                            .await?
                        {
                            break;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts a retry of `part`; past the limit sends it to OnFailure and returns `true`,
    /// else waits the backoff and returns `false`.
    async fn give_up_after_retry(
        &self,
        part: &mut Part,
        function_error: Option<String>,
        event: &[u8],
    ) -> Result<bool, String> {
        part.retries += 1;
        let max = self.config.maximum_retry_attempts;
        if max >= 0 && part.retries > max {
            let records = std::mem::take(&mut part.records);
            self.give_up(
                &records,
                Condition::RetryAttemptsExhausted,
                part.invocations,
                function_error,
                Some(event),
            )
            .await?;
            return Ok(true);
        }
        self.stats.retry();
        let exp = u32::try_from(part.retries.clamp(1, 16) - 1).unwrap_or(0);
        let wait = self
            .config
            .retry_backoff
            .saturating_mul(2u32.saturating_pow(exp))
            .min(MAX_BACKOFF);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(false)
    }

    /// Sends the prefix of records older than the maximum record age to OnFailure.
    async fn expire(&self, part: &mut Part) -> Result<(), String> {
        let max_age = self.config.maximum_record_age_in_seconds;
        if max_age < 0 {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let old = part
            .records
            .iter()
            .take_while(|r| now.saturating_sub(r.arrival_ms) > max_age * 1000)
            .count();
        if old == 0 {
            return Ok(());
        }
        let expired: Vec<EncodedRecord> = part.records.drain(..old).collect();
        self.give_up(
            &expired,
            Condition::RecordAgeExceeded,
            part.invocations,
            None,
            None,
        )
        .await
    }

    async fn give_up(
        &self,
        records: &[EncodedRecord],
        condition: Condition,
        invoke_count: u32,
        function_error: Option<String>,
        payload: Option<&[u8]>,
    ) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let batch = FailedBatch {
            records,
            condition,
            invoke_count,
            function_error,
            payload,
        };
        let record = failure_record(self.identity, &batch, now);
        warn!(
            function = %self.config.function,
            shard = %records[0].shard,
            start = %records[0].sequence_number,
            records = records.len(),
            condition = condition.as_str(),
            "batch given up on"
        );
        if let Some(dest) = self.on_failure {
            dest.send(
                self.identity,
                &records[0].shard.to_string(),
                &record,
                payload,
                now,
            )
            .await?;
        }
        self.stats.given_up(records.len(), condition);
        Ok(())
    }
}
