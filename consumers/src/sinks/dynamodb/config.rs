//! Configuration of the DynamoDB sink.

use serde::{Deserialize, Serialize};

/// `[sinks.dynamodb]`: where items go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamoDbConfig {
    /// Table name; the seed's `InfraMetrics` by default.
    pub table: String,
}

impl Default for DynamoDbConfig {
    fn default() -> Self {
        Self {
            table: "InfraMetrics".to_string(),
        }
    }
}

impl DynamoDbConfig {
    /// Checks the table name against DynamoDB's rules (3–255 characters of `a-z A-Z 0-9 _ - .`).
    ///
    /// # Errors
    /// [`shardline_core::Error::InvalidArgument`] naming the bad name and the rule.
    pub fn validate(&self) -> shardline_core::Result<()> {
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
        };
        assert!(bad.validate().is_err());
    }
}
