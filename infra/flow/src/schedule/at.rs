//! `at(yyyy-mm-ddThh:mm:ss)`: one firing at a local time in the schedule's time zone.

use super::ScheduleError;
use chrono::NaiveDateTime;

/// Parses the text between the parentheses of `at(...)`.
///
/// # Errors
/// [`ScheduleError::Syntax`] if it is not `yyyy-mm-ddThh:mm:ss`.
pub fn parse(body: &str) -> Result<NaiveDateTime, ScheduleError> {
    NaiveDateTime::parse_from_str(body.trim(), "%Y-%m-%dT%H:%M:%S").map_err(|e| {
        ScheduleError::Syntax {
            expression: format!("at({body})"),
            reason: format!("expected yyyy-mm-ddThh:mm:ss ({e})"),
        }
    })
}
