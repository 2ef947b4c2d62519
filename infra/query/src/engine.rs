//! [`QueryEngine`]: a DataFusion session over the Hive-partitioned Parquet output.
//!
//! The output is read where it is: a local directory (the embedded object store) with
//! [`QueryEngine::new`], or a bucket of any object store port (S3) with
//! [`QueryEngine::over_objects`], through [`crate::store::PortStore`] (ranged reads, one
//! listing level at a time, so partitions a filter excludes are never listed or read).
//!
//! Invariants:
//! - the table is a listing over `<root>/year=YYYY/month=MM/day=DD/*.parquet`, read fresh on
//!   every query, so objects the sink writes later are seen without re-registering;
//! - its columns are [`shardline_core::schema::metric_schema`] with strings as `Utf8View`,
//!   followed by the partition columns `year`, `month`, `day`: strings as written in the path
//!   (`'2026'`, `'02'`), as in the Athena DDL, so `month = '02'` matches `month=02`, and
//!   `month = 2` does too (the string is compared as a number); filters on them prune whole
//!   directories before any file is opened;
//! - it is registered twice: `metrics` and `infra_monitoring.metrics`;
//! - a missing or empty root is an empty table, not an error;
//! - SQL is parsed with the generic dialect, where `timestamp` and `value` are plain column
//!   names and Athena's `from_unixtime(bigint)` returns a timestamp;
//! - statements are read-only unless run with [`Access::ReadWrite`]: the plan is checked, in
//!   every node, before anything runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::displayable;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use shardline_core::ports::ObjectStore;
use tracing::debug;

use crate::error::QueryError;

/// The table name.
pub const TABLE_NAME: &str = "metrics";
/// The seed's Athena database, registered as a schema holding the same table.
pub const SCHEMA_NAME: &str = "infra_monitoring";
/// The Hive partition columns, outermost first.
pub const PARTITION_COLUMNS: [&str; 3] = ["year", "month", "day"];

/// The table's schema: [`shardline_core::schema::metric_schema`] with its strings read as
/// `Utf8View`. The dictionary-encoded string columns then decode as views into the
/// dictionary page instead of being copied value by value, and DataFusion's filters and
/// group-by keys use its view-specialised kernels (`metric_type`, `instance_id`). Results carry
/// `Utf8View` string columns; Arrow's casts, formatters and JSON writer handle them as strings.
fn table_schema() -> SchemaRef {
    let fields: Vec<Field> = shardline_core::schema::metric_schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// What a statement may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: SELECT, EXPLAIN, SHOW, DESCRIBE. Statements that write (COPY TO, INSERT,
    /// CREATE [EXTERNAL] TABLE/VIEW, DROP) or change the session (SET, PREPARE, transactions)
    /// are refused before anything runs.
    ReadOnly,
    /// Anything DataFusion runs.
    ReadWrite,
}

/// Runs SQL over the metrics table.
#[derive(Clone)]
pub struct QueryEngine {
    ctx: SessionContext,
    root: PathBuf,
}

/// A session whose listings are not cached (see [`QueryEngine::new`]).
fn session() -> Result<SessionContext, String> {
    let mut config = SessionConfig::new().with_information_schema(true);
    config.options_mut().sql_parser.dialect = datafusion::config::Dialect::Generic;
    // DataFusion caches directory listings for the life of the session by default; this
    // table must see objects the sink writes later, so listings are not cached. Parquet
    // footers and file statistics stay cached: those entries are checked against the
    // object's size and modification time on every use.
    let runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
        .build_arc()
        .map_err(|e| e.to_string())?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// Registers the listing at `url` as `metrics` and `infra_monitoring.metrics`.
fn register(ctx: &SessionContext, url: ListingTableUrl) -> Result<(), String> {
    let partition_cols = PARTITION_COLUMNS
        .iter()
        .map(|c| (c.to_string(), DataType::Utf8))
        .collect();
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols);
    let table_config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(table_schema());
    let table = Arc::new(ListingTable::try_new(table_config).map_err(|e| e.to_string())?);
    ctx.register_table(TABLE_NAME, table.clone())
        .map_err(|e| e.to_string())?;
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| "the default catalog is missing".to_string())?;
    let schema = Arc::new(MemorySchemaProvider::new());
    catalog
        .register_schema(SCHEMA_NAME, schema)
        .map_err(|e| e.to_string())?;
    ctx.register_table(format!("{SCHEMA_NAME}.{TABLE_NAME}").as_str(), table)
        .map_err(|e| e.to_string())?;
    Ok(())
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("root", &self.root)
            .finish()
    }
}

