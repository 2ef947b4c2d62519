//! [`AlertsSink`]: feeds samples to alarms, evaluates closed periods, notifies transitions.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shardline_core::ports::{Notification, Notifier, StateStore};
use shardline_core::{Error, MetricEvent, Result, SequenceNumber, ShardId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tracing::{debug, info};

/// The hasher of the per-record alarm lookups: seeded per process like the standard one,
/// several times cheaper for short keys.
type FastHash = foldhash::fast::RandomState;

use super::alarm::{AlarmRecord, AlarmState, Transition};
use super::config::{AlarmRule, AlertsConfig};
use super::message::notification;
use super::status::{AlarmStatus, alarm_key, load_alarms, write_alarm_key};
use crate::sink::{Sink, SinkRecord, records_after};

/// A shard's progress, stored under `watermark/<stream>/<shard>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardProgress {
    /// The last sequence number applied.
    pub sequence_number: Option<SequenceNumber>,
    /// The largest event time seen in the shard, epoch milliseconds.
    pub event_time_ms: i64,
}

/// What the sink knows: the state store's contents plus what was applied since the last
/// write to it (`dirty`).
#[derive(Default)]
struct Cache {
    /// By [`alarm_key`]; looked up for every (sample, rule), so hashed (with a fast seeded
    /// hasher) rather than ordered.
    alarms: HashMap<String, AlarmRecord, FastHash>,
    shards: HashMap<ShardId, ShardProgress>,
}

/// What was applied in memory and is not yet in the state store.
#[derive(Default)]
struct Dirty {
    /// Notifications not yet published, in order.
    outbox: VecDeque<Notification>,
    /// Alarms changed since the last write (written in key order).
    alarms: HashSet<String, FastHash>,
    /// Shards whose progress moved since the last write.
    shards: BTreeSet<ShardId>,
    /// Records applied since the last write.
    records: usize,
    /// When the first of them was applied.
    opened_ms: Option<i64>,
}

impl Dirty {
    fn is_clean(&self) -> bool {
        self.outbox.is_empty() && self.alarms.is_empty() && self.shards.is_empty()
    }
}

