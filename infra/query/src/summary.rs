//! The seed's per-instance aggregate (its first Athena query) for any metric type.
//!
//! `SELECT instance_id, COUNT(*), AVG(value), MAX(value), MIN(value) … WHERE metric_type = ?
//! GROUP BY instance_id ORDER BY avg DESC` (ties by instance id), optionally bounded on the
//! sample time `event_time`: `from_ms` inclusive, `to_ms` exclusive. The bounds also become a
//! conservative filter on `year`/`month`/`day`, so only the partitions in range are listed, and
//! objects of those whose `event_time` statistics lie outside the range are skipped unread
//! ([`QueryEngine::metric_summary_scanned`] reports what the scan read).

use std::sync::Arc;

use arrow::array::{Array, AsArray};

use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::{avg, count, max, min};
use datafusion::physical_plan::collect;
use datafusion::prelude::{Expr, cast, col, lit};
use shardline_core::MetricType;

use crate::engine::{QueryEngine, TABLE_NAME};
use crate::error::QueryError;
use crate::scan::ScanStats;

/// One instance's statistics for one metric type.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSummary {
    /// The instance.
    pub instance_id: String,
    /// How many samples.
    pub samples: u64,
    /// Their mean.
    pub avg: f64,
    /// The largest.
    pub max: f64,
    /// The smallest.
    pub min: f64,
}

/// `year * 10000 + month * 100 + day` of the UTC day holding `ms`.
fn day_number(ms: i64) -> Option<i64> {
    use chrono::Datelike;
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    Some(i64::from(t.year()) * 10_000 + i64::from(t.month()) * 100 + i64::from(t.day()))
}

fn ts_ms(ms: i64) -> Expr {
    lit(ScalarValue::TimestampMillisecond(
        Some(ms),
        Some("UTC".into()),
    ))
}

impl QueryEngine {
    /// Per-instance count, mean, max and min of `metric_type`, highest mean first.
    ///
    /// # Errors
    /// [`QueryError::Sql`] when the table cannot be read.
    pub async fn metric_summary(
        &self,
        metric_type: MetricType,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<InstanceSummary>, QueryError> {
        Ok(self
            .metric_summary_scanned(metric_type, from_ms, to_ms)
            .await?
            .0)
    }

    /// [`QueryEngine::metric_summary`], with what its scan read: bounded by the partitions
    /// and objects the time range reaches, not by the history the output holds.
    ///
    /// # Errors
    /// [`QueryError::Sql`] when the table cannot be read.
    pub async fn metric_summary_scanned(
        &self,
        metric_type: MetricType,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<(Vec<InstanceSummary>, ScanStats), QueryError> {
        let what = format!("metric_summary({metric_type}, {from_ms:?}, {to_ms:?})");
        let e = |err| QueryError::sql(&what, err);
        let part = |c: &str| cast(col(c), DataType::Int64);
        let day_key = part("year") * lit(10_000i64) + part("month") * lit(100i64) + part("day");
        let mut pred = col("metric_type").eq(lit(metric_type.as_str()));
        if let Some(from) = from_ms {
            pred = pred.and(col("event_time").gt_eq(ts_ms(from)));
            if let Some(d) = day_number(from) {
                pred = pred.and(day_key.clone().gt_eq(lit(d)));
            }
        }
        if let Some(to) = to_ms {
            pred = pred.and(col("event_time").lt(ts_ms(to)));
            if let Some(d) = day_number(to.saturating_sub(1)) {
                pred = pred.and(day_key.lt_eq(lit(d)));
            }
        }
        let df = self
            .context()
            .table(TABLE_NAME)
            .await
            .map_err(e)?
            .filter(pred)
            .map_err(e)?
            .aggregate(
                vec![col("instance_id")],
                vec![
                    count(lit(1i64)).alias("samples"),
                    avg(col("value")).alias("avg"),
                    max(col("value")).alias("max"),
                    min(col("value")).alias("min"),
                ],
            )
            .map_err(e)?
            .sort(vec![
                col("avg").sort(false, true),
                col("instance_id").sort(true, true),
            ])
            .map_err(e)?;
        let task_ctx = df.task_ctx();
        let plan = df.create_physical_plan().await.map_err(e)?;
        let batches = collect(plan.clone(), Arc::new(task_ctx)).await.map_err(e)?;
        let scan = ScanStats::of(&plan);
        let mut out = Vec::new();
        for batch in batches {
            let shape = |what: &str| QueryError::Shape(format!("summary column {what}"));
            let ids = arrow::compute::cast(batch.column(0), &DataType::Utf8)
                .map_err(|err| QueryError::Shape(err.to_string()))?;
            let ids = ids.as_string::<i32>();
            let samples = batch
                .column(1)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| shape("samples"))?;
            let f = |i: usize, name: &str| {
                batch
                    .column(i)
                    .as_primitive_opt::<Float64Type>()
                    .ok_or_else(|| shape(name))
            };
            let (avg, max, min) = (f(2, "avg")?, f(3, "max")?, f(4, "min")?);
            for row in 0..batch.num_rows() {
                if ids.is_null(row) {
                    continue;
                }
                out.push(InstanceSummary {
                    instance_id: ids.value(row).to_string(),
                    samples: u64::try_from(samples.value(row)).unwrap_or(0),
                    avg: avg.value(row),
                    max: max.value(row),
                    min: min.value(row),
                });
            }
        }
        Ok((out, scan))
    }
}
