//! Bad input to the metric store and the item table is refused with errors that name the
//! input and what to do, and leaves stored data untouched.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use shardline_core::Error;
use shardline_core::ports::{
    AttributeValue, Item, ItemTable, KeyType, MetricDatum, MetricPublisher, StatisticSet,
    StatisticsQuery, TableSchema, Watermark,
};
use shardline_local::{LocalBackends, LocalOptions};

fn datum(ts: i64, sum: f64) -> MetricDatum {
    MetricDatum {
        metric_name: "cpu_utilization".into(),
        dimensions: BTreeMap::from([("InstanceID".into(), "i-1".into())]),
        timestamp_ms: ts,
        unit: "Percent".into(),
        values: StatisticSet {
            sample_count: 1.0,
            sum,
            minimum: sum,
            maximum: sum,
        },
    }
}

#[tokio::test]
async fn a_rejected_metric_batch_stores_neither_data_nor_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    let wm = |s: &str| Watermark {
        key: "cw/0".into(),
        sequence_number: s.parse().unwrap(),
    };
    b.metrics
        .put_metric_data("InfraMonitoring", vec![datum(0, 1.0)], Some(&wm("10")))
        .await
        .unwrap();
    let err = b
        .metrics
        .put_metric_data(
            "InfraMonitoring",
            vec![datum(0, 2.0), datum(0, f64::NAN)],
            Some(&wm("20")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("non-finite value"), "{err}");
    assert_eq!(
        b.metrics.watermark("cw/0").await.unwrap(),
        Some("10".parse().unwrap())
    );
    let q = StatisticsQuery {
        namespace: "InfraMonitoring".into(),
        metric_name: "cpu_utilization".into(),
        dimensions: BTreeMap::from([("InstanceID".into(), "i-1".into())]),
        start_ms: 0,
        end_ms: 60_000,
        period_secs: 60,
    };
    let points = b.metrics.get_metric_statistics(&q).await.unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(
        points[0].values.sum, 1.0,
        "the valid datum of a rejected batch must not be stored"
    );

    // 2,500 datums in one call (three CloudWatch-sized chunks) all land, with the watermark.
    let many: Vec<MetricDatum> = (0..2500).map(|i| datum(i % 60 * 1000, 1.0)).collect();
    b.metrics
        .put_metric_data("InfraMonitoring", many, Some(&wm("30")))
        .await
        .unwrap();
    let points = b.metrics.get_metric_statistics(&q).await.unwrap();
    assert_eq!(points[0].values.sample_count, 2501.0);
    assert_eq!(
        b.metrics.watermark("cw/0").await.unwrap(),
        Some("30".parse().unwrap())
    );

    let mut bad = q.clone();
    bad.period_secs = 90;
    let err = b.metrics.get_metric_statistics(&bad).await.unwrap_err();
    assert!(err.to_string().contains("positive multiple of 60"), "{err}");
    let err = b
        .metrics
        .put_metric_data("AWS/EC2", vec![datum(0, 1.0)], None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reserved for AWS"), "{err}");
}

#[tokio::test]
async fn item_table_errors_name_the_table_and_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    let err = b
        .table
        .batch_put("Nope", vec![Item::new()])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("\"Nope\"") && err.to_string().contains("ensure_table"),
        "{err}"
    );

    b.table
        .ensure_table(&TableSchema {
            name: "T".into(),
            partition_key: ("pk".into(), KeyType::S),
            sort_key: Some(("ts".into(), KeyType::N)),
        })
        .await
        .unwrap();
    let row = |pk: AttributeValue, ts: &str| {
        Item::from([
            ("pk".to_string(), pk),
            ("ts".to_string(), AttributeValue::N(ts.into())),
        ])
    };
    let good = row(AttributeValue::S("a".into()), "1");
    let err = b
        .table
        .batch_put(
            "T",
            vec![good.clone(), row(AttributeValue::N("1".into()), "1")],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("\"pk\" must be of type S"),
        "{err}"
    );
    let err = b
        .table
        .batch_put("T", vec![row(AttributeValue::S("a".into()), "twelve")])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("\"ts\"")
            && err.to_string().contains("\"twelve\" is not a number"),
        "{err}"
    );
    // A batch with one bad item writes none of its items.
    assert_eq!(b.table.count("T").await.unwrap(), 0);

    let mut huge = good.clone();
    huge.insert("blob", AttributeValue::S("x".repeat(500 * 1024)));
    let err = b.table.batch_put("T", vec![good, huge]).await.unwrap_err();
    assert!(err.to_string().contains("limited to 400 KiB"), "{err}");
    assert_eq!(b.table.count("T").await.unwrap(), 0);
}
