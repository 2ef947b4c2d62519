//! [`MetricPublisher`]: an embedded CloudWatch-style metric store on redb
//! (`<data>/local/metrics.redb`).
//!
//! Layout:
//! - redb table `minutes_by_time`: key = string-encoded namespace, the minute's start (epoch
//!   ms, `i64` big-endian with the sign bit flipped), then string-encoded metric name and
//!   dimensions (JSON of the sorted map) → [`StoredMinute`] as JSON (unit and statistic set).
//! - redb table `minutes_present`: key = string-encoded namespace, then the minute's start
//!   (as above) → `()`: every minute holding at least one series (the minutes a query looks
//!   up).
//! - redb table `watermarks`: key → sequence number text.
//! - redb table `minutes` (files written by earlier versions, series before time): read by
//!   queries, never written.
//!
//! Why time before series: a put carries the current minute of every series (the CloudWatch
//! sink publishes every shard's partial minutes each second), so its keys are adjacent and
//! its transaction rewrites the few B-tree pages holding that minute, whatever the history.
//! With the series first (`minutes`), the same put touched one page per series once each held
//! a few minutes: 20,000 series made every put rewrite 20,000 pages (`metrics_bench`,
//! BENCHMARKS.md). A query reads its series minute by minute instead: one point lookup per
//! minute of its window that is present in `minutes_present`.
//!
//! Invariants:
//! - Data is kept at one-minute resolution; datums falling in the same minute of the same
//!   series are merged: sample counts and sums add, minimum and maximum combine.
//! - `put_metric_data` validates every datum before writing anything, then merges all of them
//!   and stores the watermark in the same write transaction: after a crash either both the
//!   data and the watermark are there or neither is. A sink that skips records at or below
//!   the watermark therefore publishes each record exactly once.
//! - Requests are checked as CloudWatch checks them (namespace, names, dimensions, finite
//!   values, periods a multiple of 60 s). Unlike CloudWatch, timestamps of any age are
//!   accepted, so replays of old log ranges land where they belong.
//! - `get_metric_statistics` includes minutes starting in `[start, end)` and groups them into
//!   periods counted from `start` rounded down to the minute. A minute stored in both layouts
//!   (a file written before and after the change) counts as the merge of the two.

use std::collections::BTreeMap;

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use shardline_core::ports::{
    Datapoint, MetricDatum, MetricPublisher, StatisticSet, StatisticsQuery, Watermark,
};
use shardline_core::{Error, Result, SequenceNumber};

use crate::db::{Db, open_read};
use crate::error::{TxError, decode_json, encode_json, port};
use crate::table::keys::encode_str;

mod series;
pub use series::SeriesLatest;

const MINUTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("minutes_by_time");
const PRESENT: TableDefinition<&[u8], ()> = TableDefinition::new("minutes_present");
const SERIES_FIRST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("minutes");
const WATERMARKS: TableDefinition<&str, &str> = TableDefinition::new("watermarks");

/// Most datums CloudWatch accepts in one PutMetricData call.
pub const MAX_DATUMS_PER_CALL: usize = 1000;
/// Most dimensions per metric.
pub const MAX_DIMENSIONS: usize = 30;
const MINUTE_MS: i64 = 60_000;
/// Most datums one `put_metric_data` takes (all in one transaction, see
/// [`MetricPublisher::max_datums_per_put`]): a sink's shard with more series than one
/// CloudWatch call carries (1,000, e.g. 250 instances with four metrics) would otherwise cut
/// its records into a put per ~1,000 records, each rewriting the B-tree pages it touches.
pub const MAX_DATUMS_PER_PUT: usize = 20_000;

/// One minute of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredMinute {
    /// The unit of the latest datum merged in.
    unit: String,
    /// The merged samples.
    values: StatisticSet,
}

/// The embedded metric store.
#[derive(Debug, Clone)]
pub struct RedbMetricStore {
    db: Db,
}

impl RedbMetricStore {
    pub(crate) fn new(db: Db) -> Self {
        RedbMetricStore { db }
    }
}

