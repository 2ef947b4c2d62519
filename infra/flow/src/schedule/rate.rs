//! `rate(value unit)`: a positive integer and `minute`/`hour`/`day`, singular exactly when
//! the value is 1 (`rate(1 hour)`, `rate(3 hours)`).

use super::ScheduleError;
use chrono::Duration;

/// A parsed rate expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The count of units.
    pub value: u32,
    /// Minutes in one unit (1, 60 or 1440).
    pub unit_minutes: u32,
}

impl Rate {
    /// Parses the text between the parentheses of `rate(...)`.
    ///
    /// # Errors
    /// [`ScheduleError::Syntax`] naming the expression and the rule broken.
    pub fn parse(body: &str) -> Result<Self, ScheduleError> {
        let err = |reason: &str| ScheduleError::Syntax {
            expression: format!("rate({body})"),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = body.split_whitespace().collect();
        let [value, unit] = parts.as_slice() else {
            return Err(err("expected rate(value unit), e.g. rate(5 minutes)"));
        };
        let value: u32 = value
            .parse()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| err(&format!("{value:?} is not a positive integer")))?;
        let (singular, unit_minutes) = match *unit {
            "minute" | "minutes" => ("minute", 1),
            "hour" | "hours" => ("hour", 60),
            "day" | "days" => ("day", 1440),
            other => {
                return Err(err(&format!(
                    "unknown unit {other:?}; use minute(s), hour(s) or day(s)"
                )));
            }
        };
        let plural = unit.ends_with('s');
        if value == 1 && plural {
            return Err(err(&format!(
                "use \"{singular}\" (singular) for a value of 1"
            )));
        }
        if value != 1 && !plural {
            return Err(err(&format!(
                "use \"{singular}s\" (plural) for a value other than 1"
            )));
        }
        Ok(Self {
            value,
            unit_minutes,
        })
    }

    /// The period between firings.
    pub fn period(&self) -> Duration {
        Duration::minutes(i64::from(self.value) * i64::from(self.unit_minutes))
    }
}
