//! EventBridge 6-field cron: `minutes hours day-of-month month day-of-week year`.
//!
//! Each field is a comma list of `*`, `v`, `a-b`, `*/s`, `a/s`, `a-b/s` (ranges may wrap for
//! month and day-of-week, e.g. `FRI-MON`). Months take `JAN`-`DEC`, days of week `SUN`-`SAT`
//! (1-7, Sunday = 1). Day-of-month also takes `L` (last day), `LW` (last weekday) and `nW`
//! (weekday nearest day n, within the month); day-of-week takes `L` (Saturday, the last day
//! of the week), `nL` (last weekday n of the month) and `n#k` (k-th weekday n). Exactly one
//! of day-of-month and day-of-week is `?`. Years run 1970-2199.

use super::ScheduleError;
use chrono::{Datelike, NaiveDate, Weekday};

const FIELDS: [(&str, u32, u32); 6] = [
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 1, 7),
    ("year", 1970, 2199),
];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    months: Vec<bool>,
    years: Vec<bool>,
    dom: Option<DayOfMonth>,
    dow: Option<DayOfWeek>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DayOfMonth {
    days: Vec<bool>,
    last: bool,
    last_weekday: bool,
    nearest_weekday: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DayOfWeek {
    days: Vec<bool>,
    last_of_month: Vec<u32>,
    nth: Vec<(u32, u32)>,
}

struct Field {
    index: usize,
    text: String,
}

impl Field {
    fn err(&self, value: &str, problem: impl Into<String>) -> ScheduleError {
        ScheduleError::Field {
            index: self.index + 1,
            name: FIELDS[self.index].0,
            value: value.to_string(),
            problem: problem.into(),
        }
    }
    fn bounds(&self) -> (u32, u32) {
        (FIELDS[self.index].1, FIELDS[self.index].2)
    }
    fn number(&self, v: &str) -> Result<u32, ScheduleError> {
        let (min, max) = self.bounds();
        let names: &[&str] = match self.index {
            3 => &MONTHS,
            4 => &DAYS,
            _ => &[],
        };
        let upper = v.to_ascii_uppercase();
        let n = match names.iter().position(|n| *n == upper) {
            Some(i) => i as u32 + 1,
            None => v
                .parse::<u32>()
                .map_err(|_| self.err(v, "is not a number or name"))?,
        };
        if n < min || n > max {
            return Err(self.err(v, format!("is out of range {min}-{max}")));
        }
        Ok(n)
    }
    /// Parses a list of `*`, values, ranges and steps into a membership table.
    fn set(&self, items: &str) -> Result<Vec<bool>, ScheduleError> {
        let (min, max) = self.bounds();
        let mut table = vec![false; max as usize + 1];
        for item in items.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step = s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| {
                        self.err(item, "has a step that is not a positive integer")
                    })?;
                    (r, step)
                }
                None => (item, 1),
            };
            let (a, b) = match range {
                "*" => (min, max),
                r => match r.split_once('-') {
                    Some((a, b)) => (self.number(a)?, self.number(b)?),
                    None if item.contains('/') => (self.number(r)?, max),
                    None => (self.number(r)?, self.number(r)?),
                },
            };
            if a > b && !matches!(self.index, 3 | 4) {
                return Err(self.err(item, "is a range that runs backwards"));
            }
            let span = if a <= b { b - a } else { max - a + 1 + b - min };
            let mut k = 0;
            while k <= span {
                let mut v = a + k;
                if v > max {
                    v = v - max - 1 + min;
                }
                table[v as usize] = true;
                k += step;
            }
        }
        Ok(table)
    }
}

impl Cron {
    /// Parses the text between the parentheses of `cron(...)`.
    ///
    /// # Errors
    /// [`ScheduleError::Field`] naming the field (`cron field 3 (day-of-month): "32" is out of
    /// range 1-31`) or [`ScheduleError::Syntax`] for the overall shape.
    pub fn parse(body: &str) -> Result<Self, ScheduleError> {
        let parts: Vec<&str> = body.split_whitespace().collect();
        if parts.len() != 6 {
            return Err(ScheduleError::Syntax {
                expression: format!("cron({body})"),
                reason: format!(
                    "expected 6 fields (minutes hours day-of-month month day-of-week year), found {}",
                    parts.len()
                ),
            });
        }
        let f = |i: usize| Field {
            index: i,
            text: parts[i].to_string(),
        };
        let (dom_f, dow_f) = (f(2), f(4));
        match (dom_f.text == "?", dow_f.text == "?") {
            (true, true) => {
                return Err(dow_f.err("?", "cannot be '?' when day-of-month is also '?'"));
            }
            (false, false) => {
                return Err(dow_f.err(
                    &dow_f.text,
                    "must be '?' when day-of-month is given (or make day-of-month '?')",
                ));
            }
            _ => {}
        }
        for (i, p) in parts.iter().enumerate() {
            if *p == "?" && i != 2 && i != 4 {
                return Err(f(i).err("?", "'?' is only allowed in day-of-month or day-of-week"));
            }
        }
        Ok(Self {
            minutes: f(0).set(parts[0])?,
            hours: f(1).set(parts[1])?,
            months: f(3).set(parts[3])?,
            years: f(5).set(parts[5])?,
            dom: if dom_f.text == "?" {
                None
            } else {
                Some(parse_dom(&dom_f)?)
            },
            dow: if dow_f.text == "?" {
                None
            } else {
                Some(parse_dow(&dow_f)?)
            },
        })
    }

