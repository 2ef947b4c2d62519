//! One shard of a mapping: read, gather batches, invoke, checkpoint.
//!
//! - **Batches.** A batch is sent when `batch_size` records are gathered, when the next
//!   record would take the event past 6 MB, when the oldest gathered record has waited
//!   `maximum_batching_window_in_seconds` (0: at once), or at the end of a closed shard.
//! - **Parallelization.** With a factor N, gathered records are dealt to N slots by the MD5
//!   of their partition key, each slot keeping its records in order; a round invokes one
//!   batch per slot at once. A record's key always maps to the same slot, so records of a
//!   key are processed in order, one batch at a time.
//! - **Checkpoints** are written after each round, at the last record before the first one
//!   not yet done, so a restart redelivers nothing done (beyond what a crash interrupts)
//!   and skips nothing.
//! - **Tumbling windows.** A record belongs to the window holding its arrival time; a batch
//!   holds one window's records; the state the function returns is handed to its next
//!   invocation in the window. A window closes when a record of a later window is next, or
//!   when its end has passed (the runner's clock) with the shard caught up: the function is
//!   invoked once more with no records, the state and `isFinalInvokeForWindow: true`. A state
//!   past 1 MB ends the window early (`isWindowTerminatedEarly`). The state lives in memory:
//!   a restart starts the open window's state over.

use md5::{Digest, Md5};
use shardline_core::stream::limits::MAX_GET_RECORDS;
use shardline_core::{SequenceNumber, ShardId, StartingPosition};
use std::collections::VecDeque;
use std::time::Duration;
use tracing::{debug, info, warn};

use super::batch::BatchContext;
use super::{EsmError, EsmRunner, Until};
use crate::kinesis::{
    EncodedRecord, MAX_PAYLOAD_BYTES, Window, WindowFields, build_event, event_size,
};

/// Largest window state before the window ends early (AWS: 1 MB).
const MAX_WINDOW_STATE: usize = 1024 * 1024;

pub(super) struct ShardRun<'a> {
    pub runner: &'a EsmRunner,
    pub shard: ShardId,
    buffer: VecDeque<EncodedRecord>,
    /// When the oldest gathered record was gathered (runner clock).
    gathered_ms: Option<i64>,
    window: Option<WindowFields>,
}

impl<'a> ShardRun<'a> {
    pub fn new(runner: &'a EsmRunner, shard: ShardId) -> Self {
        Self {
            runner,
            shard,
            buffer: VecDeque::new(),
            gathered_ms: None,
            window: None,
        }
    }

    fn err(&self, what: String) -> EsmError {
        EsmError::Shard {
            shard: self.shard,
            what,
        }
    }

    /// Runs until the shard is finished, or `until` says stop.
    pub async fn run(mut self, until: &Until) -> Result<(), EsmError> {
        let r = self.runner;
        let c = &r.config;
        let position = match r.checkpoint(self.shard).await {
            Some(seq) => StartingPosition::AfterSequenceNumber(seq),
            None => c.starting_position.clone(),
        };
        let mut iterator = Some(
            r.stream
                .get_shard_iterator(&c.stream, self.shard, &position)
                .await
                .map_err(|e| self.err(format!("get_shard_iterator {position}: {e}")))?,
        );
        info!(shard = %self.shard, position = %position, function = %c.function, "shard started");
        let capacity = c.batch_size * c.parallelization_factor as usize;
        loop {
            if until.stopped() {
                return Ok(());
            }
            let mut caught_up = iterator.is_none();
            if let Some(it) = iterator.clone().filter(|_| self.buffer.len() < capacity) {
                let limit = (capacity - self.buffer.len()).min(MAX_GET_RECORDS);
                let out = r
                    .stream
                    .get_records(&it, limit)
                    .await
                    .map_err(|e| self.err(format!("get_records: {e}")))?;
                caught_up = out.records.is_empty() && out.millis_behind_latest == 0;
                for rec in &out.records {
                    self.buffer
                        .push_back(EncodedRecord::new(&r.source, self.shard, rec));
                }
                if !self.buffer.is_empty() && self.gathered_ms.is_none() {
                    self.gathered_ms = Some(r.clock.now_ms());
                }
                iterator = out.next_iterator;
                caught_up |= iterator.is_none();
            }
            let ended = iterator.is_none();
            if self.close_window_if_due(caught_up).await? {
                continue;
            }
            if self.ready(ended) {
                self.round().await?;
                continue;
            }
            if ended && self.buffer.is_empty() && self.window.is_none() {
                info!(shard = %self.shard, "closed shard finished");
                return Ok(());
            }
            // (A window whose end has not passed by the runner's clock stays open.)
            if caught_up && self.buffer.is_empty() && until.when_caught_up() {
                return Ok(());
            }
            tokio::time::sleep(c.poll_interval).await;
        }
    }

