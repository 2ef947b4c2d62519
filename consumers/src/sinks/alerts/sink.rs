//! [`AlertsSink`]: feeds samples to alarms, evaluates closed periods, notifies transitions.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shardline_core::ports::{Notification, Notifier, StateStore};
use shardline_core::{Error, MetricEvent, Result, SequenceNumber, ShardId};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use tracing::{debug, info};

/// The hasher of the per-record alarm lookups: seeded per process like the standard one,
/// several times cheaper for short keys.
type FastHash = foldhash::fast::RandomState;

use super::alarm::{AlarmRecord, AlarmState, Transition};
use super::config::{AlarmRule, AlertsConfig};
use super::message::notification;
use super::status::{AlarmStatus, alarm_key, load_alarms};
use crate::sink::{Sink, SinkRecord, records_after};

/// A shard's progress, stored under `watermark/<stream>/<shard>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardProgress {
    /// The last sequence number applied.
    pub sequence_number: Option<SequenceNumber>,
    /// The largest event time seen in the shard, epoch milliseconds.
    pub event_time_ms: i64,
}

/// Marks an (instance, rule) pair without an alarm in [`Cache::slots`].
const NO_ALARM: u32 = u32::MAX;

/// One alarm as the sink holds it.
struct Slot {
    /// Its state-store key, [`alarm_key`].
    key: String,
    /// Index of its rule in [`AlertsSink::rules`]; `None` for a stored alarm whose rule is no
    /// longer configured (kept as stored: it is not evaluated).
    rule: Option<usize>,
    alarm: AlarmRecord,
    /// Listed in [`Cache::dirty`].
    dirty: bool,
}

/// What the sink knows: the state store's contents plus what was applied since the last
/// write to it (the alarms listed in `dirty`, and [`Dirty`]).
///
/// Lookups per sample are by instance (one hash of its id), then by rule index; alarms are
/// marked changed with a flag, so a sample copies no key and hashes nothing else.
#[derive(Default)]
struct Cache {
    /// Every alarm, in the order loaded or created.
    alarms: Vec<Slot>,
    /// Instance id → its number `i`; `slots[i * rules + r]` is the index in `alarms` of its
    /// alarm for rule `r`, or [`NO_ALARM`].
    instances: HashMap<String, u32, FastHash>,
    slots: Vec<u32>,
    /// Alarms changed since the last write to the store (indices into `alarms`).
    dirty: Vec<u32>,
    /// Per shard, a lower bound of the end of the next period to evaluate among the alarms
    /// read from it: while the shard's closed-until time is below it, no alarm of the shard
    /// has a period to evaluate and the batch skips evaluation.
    due: HashMap<ShardId, i64>,
    shards: HashMap<ShardId, ShardProgress>,
}

impl Cache {
    /// Loads stored alarms; `rules` are the configured ones, by name.
    fn of(stored: Vec<AlarmRecord>, rules: &[(String, AlarmRule)]) -> Self {
        let mut cache = Cache::default();
        for alarm in stored {
            let rule = rules.iter().position(|(name, _)| *name == alarm.rule);
            let index = cache.alarms.len() as u32;
            if let Some(r) = rule {
                let instance = cache.instance(&alarm.instance_id, rules.len());
                cache.slots[instance * rules.len() + r] = index;
                cache.lower_due(alarm.shard, next_period_end(&alarm, &rules[r].1));
            }
            cache.alarms.push(Slot {
                key: alarm_key(&alarm.instance_id, &alarm.rule),
                rule,
                alarm,
                dirty: false,
            });
        }
        cache
    }

    /// The number of `instance_id` (given one, with no alarms, when new).
    fn instance(&mut self, instance_id: &str, rules: usize) -> usize {
        if let Some(&i) = self.instances.get(instance_id) {
            return i as usize;
        }
        let i = self.instances.len();
        self.instances.insert(instance_id.to_string(), i as u32);
        self.slots.extend(std::iter::repeat_n(NO_ALARM, rules));
        i
    }

    /// Notes that an alarm read from `shard` has a period to evaluate ending at `end`.
    fn lower_due(&mut self, shard: ShardId, end: i64) {
        let due = self.due.entry(shard).or_insert(end);
        *due = (*due).min(end);
    }
}

