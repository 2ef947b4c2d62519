//! Writing query results for people and programs.
//!
//! - [`OutputFormat::Table`]: arrow's pretty-printed box table;
//! - [`OutputFormat::Csv`]: RFC 4180 CSV with a header line;
//! - [`OutputFormat::Json`]: JSON Lines, one object per row, nulls left out.

use arrow::record_batch::RecordBatch;
use std::str::FromStr;

use crate::error::QueryError;

/// How to print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// A box-drawn table.
    #[default]
    Table,
    /// CSV with a header.
    Csv,
    /// One JSON object per line.
    Json,
}

impl OutputFormat {
    fn name(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" | "jsonl" => Ok(OutputFormat::Json),
            other => Err(format!(
                "`{other}` is not an output format (expected table, csv or json)"
            )),
        }
    }
}

/// Renders `batches` in `format`. An empty result gives the header only (table, CSV) or an
/// empty string (JSON).
///
/// # Errors
/// [`QueryError::Format`] when a value cannot be written in that format.
pub fn format_batches(batches: &[RecordBatch], format: OutputFormat) -> Result<String, QueryError> {
    let err = |source| QueryError::Format {
        format: format.name(),
        source,
    };
    match format {
        OutputFormat::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)
            .map_err(err)?
            .to_string()),
        OutputFormat::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                for b in batches {
                    w.write(b).map_err(err)?;
                }
            }
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        OutputFormat::Json => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
                for b in batches {
                    w.write(b).map_err(err)?;
                }
                w.finish().map_err(err)?;
            }
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}