    /// Whether a round should run now.
    fn ready(&self, ended: bool) -> bool {
        let c = &self.runner.config;
        let Some(front) = self.buffer.front() else {
            return false;
        };
        if self.buffer.len() >= c.batch_size || ended {
            return true;
        }
        if event_size(self.buffer.iter()) + 1 > MAX_PAYLOAD_BYTES {
            return true;
        }
        if let Some(w) = self.window_of(front.arrival_ms)
            && self
                .buffer
                .iter()
                .any(|r| self.window_of(r.arrival_ms) != Some(w))
        {
            return true;
        }
        let waited = self
            .runner
            .clock
            .now_ms()
            .saturating_sub(self.gathered_ms.unwrap_or(i64::MAX));
        waited >= i64::from(c.maximum_batching_window_in_seconds) * 1000
    }

    /// The start of the tumbling window holding `arrival_ms` (none without windows).
    fn window_of(&self, arrival_ms: i64) -> Option<i64> {
        let w = i64::from(self.runner.config.tumbling_window_in_seconds) * 1000;
        (w > 0).then(|| arrival_ms.div_euclid(w) * w)
    }

    /// Invokes one batch per slot, then checkpoints.
    async fn round(&mut self) -> Result<(), EsmError> {
        let c = &self.runner.config;
        let pf = c.parallelization_factor as usize;
        let window_start = self
            .buffer
            .front()
            .and_then(|r| self.window_of(r.arrival_ms));
        let mut slots: Vec<Vec<EncodedRecord>> = vec![Vec::new(); pf];
        let mut sizes = vec![0usize; pf];
        let mut rest = VecDeque::with_capacity(self.buffer.len());
        let mut full = vec![false; pf];
        for r in self.buffer.drain(..) {
            let slot = if pf == 1 {
                0
            } else {
                slot_of(&r.partition_key, pf)
            };
            let same_window = window_start.is_none()
                || Some(
                    r.arrival_ms
                        .div_euclid(i64::from(c.tumbling_window_in_seconds) * 1000)
                        * i64::from(c.tumbling_window_in_seconds)
                        * 1000,
                ) == window_start;
            let fits = slots[slot].is_empty()
                || (slots[slot].len() < c.batch_size
                    && sizes[slot] + r.json.len() + 1 + "{\"Records\":[]}".len()
                        <= MAX_PAYLOAD_BYTES);
            // Once a slot's batch is full, later records of the slot wait (key order).
            if !full[slot] && fits && same_window {
                sizes[slot] += r.json.len() + 1;
                slots[slot].push(r);
            } else {
                full[slot] = true;
                rest.push_back(r);
            }
        }
        self.buffer = rest;
        self.gathered_ms = (!self.buffer.is_empty()).then(|| self.runner.clock.now_ms());
        let first_left = self.buffer.front().map(|r| r.sequence_number.clone());
        let mut done_upto: Option<SequenceNumber> = None;
        for s in &slots {
            for r in s {
                if first_left.as_ref().is_none_or(|f| r.sequence_number < *f)
                    && done_upto.as_ref() < Some(&r.sequence_number)
                {
                    done_upto = Some(r.sequence_number.clone());
                }
            }
        }
        if let Some(start) = window_start
            && self
                .window
                .as_ref()
                .is_none_or(|w| w.window.start != rfc3339(start))
        {
            self.open_window(start);
        }
        let ctx = context(self.runner, (pf == 1).then_some(self.shard));
        let batches = slots.into_iter().filter(|s| !s.is_empty());
        if let Some(window) = self.window.as_mut() {
            for batch in batches {
                debug!(records = batch.len(), "window batch");
                ctx.run(batch, Some(window))
                    .await
                    .map_err(|what| EsmError::OnFailure {
                        shard: self.shard,
                        what,
                    })?;
            }
        } else {
            let runs = batches.map(|b| ctx.run(b, None));
            for r in futures::future::join_all(runs).await {
                r.map_err(|what| EsmError::OnFailure {
                    shard: self.shard,
                    what,
                })?;
            }
        }
        if let Some(w) = &self.window {
            let size = serde_json::to_vec(&w.state).map(|v| v.len()).unwrap_or(0);
            if size > MAX_WINDOW_STATE {
                warn!(shard = %self.shard, bytes = size, "window state past 1 MB: window ends early");
                self.final_invoke(true).await?;
            }
        }
        if let Some(seq) = done_upto {
            self.runner.put_checkpoint(self.shard, seq).await?;
        }
        Ok(())
    }