/// Marks alarm `index` changed (listed once in `dirty`).
fn touch(alarms: &mut [Slot], dirty: &mut Vec<u32>, index: usize) {
    let slot = &mut alarms[index];
    if !slot.dirty {
        slot.dirty = true;
        dirty.push(index as u32);
    }
}

/// End of the first period `alarm` has not evaluated.
fn next_period_end(alarm: &AlarmRecord, rule: &AlarmRule) -> i64 {
    alarm.next_period_start_ms.saturating_add(rule.period_ms())
}

/// What was applied in memory and is not yet in the state store (besides the changed alarms,
/// [`Cache::dirty`]).
#[derive(Default)]
struct Dirty {
    /// Notifications not yet published, in order.
    outbox: VecDeque<Notification>,
    /// Shards whose progress moved since the last write.
    shards: BTreeSet<ShardId>,
    /// Records applied since the last write.
    records: usize,
    /// When the first of them was applied.
    opened_ms: Option<i64>,
}

impl Dirty {
    fn is_clean(&self) -> bool {
        self.outbox.is_empty() && self.shards.is_empty()
    }
}

/// Evaluates alarm rules per (instance, metric) and publishes their transitions.
pub struct AlertsSink {
    notifier: Arc<dyn Notifier>,
    store: Arc<dyn StateStore>,
    config: AlertsConfig,
    namespace: String,
    /// The configured rules, by name (an alarm's rule index points here).
    rules: Vec<(String, AlarmRule)>,
    cache: Option<Cache>,
    dirty: Dirty,
    /// The durable mark last reported per shard.
    reported: HashMap<ShardId, SequenceNumber>,
    late_samples: u64,
}