/// Evaluates alarm rules per (instance, metric) and publishes their transitions.
pub struct AlertsSink {
    notifier: Arc<dyn Notifier>,
    store: Arc<dyn StateStore>,
    config: AlertsConfig,
    namespace: String,
    rules: BTreeMap<String, AlarmRule>,
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
        let rules = config.rules.iter().map(|r| (r.name(), r.clone())).collect();
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
                let mut keyed: Vec<_> = c.alarms.iter().collect();
                keyed.sort_unstable_by(|a, b| a.0.cmp(b.0));
                keyed
                    .into_iter()
                    .map(|(_, a)| AlarmStatus::from(a))
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
    async fn loaded(&mut self) -> Result<(&mut Cache, &BTreeMap<String, AlarmRule>)> {
        if self.cache.is_none() {
            let alarms = load_alarms(self.store.as_ref(), &self.namespace).await?;
            let alarms = alarms
                .into_iter()
                .map(|a| (alarm_key(&a.instance_id, &a.rule), a))
                .collect();
            self.cache = Some(Cache {
                alarms,
                shards: HashMap::new(),
            });
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

    /// Publishes the transitions (oldest first), then stores the changed alarms and progress.
    /// Applies evaluated transitions and changes in memory: queues the notifications (only
    /// into ALARM and from ALARM back to OK) and marks the alarms and the shard dirty.
    fn apply(
        &mut self,
        transitions: Vec<(String, Transition)>,
        changed: HashSet<String, FastHash>,
        progress: Option<(ShardId, ShardProgress)>,
        now_ms: i64,
    ) {
        let mut transitions = transitions;
        transitions.sort_by(|a, b| (a.1.period_end_ms, &a.0).cmp(&(b.1.period_end_ms, &b.0)));
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        for (key, t) in &transitions {
            let notify = t.to == AlarmState::Alarm
                || (t.from == AlarmState::Alarm && t.to == AlarmState::Ok);
            let (Some(alarm), true) = (cache.alarms.get(key), notify) else {
                continue;
            };
            if let Some(rule) = self.rules.get(&alarm.rule) {
                self.dirty.outbox.push_back(notification(
                    &self.config.topic,
                    &self.namespace,
                    rule,
                    alarm,
                    t,
                ));
            }
        }
        if changed.is_empty() && progress.is_none() && self.dirty.outbox.is_empty() {
            return;
        }
        self.dirty.alarms.extend(changed);
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
        if self.dirty.alarms.is_empty() && self.dirty.shards.is_empty() {
            self.dirty.records = 0;
            self.dirty.opened_ms = None;
            return Ok(());
        }
        let Some(cache) = self.cache.as_ref() else {
            return Ok(());
        };
        let mut entries = Vec::with_capacity(self.dirty.alarms.len() + self.dirty.shards.len());
        let mut changed: Vec<&String> = self.dirty.alarms.iter().collect();
        changed.sort_unstable();
        for key in changed {
            if let Some(alarm) = cache.alarms.get(key) {
                let json = serde_json::to_vec(alarm).map_err(|e| {
                    Error::Internal(format!("alarm `{key}` does not serialize: {e}"))
                })?;
                entries.push((key.clone(), Bytes::from(json)));
            }
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
        debug!(
            entries = count,
            records = self.dirty.records,
            "alarm states written"
        );
        self.dirty = Dirty::default();
        Ok(())
    }

    /// Shards (all, or only `only`) whose applied progress is all in the state store and moved
    /// since last reported.
    fn advances(&mut self, only: Option<ShardId>) -> Vec<(ShardId, SequenceNumber)> {
        let Some(cache) = self.cache.as_ref() else {
            return Vec::new();
        };
        if !self.dirty.is_clean() {
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
        let mut changed = HashSet::default();
        let mut late = 0u64;
        // Records come in sequence order: the ones not applied yet are a suffix.
        let new = records_after(records, progress.sequence_number.as_ref());
        let fresh = new.len();
        if let Some(last) = new.last() {
            progress.sequence_number = Some(last.sequence_number.clone());
        }
        // One key buffer for the batch: a key is copied only into a map that lacks it.
        let mut key = String::new();
        for r in new {
            let e = &r.event;
            let t = e.event_time_ms();
            progress.event_time_ms = progress.event_time_ms.max(t);
            for (name, rule) in rules
                .iter()
                .filter(|(_, rule)| rule.metric == e.metric_type)
            {
                key.clear();
                write_alarm_key(&mut key, &e.instance_id, name);
                let added = match cache.alarms.get_mut(key.as_str()) {
                    Some(alarm) => add_sample(alarm, rule, shard, e, t),
                    None => {
                        let mut alarm = AlarmRecord::new(rule, &e.instance_id, &e.region, shard, t);
                        let added = add_sample(&mut alarm, rule, shard, e, t);
                        cache.alarms.insert(key.clone(), alarm);
                        added
                    }
                };
                if !added {
                    late += 1;
                }
                if !changed.contains(key.as_str()) {
                    changed.insert(key.clone());
                }
            }
        }
        if fresh == 0 {
            debug!(shard = %shard, records = records.len(), "batch already applied");
            return Ok(());
        }
        let until = progress.event_time_ms.saturating_sub(grace_ms);
        let mut transitions = Vec::new();
        for (key, alarm) in cache.alarms.iter_mut().filter(|(_, a)| a.shard == shard) {
            let Some(rule) = rules.get(&alarm.rule) else {
                continue;
            };
            let before = alarm.next_period_start_ms;
            let ts = alarm.advance(rule, until);
            if alarm.next_period_start_ms != before {
                changed.insert(key.clone());
            }
            transitions.extend(ts.into_iter().map(|t| (key.clone(), t)));
        }
        if late > 0 {
            self.late_samples += late;
            debug!(shard = %shard, late, "samples for already evaluated periods dropped");
        }
        self.dirty.records += fresh;
        self.apply(transitions, changed, Some((shard, progress)), now_ms);
        Ok(())
    }

    async fn flush_inner(&mut self, now_ms: i64) -> Result<()> {
        let (cache, rules) = self.loaded().await?;
        let mut changed = HashSet::default();
        let mut transitions = Vec::new();
        // Only the shards this sink has read: other workers own the rest.
        let owned: BTreeSet<ShardId> = cache.shards.keys().copied().collect();
        for (key, alarm) in cache
            .alarms
            .iter_mut()
            .filter(|(_, a)| owned.contains(&a.shard))
        {
            let Some(rule) = rules.get(&alarm.rule) else {
                continue;
            };
            let Some(last_end) = alarm.last_open_end_ms(rule) else {
                continue;
            };
            let before = alarm.next_period_start_ms;
            let ts = alarm.advance(rule, now_ms.min(last_end));
            if alarm.next_period_start_ms != before {
                changed.insert(key.clone());
            }
            transitions.extend(ts.into_iter().map(|t| (key.clone(), t)));
        }
        self.apply(transitions, changed, None, now_ms);
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
