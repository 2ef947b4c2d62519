//! `shardline query "<SQL>"`: DataFusion over the Parquet output, read-only unless
//! `--allow-write`.

use anyhow::{Context, Result, bail};
use shardline_query::{Access, OutputFormat, QueryEngine, QueryError, format_batches};

use crate::cli::{Format, QueryArgs};
use crate::config::Config;
use crate::wiring;

/// Runs one SQL statement and prints the result.
pub async fn run(config: &Config, args: QueryArgs) -> Result<i32> {
    let root = wiring::parquet_root(config);
    let engine = QueryEngine::new(&root)
        .with_context(|| format!("cannot open the Parquet output under {}", root.display()))?;
    let access = if args.allow_write {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let batches = match engine.sql_with(&args.sql, access).await {
        Ok(b) => b,
        Err(QueryError::ReadOnly { detail, .. }) => bail!(
            "statement refused: `shardline query` is read-only ({detail}); only SELECT, \
             EXPLAIN, SHOW and DESCRIBE run without --allow-write, which also runs statements \
             that write (COPY TO, INSERT, CREATE, DROP) or change the session (SET)"
        ),
        Err(e) => return Err(e).context("query failed"),
    };
    let format = match args.format {
        Format::Table => OutputFormat::Table,
        Format::Csv => OutputFormat::Csv,
        Format::Json => OutputFormat::Json,
    };
    print!("{}", format_batches(&batches, format)?);
    Ok(0)
}
