//! Listing the series of a metric with their latest minute (CloudWatch's ListMetrics with the
//! newest datapoint), for dashboards that rank thousands of instances.
//!
//! Layout read: `minutes_present` gives the namespace's minutes in the window; they are read
//! newest first from `minutes_by_time` (namespace, minute, metric, dimensions), so the first
//! minute seen of a series is its newest. Minutes of the series-first table of earlier
//! versions (`minutes`: namespace, metric, dimensions, minute) are looked up per series (two
//! seeks each) and merged in: a minute present in both layouts counts as the merge of the two.

use std::collections::BTreeMap;

use shardline_core::ports::StatisticSet;
use shardline_core::{Error, Result};

use super::{
    MINUTES, PRESENT, RedbMetricStore, SERIES_FIRST, StoredMinute, merge, minute_bytes,
    minute_of_bytes, present_key,
};
use crate::db::open_read;
use crate::error::{TxError, decode_json};
use crate::table::keys::encode_str;

/// One series and its newest minute in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLatest {
    /// The series' dimensions.
    pub dimensions: BTreeMap<String, String>,
    /// Start of its newest minute in the window, epoch milliseconds.
    pub minute_ms: i64,
    /// That minute's samples.
    pub values: StatisticSet,
}

/// Reads one string of the key encoding ([`encode_str`]) from the front of `bytes`; returns it
/// and the rest.
fn decode_str(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (0, 1) => return Some((String::from_utf8(out).ok()?, &bytes[i + 2..])),
            (0, 0xFF) => {
                out.push(0);
                i += 2;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

/// The newest minute found so far of each series, keyed by its encoded dimensions.
type Newest = BTreeMap<Vec<u8>, (i64, StatisticSet)>;

/// Keeps `minute` for `dims` when it is newer than the one held; merges an equal minute.
fn offer(newest: &mut Newest, dims: &[u8], minute: i64, values: StatisticSet) {
    match newest.get_mut(dims) {
        Some((held, v)) if *held == minute => *v = merge(*v, values),
        Some((held, _)) if *held > minute => {}
        _ => {
            newest.insert(dims.to_vec(), (minute, values));
        }
    }
}

/// Scans the time-first table: the namespace's minutes in `[from_ms, to_ms)`, newest first.
fn read_time_first(
    txn: &redb::ReadTransaction,
    path: &std::path::Path,
    ns: &[u8],
    metric: &[u8],
    (from_ms, to_ms): (i64, i64),
    newest: &mut Newest,
) -> Result<(), TxError> {
    let (Some(present), Some(minutes)) = (open_read(txn, PRESENT)?, open_read(txn, MINUTES)?)
    else {
        return Ok(());
    };
    let (lower, upper) = (present_key(ns, from_ms), present_key(ns, to_ms));
    for entry in present.range(lower.as_slice()..upper.as_slice())?.rev() {
        let (k, _) = entry?;
        let Some(Ok(bytes)) = k.value().strip_prefix(ns).map(<[u8; 8]>::try_from) else {
            continue;
        };
        let minute = minute_of_bytes(bytes);
        let mut prefix = ns.to_vec();
        prefix.extend_from_slice(&minute_bytes(minute));
        prefix.extend_from_slice(metric);
        for entry in minutes.range(prefix.as_slice()..)? {
            let (k, v) = entry?;
            let Some(dims) = k.value().strip_prefix(prefix.as_slice()) else {
                break;
            };
            if newest.contains_key(dims) {
                continue; // a newer minute of this series was read already
            }
            let stored: StoredMinute = decode_json(path, "metric minute", v.value())?;
            offer(newest, dims, minute, stored.values);
        }
    }
    Ok(())
}

/// Looks up each series of the series-first table of earlier versions: its newest minute in
/// `[from_ms, to_ms)`.
fn read_series_first(
    txn: &redb::ReadTransaction,
    path: &std::path::Path,
    metric_prefix: &[u8],
    (from_ms, to_ms): (i64, i64),
    newest: &mut Newest,
) -> Result<(), TxError> {
    let Some(minutes) = open_read(txn, SERIES_FIRST)? else {
        return Ok(());
    };
    let mut lower = metric_prefix.to_vec();
    loop {
        let Some(entry) = minutes.range(lower.as_slice()..)?.next() else {
            break;
        };
        let (k, _) = entry?;
        let key = k.value();
        if !key.starts_with(metric_prefix) || key.len() < metric_prefix.len() + 8 {
            break;
        }
        let series = key[..key.len() - 8].to_vec();
        let mut past = series.clone();
        past.extend_from_slice(&[0xFF; 9]);
        let at = |ms: i64| {
            let mut key = series.clone();
            key.extend_from_slice(&minute_bytes(ms));
            key
        };
        let (start, end) = (at(from_ms), at(to_ms));
        if let Some(found) = minutes.range(start.as_slice()..end.as_slice())?.next_back() {
            let (k, v) = found?;
            let tail: [u8; 8] = k.value()[series.len()..]
                .try_into()
                .map_err(|_| TxError::Port(Error::Internal("metric key without minute".into())))?;
            let stored: StoredMinute = decode_json(path, "metric minute", v.value())?;
            let dims = &series[metric_prefix.len()..];
            offer(newest, dims, minute_of_bytes(tail), stored.values);
        }
        lower = past;
    }
    Ok(())
}

impl RedbMetricStore {
    /// Every series of `namespace`/`metric` with a minute in `[from_ms, to_ms)`, each with its
    /// newest such minute, in key order (by dimensions).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn latest_by_series(
        &self,
        namespace: &str,
        metric: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SeriesLatest>> {
        let mut ns = Vec::new();
        encode_str(&mut ns, namespace);
        let mut metric_key = Vec::new();
        encode_str(&mut metric_key, metric);
        if to_ms <= from_ms {
            return Ok(Vec::new());
        }
        self.db
            .read(move |txn, path| {
                let mut newest = Newest::new();
                let window = (from_ms, to_ms);
                read_time_first(txn, path, &ns, &metric_key, window, &mut newest)?;
                let mut metric_prefix = ns.clone();
                metric_prefix.extend_from_slice(&metric_key);
                read_series_first(txn, path, &metric_prefix, window, &mut newest)?;
                Ok(newest
                    .into_iter()
                    .map(|(dims, (minute_ms, values))| SeriesLatest {
                        dimensions: decode_str(&dims)
                            .and_then(|(json, _)| serde_json::from_str(&json).ok())
                            .unwrap_or_default(),
                        minute_ms,
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
    use crate::{LocalBackends, LocalOptions};
    use shardline_core::ports::{MetricDatum, MetricPublisher};

    #[tokio::test]
    async fn each_series_comes_once_with_its_newest_minute_in_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
        let mut data = Vec::new();
        for i in 0..50 {
            for minute in 0..5i64 {
                let v = f64::from(i) + minute as f64;
                data.push(MetricDatum {
                    metric_name: "cpu_utilization".into(),
                    dimensions: BTreeMap::from([
                        ("InstanceID".to_string(), format!("i-{i:06}")),
                        ("Region".to_string(), "eu-west-1".to_string()),
                    ]),
                    timestamp_ms: minute * 60_000,
                    unit: "Percent".into(),
                    values: StatisticSet {
                        sample_count: 1.0,
                        sum: v,
                        minimum: v,
                        maximum: v,
                    },
                });
            }
        }
        data.push(MetricDatum {
            metric_name: "memory_usage".into(),
            dimensions: BTreeMap::from([("InstanceID".to_string(), "i-mem".to_string())]),
            timestamp_ms: 0,
            unit: "Percent".into(),
            values: StatisticSet {
                sample_count: 1.0,
                sum: 1.0,
                minimum: 1.0,
                maximum: 1.0,
            },
        });
        b.metrics.put_metric_data("NS", data, None).await.unwrap();
        let all = b
            .metrics
            .latest_by_series("NS", "cpu_utilization", 0, 300_000)
            .await
            .unwrap();
        assert_eq!(all.len(), 50, "one entry per series");
        assert_eq!(all[7].dimensions["InstanceID"], "i-000007");
        assert_eq!(all[7].minute_ms, 240_000, "the newest minute");
        assert_eq!(all[7].values.sum, 11.0);
        let early = b
            .metrics
            .latest_by_series("NS", "cpu_utilization", 0, 120_000)
            .await
            .unwrap();
        assert_eq!(
            early[3].minute_ms, 60_000,
            "the newest minute before the window's end"
        );
        let none = b
            .metrics
            .latest_by_series("NS", "cpu_utilization", 600_000, 700_000)
            .await
            .unwrap();
        assert!(none.is_empty(), "no series has a minute in that window");
        let mem = b
            .metrics
            .latest_by_series("NS", "memory_usage", 0, 60_000)
            .await
            .unwrap();
        assert_eq!(mem.len(), 1);
    }
}
