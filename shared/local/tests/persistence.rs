//! Everything written survives closing and reopening the data directory, and a data
//! directory can be open in only one place at a time.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use shardline_core::ports::{
    AttributeValue, CheckpointKey, CheckpointStore, DeadLetter, DeadLetterStore, Item, ItemQuery,
    ItemTable, KeyType, MetricDatum, MetricPublisher, ObjectStore, StateStore, StatisticSet,
    StatisticsQuery, TableSchema, Watermark,
};
use shardline_core::{Error, SequenceNumber, ShardId};
use shardline_local::{LocalBackends, LocalError, LocalOptions};

fn seq(n: &str) -> SequenceNumber {
    n.parse().unwrap()
}

fn schema() -> TableSchema {
    TableSchema {
        name: "InfraMetrics".into(),
        partition_key: ("metric_id".into(), KeyType::S),
        sort_key: Some(("timestamp".into(), KeyType::N)),
    }
}

#[tokio::test]
async fn every_store_keeps_its_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = CheckpointKey {
        consumer: "parquet".into(),
        stream: "metrics".into(),
        shard: ShardId(3),
    };
    {
        let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
        b.checkpoints
            .put(&key, &seq("12345"), Some("w1"), None)
            .await
            .unwrap();
        b.objects.ensure_bucket("lake").await.unwrap();
        b.objects
            .put(
                "lake",
                "metrics/a.parquet",
                Bytes::from_static(b"PAR1"),
                "application/octet-stream",
            )
            .await
            .unwrap();
        b.table.ensure_table(&schema()).await.unwrap();
        let item = Item::from([
            ("metric_id".to_string(), AttributeValue::S("cpu#i-1".into())),
            ("timestamp".to_string(), AttributeValue::N("-1.5".into())),
        ]);
        b.table.batch_put("InfraMetrics", vec![item]).await.unwrap();
        let datum = MetricDatum {
            metric_name: "cpu_utilization".into(),
            dimensions: BTreeMap::from([("InstanceID".into(), "i-1".into())]),
            timestamp_ms: 120_000,
            unit: "Percent".into(),
            values: StatisticSet {
                sample_count: 2.0,
                sum: 3.0,
                minimum: 1.0,
                maximum: 2.0,
            },
        };
        let wm = Watermark {
            key: "cw/shard-0".into(),
            sequence_number: seq("77"),
        };
        b.metrics
            .put_metric_data("InfraMonitoring", vec![datum], Some(&wm))
            .await
            .unwrap();
        b.dead_letters
            .put(vec![DeadLetter {
                consumer: "parquet".into(),
                stream: "metrics".into(),
                shard: ShardId(0),
                sequence_number: seq("5"),
                partition_key: "i-1".into(),
                reason: "value is not a number".into(),
                data: Bytes::from_static(b"{\"value\":\"x\"}"),
                at_ms: 1,
            }])
            .await
            .unwrap();
        b.state
            .put_many("alarms", vec![("i-1".into(), Bytes::from_static(b"ALARM"))])
            .await
            .unwrap();
    }
    let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    let cp = b.checkpoints.get(&key).await.unwrap().unwrap();
    assert_eq!((cp.sequence_number, cp.lease_counter), (seq("12345"), 1));
    assert_eq!(
        b.objects.get("lake", "metrics/a.parquet").await.unwrap(),
        Some(Bytes::from_static(b"PAR1"))
    );
    assert_eq!(b.table.count("InfraMetrics").await.unwrap(), 1);
    let q = ItemQuery {
        table: "InfraMetrics".into(),
        partition: AttributeValue::S("cpu#i-1".into()),
        sort_from: Some(AttributeValue::N("-2".into())),
        sort_to: Some(AttributeValue::N("-1".into())),
        limit: None,
    };
    assert_eq!(b.table.query(&q).await.unwrap().len(), 1);
    assert_eq!(
        b.metrics.watermark("cw/shard-0").await.unwrap(),
        Some(seq("77"))
    );
    let stats = b
        .metrics
        .get_metric_statistics(&StatisticsQuery {
            namespace: "InfraMonitoring".into(),
            metric_name: "cpu_utilization".into(),
            dimensions: BTreeMap::from([("InstanceID".into(), "i-1".into())]),
            start_ms: 0,
            end_ms: 600_000,
            period_secs: 300,
        })
        .await
        .unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].timestamp_ms, stats[0].values.sum), (0, 3.0));
    assert_eq!(b.dead_letters.count(Some("parquet")).await.unwrap(), 1);
    assert_eq!(
        b.state.get("alarms", "i-1").await.unwrap(),
        Some(Bytes::from_static(b"ALARM"))
    );
    // The schema persisted too: a different one is refused after reopen, naming the table.
    let mut other = schema();
    other.sort_key = None;
    let err = b.table.ensure_table(&other).await.unwrap_err();
    assert!(err.to_string().contains("InfraMetrics"), "{err}");
}

