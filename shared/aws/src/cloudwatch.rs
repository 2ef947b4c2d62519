//! The [`MetricPublisher`] port on CloudWatch.
//!
//! - `put_metric_data`: every datum is checked first (finite values inside CloudWatch's range,
//!   a sample count above 0, min <= max, names, at most 30 dimensions, a known unit), so a
//!   bad batch fails whole with one line and publishes nothing. Statistic sets outside
//!   CloudWatch's time window (older than two weeks, more than two hours ahead: CloudWatch
//!   refuses the whole call) are left out with a warning, and the watermark moves past them. Then PutMetricData calls of statistic sets, each at most 1,000 datums and under
//!   1 MB of request body (estimated from the form encoding), in order; then the watermark is
//!   stored in the state store (CloudWatch has nowhere to keep one), right after the data, as
//!   the port allows.
//! - `get_metric_statistics`: GetMetricStatistics for SampleCount, Sum, Minimum and Maximum,
//!   in windows of at most 1,440 periods (CloudWatch's limit per call), sorted oldest first
//!   (CloudWatch returns datapoints in no particular order).
//!
//! # Protocol
//! aws-sdk-cloudwatch 1.100 and later speak the RPC v2 CBOR protocol, which moto does not
//! serve. This crate pins 1.99.0, the last release speaking awsQuery (form-encoded POST,
//! `Action=PutMetricData`), which CloudWatch still serves: the same requests work on moto and
//! on AWS, and the tests check them on the wire against moto. The other SDK crates are pinned
//! to the same release train so that one set of smithy runtime crates is built.

use async_trait::async_trait;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, MetricDatum as AwsDatum, StandardUnit, Statistic, StatisticSet,
};
use bytes::Bytes;
use shardline_core::ports::{
    Datapoint, MetricDatum, MetricPublisher, StateStore, StatisticsQuery, Watermark,
};
use shardline_core::{Error, Result, SequenceNumber};
use std::sync::Arc;
use tracing::warn;

use crate::client::AwsClients;
use crate::error::{Call, Service, map_sdk_error};

/// Datums per PutMetricData call (CloudWatch's limit).
pub const MAX_DATUMS_PER_CALL: usize = 1000;
/// Request body budget per PutMetricData call (CloudWatch's limit is 1 MB).
const MAX_BODY_BYTES: usize = 1_000_000;
/// Datapoints per GetMetricStatistics call (CloudWatch's limit).
const MAX_DATAPOINTS_PER_CALL: i64 = 1440;
/// State namespace of the watermarks.
pub const WATERMARK_NAMESPACE: &str = "cloudwatch-watermarks";
/// How old a datum may be (CloudWatch refuses older data).
const MAX_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
/// How far ahead a datum may be.
const MAX_AHEAD_MS: i64 = 2 * 3600 * 1000;
/// Datums this close to the two-week limit are left out too: the call lands a little later.
const AGE_MARGIN_MS: i64 = 5 * 60 * 1000;

/// CloudWatch as a [`MetricPublisher`], with watermarks in a [`StateStore`].
#[derive(Clone)]
pub struct CloudWatchPublisher {
    client: aws_sdk_cloudwatch::Client,
    region: String,
    watermarks: Arc<dyn StateStore>,
}

impl std::fmt::Debug for CloudWatchPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchPublisher")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn check_value(v: f64) -> bool {
    v.is_finite() && (v == 0.0 || (8.515_920e-109..=1.174_271e108).contains(&v.abs()))
}

/// Whether CloudWatch takes a datum of this time now: from the last two weeks (less a margin
/// for the call's own delay) up to two hours ahead.
fn in_window(d: &MetricDatum, now_ms: i64) -> bool {
    d.timestamp_ms >= now_ms - MAX_AGE_MS + AGE_MARGIN_MS && d.timestamp_ms <= now_ms + MAX_AHEAD_MS
}

/// One datum's problem, if it has one (its time aside: see [`in_window`]).
fn check_datum(d: &MetricDatum) -> Option<String> {
    let s = &d.values;
    if ![s.sample_count, s.sum, s.minimum, s.maximum]
        .into_iter()
        .all(check_value)
    {
        return Some(
            "values must be finite numbers (CloudWatch: 0 or 8.5e-109 to 1.2e108 in magnitude)"
                .into(),
        );
    }
    if s.sample_count <= 0.0 {
        return Some("sample count must be above 0".into());
    }
    if s.minimum > s.maximum {
        return Some("minimum is above maximum".into());
    }
    if d.metric_name.is_empty() || d.metric_name.len() > 255 {
        return Some("metric name must be 1 to 255 characters".into());
    }
    if d.dimensions.len() > 30 {
        return Some(format!(
            "{} dimensions, CloudWatch takes at most 30",
            d.dimensions.len()
        ));
    }
    if d.dimensions
        .iter()
        .any(|(k, v)| k.is_empty() || v.is_empty() || k.len() > 255 || v.len() > 255)
    {
        return Some("dimension names and values must be 1 to 255 characters".into());
    }
    if !StandardUnit::values().contains(&d.unit.as_str()) {
        return Some(format!(
            "unit {:?} is not a CloudWatch unit (e.g. Percent, Bytes, Megabits/Second, Count, None)",
            d.unit
        ));
    }
    None
}