/// The series part of a key: metric name and dimensions.
fn series_key(metric: &str, dimensions: &BTreeMap<String, String>) -> Vec<u8> {
    let mut key = Vec::with_capacity(96);
    encode_str(&mut key, metric);
    encode_str(&mut key, &dimensions_json(dimensions));
    key
}

/// A minute's start as a key part: big-endian with the sign bit flipped, so byte order is
/// time order.
fn minute_bytes(minute_ms: i64) -> [u8; 8] {
    ((minute_ms as u64) ^ (1 << 63)).to_be_bytes()
}

fn minute_of_bytes(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// `minutes_by_time` key: namespace, minute, series.
fn time_key(namespace: &[u8], minute_ms: i64, series: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(namespace.len() + 8 + series.len());
    key.extend_from_slice(namespace);
    key.extend_from_slice(&minute_bytes(minute_ms));
    key.extend_from_slice(series);
    key
}

/// `minutes_present` key: namespace, minute.
fn present_key(namespace: &[u8], minute_ms: i64) -> Vec<u8> {
    let mut key = namespace.to_vec();
    key.extend_from_slice(&minute_bytes(minute_ms));
    key
}

/// The start of the minute holding `timestamp_ms`.
fn minute_start(namespace: &str, d: &MetricDatum) -> Result<i64> {
    d.timestamp_ms
        .div_euclid(MINUTE_MS)
        .checked_mul(MINUTE_MS)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "metric {namespace}/{} has timestamp {} ms, outside the range of dates; \
                 drop such samples",
                d.metric_name, d.timestamp_ms
            ))
        })
}

/// The dimensions as the JSON object `serde_json` writes for the map: in key order, so equal
/// dimension sets give equal text. Names and values without characters JSON escapes (the
/// usual case) are written directly; otherwise `serde_json` writes the whole object.
fn dimensions_json(dimensions: &BTreeMap<String, String>) -> String {
    let plain = |s: &str| !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    if !dimensions.iter().all(|(k, v)| plain(k) && plain(v)) {
        return serde_json::to_string(dimensions).unwrap_or_default();
    }
    let len: usize = dimensions.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut out = String::with_capacity(len + 2);
    out.push('{');
    for (i, (k, v)) in dimensions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for part in ["\"", k, "\":\"", v, "\""] {
            out.push_str(part);
        }
    }
    out.push('}');
    out
}

fn check_name(what: &str, name: &str, max: usize) -> Result<()> {
    if name.is_empty() || name.chars().count() > max {
        return Err(Error::InvalidArgument(format!(
            "{what} {name:?} must be 1 to {max} characters"
        )));
    }
    Ok(())
}

fn validate_datum(namespace: &str, d: &MetricDatum) -> Result<()> {
    check_name("metric name", &d.metric_name, 255)?;
    if d.dimensions.len() > MAX_DIMENSIONS {
        return Err(Error::InvalidArgument(format!(
            "metric {:?} has {} dimensions; CloudWatch allows at most {MAX_DIMENSIONS}",
            d.metric_name,
            d.dimensions.len()
        )));
    }
    for (name, value) in &d.dimensions {
        check_name("dimension name", name, 255)?;
        check_name("dimension value", value, 1024)?;
    }
    let v = &d.values;
    let all = [v.sample_count, v.sum, v.minimum, v.maximum];
    if all.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "metric {namespace}/{} at {} has a non-finite value ({v:?}); CloudWatch rejects NaN \
             and infinity, drop or clamp such samples",
            d.metric_name, d.timestamp_ms
        )));
    }
    if v.sample_count <= 0.0 || v.minimum > v.maximum {
        return Err(Error::InvalidArgument(format!(
            "metric {namespace}/{} at {} has an inconsistent statistic set ({v:?}): sample count \
             must be positive and minimum at most maximum",
            d.metric_name, d.timestamp_ms
        )));
    }
    Ok(())
}

fn merge(a: StatisticSet, b: StatisticSet) -> StatisticSet {
    StatisticSet {
        sample_count: a.sample_count + b.sample_count,
        sum: a.sum + b.sum,
        minimum: a.minimum.min(b.minimum),
        maximum: a.maximum.max(b.maximum),
    }
}

