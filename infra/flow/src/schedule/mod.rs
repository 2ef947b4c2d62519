//! EventBridge schedule expressions and the Scheduled Event they deliver.
//!
//! [`Schedule::parse`] reads `rate(...)`, `cron(...)` or `at(...)`; cron and at times are
//! wall-clock times in the schedule's IANA time zone (UTC by default; DST gaps are skipped,
//! repeated local times fire once, at the earlier instant). Rates are anchored at the time
//! passed to [`Schedule::next_firings`]. [`Schedule::event`] builds the JSON input an
//! EventBridge rule hands its target; [`Scheduler`] fires a callback per firing on a
//! [`FlowClock`](crate::FlowClock).

mod at;
mod cron;
mod rate;
mod scheduler;

pub use cron::Cron;
pub use rate::Rate;
pub use scheduler::{Scheduler, StopHandle};

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Schedule parse errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A cron field is wrong.
    #[error("cron field {index} ({name}): \"{value}\" {problem}")]
    Field {
        /// 1-based field position.
        index: usize,
        /// Field name.
        name: &'static str,
        /// The offending text.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// The expression's overall shape is wrong.
    #[error("schedule expression {expression:?}: {reason}")]
    Syntax {
        /// The expression.
        expression: String,
        /// What is wrong.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error("time zone {0:?} is not an IANA time zone name (e.g. \"UTC\", \"Europe/Dublin\")")]
    TimeZone(String),
}

/// The kind of expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `rate(...)`.
    Rate(Rate),
    /// `cron(...)`.
    Cron(Box<Cron>),
    /// `at(...)`, a local time.
    At(NaiveDateTime),
}

/// The rule that owns a schedule (for the event's `resources`, `account`, `region`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// The schedule expression.
    pub expression: String,
    /// IANA time zone for cron and at.
    pub timezone: String,
    /// EventBridge rule name.
    pub rule_name: String,
    /// AWS account id.
    pub account: String,
    /// AWS region.
    pub region: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            expression: "rate(3 hours)".to_string(),
            timezone: "UTC".to_string(),
            rule_name: "InfraMonitoring-Trigger".to_string(),
            account: "190517931751".to_string(),
            region: "eu-west-1".to_string(),
        }
    }
}

/// A parsed schedule with its time zone and rule identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The expression.
    pub expression: Expression,
    /// The time zone.
    pub tz: Tz,
    text: String,
    config: ScheduleConfig,
}

impl ScheduleConfig {
    /// Parses the configured expression and time zone.
    ///
    /// # Errors
    /// As [`Schedule::parse`], or [`ScheduleError::TimeZone`].
    pub fn build(&self) -> Result<Schedule, ScheduleError> {
        let tz: Tz = self
            .timezone
            .parse()
            .map_err(|_| ScheduleError::TimeZone(self.timezone.clone()))?;
        let mut s = Schedule::parse(&self.expression)?;
        s.tz = tz;
        s.config = self.clone();
        Ok(s)
    }
}

impl Schedule {
    /// Parses an expression (UTC, default rule identity).
    ///
    /// # Errors
    /// [`ScheduleError`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let t = text.trim();
        let body = |prefix: &str| t.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
        let expression = if let Some(b) = body("rate(") {
            Expression::Rate(Rate::parse(b)?)
        } else if let Some(b) = body("cron(") {
            Expression::Cron(Box::new(Cron::parse(b)?))
        } else if let Some(b) = body("at(") {
            Expression::At(at::parse(b)?)
        } else {
            return Err(ScheduleError::Syntax {
                expression: text.to_string(),
                reason: "expected rate(value unit), cron(6 fields) or at(yyyy-mm-ddThh:mm:ss)"
                    .to_string(),
            });
        };
        let config = ScheduleConfig {
            expression: t.to_string(),
            ..ScheduleConfig::default()
        };
        Ok(Self {
            expression,
            tz: Tz::UTC,
            text: t.to_string(),
            config,
        })
    }

    /// The same schedule in another time zone.
    ///
    /// # Errors
    /// [`ScheduleError::TimeZone`] for an unknown name.
    pub fn in_timezone(mut self, tz: &str) -> Result<Self, ScheduleError> {
        self.tz = tz
            .parse()
            .map_err(|_| ScheduleError::TimeZone(tz.to_string()))?;
        self.config.timezone = tz.to_string();
        Ok(self)
    }

    /// The expression text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Up to `count` firing times strictly after `after`, ascending.
    pub fn next_firings(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count.min(1024));
        let mut cursor = after;
        while out.len() < count {
            let next = match &self.expression {
                Expression::Rate(r) => cursor.checked_add_signed(r.period()),
                Expression::At(t) => self.resolve(*t).filter(|t| *t > cursor && out.is_empty()),
                Expression::Cron(c) => self.next_cron(c, cursor),
            };
            match next {
                Some(t) => {
                    out.push(t);
                    cursor = t;
                }
                None => break,
            }
        }
        out
    }

    fn resolve(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            LocalResult::None => None,
        }
    }

    fn next_cron(&self, c: &Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut day = after.with_timezone(&self.tz).date_naive();
        loop {
            match c.year_ok(day.year())? {
                false => {
                    day = NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)?;
                    continue;
                }
                true if !c.date_ok(day) => {}
                true => {
                    for (h, m) in c.times() {
                        let t = day.and_hms_opt(h, m, 0).and_then(|l| self.resolve(l));
                        if let Some(t) = t.filter(|t| *t > after) {
                            return Some(t);
                        }
                    }
                }
            }
            day = day.checked_add_days(Days::new(1))?;
        }
    }

    /// The EventBridge "Scheduled Event" input for a firing at `time`.
    pub fn event(&self, time: DateTime<Utc>) -> Value {
        let c = &self.config;
        json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": c.account,
            "time": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": c.region,
            "resources": [format!("arn:aws:events:{}:{}:rule/{}", c.region, c.account, c.rule_name)],
            "detail": {}
        })
    }
}