/// Estimated form-encoded size of one datum in a PutMetricData body.
fn encoded_len(d: &MetricDatum) -> usize {
    // Parameter names (`MetricData.member.NNNN.StatisticValues.SampleCount=` ...), numbers and
    // the timestamp take about 330 bytes; names and values are counted as if every byte were
    // percent-encoded.
    330 + 3 * d.metric_name.len()
        + d.dimensions
            .iter()
            .map(|(k, v)| 80 + 3 * (k.len() + v.len()))
            .sum::<usize>()
}

fn to_aws(d: &MetricDatum) -> AwsDatum {
    AwsDatum::builder()
        .metric_name(&d.metric_name)
        .set_dimensions(Some(
            d.dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                .collect(),
        ))
        .timestamp(DateTime::from_millis(d.timestamp_ms))
        .unit(StandardUnit::from(d.unit.as_str()))
        .statistic_values(
            StatisticSet::builder()
                .sample_count(d.values.sample_count)
                .sum(d.values.sum)
                .minimum(d.values.minimum)
                .maximum(d.values.maximum)
                .build(),
        )
        .build()
}

/// Splits datums into calls of at most 1,000 datums and the body budget, in order.
fn calls(data: &[MetricDatum]) -> Vec<&[MetricDatum]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 200);
    for (i, d) in data.iter().enumerate() {
        let len = encoded_len(d);
        if i > start && (i - start == MAX_DATUMS_PER_CALL || bytes + len > MAX_BODY_BYTES) {
            out.push(&data[start..i]);
            (start, bytes) = (i, 200);
        }
        bytes += len;
    }
    if start < data.len() {
        out.push(&data[start..]);
    }
    out
}

impl CloudWatchPublisher {
    /// The adapter, keeping watermarks in `watermarks`.
    pub fn new(clients: &AwsClients, watermarks: Arc<dyn StateStore>) -> Self {
        CloudWatchPublisher {
            client: clients.cloudwatch.clone(),
            region: clients.region.clone(),
            watermarks,
        }
    }

    fn call(&self, action: &'static str, namespace: &str) -> Call<'_> {
        Call {
            service: Service::CloudWatch,
            action,
            target: format!("namespace \"{namespace}\""),
            region: &self.region,
        }
    }
}

#[async_trait]
impl MetricPublisher for CloudWatchPublisher {
    async fn put_metric_data(
        &self,
        namespace: &str,
        data: Vec<MetricDatum>,
        watermark: Option<&Watermark>,
    ) -> Result<()> {
        if namespace.is_empty() || namespace.starts_with("AWS/") {
            return Err(Error::InvalidArgument(format!(
                "CloudWatch PutMetricData: namespace {namespace:?} must be non-empty and not start with AWS/"
            )));
        }
        for (i, d) in data.iter().enumerate() {
            if let Some(why) = check_datum(d) {
                return Err(Error::InvalidArgument(format!(
                    "CloudWatch PutMetricData in namespace \"{namespace}\": datum {i} ({} {:?}): {why}; nothing was published",
                    d.metric_name, d.dimensions
                )));
            }
        }
        // CloudWatch refuses a whole call holding one datum outside its time window; such
        // statistic sets (a backfill or replay of old events) cannot be stored there at all, so
        // they are left out, said once per call, and the watermark still moves past them (the
        // stream, the Parquet output and the table keep those events).
        let now = shardline_core::time::now_ms();
        let total = data.len();
        let data: Vec<MetricDatum> = data.into_iter().filter(|d| in_window(d, now)).collect();
        if data.len() < total {
            warn!(
                namespace,
                left_out = total - data.len(),
                "statistic sets outside CloudWatch's window (the last two weeks up to two hours ahead) were not published"
            );
        }
        for chunk in calls(&data) {
            self.client
                .put_metric_data()
                .namespace(namespace)
                .set_metric_data(Some(chunk.iter().map(to_aws).collect()))
                .send()
                .await
                .map_err(|e| map_sdk_error(&self.call("PutMetricData", namespace), e))?;
        }
        if let Some(w) = watermark {
            self.watermarks
                .put_many(
                    WATERMARK_NAMESPACE,
                    vec![(w.key.clone(), Bytes::from(w.sequence_number.to_string()))],
                )
                .await?;
        }
        Ok(())
    }