/// Merges the stored minute at `key` (if any) with `values` and writes it back.
fn merge_into(
    minutes: &mut redb::Table<&[u8], &[u8]>,
    path: &std::path::Path,
    key: &[u8],
    unit: &str,
    values: StatisticSet,
) -> Result<(), TxError> {
    let old: Option<StoredMinute> = match minutes.get(key)? {
        Some(raw) => Some(decode_json(path, "metric minute", raw.value())?),
        None => None,
    };
    let values = match old {
        Some(old) => merge(old.values, values),
        None => values,
    };
    let stored = encode_json(
        "metric minute",
        &StoredMinute {
            unit: unit.to_string(),
            values,
        },
    )?;
    minutes.insert(key, stored.as_slice())?;
    Ok(())
}

/// Adds the minutes of `series` stored in the series-first table of earlier versions that
/// fall in the query's window to `add`.
fn read_series_first(
    txn: &redb::ReadTransaction,
    path: &std::path::Path,
    query: &StatisticsQuery,
    add: &mut dyn FnMut(i64, StatisticSet),
) -> Result<(), TxError> {
    let Some(minutes) = open_read(txn, SERIES_FIRST)? else {
        return Ok(());
    };
    let mut prefix = Vec::with_capacity(128);
    encode_str(&mut prefix, &query.namespace);
    prefix.extend_from_slice(&series_key(&query.metric_name, &query.dimensions));
    let mut lower = prefix.clone();
    lower.extend_from_slice(&minute_bytes(
        query
            .start_ms
            .saturating_sub(query.start_ms.rem_euclid(MINUTE_MS)),
    ));
    for entry in minutes.range(lower.as_slice()..)? {
        let (k, v) = entry?;
        let k = k.value();
        let Some(tail) = k.strip_prefix(prefix.as_slice()) else {
            break;
        };
        let Ok(bytes) = <[u8; 8]>::try_from(tail) else {
            break;
        };
        let minute = minute_of_bytes(bytes);
        if minute >= query.end_ms {
            break;
        }
        if minute < query.start_ms {
            continue;
        }
        let stored: StoredMinute = decode_json(path, "metric minute", v.value())?;
        add(minute, stored.values);
    }
    Ok(())
}

#[async_trait]
impl MetricPublisher for RedbMetricStore {
    fn max_datums_per_put(&self, _per_call: usize) -> usize {
        MAX_DATUMS_PER_PUT
    }

    async fn put_metric_data(
        &self,
        namespace: &str,
        data: Vec<MetricDatum>,
        watermark: Option<&Watermark>,
    ) -> Result<()> {
        check_name("namespace", namespace, 255)?;
        if namespace.starts_with("AWS/") {
            return Err(Error::InvalidArgument(format!(
                "namespace {namespace:?} is reserved for AWS services; use your own"
            )));
        }
        let mut ns = Vec::with_capacity(namespace.len() + 2);
        encode_str(&mut ns, namespace);
        // Keys in key order (a minute's series together), so the write walks the tree once;
        // of equal keys the later datum is merged last (its unit is kept).
        let mut keyed = Vec::with_capacity(data.len());
        for (i, d) in data.iter().enumerate() {
            validate_datum(namespace, d)?;
            let minute = minute_start(namespace, d)?;
            let key = time_key(&ns, minute, &series_key(&d.metric_name, &d.dimensions));
            keyed.push((key, minute, i));
        }
        if data.is_empty() && watermark.is_none() {
            return Ok(());
        }
        keyed.sort_unstable();
        let watermark = watermark.cloned();
        self.db
            .write(move |txn, path| {
                let mut minutes = txn.open_table(MINUTES)?;
                let mut present = txn.open_table(PRESENT)?;
                let mut last_minute = None;
                for (key, minute, i) in &keyed {
                    let d = &data[*i];
                    merge_into(&mut minutes, path, key, &d.unit, d.values)?;
                    if last_minute != Some(*minute) {
                        present.insert(present_key(&ns, *minute).as_slice(), ())?;
                        last_minute = Some(*minute);
                    }
                }
                if let Some(w) = watermark {
                    let mut marks = txn.open_table(WATERMARKS)?;
                    marks.insert(w.key.as_str(), w.sequence_number.as_str())?;
                }
                Ok(())
            })
            .await
    }

