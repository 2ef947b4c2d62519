//! SQL over the Parquet output (DataFusion), with the seed's Athena table.
//!
//! The S3 sink writes `metrics/year=YYYY/month=MM/day=DD/*.parquet` under its bucket;
//! [`QueryEngine`] registers that directory as the table `metrics`, also reachable as
//! `infra_monitoring.metrics` (the seed's Athena database and table), so the seed's queries run
//! unchanged, `from_unixtime(timestamp)` included.
//!
//! # Layout
//! - [`engine`]: [`QueryEngine`]: the session, the table registration, `sql` (read-only unless
//!   given [`Access::ReadWrite`]) and `explain`.
//! - [`summary`]: [`InstanceSummary`] and [`QueryEngine::metric_summary`], the seed's
//!   per-instance aggregate for any metric type and time range.
//! - [`scan`]: [`ScanStats`]: the objects and bytes an executed query's scans read.
//! - [`format`]: [`format_batches`]: results as a table, CSV or JSON Lines.
//! - [`store`]: [`store::PortStore`]: `object_store`'s read side over an object store port
//!   (S3), for [`QueryEngine::over_objects`].
//! - [`error`]: [`QueryError`], naming the query or path involved.

pub mod engine;
pub mod error;
pub mod format;
pub mod scan;
pub mod store;
pub mod summary;

pub use arrow::record_batch::RecordBatch;
pub use engine::{Access, PARTITION_COLUMNS, QueryEngine, SCHEMA_NAME, TABLE_NAME};
pub use error::QueryError;
pub use format::{OutputFormat, format_batches};
pub use scan::ScanStats;
pub use summary::InstanceSummary;
