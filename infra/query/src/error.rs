//! The error type of the query engine.

use std::path::PathBuf;

/// A query could not be planned, run or formatted.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// DataFusion rejected or failed the query; its message says where.
    #[error("query failed: {source}\n  query: {query}")]
    Sql {
        /// The query text (shortened to 200 characters).
        query: String,
        /// DataFusion's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// A statement that writes (COPY, INSERT, CREATE, DROP) or changes the session (SET,
    /// PREPARE), run read-only.
    #[error("read-only: {detail} (query: {query})")]
    ReadOnly {
        /// The query text (shortened to 200 characters).
        query: String,
        /// Which part writes, in DataFusion's words.
        detail: String,
    },
    /// The Parquet root could not be registered as a table.
    #[error("cannot use {path} as the metrics table: {detail}")]
    Table {
        /// The directory given.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A result could not be written in the requested format.
    #[error("cannot format results as {format}: {source}")]
    Format {
        /// The output format.
        format: &'static str,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A result column did not have the expected type.
    #[error("unexpected result shape: {0}")]
    Shape(String),
}

/// The query text for messages: trimmed, at most 200 characters.
fn shortened(query: &str) -> String {
    let mut q: String = query.trim().chars().take(200).collect();
    if query.trim().chars().count() > 200 {
        q.push('…');
    }
    q
}

impl QueryError {
    pub(crate) fn sql(query: &str, source: datafusion::error::DataFusionError) -> Self {
        QueryError::Sql {
            query: shortened(query),
            source,
        }
    }

    pub(crate) fn read_only(query: &str, source: &datafusion::error::DataFusionError) -> Self {
        let detail = source.to_string();
        let detail = detail
            .strip_prefix("Error during planning: ")
            .unwrap_or(&detail)
            .to_string();
        QueryError::ReadOnly {
            query: shortened(query),
            detail,
        }
    }
}
