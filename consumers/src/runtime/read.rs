//! Listing shards, resolving iterators, reading batches and handing them on.

use bytes::Bytes;
use shardline_core::ports::{DeadLetter, Stream};
use shardline_core::stream::GetRecordsOutput;
use shardline_core::{EventTimeLimits, RetryClass, SequenceNumber, ShardId, StartingPosition};
use std::sync::Arc;
use tracing::warn;

use super::consumer::Consumer;
use super::error::{ConsumerError, Result};
use super::quarantine::{self, Piece};
use super::retry::{self, Track, with_retry};
use super::share::{Batch, Letter};
use super::status::InFlight;
use crate::SinkRecord;

/// What one pass over the shards found.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pass {
    /// Records read in this pass.
    pub records: usize,
    /// Every readable shard is caught up or finished.
    pub all_caught_up: bool,
}

impl Consumer {
    pub(super) fn stream_error(&self, op: String, source: shardline_core::Error) -> ConsumerError {
        ConsumerError::Stream {
            stream: self.config.stream.clone(),
            op,
            source,
        }
    }

    /// Reads one batch from every readable shard.
    pub(super) async fn pass(&mut self) -> Result<Pass> {
        self.check_leases()?;
        let mut pass = Pass {
            records: 0,
            all_caught_up: true,
        };
        let ids: Vec<ShardId> = self.shards.keys().copied().collect();
        for id in ids {
            let Some(state) = self.shards.get(&id) else {
                continue;
            };
            if state.finished {
                continue;
            }
            if state.end_reached {
                // Closed and fully read; finishes once the sink makes the rest durable.
                continue;
            }
            let blocked = state
                .parents
                .iter()
                .any(|p| self.shards.get(p).is_some_and(|ps| !ps.finished));
            if blocked {
                pass.all_caught_up = false;
                continue;
            }
            let (records, caught_up) = self.read_shard(id).await?;
            pass.records += records;
            pass.all_caught_up &= caught_up;
        }
        Ok(pass)
    }

    /// Resolves a shard's iterator after its last processed record, else its checkpoint, else
    /// the configured starting position.
    async fn resolve_iterator(&mut self, id: ShardId) -> Result<()> {
        let Some(state) = self.shards.get(&id) else {
            return Ok(());
        };
        let position = match state.resume_after() {
            Some(seq) => StartingPosition::AfterSequenceNumber(seq.clone()),
            None => self.config.starting_position.clone(),
        };
        let stream = Arc::clone(&self.stream);
        let name = self.config.stream.clone();
        let iterator = with_retry(
            &self.config.retry,
            self.stop.as_ref(),
            self.track("stream"),
            "get_shard_iterator",
            || {
                let (stream, name, position) =
                    (Arc::clone(&stream), name.clone(), position.clone());
                async move { stream.get_shard_iterator(&name, id, &position).await }
            },
        )
        .await
        .map_err(|e| self.stream_error(format!("get_shard_iterator {position} on {id}"), e))?;
        if let Some(state) = self.shards.get_mut(&id) {
            state.iterator = Some(iterator);
        }
        Ok(())
    }

    async fn get_records(
        &mut self,
        id: ShardId,
    ) -> Result<GetRecordsOutput, shardline_core::Error> {
        let iterator = self
            .shards
            .get(&id)
            .and_then(|s| s.iterator.clone())
            .ok_or_else(|| shardline_core::Error::Internal(format!("{id} has no iterator")))?;
        let stream = Arc::clone(&self.stream);
        let limit = self.config.batch_size;
        with_retry(
            &self.config.retry,
            self.stop.as_ref(),
            self.track("stream"),
            "get_records",
            || {
                let (stream, iterator) = (Arc::clone(&stream), iterator.clone());
                async move { stream.get_records(&iterator, limit).await }
            },
        )
        .await
    }

