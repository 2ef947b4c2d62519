//! Reads shared by the consumers of one stream in one process.
//!
//! Each consumer of a stream reads every record: without sharing, four consumers read, check
//! and decode each record four times. With a [`SharedReads`], a batch one consumer read from a
//! shard (decoded and validated) is kept until every other consumer sharing it has taken it,
//! so the stream is read once and each record parsed once.
//!
//! Consumers stay independent: each keeps its own position, checkpoints and dead letters, and
//! a consumer whose position is inside a kept batch takes the part after its position. A
//! consumer ahead of the others keeps at most [`SharedReadsConfig::window_records`] records
//! waiting for them: beyond that it waits until one of them takes a batch, so a backlog
//! (a replay, a restart) is drained by all of them together instead of read four times. A
//! consumer that has not come back for a batch within [`SharedReadsConfig::stall`] (its sink
//! is retrying, say) no longer holds the others: they go on, and it reads on its own until it
//! catches up with what is kept.
//!
//! A consumer about to read the batch another one is already reading (same shard, same
//! position) waits for that batch instead of reading it too. A consumer without a position in
//! a shard that starts from TRIM_HORIZON shares from before the first record, so fresh
//! consumers share their first batches as well.
//!
//! Only consumers of the same stream with the same `batch_size` and event-time window share (a
//! batch is what one get_records call returned, validated against that window).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shardline_core::{EventTimeLimits, SequenceNumber, ShardId, ShardIterator, units};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::error::ConsumerError;
use crate::SinkRecord;

/// How consumers of one stream share their reads.
///
/// ```toml
/// [consumers.shared_reads]
/// enabled = true
/// window_records = 100000
/// stall = "2s"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedReadsConfig {
    /// Whether consumers of the same stream (and batch size) share reads.
    pub enabled: bool,
    /// Records kept for consumers that have not taken them yet before the consumer ahead
    /// waits for them.
    pub window_records: usize,
    /// A consumer that has not come for a batch for this long stops holding the others back.
    #[serde(with = "units::duration")]
    pub stall: Duration,
}

impl Default for SharedReadsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_records: 100_000,
            stall: Duration::from_secs(2),
        }
    }
}

impl SharedReadsConfig {
    /// Checks the values sharing cannot work with.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), ConsumerError> {
        if self.window_records == 0 {
            return Err(ConsumerError::Config(
                "shared_reads.window_records is 0: give it at least one batch of records (e.g. \
                 40000), or set shared_reads.enabled = false"
                    .into(),
            ));
        }
        if self.stall.is_zero() {
            return Err(ConsumerError::Config(
                "shared_reads.stall is 0: give it a duration such as \"2s\"".into(),
            ));
        }
        Ok(())
    }
}

/// A record that did not validate, as read (each consumer stores it under its own name).
#[derive(Debug)]
pub(crate) struct Letter {
    pub sequence_number: SequenceNumber,
    pub partition_key: String,
    pub reason: String,
    pub data: Bytes,
}

/// One get_records answer, validated and decoded.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Every record's sequence number, in order, and whether it was valid.
    pub seqs: Vec<(SequenceNumber, bool)>,
    /// The valid records, in order.
    pub valid: Vec<SinkRecord>,
    /// The invalid ones, in order.
    pub letters: Vec<Letter>,
    /// Where to read after the batch; `None` at the end of a closed shard.
    pub next_iterator: Option<ShardIterator>,
    /// The answer's lag.
    pub millis_behind_latest: u64,
}

impl Batch {
    /// Index of the first record after `after`.
    pub fn start_after(&self, after: &SequenceNumber) -> usize {
        self.seqs.partition_point(|(s, _)| s <= after)
    }

    fn last(&self) -> Option<&SequenceNumber> {
        self.seqs.last().map(|(s, _)| s)
    }
}

