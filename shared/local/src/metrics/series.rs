//! Listing the series of a metric with their latest minute (CloudWatch's ListMetrics with the
//! newest datapoint), for dashboards that rank thousands of instances.
//!
//! Keys of one series are its prefix followed by 8 bytes of minute, so each series costs two
//! seeks: one to its newest minute in the window, one past its last key to the next series.

use std::collections::BTreeMap;

use shardline_core::ports::StatisticSet;
use shardline_core::{Error, Result};

use super::{MINUTES, RedbMetricStore, StoredMinute, minute_key};
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

impl RedbMetricStore {
    /// Every series of `namespace`/`metric` with a minute in `[from_ms, to_ms)`, each with its
    /// newest such minute, in key order.
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
        let mut metric_prefix = Vec::new();
        encode_str(&mut metric_prefix, namespace);
        encode_str(&mut metric_prefix, metric);
        self.db
            .read(move |txn, path| {
                let Some(minutes) = open_read(txn, MINUTES)? else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                let mut lower = metric_prefix.clone();
                loop {
                    let Some(entry) = minutes.range(lower.as_slice()..)?.next() else {
                        break;
                    };
                    let (k, _) = entry?;
                    let key = k.value();
                    if !key.starts_with(&metric_prefix) || key.len() < metric_prefix.len() + 8 {
                        break;
                    }
                    let series = key[..key.len() - 8].to_vec();
                    let mut past = series.clone();
                    past.extend_from_slice(&[0xFF; 9]);
                    let window = minute_key(&series, from_ms)..minute_key(&series, to_ms);
                    if let Some(newest) = minutes
                        .range(window.start.as_slice()..window.end.as_slice())?
                        .next_back()
                    {
                        let (k, v) = newest?;
                        let tail: [u8; 8] = k.value()[series.len()..].try_into().map_err(|_| {
                            TxError::Port(Error::Internal("metric key without minute".into()))
                        })?;
                        let minute_ms = (u64::from_be_bytes(tail) ^ (1 << 63)) as i64;
                        let stored: StoredMinute = decode_json(path, "metric minute", v.value())?;
                        let dims = decode_str(&series[metric_prefix.len()..])
                            .and_then(|(json, _)| serde_json::from_str(&json).ok())
                            .unwrap_or_default();
                        out.push(SeriesLatest {
                            dimensions: dims,
                            minute_ms,
                            values: stored.values,
                        });
                    }
                    lower = past;
                }
                Ok(out)
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
