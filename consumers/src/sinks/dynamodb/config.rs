//! Configuration of the DynamoDB sink.

use serde::{Deserialize, Serialize};
use shardline_core::units;
use std::time::Duration;

use crate::sinks::buffer::{self, BufferPolicy};

/// `[sinks.dynamodb]`: where items go and how many are written together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamoDbConfig {
    /// Table name; the seed's `InfraMetrics` by default.
    pub table: String,
    /// Items buffered (of all shards together) before they are written in one batch (1 writes
    /// every batch through).
    pub buffer_records: usize,
    /// Longest an item waits in the buffer; `"0s"` writes every batch through.
    #[serde(with = "units::duration")]
    pub buffer_interval: Duration,
    /// Batches written at once. With 1 a batch is written while the next fills; more overlap
    /// the writes (for a remote table), and two puts of one key in different batches (only a
    /// duplicated sample does that) may then land in either order.
    pub writes_in_flight: usize,
}

impl Default for DynamoDbConfig {
    fn default() -> Self {
        Self {
            table: "InfraMetrics".to_string(),
            buffer_records: 40_000,
            buffer_interval: Duration::from_secs(1),
            writes_in_flight: 1,
        }
    }
}

impl DynamoDbConfig {
    /// Checks the buffer settings and the table name against DynamoDB's rules (3–255 characters of `a-z A-Z 0-9 _ - .`).
    ///
    /// # Errors
    /// [`shardline_core::Error::InvalidArgument`] naming the bad name and the rule.
    pub fn validate(&self) -> shardline_core::Result<()> {
        buffer::validate("dynamodb", self.buffer_records)?;
        if !(1..=64).contains(&self.writes_in_flight) {
            return Err(shardline_core::Error::InvalidArgument(format!(
                "sinks.dynamodb.writes_in_flight {} is outside 1..=64; use 1 to write one batch \
                 at a time",
                self.writes_in_flight
            )));
        }
        let ok_chars = self
            .table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !(3..=255).contains(&self.table.len()) || !ok_chars {
            return Err(shardline_core::Error::InvalidArgument(format!(
                "sinks.dynamodb.table `{}` is not a valid table name: use 3-255 characters of \
                 letters, digits, `_`, `-` and `.`",
                self.table
            )));
        }
        Ok(())
    }

    /// The buffering limits.
    pub fn buffer(&self) -> BufferPolicy {
        BufferPolicy {
            records: self.buffer_records,
            interval: self.buffer_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_seed_table_and_rejects_unknown_keys() {
        let c: DynamoDbConfig = toml::from_str("").expect("empty config");
        assert_eq!(c.table, "InfraMetrics");
        let err = toml::from_str::<DynamoDbConfig>("tabel = \"x\"").expect_err("typo");
        assert!(err.to_string().contains("tabel"), "{err}");
        let bad = DynamoDbConfig {
            table: "no spaces".into(),
            ..DynamoDbConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = DynamoDbConfig {
            writes_in_flight: 0,
            ..DynamoDbConfig::default()
        };
        let err = bad.validate().expect_err("no writes at all");
        assert!(err.to_string().contains("writes_in_flight 0"), "{err}");
    }
}
