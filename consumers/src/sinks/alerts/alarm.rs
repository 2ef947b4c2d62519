//! One alarm (a rule applied to one instance): its state, open periods, and evaluation.
//!
//! # Evaluation
//! Periods are aligned to the epoch (`[k·period, (k+1)·period)`). Samples accumulate in their
//! period's statistics until the period is *closed*; a closed period yields one outcome:
//! breaching, not breaching, or missing (no samples). The last N outcomes (N =
//! `evaluation_periods`) form the evaluation range:
//! - `missing`: missing periods do not count; a range with no data at all is INSUFFICIENT_DATA;
//! - `breaching` / `notBreaching`: missing periods count as such;
//! - `ignore`: a missing period changes nothing; the range holds the last N periods with data.
//!
//! After each closed period the range decides the state:
//! - ALARM when at least M (`datapoints_to_alarm`) outcomes breach;
//! - OK when more than N − M do not breach (ALARM is out of reach whatever the unknown
//!   periods hold);
//! - INSUFFICIENT_DATA when no outcome counts (every period of the range missing);
//! - otherwise the state is kept: the missing periods, and the periods before the alarm's first
//!   sample, could still go either way.
//!
//! The initial state is INSUFFICIENT_DATA.
//!
//! # Invariants
//! - Periods are evaluated once, in order; `next_period_start_ms` only grows. A sample for a
//!   period already evaluated is late and is dropped (counted by the caller).
//! - Once N consecutive periods are missing the state cannot change until data arrives, so
//!   evaluation jumps straight to the next period with data: a long gap costs O(N), not
//!   O(gap / period).
//! - Period arithmetic saturates: no event time, however far from now, overflows (the
//!   consumers' decoder keeps such times out; this holds for any caller).

use serde::{Deserialize, Serialize};
use shardline_core::{MetricType, ShardId};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use super::config::{AlarmRule, Statistic, TreatMissingData};

/// CloudWatch's alarm states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlarmState {
    /// The metric is within the threshold.
    #[serde(rename = "OK")]
    Ok,
    /// The metric breached the threshold in M of the last N periods.
    #[serde(rename = "ALARM")]
    Alarm,
    /// Not enough data to decide (the initial state).
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// CloudWatch's spelling: `OK`, `ALARM`, `INSUFFICIENT_DATA`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Samples of one period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeriodStats {
    /// Number of samples.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl PeriodStats {
    fn first(v: f64) -> Self {
        Self {
            count: 1,
            sum: v,
            min: v,
            max: v,
        }
    }

    fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// The statistic's value over the period.
    pub fn value(&self, statistic: Statistic) -> f64 {
        match statistic {
            Statistic::Average => self.sum / self.count.max(1) as f64,
            Statistic::Maximum => self.max,
            Statistic::Minimum => self.min,
            Statistic::Sum => self.sum,
            Statistic::SampleCount => self.count as f64,
        }
    }
}

/// What one closed period contributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The statistic breached the threshold.
    Breaching,
    /// It did not.
    NotBreaching,
    /// No samples in the period.
    Missing,
}

/// A change of state, at the end of the period whose evaluation caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state before.
    pub from: AlarmState,
    /// The state after.
    pub to: AlarmState,
    /// End of the deciding period, epoch milliseconds.
    pub period_end_ms: i64,
    /// The deciding period's statistic, or the last known one when that period had no data.
    pub value: Option<f64>,
    /// Breaching outcomes in the evaluation range (missing ones counted per the rule).
    pub breaching: u32,
    /// Outcomes in the evaluation range.
    pub evaluated: u32,
}

/// The persisted record of one alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    /// The rule's alarm name.
    pub rule: String,
    /// The metric watched.
    pub metric: MetricType,
    /// The instance.
    pub instance_id: String,
    /// The instance's region (from its latest sample).
    pub region: String,
    /// The shard the instance's samples are read from.
    pub shard: ShardId,
    /// The current state.
    pub state: AlarmState,
    /// When the current state was entered (end of the deciding period); `None` initially.
    pub since_ms: Option<i64>,
    /// The statistic of the last period that had data.
    pub last_value: Option<f64>,
    /// End of that period.
    pub last_datapoint_ms: Option<i64>,
    /// Start of the first period not yet evaluated.
    pub next_period_start_ms: i64,
    /// The evaluation range: the latest outcomes, oldest first, at most N.
    pub window: VecDeque<Outcome>,
    /// Periods without data since the last one with data.
    pub consecutive_missing: u32,
    /// Samples of periods not yet evaluated, by period start.
    pub open: BTreeMap<i64, PeriodStats>,
}

