//! [`AnalyzerWindow`]: `[flow] analyzer_window`, the samples the metrics-analyzer task
//! aggregates when its input names no `window_seconds`.
//!
//! # Layout
//! - [`AnalyzerWindow`] and its TOML form: `"schedule"`, a duration (`"3h"`) or `"all"`.
//! - [`AnalyzerWindow::millis`]: the window's length for a schedule, at a time.
//!
//! Invariants: a window is never longer than its schedule's gap says or its duration says, and
//! never zero: a schedule without two future firings (`at()`, a cron that has ended) falls back
//! to [`FALLBACK_WINDOW`]. Only `"all"` is unbounded.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The window of a schedule whose period cannot be told: three hours, the seed's rule.
pub const FALLBACK_WINDOW: Duration = Duration::from_secs(3 * 3600);

/// How far back (in event time) metrics-analyzer looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalyzerWindow {
    /// The period of `[flow] schedule`: the gap between its next two firings, so each run
    /// covers the samples since the run before.
    Schedule,
    /// A fixed length.
    Last(Duration),
    /// Every Parquet object ever written, as the seed's Athena query: what it reads and holds
    /// grows with the history.
    All,
}

impl AnalyzerWindow {
    /// The window in milliseconds before `now_ms` for `schedule` (the flow's expression,
    /// already checked at load) in `time_zone`; `None` for [`AnalyzerWindow::All`].
    pub fn millis(&self, schedule: &str, time_zone: &str, now_ms: i64) -> Option<i64> {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match self {
            AnalyzerWindow::All => None,
            AnalyzerWindow::Last(d) => Some(ms(*d)),
            AnalyzerWindow::Schedule => {
                let period = shardline_flow::schedule::Schedule::parse(schedule)
                    .and_then(|s| s.in_timezone(time_zone))
                    .ok()
                    .and_then(|s| {
                        let now = chrono::DateTime::from_timestamp_millis(now_ms)?;
                        match s.next_firings(now, 2).as_slice() {
                            [a, b] => Some((*b - *a).num_milliseconds()),
                            _ => None,
                        }
                    })
                    .filter(|p| *p > 0);
                Some(period.unwrap_or_else(|| ms(FALLBACK_WINDOW)))
            }
        }
    }
}

impl Serialize for AnalyzerWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AnalyzerWindow::Schedule => s.serialize_str("schedule"),
            AnalyzerWindow::All => s.serialize_str("all"),
            AnalyzerWindow::Last(d) => s.serialize_str(&shardline_core::units::format_duration(*d)),
        }
    }
}

impl<'de> Deserialize<'de> for AnalyzerWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "schedule" => Ok(AnalyzerWindow::Schedule),
            "all" => Ok(AnalyzerWindow::All),
            other => match shardline_core::units::parse_duration(other) {
                Ok(d) if !d.is_zero() => Ok(AnalyzerWindow::Last(d)),
                _ => Err(serde::de::Error::custom(format!(
                    "{other:?} is not a window: use \"schedule\" (the schedule's period), a \
                     duration such as \"3h\", or \"all\" (every object ever written)"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-02-19T12:00:00Z.
    const NOON: i64 = 1_771_502_400_000;

    #[test]
    fn the_window_follows_the_schedule_or_the_setting() {
        let w = AnalyzerWindow::Schedule;
        assert_eq!(w.millis("rate(5 minutes)", "UTC", NOON), Some(300_000));
        assert_eq!(w.millis("rate(3 hours)", "UTC", NOON), Some(3 * 3_600_000));
        assert_eq!(
            w.millis("cron(0 8 * * ? *)", "Europe/Dublin", NOON),
            Some(24 * 3_600_000)
        );
        // One firing left: no period to tell.
        assert_eq!(
            w.millis("at(2030-01-01T00:00:00)", "UTC", NOON),
            Some(3 * 3_600_000)
        );
        let last = AnalyzerWindow::Last(Duration::from_secs(90));
        assert_eq!(last.millis("rate(5 minutes)", "UTC", NOON), Some(90_000));
        assert_eq!(
            AnalyzerWindow::All.millis("rate(5 minutes)", "UTC", NOON),
            None
        );
    }

    #[test]
    fn reads_and_writes_its_three_forms() {
        #[derive(Deserialize, Serialize)]
        struct T {
            w: AnalyzerWindow,
        }
        for (text, want) in [
            ("schedule", AnalyzerWindow::Schedule),
            ("all", AnalyzerWindow::All),
            ("2h", AnalyzerWindow::Last(Duration::from_secs(7200))),
        ] {
            let t: T = toml::from_str(&format!("w = {text:?}")).expect(text);
            assert_eq!(t.w, want);
            let back: T = toml::from_str(&toml::to_string(&t).expect("write")).expect("reread");
            assert_eq!(back.w, want);
        }
        for bad in ["0s", "soon", ""] {
            let err = toml::from_str::<T>(&format!("w = {bad:?}"))
                .err()
                .expect(bad)
                .to_string();
            assert!(err.contains("is not a window"), "{err}");
        }
    }
}