    async fn watermark(&self, key: &str) -> Result<Option<SequenceNumber>> {
        let key = key.to_string();
        self.db
            .read(move |txn, path| {
                let Some(marks) = open_read(txn, WATERMARKS)? else {
                    return Ok(None);
                };
                match marks.get(key.as_str())? {
                    Some(v) => v.value().parse().map(Some).map_err(|e| {
                        port(Error::Corrupt {
                            file: path.to_path_buf(),
                            offset: 0,
                            detail: format!("watermark {key:?}: {e}"),
                        })
                    }),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn get_metric_statistics(&self, query: &StatisticsQuery) -> Result<Vec<Datapoint>> {
        if query.period_secs == 0 || !query.period_secs.is_multiple_of(60) {
            return Err(Error::InvalidArgument(format!(
                "period of {} s is invalid: use a positive multiple of 60 seconds",
                query.period_secs
            )));
        }
        if query.end_ms <= query.start_ms {
            return Err(Error::InvalidArgument(format!(
                "statistics window [{}, {}) is empty: the end must be after the start",
                query.start_ms, query.end_ms
            )));
        }
        let query = query.clone();
        self.db
            .read(move |txn, path| {
                let period_ms = i64::from(query.period_secs) * 1000;
                // Saturating: query bounds come from users (any i64).
                let origin = query
                    .start_ms
                    .saturating_sub(query.start_ms.rem_euclid(MINUTE_MS));
                let mut periods: BTreeMap<i64, StatisticSet> = BTreeMap::new();
                let mut add = |minute: i64, values: StatisticSet| {
                    let offset = minute.saturating_sub(origin);
                    let start =
                        origin.saturating_add(offset.saturating_sub(offset.rem_euclid(period_ms)));
                    periods
                        .entry(start)
                        .and_modify(|s| *s = merge(*s, values))
                        .or_insert(values);
                };
                if let (Some(present), Some(minutes)) =
                    (open_read(txn, PRESENT)?, open_read(txn, MINUTES)?)
                {
                    let mut ns = Vec::with_capacity(query.namespace.len() + 2);
                    encode_str(&mut ns, &query.namespace);
                    let series = series_key(&query.metric_name, &query.dimensions);
                    let lower = present_key(&ns, origin);
                    for entry in present.range(lower.as_slice()..)? {
                        let (k, _) = entry?;
                        let k = k.value();
                        let Some(Ok(bytes)) =
                            k.strip_prefix(ns.as_slice()).map(<[u8; 8]>::try_from)
                        else {
                            break;
                        };
                        let minute = minute_of_bytes(bytes);
                        if minute >= query.end_ms {
                            break;
                        }
                        if minute < query.start_ms {
                            continue;
                        }
                        let key = time_key(&ns, minute, &series);
                        if let Some(v) = minutes.get(key.as_slice())? {
                            let stored: StoredMinute =
                                decode_json(path, "metric minute", v.value())?;
                            add(minute, stored.values);
                        }
                    }
                }
                read_series_first(txn, path, &query, &mut add)?;
                Ok(periods
                    .into_iter()
                    .map(|(timestamp_ms, values)| Datapoint {
                        timestamp_ms,
                        values,
                    })
                    .collect())
            })
            .await
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Stored keys embed the dimensions' JSON: the direct writer must give `serde_json`'s text.
    #[test]
    fn dimension_text_is_serde_jsons() {
        let samples = [
            "",
            "i-000123",
            "eu-west-1",
            "Région ☃",
            "quote \" inside",
            "back\\slash",
            "tab\tand\nnewline",
            "\u{1}\u{1f}\u{7f}",
            "slash / and <html>",
        ];
        let mut maps = vec![BTreeMap::new()];
        for a in samples {
            for b in samples {
                maps.push(BTreeMap::from([
                    ("InstanceID".to_string(), a.to_string()),
                    ("Region".to_string(), b.to_string()),
                ]));
                maps.push(BTreeMap::from([(a.to_string(), b.to_string())]));
            }
        }
        for m in &maps {
            assert_eq!(
                dimensions_json(m),
                serde_json::to_string(m).expect("serializes"),
                "{m:?}"
            );
        }
    }
}