    fn open_window(&mut self, start: i64) {
        let len = i64::from(self.runner.config.tumbling_window_in_seconds) * 1000;
        self.window = Some(WindowFields {
            window: Window {
                start: rfc3339(start),
                end: rfc3339(start + len),
            },
            state: serde_json::Map::new(),
            shard_id: self.shard.to_string(),
            event_source_arn: self.runner.source.stream_arn.clone(),
            is_final_invoke_for_window: false,
            is_window_terminated_early: false,
        });
    }

    /// Closes the open window when a later window's record is next, or its end has passed
    /// with the shard caught up. Returns whether it closed one.
    async fn close_window_if_due(&mut self, caught_up: bool) -> Result<bool, EsmError> {
        let Some(w) = &self.window else {
            return Ok(false);
        };
        let len = i64::from(self.runner.config.tumbling_window_in_seconds) * 1000;
        let start = chrono::DateTime::parse_from_rfc3339(&w.window.start)
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        let next_is_later = self
            .buffer
            .front()
            .is_some_and(|r| self.window_of(r.arrival_ms) != Some(start));
        let ended_by_clock =
            self.buffer.is_empty() && caught_up && self.runner.clock.now_ms() >= start + len;
        if !(next_is_later || ended_by_clock) {
            return Ok(false);
        }
        self.final_invoke(false).await?;
        Ok(true)
    }

    /// The window's last invocation: no records, its state, `isFinalInvokeForWindow`.
    async fn final_invoke(&mut self, early: bool) -> Result<(), EsmError> {
        let Some(mut w) = self.window.take() else {
            return Ok(());
        };
        w.is_final_invoke_for_window = true;
        w.is_window_terminated_early = early;
        let c = &self.runner.config;
        let event = bytes::Bytes::from(build_event(&[], Some(&w)));
        let mut retries = 0i64;
        loop {
            self.runner.stats.invocation(0);
            let out = self
                .runner
                .invoker
                .invoke(event.clone(), c.function_timeout)
                .await;
            match out.error() {
                None => break,
                Some(e) => {
                    retries += 1;
                    if c.maximum_retry_attempts >= 0 && retries > c.maximum_retry_attempts {
                        warn!(shard = %self.shard, window = %w.window.start, error = %e, "final window invocation given up on");
                        break;
                    }
                    let wait = c.retry_backoff.min(Duration::from_secs(30));
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        self.runner.stats.window_closed();
        info!(shard = %self.shard, window = %w.window.start, early, "window closed");
        Ok(())
    }
}

fn context(r: &EsmRunner, checkpoint: Option<ShardId>) -> BatchContext<'_> {
    BatchContext {
        config: &r.config,
        invoker: &r.invoker,
        on_failure: r.on_failure.as_ref(),
        identity: &r.identity,
        clock: &r.clock,
        stats: &r.stats,
        checkpoint: checkpoint.map(|s| (r, s)),
    }
}

/// The slot of a partition key among `n`: the MD5 of the key, as Kinesis routes keys.
fn slot_of(partition_key: &str, n: usize) -> usize {
    let digest = Md5::digest(partition_key.as_bytes());
    let mut high = [0u8; 8];
    high.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(high) % n as u64) as usize
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