impl QueryEngine {
    /// An engine over `parquet_root`, the directory holding `year=YYYY/...` (for the embedded
    /// object store: `<data>/s3/<bucket>/metrics`).
    ///
    /// # Errors
    /// [`QueryError::Table`] when the path exists but is not a directory, or cannot be turned
    /// into a table location.
    pub fn new(parquet_root: &Path) -> Result<Self, QueryError> {
        let table_err = |detail: String| QueryError::Table {
            path: parquet_root.to_path_buf(),
            detail,
        };
        if parquet_root.exists() && !parquet_root.is_dir() {
            return Err(table_err(
                "it is a file; pass the directory holding year=YYYY/month=MM/day=DD".into(),
            ));
        }
        let root = std::path::absolute(parquet_root).map_err(|e| table_err(e.to_string()))?;
        let ctx = session().map_err(table_err)?;
        let mut url_text = root.to_string_lossy().into_owned();
        if !url_text.ends_with('/') {
            url_text.push('/');
        }
        let url = ListingTableUrl::parse(&url_text).map_err(|e| table_err(e.to_string()))?;
        register(&ctx, url).map_err(table_err)?;
        debug!(root = %root.display(), "metrics table registered");
        Ok(QueryEngine { ctx, root })
    }

    /// An engine over `s3://<bucket>/<prefix>/year=YYYY/...` read through `objects`, the
    /// object store port (S3 on AWS).
    ///
    /// # Errors
    /// [`QueryError::Table`] when the bucket or prefix cannot be turned into a table location.
    pub fn over_objects(
        objects: Arc<dyn ObjectStore>,
        bucket: &str,
        prefix: &str,
    ) -> Result<Self, QueryError> {
        let location = format!("s3://{bucket}/{}/", prefix.trim_matches('/'));
        let table_err = |detail: String| QueryError::Table {
            path: PathBuf::from(&location),
            detail,
        };
        let ctx = session().map_err(table_err)?;
        let store_url = ObjectStoreUrl::parse(format!("s3://{bucket}"))
            .map_err(|e| table_err(e.to_string()))?;
        ctx.register_object_store(
            store_url.as_ref(),
            Arc::new(crate::store::PortStore::new(objects, bucket)),
        );
        let url = ListingTableUrl::parse(&location).map_err(|e| table_err(e.to_string()))?;
        register(&ctx, url).map_err(table_err)?;
        debug!(location = %location, "metrics table registered over the object store");
        Ok(QueryEngine {
            ctx,
            root: PathBuf::from(location),
        })
    }

    /// The directory (or `s3://` location) the table reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The DataFusion session, for callers that build DataFrames themselves.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one read-only SQL statement (a trailing `;` is fine) and collects its result:
    /// SELECT, EXPLAIN, SHOW and DESCRIBE.
    ///
    /// # Errors
    /// [`QueryError::ReadOnly`] for a statement that writes or changes the session (see
    /// [`Access`]); [`QueryError::Sql`] with DataFusion's message: syntax errors, unknown
    /// columns or tables, type errors, and read failures.
    pub async fn sql(&self, query: &str) -> Result<Vec<RecordBatch>, QueryError> {
        self.sql_with(query, Access::ReadOnly).await
    }

    /// Runs one SQL statement with the given access and collects its result.
    ///
    /// # Errors
    /// As [`QueryEngine::sql`]; with [`Access::ReadWrite`] nothing is refused.
    pub async fn sql_with(
        &self,
        query: &str,
        access: Access,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let df = self.plan(query, access).await?;
        df.collect().await.map_err(|e| QueryError::sql(query, e))
    }

    /// Plans `query`, refusing (before anything runs) what `access` does not allow.
    async fn plan(&self, query: &str, access: Access) -> Result<DataFrame, QueryError> {
        let plan = self
            .ctx
            .state()
            .create_logical_plan(query)
            .await
            .map_err(|e| QueryError::sql(query, e))?;
        if access == Access::ReadOnly {
            // Every node, in subqueries and under EXPLAIN [ANALYZE] too.
            let options = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            options
                .verify_plan(&plan)
                .map_err(|e| QueryError::read_only(query, &e))?;
        }
        self.ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| QueryError::sql(query, e))
    }

    /// The physical plan DataFusion would run for `query`, one operator per line, with the
    /// files each scan reads (after partition pruning).
    ///
    /// # Errors
    /// [`QueryError::Sql`] when the query does not plan.
    pub async fn explain(&self, query: &str) -> Result<String, QueryError> {
        let df = self.plan(query, Access::ReadOnly).await?;
        let plan = df
            .create_physical_plan()
            .await
            .map_err(|e| QueryError::sql(query, e))?;
        Ok(displayable(plan.as_ref()).indent(true).to_string())
    }
}
