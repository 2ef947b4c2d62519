//! Byte sizes and durations as written in configuration files, with serde adapters.
//!
//! Sizes: a number followed by an optional unit. Binary units `B`, `KiB`, `MiB`, `GiB` are
//! powers of 1024; decimal units `KB` (or `kB`), `MB`, `GB` are powers of 1000; no unit means
//! bytes. The number may have a fractional part (`"1.5KiB"` is 1536 bytes); the result is
//! rounded to the nearest byte and must fit in a `u64`. Whitespace between number and unit is
//! allowed. [`ByteSize`] is written back in the largest binary unit that divides it exactly
//! (`"64MiB"`, `"1000B"`), so every written size reads back to the same number of bytes.
//!
//! Durations: [humantime](https://docs.rs/humantime) text (`"250ms"`, `"5s"`, `"2m"`, `"24h"`,
//! `"1h 30m"`); a bare whole number means seconds. They are written back with humantime's
//! formatter (`"1m"`, `"1s 500ms"`), which reads back to the same duration.
//!
//! Serde: [`ByteSize`] serializes as text and deserializes from text or a number of bytes;
//! [`size`] does the same for plain `u64` byte fields and [`duration`] for
//! [`std::time::Duration`] fields (`#[serde(with = "shardline_core::units::duration")]`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size or duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The text is not a size.
    #[error(
        "`{text}` is not a size: write a number with B, KiB, MiB, GiB (powers of 1024) or \
         KB, MB, GB (powers of 1000), e.g. \"64MiB\", \"512KiB\", \"5MB\" or \"4096\" (bytes)"
    )]
    Size {
        /// The text as given.
        text: String,
    },
    /// The text is not a duration.
    #[error(
        "`{text}` is not a duration ({detail}): write e.g. \"250ms\", \"5s\", \"2m\" or \"24h\""
    )]
    Duration {
        /// The text as given.
        text: String,
        /// What the duration parser objected to.
        detail: String,
    },
}

/// A size in bytes, written like `"64MiB"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` kibibytes.
    pub const fn kib(n: u64) -> Self {
        ByteSize(n * 1024)
    }

    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * 1024 * 1024)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        parse_size(s).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, m) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if b >= m && b.is_multiple_of(m) {
                return write!(f, "{}{unit}", b / m);
            }
        }
        write!(f, "{b}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Bytes(n)) => Ok(ByteSize(n)),
            Ok(Raw::Text(text)) => text.parse().map_err(serde::de::Error::custom),
            Err(_) => Err(serde::de::Error::custom(
                "expected a size: text such as \"64MiB\" or a whole number of bytes",
            )),
        }
    }
}

/// Parses a size such as `"64MiB"`, `"512KiB"`, `"5MB"`, `"1.5KiB"` or `"4096"` into bytes.
///
/// # Errors
/// [`UnitError::Size`] naming the text and the accepted forms.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::Size {
        text: text.to_string(),
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let mult: u128 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(frac) || frac.len() > 18 {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    let scale = 10u128.pow(frac.len() as u32);
    let frac: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    // Round the fractional bytes half up; every product stays far below u128::MAX.
    let bytes = whole
        .checked_mul(mult)
        .and_then(|w| w.checked_add((frac * mult + scale / 2) / scale))
        .ok_or_else(bad)?;
    u64::try_from(bytes).map_err(|_| bad())
}

/// Formats a byte count the way [`ByteSize`] displays it (`"64MiB"`, `"1000B"`).
pub fn format_size(bytes: u64) -> String {
    ByteSize(bytes).to_string()
}

/// Parses a duration such as `"250ms"`, `"5s"`, `"2m"`, `"24h"` or `"1h 30m"`; a bare whole
/// number is seconds.
///
/// # Errors
/// [`UnitError::Duration`] naming the text and the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| UnitError::Duration {
                text: text.to_string(),
                detail: e.to_string(),
            });
    }
    humantime::parse_duration(t).map_err(|e| UnitError::Duration {
        text: text.to_string(),
        detail: e.to_string(),
    })
}

/// Formats a duration as humantime text (`"5s"`, `"1m"`, `"1s 500ms"`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde adapter for [`Duration`] fields written as humantime text (`"5s"`).
pub mod duration {
    use super::*;

    /// Writes the duration as text.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    /// Reads a duration from text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `u64` byte counts written as size text (`"8MiB"`) or a plain number.
pub mod size {
    use super::*;

    /// Writes the size as text.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        ByteSize(*v).serialize(s)
    }

    /// Reads a size from text or a plain number of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        ByteSize::deserialize(d).map(ByteSize::bytes)
    }
}

#[cfg(test)]
#[path = "units_tests.rs"]
mod tests;
