//! A metrics.redb written by an earlier version (minutes keyed series first, in table
//! `minutes`) is still read: its minutes merge with those written since, and a minute stored
//! in both counts once with both sets of samples.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use redb::TableDefinition;
use shardline_core::ports::{MetricDatum, MetricPublisher, StatisticSet, StatisticsQuery};
use shardline_local::table::keys::encode_str;
use shardline_local::{LocalBackends, LocalOptions};

const MINUTE: i64 = 60_000;
const START_MS: i64 = 1_771_459_200_000;

fn dimensions(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("InstanceID".to_string(), instance.to_string()),
        ("Region".to_string(), "eu-west-1".to_string()),
    ])
}

/// The earlier version's key: namespace, metric, dimensions' JSON, then the minute.
fn series_first_key(instance: &str, minute_ms: i64) -> Vec<u8> {
    let mut key = Vec::new();
    encode_str(&mut key, "InfraMonitoring");
    encode_str(&mut key, "cpu_utilization");
    encode_str(
        &mut key,
        &format!(r#"{{"InstanceID":"{instance}","Region":"eu-west-1"}}"#),
    );
    key.extend_from_slice(&((minute_ms as u64) ^ (1 << 63)).to_be_bytes());
    key
}

fn set(count: f64, sum: f64, min: f64, max: f64) -> StatisticSet {
    StatisticSet {
        sample_count: count,
        sum,
        minimum: min,
        maximum: max,
    }
}

#[tokio::test]
async fn minutes_of_the_series_first_layout_are_read_and_merged_with_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("local/metrics.redb");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    {
        let db = redb::Database::create(&file).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut minutes = txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new("minutes"))
                .unwrap();
            for (instance, minute, json) in [
                (
                    "i-1",
                    0,
                    r#"{"unit":"Percent","values":{"sample_count":2.0,"sum":30.0,"minimum":10.0,"maximum":20.0}}"#,
                ),
                (
                    "i-1",
                    1,
                    r#"{"unit":"Percent","values":{"sample_count":1.0,"sum":50.0,"minimum":50.0,"maximum":50.0}}"#,
                ),
                (
                    "i-2",
                    0,
                    r#"{"unit":"Percent","values":{"sample_count":1.0,"sum":99.0,"minimum":99.0,"maximum":99.0}}"#,
                ),
            ] {
                let key = series_first_key(instance, START_MS + minute * MINUTE);
                minutes.insert(key.as_slice(), json.as_bytes()).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    // Minute 1 again (stored in both layouts from now on) and minute 2, new.
    let data = [
        (1, set(1.0, 70.0, 70.0, 70.0)),
        (2, set(1.0, 5.0, 5.0, 5.0)),
    ]
    .map(|(minute, values)| MetricDatum {
        metric_name: "cpu_utilization".into(),
        dimensions: dimensions("i-1"),
        timestamp_ms: START_MS + minute * MINUTE + 30_000,
        unit: "Percent".into(),
        values,
    })
    .to_vec();
    b.metrics
        .put_metric_data("InfraMonitoring", data, None)
        .await
        .unwrap();

    let query = |instance: &str, period_secs: u32| StatisticsQuery {
        namespace: "InfraMonitoring".into(),
        metric_name: "cpu_utilization".into(),
        dimensions: dimensions(instance),
        start_ms: START_MS,
        end_ms: START_MS + 10 * MINUTE,
        period_secs,
    };
    let by_minute: Vec<(i64, StatisticSet)> = b
        .metrics
        .get_metric_statistics(&query("i-1", 60))
        .await
        .unwrap()
        .into_iter()
        .map(|p| ((p.timestamp_ms - START_MS) / MINUTE, p.values))
        .collect();
    assert_eq!(
        by_minute,
        vec![
            (0, set(2.0, 30.0, 10.0, 20.0)),
            (1, set(2.0, 120.0, 50.0, 70.0)),
            (2, set(1.0, 5.0, 5.0, 5.0)),
        ]
    );
    let whole = b
        .metrics
        .get_metric_statistics(&query("i-1", 600))
        .await
        .unwrap();
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].values, set(5.0, 155.0, 5.0, 70.0));
    let other = b
        .metrics
        .get_metric_statistics(&query("i-2", 60))
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].values, set(1.0, 99.0, 99.0, 99.0));

    // The dashboard's listing: each series' newest minute, from either layout.
    let latest = |to_minute: i64| {
        let metrics = b.metrics.clone();
        async move {
            metrics
                .latest_by_series(
                    "InfraMonitoring",
                    "cpu_utilization",
                    START_MS,
                    START_MS + to_minute * MINUTE,
                )
                .await
                .unwrap()
                .into_iter()
                .map(|x| {
                    (
                        x.dimensions["InstanceID"].clone(),
                        (x.minute_ms - START_MS) / MINUTE,
                        x.values,
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        latest(10).await,
        vec![
            ("i-1".to_string(), 2, set(1.0, 5.0, 5.0, 5.0)),
            ("i-2".to_string(), 0, set(1.0, 99.0, 99.0, 99.0)),
        ],
        "the newest minute of each series, new layout over old"
    );
    assert_eq!(
        latest(2).await,
        vec![
            ("i-1".to_string(), 1, set(2.0, 120.0, 50.0, 70.0)),
            ("i-2".to_string(), 0, set(1.0, 99.0, 99.0, 99.0)),
        ],
        "a minute in both layouts counts once with both sets of samples"
    );
}
