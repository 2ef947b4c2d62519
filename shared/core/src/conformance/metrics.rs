//! Conformance of [`MetricPublisher`]: statistic sets merged per series and minute, periods
//! aggregated oldest first with empty ones left out, end-exclusive windows, watermarks,
//! calls larger than one CloudWatch request, and validation.

use std::collections::BTreeMap;

use super::{seq, unique};
use crate::ports::{
    Datapoint, MetricDatum, MetricPublisher, StatisticSet, StatisticsQuery, Watermark,
};

const MINUTE: i64 = 60_000;

fn stats(sample_count: f64, sum: f64, minimum: f64, maximum: f64) -> StatisticSet {
    StatisticSet {
        sample_count,
        sum,
        minimum,
        maximum,
    }
}

fn dims(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("InstanceID".to_string(), instance.to_string()),
        ("Region".to_string(), "us-east-1".to_string()),
    ])
}

fn datum(metric: &str, instance: &str, timestamp_ms: i64, values: StatisticSet) -> MetricDatum {
    MetricDatum {
        metric_name: metric.to_string(),
        dimensions: dims(instance),
        timestamp_ms,
        unit: "Percent".to_string(),
        values,
    }
}

/// Runs the metric publisher suite in a fresh namespace, with data two hours old.
///
/// # Panics
/// When the publisher breaks the [`MetricPublisher`] contract; the message says where.
pub async fn metric_publisher(publisher: &dyn MetricPublisher) {
    let namespace = unique("Conformance");
    let now = crate::time::now_ms();
    let base = now - now.rem_euclid(3_600_000) - 2 * 3_600_000;
    let metric = "cpu_utilization";

    let data = vec![
        datum(metric, "i-1", base, stats(2.0, 10.0, 4.0, 6.0)),
        datum(metric, "i-1", base + 10_000, stats(1.0, 9.0, 9.0, 9.0)),
        datum(metric, "i-1", base + 30_000, stats(1.0, 1.0, 1.0, 1.0)),
        datum(metric, "i-1", base + 2 * MINUTE, stats(1.0, 5.0, 5.0, 5.0)),
        datum(metric, "i-1", base + 7 * MINUTE, stats(2.0, 4.0, 1.0, 3.0)),
        datum(metric, "i-2", base, stats(1.0, 100.0, 100.0, 100.0)),
    ];
    let wm_key = unique("conformance/metrics/shardId-000000000000");
    assert_eq!(
        publisher
            .watermark(&wm_key)
            .await
            .unwrap_or_else(|e| panic!("metric publisher: watermark failed: {e}")),
        None,
        "metric publisher: a watermark never stored must read as None"
    );
    let wm = Watermark {
        key: wm_key.clone(),
        sequence_number: seq(0, 5),
    };
    publisher
        .put_metric_data(&namespace, data, Some(&wm))
        .await
        .unwrap_or_else(|e| panic!("metric publisher: put_metric_data failed: {e}"));
    assert_eq!(
        publisher
            .watermark(&wm_key)
            .await
            .unwrap_or_else(|e| panic!("metric publisher: watermark failed: {e}")),
        Some(seq(0, 5)),
        "metric publisher: the watermark stored with the data must read back"
    );

    let get = |instance: &'static str, start: i64, end: i64, period_secs: u32| {
        let q = StatisticsQuery {
            namespace: namespace.clone(),
            metric_name: metric.to_string(),
            dimensions: dims(instance),
            start_ms: start,
            end_ms: end,
            period_secs,
        };
        async move {
            publisher
                .get_metric_statistics(&q)
                .await
                .unwrap_or_else(|e| {
                    panic!("metric publisher: get_metric_statistics {q:?} failed: {e}")
                })
        }
    };
    let point = |t: i64, s: StatisticSet| Datapoint {
        timestamp_ms: t,
        values: s,
    };

    assert_eq!(
        get("i-1", base, base + 10 * MINUTE, 60).await,
        vec![
            point(base, stats(4.0, 20.0, 1.0, 9.0)),
            point(base + 2 * MINUTE, stats(1.0, 5.0, 5.0, 5.0)),
            point(base + 7 * MINUTE, stats(2.0, 4.0, 1.0, 3.0)),
        ],
        "metric publisher: per-minute statistics must merge sets of the same minute (counts and sums add, min/max combine), oldest first, empty minutes left out"
    );
    assert_eq!(
        get("i-1", base, base + 10 * MINUTE, 300).await,
        vec![
            point(base, stats(5.0, 25.0, 1.0, 9.0)),
            point(base + 5 * MINUTE, stats(2.0, 4.0, 1.0, 3.0))
        ],
        "metric publisher: 300 s periods must aggregate their minutes"
    );
    assert_eq!(
        get("i-1", base + MINUTE, base + 7 * MINUTE, 60).await,
        vec![point(base + 2 * MINUTE, stats(1.0, 5.0, 5.0, 5.0))],
        "metric publisher: the window is [start, end): data at the end time is excluded"
    );
    assert_eq!(
        get("i-2", base, base + 10 * MINUTE, 60).await,
        vec![point(base, stats(1.0, 100.0, 100.0, 100.0))],
        "metric publisher: series with different dimensions must not mix"
    );

    // A later batch merges into stored minutes and moves the watermark.
    let wm2 = Watermark {
        key: wm_key.clone(),
        sequence_number: seq(0, 9),
    };
    publisher
        .put_metric_data(
            &namespace,
            vec![datum(
                metric,
                "i-1",
                base + 7 * MINUTE + 1,
                stats(1.0, 10.0, 10.0, 10.0),
            )],
            Some(&wm2),
        )
        .await
        .unwrap_or_else(|e| panic!("metric publisher: put_metric_data failed: {e}"));
    assert_eq!(
        get("i-1", base + 7 * MINUTE, base + 8 * MINUTE, 60).await,
        vec![point(base + 7 * MINUTE, stats(3.0, 14.0, 1.0, 10.0))],
        "metric publisher: a later put must merge into the stored minute"
    );
    assert_eq!(
        publisher
            .watermark(&wm_key)
            .await
            .unwrap_or_else(|e| panic!("metric publisher: watermark failed: {e}")),
        Some(seq(0, 9)),
        "metric publisher: the watermark must move to the last one stored"
    );

    // More datums than one CloudWatch request takes.
    let bulk: Vec<MetricDatum> = (0..1500)
        .map(|i| {
            datum(
                "bulk",
                "i-1",
                base + 20 * MINUTE + i % 60 * 1000,
                stats(1.0, 1.0, 1.0, 1.0),
            )
        })
        .collect();
    publisher
        .put_metric_data(&namespace, bulk, None)
        .await
        .unwrap_or_else(|e| panic!("metric publisher: put_metric_data of 1500 datums must be chunked, not rejected: {e}"));
    let q = StatisticsQuery {
        namespace: namespace.clone(),
        metric_name: "bulk".into(),
        dimensions: dims("i-1"),
        start_ms: base,
        end_ms: base + 60 * MINUTE,
        period_secs: 3600,
    };
    let bulk_points = publisher
        .get_metric_statistics(&q)
        .await
        .unwrap_or_else(|e| panic!("metric publisher: get_metric_statistics failed: {e}"));
    assert_eq!(
        bulk_points.len(),
        1,
        "metric publisher: one hour period expected: {bulk_points:?}"
    );
    assert_eq!(
        bulk_points[0].values.sample_count, 1500.0,
        "metric publisher: every one of 1500 datums must be stored"
    );

    // Validation.
    let nan = datum(metric, "i-1", base, stats(1.0, f64::NAN, 0.0, 1.0));
    assert!(
        publisher
            .put_metric_data(&namespace, vec![nan], None)
            .await
            .is_err(),
        "metric publisher: a NaN value must be rejected"
    );
    let inf = datum(metric, "i-1", base, stats(1.0, 1.0, 0.0, f64::INFINITY));
    assert!(
        publisher
            .put_metric_data(&namespace, vec![inf], None)
            .await
            .is_err(),
        "metric publisher: an infinite value must be rejected"
    );
    let mut bad = q.clone();
    bad.period_secs = 90;
    assert!(
        publisher.get_metric_statistics(&bad).await.is_err(),
        "metric publisher: a period that is not a multiple of 60 s must be rejected"
    );
    assert_eq!(
        get("i-1", base, base + MINUTE, 60).await,
        vec![point(base, stats(4.0, 20.0, 1.0, 9.0))],
        "metric publisher: a rejected put must store nothing"
    );
}