#[tokio::test]
async fn a_data_directory_in_use_is_refused_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    let err = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap_err();
    assert!(matches!(err, LocalError::InUse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("checkpoints.redb"), "{msg}");
    assert!(
        msg.contains("is in use by another shardline process; stop it or use another --data-dir"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_conflicting_checkpoint_write_survives_reopen_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let key = CheckpointKey {
        consumer: "c".into(),
        stream: "s".into(),
        shard: ShardId(0),
    };
    {
        let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
        b.checkpoints
            .put(&key, &seq("1"), None, Some(0))
            .await
            .unwrap();
        let err = b
            .checkpoints
            .put(&key, &seq("2"), None, Some(0))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    }
    let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    let cp = b.checkpoints.get(&key).await.unwrap().unwrap();
    assert_eq!((cp.sequence_number, cp.lease_counter), (seq("1"), 1));
}

#[test]
fn options_parse_sizes_and_reject_unknown_fields() {
    let o: LocalOptions =
        serde_json::from_str(r#"{"durability":"buffered","cache_size":"64MiB"}"#).unwrap();
    assert_eq!(o.cache_size, 64 * 1024 * 1024);
    assert_eq!(o.durability, shardline_local::Durability::Buffered);
    let d: LocalOptions = serde_json::from_str("{}").unwrap();
    assert_eq!(d, LocalOptions::default());
    let err = serde_json::from_str::<LocalOptions>(r#"{"cache":"1MiB"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    let err = serde_json::from_str::<LocalOptions>(r#"{"cache_size":"lots"}"#).unwrap_err();
    assert!(err.to_string().contains("`lots` is not a size"), "{err}");
    let n: LocalOptions = serde_json::from_str(r#"{"cache_size":4096}"#).unwrap();
    assert_eq!(n.cache_size, 4096);
    let k: LocalOptions = serde_json::from_str(r#"{"cache_size":"512KiB"}"#).unwrap();
    assert_eq!(k.cache_size, 512 * 1024);
    assert_eq!(
        serde_json::to_value(&k).unwrap(),
        serde_json::json!({"durability": "fsync", "cache_size": "512KiB", "table_cache_size": "4MiB",
            "table_open_files": 128, "dead_letter_retention": "14days", "notify_retention": "7days"})
    );
    let r: LocalOptions = serde_json::from_str(r#"{"dead_letter_retention":"30d"}"#).unwrap();
    assert_eq!(r.dead_letter_retention, Duration::from_secs(30 * 86_400));
}

#[test]
fn the_item_table_gets_its_own_cache_size() {
    let dir = tempfile::tempdir().unwrap();
    let o: LocalOptions = serde_json::from_str(r#"{"table_cache_size":"2MiB"}"#).unwrap();
    assert_eq!(o.cache_size, LocalOptions::default().cache_size);
    let b = LocalBackends::open(dir.path(), o).unwrap();
    assert_eq!(b.table.cache_capacity(), 2 * 1024 * 1024);
}

#[tokio::test]
async fn buffered_durability_keeps_data_across_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LocalOptions {
        durability: shardline_local::Durability::Buffered,
        ..LocalOptions::default()
    };
    {
        let b = LocalBackends::open(dir.path(), opts.clone()).unwrap();
        for i in 0..20u32 {
            b.state
                .put_many(
                    "bench",
                    vec![(format!("k{i:02}"), Bytes::from(i.to_string()))],
                )
                .await
                .unwrap();
        }
    }
    let b = LocalBackends::open(dir.path(), opts).unwrap();
    assert_eq!(b.state.list("bench", "").await.unwrap().len(), 20);
}

/// Writes `table.redb` as earlier versions laid it out: a `schemas` table and an
/// `items/<table>` table keyed by the order-preserving key encoding.
fn write_earlier_table_file(path: &std::path::Path, items: &[(&str, i64, Vec<u8>)]) {
    use redb::TableDefinition;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut schemas = txn
            .open_table(TableDefinition::<&str, &[u8]>::new("schemas"))
            .unwrap();
        let raw = serde_json::to_vec(&schema()).unwrap();
        schemas.insert("InfraMetrics", raw.as_slice()).unwrap();
        let mut rows = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new("items/InfraMetrics"))
            .unwrap();
        for (pk, sk, value) in items {
            let mut key = Vec::new();
            shardline_local::table::keys::encode_str(&mut key, pk);
            shardline_local::table::keys::encode_number(&mut key, &sk.to_string()).unwrap();
            rows.insert(key.as_slice(), value.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[tokio::test]
async fn an_item_table_file_of_an_earlier_version_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("local/table.redb");
    let binary = shardline_local::table::codec::encode(&Item::from([
        ("metric_id".to_string(), AttributeValue::S("cpu-i-1".into())),
        ("timestamp".to_string(), AttributeValue::N("2000".into())),
        ("value".to_string(), AttributeValue::N("42.5".into())),
    ]));
    let json = br#"{"metric_id":{"S":"cpu-i-1"},"timestamp":{"N":"1000"},"value":{"N":"7"}}"#;
    let mut items = vec![
        ("cpu-i-1", 1000, json.to_vec()),
        ("cpu-i-1", 2000, binary.clone()),
    ];
    // Enough items for the import to commit in more than one batch.
    for t in 0..25_000i64 {
        items.push(("mem-i-2", t, binary.clone()));
    }
    write_earlier_table_file(&old, &items);

    for _ in 0..2 {
        let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
        assert!(!old.exists(), "the earlier file is renamed once imported");
        assert!(dir.path().join("local/table.redb.imported").exists());
        assert_eq!(b.table.count("InfraMetrics").await.unwrap(), 25_002);
        let got = b
            .table
            .query(&ItemQuery {
                table: "InfraMetrics".into(),
                partition: AttributeValue::S("cpu-i-1".into()),
                sort_from: None,
                sort_to: None,
                limit: None,
            })
            .await
            .unwrap();
        let values: Vec<_> = got.iter().map(|i| i["value"].clone()).collect();
        assert_eq!(
            values,
            vec![
                AttributeValue::N("7".into()),
                AttributeValue::N("42.5".into())
            ]
        );
        // The imported schema is the table's: a different one is refused.
        let mut other = schema();
        other.sort_key = None;
        assert!(b.table.ensure_table(&other).await.is_err());
    }
}