    /// Reads one batch from a shard and hands it on. Returns (records read, caught up).
    ///
    /// With shared reads, a batch another consumer read is taken instead when one holds the
    /// records after this consumer's position; a batch read here is kept for the others.
    async fn read_shard(&mut self, id: ShardId) -> Result<(usize, bool)> {
        // Where this read starts, as a position others can share: after the last record
        // handed on, else after the checkpoint, else (from TRIM_HORIZON) before every record.
        let after = self
            .shards
            .get(&id)
            .and_then(|s| s.resume_after().cloned())
            .or_else(|| {
                (self.config.starting_position == StartingPosition::TrimHorizon)
                    .then(SequenceNumber::before_all)
            });
        if let (Some(seat), Some(after)) = (&self.seat, &after) {
            let mut taken = seat.take(id, after);
            if taken.is_none() {
                seat.wait_for_room(id, after, self.stop.as_ref()).await;
                taken = seat.take_or_read(id, after, self.stop.as_ref()).await;
            }
            if let Some((batch, start)) = taken {
                let count = batch.seqs.len() - start;
                let caught_up = batch.next_iterator.is_none();
                self.status.update(|s| s.records_shared += count as u64);
                self.dispatch(id, &batch, start).await?;
                return Ok((count, caught_up));
            }
        }
        if self.shards.get(&id).is_some_and(|s| s.iterator.is_none()) {
            self.resolve_iterator(id).await?;
        }
        let out = match self.get_records(id).await {
            Ok(out) => out,
            Err(e) if e.retry_class() == RetryClass::Permanent => {
                warn!(shard = %id, error = %e, "iterator refused; resolving it again after the last processed record");
                self.status.update(|s| s.errors += 1);
                self.resolve_iterator(id).await?;
                self.get_records(id)
                    .await
                    .map_err(|e| self.stream_error(format!("get_records on {id}"), e))?
            }
            Err(e) => return Err(self.stream_error(format!("get_records on {id}"), e)),
        };
        let batch = Arc::new(decode(id, out, &self.config.event_time_limits()));
        if let Some(seat) = &self.seat {
            seat.offer(id, after.as_ref(), &batch);
        }
        let count = batch.seqs.len();
        let caught_up =
            batch.next_iterator.is_none() || (count == 0 && batch.millis_behind_latest == 0);
        self.dispatch(id, &batch, 0).await?;
        Ok((count, caught_up))
    }