/// Batches read by the consumers of one stream, kept for the others. See the module docs.
#[derive(Debug)]
pub struct SharedReads {
    stream: String,
    batch_size: usize,
    event_time: EventTimeLimits,
    config: SharedReadsConfig,
    inner: Mutex<Inner>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// Index = seat bit.
    seats: Vec<Option<SeatState>>,
    shards: HashMap<ShardId, BTreeMap<SequenceNumber, Entry>>,
    records: usize,
}

#[derive(Debug)]
struct SeatState {
    last_seen: Instant,
    /// Per shard, the last record the seat handed on.
    positions: HashMap<ShardId, SequenceNumber>,
    /// Per shard, the position the seat is reading after, and since when: others at the same
    /// position wait for that batch instead of reading it too.
    reading: HashMap<ShardId, (SequenceNumber, Instant)>,
}

/// What a lookup found.
#[derive(Debug)]
enum Take {
    /// A kept batch holding the records after the position, and the index of the first.
    Hit(Arc<Batch>, usize),
    /// Nothing kept: this consumer reads the batch (and offers it).
    Read,
    /// Another consumer is reading the same batch until the given time at the latest.
    Wait(Instant),
}

#[derive(Debug)]
struct Entry {
    batch: Arc<Batch>,
    /// Seats that took it.
    taken: u64,
}

/// At most this many consumers share one stream's reads (seats are bits of a `u64`).
const MAX_SEATS: usize = 64;

impl SharedReads {
    /// Sharing for consumers of `stream` reading `batch_size` records per call.
    pub fn new(stream: impl Into<String>, batch_size: usize, config: SharedReadsConfig) -> Self {
        Self {
            stream: stream.into(),
            batch_size,
            event_time: EventTimeLimits::default(),
            config,
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
        }
    }

    /// The same, for consumers whose records are checked against `limits` (the default
    /// window otherwise).
    pub fn with_event_time(mut self, limits: EventTimeLimits) -> Self {
        self.event_time = limits;
        self
    }

    /// The stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The event-time window of the consumers sharing.
    pub fn event_time(&self) -> EventTimeLimits {
        self.event_time
    }

    /// Records per get_records call of the consumers sharing.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Records kept now (decoded, waiting for consumers that have not taken them).
    pub fn kept_records(&self) -> usize {
        self.lock().records
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A seat for one consumer; it leaves when the seat is dropped.
    ///
    /// # Errors
    /// [`ConsumerError::Config`] when 64 consumers already share the stream.
    pub(crate) fn seat(self: &Arc<Self>) -> Result<Seat, ConsumerError> {
        let mut g = self.lock();
        let state = SeatState {
            last_seen: Instant::now(),
            positions: HashMap::new(),
            reading: HashMap::new(),
        };
        let index = match g.seats.iter().position(Option::is_none) {
            Some(i) => i,
            None if g.seats.len() < MAX_SEATS => {
                g.seats.push(None);
                g.seats.len() - 1
            }
            None => {
                return Err(ConsumerError::Config(format!(
                    "more than {MAX_SEATS} consumers share the reads of stream `{}`: set \
                     share_reads = false on some of them",
                    self.stream
                )));
            }
        };
        g.seats[index] = Some(state);
        Ok(Seat {
            share: Arc::clone(self),
            index,
        })
    }
}

impl Inner {
    fn touch(&mut self, seat: usize, shard: ShardId, after: Option<&SequenceNumber>, now: Instant) {
        if let Some(Some(s)) = self.seats.get_mut(seat) {
            s.last_seen = now;
            if let Some(after) = after {
                s.positions.insert(shard, after.clone());
            }
        }
    }

    /// Whether seat `i` (state `s`) may still want `entry` of `shard`.
    fn wants(i: usize, s: &SeatState, shard: ShardId, entry: &Entry) -> bool {
        if entry.taken & (1 << i) != 0 {
            return false;
        }
        match (s.positions.get(&shard), entry.batch.last()) {
            (Some(pos), Some(last)) => pos < last,
            _ => true,
        }
    }