impl AlarmRecord {
    /// A new alarm in INSUFFICIENT_DATA whose first period holds `event_ms`.
    pub fn new(
        rule: &AlarmRule,
        instance_id: &str,
        region: &str,
        shard: ShardId,
        event_ms: i64,
    ) -> Self {
        Self {
            rule: rule.name(),
            metric: rule.metric,
            instance_id: instance_id.to_string(),
            region: region.to_string(),
            shard,
            state: AlarmState::InsufficientData,
            since_ms: None,
            last_value: None,
            last_datapoint_ms: None,
            next_period_start_ms: period_start(event_ms, rule.period_ms()),
            window: VecDeque::new(),
            consecutive_missing: 0,
            open: BTreeMap::new(),
        }
    }

    /// Adds a sample; returns false (and drops it) when its period was already evaluated.
    pub fn add_sample(&mut self, rule: &AlarmRule, event_ms: i64, value: f64) -> bool {
        let start = period_start(event_ms, rule.period_ms());
        if start < self.next_period_start_ms {
            return false;
        }
        self.open
            .entry(start)
            .and_modify(|s| s.add(value))
            .or_insert_with(|| PeriodStats::first(value));
        true
    }

    /// End of the latest period holding samples, if any.
    pub fn last_open_end_ms(&self, rule: &AlarmRule) -> Option<i64> {
        self.open
            .keys()
            .next_back()
            .map(|s| s.saturating_add(rule.period_ms()))
    }

    /// Evaluates, in order, every period that ends at or before `closed_until_ms`.
    pub fn advance(&mut self, rule: &AlarmRule, closed_until_ms: i64) -> Vec<Transition> {
        let p = rule.period_ms();
        let n = rule.evaluation_periods.max(1) as usize;
        let mut out = Vec::new();
        while self.next_period_start_ms.saturating_add(p) <= closed_until_ms {
            let start = self.next_period_start_ms;
            let stats = self.open.remove(&start);
            if stats.is_none() && self.consecutive_missing as usize >= n {
                // The range is all missing: nothing changes until the next period with data.
                // In range: the loop runs only while start + p <= closed_until_ms.
                let closable = closed_until_ms.saturating_sub(start) / p;
                let first_open = start.saturating_add(closable.saturating_mul(p));
                let target = self
                    .open
                    .keys()
                    .next()
                    .map_or(first_open, |&d| d.min(first_open));
                if target > start {
                    self.next_period_start_ms = target;
                    continue;
                }
            }
            let end = start.saturating_add(p);
            if end == start {
                // At the end of time: nothing after this period can close.
                break;
            }
            self.next_period_start_ms = end;
            let outcome = match stats {
                Some(s) => {
                    let v = s.value(rule.statistic);
                    self.last_value = Some(v);
                    self.last_datapoint_ms = Some(end);
                    self.consecutive_missing = 0;
                    if rule.comparison_operator.breaches(v, rule.threshold) {
                        Outcome::Breaching
                    } else {
                        Outcome::NotBreaching
                    }
                }
                None => {
                    self.consecutive_missing = self.consecutive_missing.saturating_add(1);
                    Outcome::Missing
                }
            };
            if outcome == Outcome::Missing && rule.treat_missing_data == TreatMissingData::Ignore {
                continue;
            }
            self.window.push_back(outcome);
            while self.window.len() > n {
                self.window.pop_front();
            }
            let (breaching, not_breaching) = self.count(rule.treat_missing_data);
            let m = rule.datapoints_to_alarm;
            let n_periods = rule.evaluation_periods;
            let next = if breaching >= m {
                AlarmState::Alarm
            } else if not_breaching > n_periods.saturating_sub(m) {
                AlarmState::Ok
            } else if breaching + not_breaching == 0 {
                AlarmState::InsufficientData
            } else {
                // Undetermined: the unknown periods could still go either way.
                self.state
            };
            if next != self.state {
                out.push(Transition {
                    from: self.state,
                    to: next,
                    period_end_ms: end,
                    value: stats.map(|s| s.value(rule.statistic)).or(self.last_value),
                    breaching,
                    evaluated: self.window.len() as u32,
                });
                self.state = next;
                self.since_ms = Some(end);
            }
        }
        out
    }

    /// (breaching, not breaching) outcomes of the range, missing ones mapped per `treat`.
    fn count(&self, treat: TreatMissingData) -> (u32, u32) {
        let mut breaching = 0;
        let mut not_breaching = 0;
        for o in &self.window {
            let mapped = match (o, treat) {
                (Outcome::Missing, TreatMissingData::Breaching) => Outcome::Breaching,
                (Outcome::Missing, TreatMissingData::NotBreaching) => Outcome::NotBreaching,
                (o, _) => *o,
            };
            match mapped {
                Outcome::Breaching => breaching += 1,
                Outcome::NotBreaching => not_breaching += 1,
                Outcome::Missing => {}
            }
        }
        (breaching, not_breaching)
    }
}

/// Start of the period holding `ms` (saturating at `i64::MIN` for times before the first
/// whole period).
pub fn period_start(ms: i64, period_ms: i64) -> i64 {
    ms.saturating_sub(ms.rem_euclid(period_ms.max(1)))
}