    /// Hands on the records of `batch` from index `start`: stores dead letters, writes valid
    /// records to the sink (in pieces around a suspect range, see [`quarantine`]),
    /// checkpoints.
    async fn dispatch(&mut self, id: ShardId, batch: &Batch, start: usize) -> Result<()> {
        let now = self.clock.now_ms();
        let records = &batch.seqs[start..];
        let valid_before = batch.seqs[..start].iter().filter(|(_, ok)| *ok).count();
        let valid = &batch.valid[valid_before..];
        let letters = &batch.letters[start - valid_before..];
        let suspect = self.quarantine().suspect(id).cloned();
        let pieces = quarantine::pieces(valid, suspect.as_ref(), self.config.panic_attempts);
        let condemned: Vec<&SinkRecord> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Condemn(r) => Some(*r),
                Piece::Write(_) => None,
            })
            .collect();
        let Some(state) = self.shards.get_mut(&id) else {
            return Ok(());
        };
        // The record handed on before this stretch, for `Sink::handed`.
        let after = state.resume_after().cloned();
        let count = records.len() as u64;
        if condemned.is_empty() {
            state.note_processed_all(records);
        } else {
            // A condemned record is a dead letter in the shard's bookkeeping.
            let marked: Vec<(SequenceNumber, bool)> = records
                .iter()
                .map(|(seq, ok)| {
                    let condemned = condemned.iter().any(|c| c.sequence_number == *seq);
                    (seq.clone(), *ok && !condemned)
                })
                .collect();
            state.note_processed_all(&marked);
        }
        state.iterator.clone_from(&batch.next_iterator);
        if state.iterator.is_none() {
            state.end_reached = true;
        }
        let processed = state.processed.clone();
        let records_behind = records_behind(state.ending.as_ref(), processed.as_ref());
        self.status.update(|s| {
            s.records_in += count;
            let p = s.shards.entry(id).or_default();
            p.records_in += count;
            p.processed = processed;
            p.millis_behind_latest = batch.millis_behind_latest;
            p.records_behind = records_behind;
        });
        let mut dead: Vec<DeadLetter> = letters
            .iter()
            .map(|l| {
                warn!(shard = %id, sequence_number = %l.sequence_number, reason = %l.reason, "record dead-lettered");
                let (seq, key) = (l.sequence_number.clone(), l.partition_key.clone());
                let data = Bytes::clone(&l.data);
                self.letter(id, seq, key, l.reason.clone(), data, now)
            })
            .collect();
        for record in &condemned {
            let reason = suspect.as_ref().map_or_else(String::new, |s| {
                format!(
                    "sink {} panicked on this record {} times when handed it alone: {}",
                    self.sink.name(),
                    s.alone,
                    s.message
                )
            });
            warn!(shard = %id, sequence_number = %record.sequence_number, reason = %reason, "record dead-lettered");
            let stream = Arc::clone(&self.stream);
            let (key, data) = raw_record(stream, &self.config.stream, id, record).await;
            dead.push(self.letter(id, record.sequence_number.clone(), key, reason, data, now));
        }
        if !dead.is_empty() {
            let stored = dead.len() as u64;
            let store = Arc::clone(&self.dead_letters);
            with_retry(
                &self.config.retry,
                self.stop.as_ref(),
                self.track("dead-letter store"),
                "dead-letter put",
                || {
                    let (store, dead) = (Arc::clone(&store), dead.clone());
                    async move { store.put(dead).await }
                },
            )
            .await
            .map_err(|source| ConsumerError::DeadLetter { shard: id, source })?;
            self.status.update(|s| s.dead_letters += stored);
            for record in &condemned {
                self.quarantine().passed(id, &record.sequence_number);
            }
        }
        let writes = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Write(r) if !r.is_empty()))
            .count();
        for piece in &pieces {
            let Piece::Write(part) = piece else {
                continue;
            };
            let Some(last) = part.last() else {
                continue;
            };
            let durable = self.write_to_sink(id, part, now).await?;
            self.status
                .update(|s| s.records_delivered += part.len() as u64);
            if let (Some(d), Some(state)) = (durable, self.shards.get_mut(&id)) {
                state.note_durable(&d);
            }
            if suspect.is_some() {
                self.quarantine().passed(id, &last.sequence_number);
            }
            if writes > 1 {
                // A restart after a panic in a later piece resumes after this one.
                self.checkpoint(id).await?;
            }
        }
        if let (Some((first, _)), Some((last, _))) = (records.first(), records.last()) {
            self.sink.handed(id, after.as_ref(), first, last);
        }
        self.checkpoint(id).await
    }

    fn letter(
        &self,
        shard: ShardId,
        sequence_number: SequenceNumber,
        partition_key: String,
        reason: String,
        data: Bytes,
        at_ms: i64,
    ) -> DeadLetter {
        DeadLetter {
            consumer: self.config.name.clone(),
            stream: self.config.stream.clone(),
            shard,
            sequence_number,
            partition_key,
            reason,
            data,
            at_ms,
        }
    }

    /// Hands records to the sink, retrying the same records after any error, up to
    /// `retry.max_attempts` tries. While the sink holds them, the status names them.
    async fn write_to_sink(
        &mut self,
        id: ShardId,
        records: &[SinkRecord],
        now: i64,
    ) -> Result<Option<SequenceNumber>> {
        let what = format!("write to sink {} on {id}", self.sink.name());
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(None);
        };
        let in_flight = InFlight::Write {
            shard: id,
            first: first.sequence_number.clone(),
            last: last.sequence_number.clone(),
            records: records.len(),
        };
        let mut attempt = 0;
        loop {
            self.status
                .update(|s| s.in_flight = Some(in_flight.clone()));
            let out = self.sink.write(id, records, now).await;
            self.status.update(|s| s.in_flight = None);
            let track = Track {
                status: &self.status,
                clock: self.clock.as_ref(),
                call: "sink",
            };
            match out {
                Ok(durable) => {
                    track.succeeded();
                    return Ok(durable);
                }
                Err(source) => {
                    track.failed(&source);
                    self.check_leases()?;
                    if !retry::retry_after(
                        &self.config.retry,
                        self.stop.as_ref(),
                        attempt,
                        &source,
                        true,
                        &what,
                    )
                    .await
                    {
                        return Err(ConsumerError::Sink {
                            sink: self.sink.name().to_string(),
                            shard: id,
                            source,
                        });
                    }
                    track.retried();
                    attempt += 1;
                }
            }
        }
    }
}

