//! `shardline query "<SQL>"`: DataFusion over the Parquet output.

use anyhow::{Context, Result};
use shardline_query::{OutputFormat, QueryEngine, format_batches};

use std::io::Write;

use crate::cli::{Format, QueryArgs};
use crate::data::Data;
use crate::io::Io;
use crate::wiring;

/// Runs one SQL statement and prints the result.
pub async fn run(data: &Data, io: &mut Io, args: QueryArgs) -> Result<i32> {
    let root = wiring::parquet_root(&data.config);
    let engine = QueryEngine::new(&root)
        .with_context(|| format!("cannot open the Parquet output under {}", root.display()))?;
    let batches = engine.sql(&args.sql).await.context("query failed")?;
    let format = match args.format {
        Format::Table => OutputFormat::Table,
        Format::Csv => OutputFormat::Csv,
        Format::Json => OutputFormat::Json,
    };
    write!(io.out, "{}", format_batches(&batches, format)?)?;
    Ok(0)
}
