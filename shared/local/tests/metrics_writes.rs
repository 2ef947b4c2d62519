//! The metric store's cost of a put does not grow with the history it holds: publishing every
//! series' current minute writes about as many bytes after two hours of stored minutes as
//! after the first one. (Counted with /proc/self/io, the bytes this process handed to write
//! calls: the only test of its binary, so nothing else writes meanwhile.)
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use shardline_core::ports::{
    MetricDatum, MetricPublisher, StatisticSet, StatisticsQuery, Watermark,
};
use shardline_core::stream::SequenceParts;
use shardline_local::{LocalBackends, LocalOptions};

const SERIES: usize = 2_000;
const START_MS: i64 = 1_771_459_200_000;

fn datums(minute: i64, value: f64) -> Vec<MetricDatum> {
    (0..SERIES)
        .map(|s| MetricDatum {
            metric_name: "cpu_utilization".into(),
            dimensions: BTreeMap::from([
                ("InstanceID".to_string(), format!("i-{s:06}")),
                ("Region".to_string(), "eu-west-1".to_string()),
            ]),
            timestamp_ms: START_MS + minute * 60_000 + 1_000,
            unit: "Percent".into(),
            values: StatisticSet {
                sample_count: 1.0,
                sum: value,
                minimum: value,
                maximum: value,
            },
        })
        .collect()
}

/// Bytes this process has passed to write calls so far.
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_put_writes_as_much_after_two_hours_of_minutes_as_after_one() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    let mut offset = 0;
    let mut put = async |minute: i64, value: f64| -> u64 {
        offset += 1;
        let mark = Watermark {
            key: "cloudwatch/metrics/shardId-000000000000".into(),
            sequence_number: SequenceParts {
                shard_index: 0,
                offset,
                shard_created_secs: 1,
                arrival_secs: 1,
            }
            .encode(),
        };
        let before = written();
        b.metrics
            .put_metric_data("InfraMonitoring", datums(minute, value), Some(&mark))
            .await
            .unwrap();
        written() - before
    };
    // A sink publishes a minute several times as its samples arrive: the first put of a
    // minute adds its rows, the later ones update them.
    put(0, 10.0).await;
    let early = put(0, 20.0).await;
    for minute in 1..120 {
        put(minute, 30.0).await;
    }
    put(120, 10.0).await;
    let late = put(120, 20.0).await;
    assert!(
        late <= early * 2,
        "updating {SERIES} series' current minute wrote {late} bytes after 120 minutes, \
         {early} after one"
    );

    // Every series reads back its minutes, merged.
    let points = b
        .metrics
        .get_metric_statistics(&StatisticsQuery {
            namespace: "InfraMonitoring".into(),
            metric_name: "cpu_utilization".into(),
            dimensions: BTreeMap::from([
                ("InstanceID".to_string(), "i-001234".to_string()),
                ("Region".to_string(), "eu-west-1".to_string()),
            ]),
            start_ms: START_MS,
            end_ms: START_MS + 121 * 60_000,
            period_secs: 3600,
        })
        .await
        .unwrap();
    let counts: Vec<f64> = points.iter().map(|p| p.values.sample_count).collect();
    assert_eq!(counts, vec![61.0, 60.0, 2.0], "{points:?}");
}