/// The partition key and exact bytes of a record read earlier, read again from the
/// stream; the event's JSON when the stream no longer has it (retention).
async fn raw_record(
    stream: Arc<dyn Stream>,
    name: &str,
    id: ShardId,
    record: &SinkRecord,
) -> (String, Bytes) {
    let at = StartingPosition::AtSequenceNumber(record.sequence_number.clone());
    let read = async {
        let it = stream.get_shard_iterator(name, id, &at).await?;
        stream.get_records(&it, 1).await
    };
    match read.await {
        Ok(out) => {
            if let Some(r) = out
                .records
                .into_iter()
                .find(|r| r.sequence_number == record.sequence_number)
            {
                return (r.partition_key, r.data);
            }
        }
        Err(e) => {
            warn!(shard = %id, sequence_number = %record.sequence_number, error = %e, "cannot read the record again; its dead letter keeps the decoded event");
        }
    }
    (
        record.event.instance_id.clone(),
        Bytes::from(record.event.to_json()),
    )
}

/// Validates and decodes one get_records answer: each record once, event time included
/// ([`shardline_core::event::decode`] against the record's arrival), so no sink ever sees an
/// event outside `limits`.
fn decode(id: ShardId, out: GetRecordsOutput, limits: &EventTimeLimits) -> Batch {
    let mut batch = Batch {
        seqs: Vec::with_capacity(out.records.len()),
        valid: Vec::with_capacity(out.records.len()),
        letters: Vec::new(),
        next_iterator: out.next_iterator,
        millis_behind_latest: out.millis_behind_latest,
    };
    for record in out.records {
        match shardline_core::event::decode(&record.data, record.approximate_arrival_ms, limits) {
            Ok(event) => {
                batch.seqs.push((record.sequence_number.clone(), true));
                batch.valid.push(SinkRecord {
                    shard: id,
                    sequence_number: record.sequence_number,
                    arrival_ms: record.approximate_arrival_ms,
                    event: Arc::new(event),
                });
            }
            Err(reason) => {
                batch.seqs.push((record.sequence_number.clone(), false));
                batch.letters.push(Letter {
                    sequence_number: record.sequence_number,
                    partition_key: record.partition_key,
                    reason: reason.reason(),
                    data: record.data,
                });
            }
        }
    }
    batch
}

/// Records left in a closed shard after `processed`, when both decode as Shardline sequence
/// numbers of the same shard.
fn records_behind(
    ending: Option<&SequenceNumber>,
    processed: Option<&SequenceNumber>,
) -> Option<u64> {
    let end = ending?.parts().ok()?;
    match processed {
        Some(p) => {
            let p = p.parts().ok()?;
            (p.shard_index == end.shard_index).then(|| end.offset.saturating_sub(p.offset))
        }
        None => None,
    }
}