    /// Drops the batches no holding seat wants any more. Returns whether any was dropped.
    fn collect(&mut self, now: Instant, stall: Duration) -> bool {
        let holding: Vec<(usize, &SeatState)> = holding(&self.seats, now, stall).collect();
        let mut dropped = 0;
        for (shard, entries) in &mut self.shards {
            entries.retain(|_, e| {
                let keep = holding.iter().any(|(i, s)| Self::wants(*i, s, *shard, e));
                if !keep {
                    dropped += e.batch.seqs.len();
                }
                keep
            });
        }
        self.shards.retain(|_, e| !e.is_empty());
        self.records -= dropped;
        dropped > 0
    }
}

/// Waits for `notified` (registered before the caller looked) or `until`; returns `false`
/// when `stop` was set (or its sender is gone) first.
async fn changed_or_until(
    notified: std::pin::Pin<&mut Notified<'_>>,
    until: Instant,
    stop: Option<&watch::Receiver<bool>>,
) -> bool {
    let mut stop = stop.cloned();
    let stopped = async {
        match stop.as_mut() {
            Some(rx) => {
                let _ = rx.wait_for(|s| *s).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = notified => true,
        () = tokio::time::sleep_until(until) => true,
        () = stopped => false,
    }
}

/// Seats that still hold kept batches: present and seen within `stall`.
fn holding(
    seats: &[Option<SeatState>],
    now: Instant,
    stall: Duration,
) -> impl Iterator<Item = (usize, &SeatState)> {
    seats.iter().enumerate().filter_map(move |(i, s)| {
        s.as_ref()
            .filter(|s| now.saturating_duration_since(s.last_seen) < stall)
            .map(|s| (i, s))
    })
}

/// One consumer's place in a [`SharedReads`].
#[derive(Debug)]
pub(crate) struct Seat {
    share: Arc<SharedReads>,
    index: usize,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut g = self.share.lock();
        if let Some(s) = g.seats.get_mut(self.index) {
            *s = None;
        }
        g.collect(Instant::now(), self.share.config.stall);
        drop(g);
        self.share.changed.notify_waiters();
    }
}

impl Seat {
    /// A kept batch holding the records right after `after` on `shard`, with the index of the
    /// first of them.
    pub fn take(&self, shard: ShardId, after: &SequenceNumber) -> Option<(Arc<Batch>, usize)> {
        match self.lookup(shard, after, false) {
            Take::Hit(batch, start) => Some((batch, start)),
            Take::Read | Take::Wait(_) => None,
        }
    }

    /// As [`Seat::take`]; when nothing is kept and another consumer is reading the records
    /// after the same position, waits for its batch (until it stalls, or `stop`). Returns
    /// `None` when this consumer is to read the batch itself (and offer it).
    pub async fn take_or_read(
        &self,
        shard: ShardId,
        after: &SequenceNumber,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Option<(Arc<Batch>, usize)> {
        loop {
            // Registered before looking, so the other consumer's offer cannot be missed.
            let notified = self.share.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let until = match self.lookup(shard, after, true) {
                Take::Hit(batch, start) => return Some((batch, start)),
                Take::Read => return None,
                Take::Wait(until) => until,
            };
            if !changed_or_until(notified, until, stop).await {
                return None;
            }
        }
    }

    fn lookup(&self, shard: ShardId, after: &SequenceNumber, claim: bool) -> Take {
        let now = Instant::now();
        let stall = self.share.config.stall;
        let mut g = self.share.lock();
        g.touch(self.index, shard, Some(after), now);
        let bit = 1u64 << self.index;
        let hit = g.shards.get_mut(&shard).and_then(|entries| {
            let (_, e) = entries.range_mut(..=after.clone()).next_back()?;
            let last = e.batch.last()?;
            (last > after).then(|| {
                e.taken |= bit;
                (Arc::clone(&e.batch), e.batch.start_after(after))
            })
        });
        let out = match hit {
            Some((batch, start)) => Take::Hit(batch, start),
            None if !claim => Take::Read,
            None => {
                let busy = holding(&g.seats, now, stall)
                    .filter(|(i, _)| *i != self.index)
                    .filter_map(|(_, s)| s.reading.get(&shard))
                    .filter(|(pos, since)| {
                        pos == after && now.saturating_duration_since(*since) < stall
                    })
                    .map(|(_, since)| *since + stall)
                    .min();
                match busy {
                    Some(until) => Take::Wait(until),
                    None => {
                        if let Some(Some(me)) = g.seats.get_mut(self.index) {
                            me.reading.insert(shard, (after.clone(), now));
                        }
                        Take::Read
                    }
                }
            }
        };
        let dropped = g.collect(now, stall);
        drop(g);
        if dropped {
            self.share.changed.notify_waiters();
        }
        out
    }

    /// Keeps a batch this consumer read after `after` for the others, if one of them may
    /// still want it.
    pub fn offer(&self, shard: ShardId, after: Option<&SequenceNumber>, batch: &Arc<Batch>) {
        let now = Instant::now();
        let mut g = self.share.lock();
        g.touch(self.index, shard, after, now);
        let claimed = match g.seats.get_mut(self.index) {
            Some(Some(me)) => me.reading.remove(&shard).is_some(),
            _ => false,
        };
        let kept = match (after, batch.last()) {
            (Some(after), Some(last)) => self.keep(&mut g, shard, after, last, batch, now),
            _ => false,
        };
        drop(g);
        if claimed || kept {
            self.share.changed.notify_waiters();
        }
    }

    /// Keeps `batch` (records after `after` up to `last`) if another seat may still want it
    /// and no batch is kept from the same position. Returns whether it was kept.
    fn keep(
        &self,
        g: &mut Inner,
        shard: ShardId,
        after: &SequenceNumber,
        last: &SequenceNumber,
        batch: &Arc<Batch>,
        now: Instant,
    ) -> bool {
        let others_want = holding(&g.seats, now, self.share.config.stall)
            .any(|(i, s)| i != self.index && s.positions.get(&shard).is_none_or(|pos| pos < last));
        let entries = g.shards.entry(shard).or_default();
        if !others_want || entries.contains_key(after) {
            return false;
        }
        entries.insert(
            after.clone(),
            Entry {
                batch: Arc::clone(batch),
                taken: 1 << self.index,
            },
        );
        g.records += batch.seqs.len();
        // A hard bound whatever the others do: the oldest batches of this shard go first.
        let cap = self.share.config.window_records.saturating_mul(2);
        while g.records > cap {
            let Some((_, e)) = g.shards.get_mut(&shard).and_then(BTreeMap::pop_first) else {
                break;
            };
            g.records -= e.batch.seqs.len();
        }
        true
    }

    /// Waits while this consumer is ahead: the window is full and it has taken every kept
    /// batch it could. Returns when a batch was taken by the others, when the ones holding the
    /// window stalled, or when `stop` is set.
    pub async fn wait_for_room(
        &self,
        shard: ShardId,
        after: &SequenceNumber,
        stop: Option<&watch::Receiver<bool>>,
    ) {
        let stall = self.share.config.stall;
        loop {
            let notified = self.share.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let now = Instant::now();
                let mut g = self.share.lock();
                g.touch(self.index, shard, Some(after), now);
                g.collect(now, stall);
                if g.records < self.share.config.window_records {
                    return;
                }
                let me = self.index;
                let Some(Some(mine)) = g.seats.get(me) else {
                    return;
                };
                let something_to_take = g
                    .shards
                    .iter()
                    .any(|(sh, entries)| entries.values().any(|e| Inner::wants(me, mine, *sh, e)));
                if something_to_take {
                    return;
                }
                // The window is held by others: wait for them, at most until they stall.
                let Some(seen) = holding(&g.seats, now, stall)
                    .filter(|(i, _)| *i != me)
                    .map(|(_, s)| s.last_seen)
                    .min()
                else {
                    return;
                };
                seen + stall
            };
            if !changed_or_until(notified, deadline, stop).await {
                return;
            }
        }
    }
}