impl AlertsSink {
    /// A sink publishing to `notifier`, keeping alarm states in `store`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the configuration is invalid.
    pub fn new(
        notifier: Arc<dyn Notifier>,
        store: Arc<dyn StateStore>,
        config: AlertsConfig,
    ) -> Result<Self> {
        config.validate()?;
        // Names are unique (`validate`); sorted, as the stored alarms' names sort.
        let mut rules: Vec<(String, AlarmRule)> =
            config.rules.iter().map(|r| (r.name(), r.clone())).collect();
        rules.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            notifier,
            store,
            namespace: config.state_namespace(),
            config,
            rules,
            cache: None,
            dirty: Dirty::default(),
            reported: HashMap::new(),
            late_samples: 0,
        })
    }

    /// The alarm states this sink holds (empty before the first write or flush).
    pub fn alarm_states(&self) -> Vec<AlarmStatus> {
        self.cache
            .as_ref()
            .map(|c| {
                let mut keyed: Vec<&Slot> = c.alarms.iter().collect();
                keyed.sort_unstable_by(|a, b| a.key.cmp(&b.key));
                keyed
                    .into_iter()
                    .map(|s| AlarmStatus::from(&s.alarm))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Samples dropped because their period had already been evaluated.
    pub fn late_samples(&self) -> u64 {
        self.late_samples
    }

    fn progress_key(&self, shard: ShardId) -> String {
        format!("watermark/{}/{}", self.config.stream, shard)
    }

    /// The cache (loaded if needed), with the rules, split from `self` for disjoint borrows.
    async fn loaded(&mut self) -> Result<(&mut Cache, &[(String, AlarmRule)])> {
        if self.cache.is_none() {
            let alarms = load_alarms(self.store.as_ref(), &self.namespace).await?;
            self.cache = Some(Cache::of(alarms, &self.rules));
        }
        let cache = self
            .cache
            .as_mut()
            .ok_or_else(|| Error::Internal("alarm cache missing after load".into()))?;
        Ok((cache, &self.rules))
    }

    async fn progress(&mut self, shard: ShardId) -> Result<ShardProgress> {
        let key = self.progress_key(shard);
        let store = self.store.clone();
        let namespace = self.namespace.clone();
        let (cache, _) = self.loaded().await?;
        if let Some(p) = cache.shards.get(&shard) {
            return Ok(p.clone());
        }
        let p = match store.get(&namespace, &key).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Internal(format!(
                    "watermark `{key}` in state namespace `{namespace}` does not parse ({e}); \
                     delete it to re-evaluate the shard from its checkpoint"
                ))
            })?,
            None => ShardProgress::default(),
        };
        cache.shards.insert(shard, p.clone());
        Ok(p)
    }

    /// Applies evaluated transitions (by alarm index) in memory: queues the notifications
    /// (only into ALARM and from ALARM back to OK), oldest first, and marks the shard dirty.
    fn apply(
        &mut self,
        transitions: Vec<(usize, Transition)>,
        progress: Option<(ShardId, ShardProgress)>,
        now_ms: i64,
    ) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        let mut transitions = transitions;
        let alarms = &cache.alarms;
        transitions.sort_by(|a, b| {
            (a.1.period_end_ms, &alarms[a.0].key).cmp(&(b.1.period_end_ms, &alarms[b.0].key))
        });
        for (index, t) in &transitions {
            let notify = t.to == AlarmState::Alarm
                || (t.from == AlarmState::Alarm && t.to == AlarmState::Ok);
            let slot = &alarms[*index];
            let (Some(r), true) = (slot.rule, notify) else {
                continue;
            };
            self.dirty.outbox.push_back(notification(
                &self.config.topic,
                &self.namespace,
                &self.rules[r].1,
                &slot.alarm,
                t,
            ));
        }
        if cache.dirty.is_empty() && progress.is_none() && self.dirty.outbox.is_empty() {
            return;
        }
        if let Some((shard, p)) = progress {
            cache.shards.insert(shard, p);
            self.dirty.shards.insert(shard);
        }
        self.dirty.opened_ms.get_or_insert(now_ms);
    }

    /// Publishes the queued notifications in order, then writes the changed alarms and shard
    /// progress in one `put_many`. A notification is therefore out before the state that
    /// says its period was evaluated. On error what is left stays queued for the next call.
    async fn persist(&mut self) -> Result<()> {
        while let Some(n) = self.dirty.outbox.front() {
            self.notifier.publish(n).await?;
            info!(subject = %n.subject, topic = %n.topic, "alarm notification published");
            self.dirty.outbox.pop_front();
        }
        let Some(cache) = self.cache.as_ref() else {
            self.dirty.records = 0;
            self.dirty.opened_ms = None;
            return Ok(());
        };
        if cache.dirty.is_empty() && self.dirty.shards.is_empty() {
            self.dirty.records = 0;
            self.dirty.opened_ms = None;
            return Ok(());
        }
        let mut entries = Vec::with_capacity(cache.dirty.len() + self.dirty.shards.len());
        let mut changed: Vec<&Slot> = cache
            .dirty
            .iter()
            .map(|&i| &cache.alarms[i as usize])
            .collect();
        changed.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        for slot in changed {
            let json = serde_json::to_vec(&slot.alarm).map_err(|e| {
                Error::Internal(format!("alarm `{}` does not serialize: {e}", slot.key))
            })?;
            entries.push((slot.key.clone(), Bytes::from(json)));
        }
        for shard in &self.dirty.shards {
            if let Some(p) = cache.shards.get(shard) {
                let json = serde_json::to_vec(p)
                    .map_err(|e| Error::Internal(format!("watermark does not serialize: {e}")))?;
                entries.push((self.progress_key(*shard), Bytes::from(json)));
            }
        }
        let count = entries.len();
        self.store.put_many(&self.namespace, entries).await?;
        if let Some(cache) = self.cache.as_mut() {
            for i in cache.dirty.drain(..) {
                cache.alarms[i as usize].dirty = false;
            }
        }
        debug!(
            entries = count,
            records = self.dirty.records,
            "alarm states written"
        );
        self.dirty = Dirty::default();
        self.forget_silent().await
    }

    /// Forgets the alarms whose last sample is older than `forget_after` in their shard's
    /// event time (see [`AlertsConfig::forget_after`]): deletes them from the state store, then
    /// from memory. Runs with nothing unwritten (after `persist`'s write), so the alarms kept
    /// are as stored. If the deletes fail, the alarms stay (in the store and in memory) and
    /// are forgotten after a later write.
    async fn forget_silent(&mut self) -> Result<()> {
        let forget_ms = i64::try_from(self.config.forget_after.as_millis()).unwrap_or(i64::MAX);
        let Some(cache) = self.cache.as_ref() else {
            return Ok(());
        };
        if forget_ms == 0 || !cache.dirty.is_empty() {
            return Ok(());
        }
        let silent = |slot: &Slot| {
            let shard_ms = cache.shards.get(&slot.alarm.shard).map(|p| p.event_time_ms);
            slot.alarm.open.is_empty()
                && matches!(
                    (slot.alarm.last_datapoint_ms, shard_ms),
                    (Some(last), Some(now)) if last < now.saturating_sub(forget_ms)
                )
        };
        let forget: Vec<bool> = cache.alarms.iter().map(silent).collect();
        let keys: Vec<String> = cache
            .alarms
            .iter()
            .zip(&forget)
            .filter(|(_, gone)| **gone)
            .map(|(slot, _)| slot.key.clone())
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let count = keys.len();
        self.store.delete_many(&self.namespace, keys).await?;
        let Some(cache) = self.cache.take() else {
            return Ok(());
        };
        info!(
            alarms = count,
            "forgot alarms of instances silent for {:?}", self.config.forget_after
        );
        let kept: Vec<AlarmRecord> = cache
            .alarms
            .into_iter()
            .zip(forget)
            .filter(|(_, gone)| !gone)
            .map(|(slot, _)| slot.alarm)
            .collect();
        let mut rebuilt = Cache::of(kept, &self.rules);
        rebuilt.shards = cache.shards;
        self.cache = Some(rebuilt);
        Ok(())
    }

    /// Shards (all, or only `only`) whose applied progress is all in the state store and moved
    /// since last reported.
    fn advances(&mut self, only: Option<ShardId>) -> Vec<(ShardId, SequenceNumber)> {
        let Some(cache) = self.cache.as_ref() else {
            return Vec::new();
        };
        if !self.dirty.is_clean() || !cache.dirty.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (shard, p) in &cache.shards {
            if only.is_some_and(|o| o != *shard) {
                continue;
            }
            let Some(seq) = &p.sequence_number else {
                continue;
            };
            if self.reported.get(shard).is_some_and(|r| r >= seq) {
                continue;
            }
            self.reported.insert(*shard, seq.clone());
            out.push((*shard, seq.clone()));
        }
        out
    }

    async fn write_inner(
        &mut self,
        shard: ShardId,
        records: &[SinkRecord],
        now_ms: i64,
    ) -> Result<()> {
        let mut progress = self.progress(shard).await?;
        let grace_ms = i64::try_from(self.config.grace.as_millis()).unwrap_or(i64::MAX);
        let (cache, rules) = self.loaded().await?;
        let mut late = 0u64;
        // Records come in sequence order: the ones not applied yet are a suffix.
        let new = records_after(records, progress.sequence_number.as_ref());
        let fresh = new.len();
        if let Some(last) = new.last() {
            progress.sequence_number = Some(last.sequence_number.clone());
        }
        for r in new {
            let e = &r.event;
            let t = e.event_time_ms();
            progress.event_time_ms = progress.event_time_ms.max(t);
            let mut instance = None;
            for (ri, (_, rule)) in rules
                .iter()
                .enumerate()
                .filter(|(_, (_, rule))| rule.metric == e.metric_type)
            {
                let i =
                    *instance.get_or_insert_with(|| cache.instance(&e.instance_id, rules.len()));
                let at = i * rules.len() + ri;
                let (index, created) = match cache.slots[at] {
                    NO_ALARM => {
                        let alarm = AlarmRecord::new(rule, &e.instance_id, &e.region, shard, t);
                        cache.alarms.push(Slot {
                            key: alarm_key(&e.instance_id, &alarm.rule),
                            rule: Some(ri),
                            alarm,
                            dirty: false,
                        });
                        cache.slots[at] = (cache.alarms.len() - 1) as u32;
                        (cache.alarms.len() - 1, true)
                    }
                    index => (index as usize, false),
                };
                let alarm = &mut cache.alarms[index].alarm;
                let moved = created || alarm.shard != shard;
                if !add_sample(alarm, rule, shard, e, t) {
                    late += 1;
                }
                if moved {
                    let end = next_period_end(alarm, rule);
                    cache.lower_due(shard, end);
                }
                touch(&mut cache.alarms, &mut cache.dirty, index);
            }
        }
        if fresh == 0 {
            debug!(shard = %shard, records = records.len(), "batch already applied");
            return Ok(());
        }
        let until = progress.event_time_ms.saturating_sub(grace_ms);
        let mut transitions = Vec::new();
        if cache.due.get(&shard).is_some_and(|&due| until >= due) {
            let mut next_due = i64::MAX;
            for index in 0..cache.alarms.len() {
                let slot = &mut cache.alarms[index];
                let (true, Some(r)) = (slot.alarm.shard == shard, slot.rule) else {
                    continue;
                };
                let rule = &rules[r].1;
                let before = slot.alarm.next_period_start_ms;
                let ts = slot.alarm.advance(rule, until);
                next_due = next_due.min(next_period_end(&slot.alarm, rule));
                if slot.alarm.next_period_start_ms != before {
                    touch(&mut cache.alarms, &mut cache.dirty, index);
                }
                transitions.extend(ts.into_iter().map(|t| (index, t)));
            }
            cache.due.insert(shard, next_due);
        }
        if late > 0 {
            self.late_samples += late;
            debug!(shard = %shard, late, "samples for already evaluated periods dropped");
        }
        self.dirty.records += fresh;
        self.apply(transitions, Some((shard, progress)), now_ms);
        Ok(())
    }

    async fn flush_inner(&mut self, now_ms: i64) -> Result<()> {
        let (cache, rules) = self.loaded().await?;
        let mut transitions = Vec::new();
        // Only the shards this sink has read: other workers own the rest.
        let owned: BTreeSet<ShardId> = cache.shards.keys().copied().collect();
        // The shards' due bounds stay valid: evaluation only moves periods on.
        for index in 0..cache.alarms.len() {
            let slot = &mut cache.alarms[index];
            let (true, Some(r)) = (owned.contains(&slot.alarm.shard), slot.rule) else {
                continue;
            };
            let rule = &rules[r].1;
            let Some(last_end) = slot.alarm.last_open_end_ms(rule) else {
                continue;
            };
            let before = slot.alarm.next_period_start_ms;
            let ts = slot.alarm.advance(rule, now_ms.min(last_end));
            if slot.alarm.next_period_start_ms != before {
                touch(&mut cache.alarms, &mut cache.dirty, index);
            }
            transitions.extend(ts.into_iter().map(|t| (index, t)));
        }
        self.apply(transitions, None, now_ms);
        Ok(())
    }
}