    /// Allowed hours and minutes in ascending order.
    pub(super) fn times(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let on = |t: &[bool]| {
            t.iter()
                .enumerate()
                .filter(|(_, b)| **b)
                .map(|(i, _)| i as u32)
                .collect::<Vec<_>>()
        };
        let (hours, minutes) = (on(&self.hours), on(&self.minutes));
        hours
            .into_iter()
            .flat_map(move |h| minutes.clone().into_iter().map(move |m| (h, m)))
    }

    /// True if the year is allowed; `None` past 2199.
    pub(super) fn year_ok(&self, y: i32) -> Option<bool> {
        let y = usize::try_from(y).ok()?;
        self.years
            .get(y)
            .copied()
            .or(if y > 2199 { None } else { Some(false) })
    }

    /// True if the date's month and day fields match.
    pub(super) fn date_ok(&self, d: NaiveDate) -> bool {
        if !self.months[d.month() as usize] {
            return false;
        }
        let last = last_day(d.year(), d.month());
        if let Some(dom) = &self.dom {
            let day = d.day();
            return dom.days[day as usize]
                || (dom.last && day == last)
                || (dom.last_weekday && day == nearest_weekday(d.year(), d.month(), last))
                || dom
                    .nearest_weekday
                    .iter()
                    .any(|n| *n <= last && day == nearest_weekday(d.year(), d.month(), *n));
        }
        if let Some(dow) = &self.dow {
            let wd = d.weekday().number_from_sunday();
            return dow.days[wd as usize]
                || dow
                    .last_of_month
                    .iter()
                    .any(|w| *w == wd && d.day() + 7 > last)
                || dow
                    .nth
                    .iter()
                    .any(|(w, n)| *w == wd && (d.day() - 1) / 7 + 1 == *n);
        }
        false
    }
}

fn parse_dom(f: &Field) -> Result<DayOfMonth, ScheduleError> {
    let mut out = DayOfMonth {
        days: vec![false; 32],
        ..Default::default()
    };
    for item in f.text.split(',') {
        match item {
            "L" => out.last = true,
            "LW" => out.last_weekday = true,
            w if w.ends_with('W') => out.nearest_weekday.push(f.number(&w[..w.len() - 1])?),
            other => {
                let t = f.set(other)?;
                out.days.iter_mut().zip(t).for_each(|(a, b)| *a |= b);
            }
        }
    }
    Ok(out)
}

fn parse_dow(f: &Field) -> Result<DayOfWeek, ScheduleError> {
    let mut out = DayOfWeek {
        days: vec![false; 8],
        ..Default::default()
    };
    for item in f.text.split(',') {
        if item == "L" {
            out.days[7] = true;
        } else if let Some(w) = item.strip_suffix('L') {
            out.last_of_month.push(f.number(w)?);
        } else if let Some((w, n)) = item.split_once('#') {
            let n = n
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| f.err(item, "needs an occurrence 1-5 after '#'"))?;
            out.nth.push((f.number(w)?, n));
        } else {
            let t = f.set(item)?;
            out.days.iter_mut().zip(t).for_each(|(a, b)| *a |= b);
        }
    }
    Ok(out)
}

/// The last day of a month.
pub(super) fn last_day(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map(|d| d.day())
        .unwrap_or(28)
}

/// The weekday nearest day `n` of the month, without leaving the month.
fn nearest_weekday(y: i32, m: u32, n: u32) -> u32 {
    let last = last_day(y, m);
    match NaiveDate::from_ymd_opt(y, m, n).map(|d| d.weekday()) {
        Some(Weekday::Sat) if n == 1 => 3,
        Some(Weekday::Sat) => n - 1,
        Some(Weekday::Sun) if n == last => n - 2,
        Some(Weekday::Sun) => n + 1,
        _ => n,
    }
}