    async fn watermark(&self, key: &str) -> Result<Option<SequenceNumber>> {
        let Some(bytes) = self.watermarks.get(WATERMARK_NAMESPACE, key).await? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        text.parse().map(Some).map_err(|_| {
            Error::Internal(format!(
                "CloudWatch watermark `{key}` in state namespace {WATERMARK_NAMESPACE} is {text:?}, not a sequence number; delete it to republish"
            ))
        })
    }

    async fn get_metric_statistics(&self, query: &StatisticsQuery) -> Result<Vec<Datapoint>> {
        if query.period_secs == 0 || !query.period_secs.is_multiple_of(60) {
            return Err(Error::InvalidArgument(format!(
                "CloudWatch GetMetricStatistics: period {} s must be a positive multiple of 60",
                query.period_secs
            )));
        }
        if query.start_ms >= query.end_ms {
            return Err(Error::InvalidArgument(
                "CloudWatch GetMetricStatistics: start must be before end".into(),
            ));
        }
        let period_ms = i64::from(query.period_secs) * 1000;
        let window = period_ms * MAX_DATAPOINTS_PER_CALL;
        let dimensions: Vec<Dimension> = query
            .dimensions
            .iter()
            .map(|(k, v)| Dimension::builder().name(k).value(v).build())
            .collect();
        let mut points = Vec::new();
        let mut from = query.start_ms;
        while from < query.end_ms {
            let to = (from + window).min(query.end_ms);
            let out = self
                .client
                .get_metric_statistics()
                .namespace(&query.namespace)
                .metric_name(&query.metric_name)
                .set_dimensions(Some(dimensions.clone()))
                .start_time(DateTime::from_millis(from))
                .end_time(DateTime::from_millis(to))
                .period(i32::try_from(query.period_secs).unwrap_or(i32::MAX))
                .set_statistics(Some(vec![
                    Statistic::SampleCount,
                    Statistic::Sum,
                    Statistic::Minimum,
                    Statistic::Maximum,
                ]))
                .send()
                .await
                .map_err(|e| {
                    map_sdk_error(&self.call("GetMetricStatistics", &query.namespace), e)
                })?;
            for p in out.datapoints() {
                let Some(ts) = p.timestamp().and_then(|t| t.to_millis().ok()) else {
                    continue;
                };
                points.push(Datapoint {
                    timestamp_ms: ts,
                    values: shardline_core::ports::StatisticSet {
                        sample_count: p.sample_count().unwrap_or(0.0),
                        sum: p.sum().unwrap_or(0.0),
                        minimum: p.minimum().unwrap_or(0.0),
                        maximum: p.maximum().unwrap_or(0.0),
                    },
                });
            }
            from = to;
        }
        points.sort_by_key(|p| p.timestamp_ms);
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn datum(name: &str, dims: usize) -> MetricDatum {
        let value_len = if dims > 2 { 200 } else { 12 };
        MetricDatum {
            metric_name: name.into(),
            dimensions: (0..dims)
                .map(|i| (format!("Dim{i}"), "x".repeat(value_len)))
                .collect::<BTreeMap<_, _>>(),
            timestamp_ms: 1_000,
            unit: "Percent".into(),
            values: shardline_core::ports::StatisticSet {
                sample_count: 1.0,
                sum: 1.0,
                minimum: 1.0,
                maximum: 1.0,
            },
        }
    }

    #[test]
    fn calls_hold_at_most_1000_datums_and_the_body_budget() {
        let small: Vec<_> = (0..2500).map(|_| datum("cpu_utilization", 2)).collect();
        let sizes: Vec<usize> = calls(&small).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
        let wide: Vec<_> = (0..1000).map(|_| datum("cpu", 10)).collect();
        let chunks = calls(&wide);
        assert!(
            chunks.len() > 1,
            "10 wide dimensions per datum must split 1000 datums"
        );
        for c in &chunks {
            assert!(200 + c.iter().map(encoded_len).sum::<usize>() <= MAX_BODY_BYTES);
        }
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 1000);
    }

    #[test]
    fn bad_datums_are_named() {
        let now = 1_000;
        assert_eq!(check_datum(&datum("cpu", 2)), None);
        let mut nan = datum("cpu", 1);
        nan.values.sum = f64::NAN;
        assert!(check_datum(&nan).is_some());
        let mut unit = datum("cpu", 1);
        unit.unit = "Furlongs".into();
        assert!(check_datum(&unit).expect("bad unit").contains("Furlongs"));
        let mut old = datum("cpu", 1);
        old.timestamp_ms = now - MAX_AGE_MS - 1;
        assert_eq!(check_datum(&old), None, "its time is checked apart");
        assert!(!in_window(&old, now));
        old.timestamp_ms = now - MAX_AGE_MS + AGE_MARGIN_MS;
        assert!(in_window(&old, now));
        old.timestamp_ms = now + MAX_AHEAD_MS + 1;
        assert!(!in_window(&old, now));
    }
}