/// Adds a sample to its alarm (read from `shard`, the instance's region kept current);
/// `false` when its period was already evaluated.
fn add_sample(
    alarm: &mut AlarmRecord,
    rule: &AlarmRule,
    shard: ShardId,
    e: &MetricEvent,
    t: i64,
) -> bool {
    alarm.shard = shard;
    if alarm.region != e.region {
        alarm.region.clone_from(&e.region);
    }
    alarm.add_sample(rule, t, e.value)
}

#[async_trait]
impl Sink for AlertsSink {
    fn name(&self) -> &str {
        "alerts"
    }

    async fn write(
        &mut self,
        shard: ShardId,
        records: &[SinkRecord],
        now_ms: i64,
    ) -> Result<Option<SequenceNumber>> {
        // Applying only fails before it changes anything (loading state); what it applied
        // stays in memory until written, also when writing fails.
        self.write_inner(shard, records, now_ms).await?;
        let policy = self.config.buffer();
        if policy.due(self.dirty.records, self.dirty.opened_ms, now_ms)
            || !self.dirty.outbox.is_empty()
        {
            self.persist().await?;
        }
        // Other shards' advances are reported by the next flush.
        Ok(self.advances(Some(shard)).pop().map(|(_, seq)| seq))
    }

    /// Writes the alarm states when due (all when `force`). With `force` (shutdown) it first
    /// evaluates the open periods whose end has passed by `now_ms`, for the alarms of the
    /// shards this sink has written.
    async fn flush(&mut self, now_ms: i64, force: bool) -> Result<Vec<(ShardId, SequenceNumber)>> {
        if force {
            self.flush_inner(now_ms).await?;
        }
        let policy = self.config.buffer();
        if force
            || policy.due(self.dirty.records, self.dirty.opened_ms, now_ms)
            || !self.dirty.outbox.is_empty()
        {
            self.persist().await?;
        }
        Ok(self.advances(None))
    }
}
