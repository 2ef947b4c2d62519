//! The four sinks. Each lives in its own module folder: `config.rs` (serde config with
//! `deny_unknown_fields`), `sink.rs` (the [`crate::Sink`] implementation), `tests.rs`.
//! [`buffer`] holds the buffering policy the DynamoDB, CloudWatch and alerts sinks share.

pub mod alerts;
pub mod buffer;
pub mod cloudwatch;
pub mod dynamodb;
pub mod s3_parquet;
