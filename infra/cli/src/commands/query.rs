//! `shardline query "<SQL>"`: DataFusion over the Parquet output, where the objects port keeps
//! it: the embedded directory, or S3 (read through the project's S3 client, partitions pruned
//! by prefix); read-only unless `--allow-write`.

use anyhow::{Context, Result, bail};
use shardline_aws::AwsBackends;
use shardline_query::{Access, OutputFormat, QueryEngine, QueryError, format_batches};

use std::io::Write;

use crate::cli::{Format, QueryArgs};
use crate::config::{BackendKind, Config};
use crate::data::Data;
use crate::io::Io;
use crate::wiring;

/// Runs one SQL statement and prints the result.
pub async fn run(data: &Data, io: &mut Io, args: QueryArgs) -> Result<i32> {
    let aws = data.aws().await?;
    let engine = engine(&data.config, aws.as_ref())?;
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
        Err(e) => return Err(sql_error(e)),
    };
    let format = match args.format {
        Format::Table => OutputFormat::Table,
        Format::Csv => OutputFormat::Csv,
        Format::Json => OutputFormat::Json,
    };
    write!(io.out, "{}", format_batches(&batches, format)?)?;
    Ok(0)
}

/// A SQL error once, as DataFusion words its cause (with the line and column of a syntax
/// error), not nested in each layer that passed it on.
fn sql_error(e: QueryError) -> anyhow::Error {
    match e {
        QueryError::Sql { query, source } => {
            anyhow::anyhow!(
                "query failed: {}
  query: {query}",
                source.find_root()
            )
        }
        other => anyhow::Error::new(other),
    }
}

/// The query engine over the S3 sink's output: the local directory of the embedded object
/// store (read in place, without opening the data directory's stores), or its bucket on S3.
pub fn engine(config: &Config, aws: Option<&AwsBackends>) -> Result<QueryEngine> {
    let sink = &config.consumers.s3.sink;
    match config.backend.objects {
        BackendKind::Embedded => {
            let root = wiring::parquet_root(config);
            QueryEngine::new(&root)
                .with_context(|| format!("cannot open the Parquet output under {}", root.display()))
        }
        BackendKind::Aws => {
            let aws = aws.context("the AWS backend is not set up")?;
            QueryEngine::over_objects(aws.object_store(), &sink.bucket, &sink.prefix).with_context(
                || {
                    format!(
                        "cannot read the Parquet output in s3://{}/{}",
                        sink.bucket, sink.prefix
                    )
                },
            )
        }
    }
}
