//! [`LagSource`]: `[flow] lag_source`, where the flow's pipeline-health task reads how far
//! each consumer is behind the stream.
//!
//! # Layout
//! - [`LagSource`] and its TOML form: `"checkpoints"` or `"iterator-age"`.
//!
//! Invariants: the choice names where the consumers keep their position. `checkpoints` fits
//! the consumers `shardline up` and `shardline consume` run (they checkpoint into the
//! checkpoint store: the embedded one, or the DynamoDB lease table on `aws`);
//! `iterator-age` fits consumers deployed as Lambda functions behind Kinesis event-source
//! mappings (infra/deploy/template.yaml), whose position Lambda keeps to itself and reports
//! only as the `AWS/Lambda` `IteratorAge` metric. Any other value is refused at load.

use serde::{Deserialize, Serialize};

/// Where pipeline-health reads consumer lag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LagSource {
    /// The consumers' checkpoints and the stream: records behind, age of the oldest record
    /// not yet processed, last checkpoint.
    #[default]
    Checkpoints,
    /// Lambda's `IteratorAge` metric (namespace `AWS/Lambda`, dimension `FunctionName`) of
    /// each consumer's function, through the metrics port (CloudWatch on `aws`).
    IteratorAge,
}

impl LagSource {
    /// The value as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            LagSource::Checkpoints => "checkpoints",
            LagSource::IteratorAge => "iterator-age",
        }
    }
}
