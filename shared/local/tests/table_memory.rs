//! The item table's memtables stay within their bound however fast batches arrive, and no
//! write is lost to the waiting.
#![allow(clippy::unwrap_used)]

use shardline_core::ports::{AttributeValue, Item, ItemQuery, ItemTable, KeyType, TableSchema};
use shardline_local::table::TableMemory;
use shardline_local::{Durability, LocalError, LsmItemTable};

const MIB: u64 = 1024 * 1024;

fn schema() -> TableSchema {
    TableSchema {
        name: "Series".into(),
        partition_key: ("series".into(), KeyType::S),
        sort_key: Some(("t".into(), KeyType::N)),
    }
}

/// 1,000 items of ~300 bytes over 100 series, all at time `round`: like the pipeline's
/// batches, each touches the whole key range.
fn batch(round: u64) -> Vec<Item> {
    (0..1000u64)
        .map(|j| {
            Item::from([
                ("series", AttributeValue::S(format!("s{:03}", j % 100))),
                ("t", AttributeValue::N((round * 10 + j / 100).to_string())),
                ("pad", AttributeValue::S(format!("{j:0>250}"))),
            ])
        })
        .collect()
}

/// Every item of one series, in time order.
async fn whole_series(table: &LsmItemTable, series: &str) -> Vec<Item> {
    table
        .query(&ItemQuery {
            table: "Series".into(),
            partition: AttributeValue::S(series.into()),
            sort_from: None,
            sort_to: None,
            limit: None,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn memtables_stay_within_their_bound_and_every_item_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let memory = TableMemory {
        memtable_bytes: MIB,
        write_buffer_bytes: 2 * MIB,
    };
    let table = LsmItemTable::open_with(dir.path(), Durability::Buffered, 4 * MIB, memory).unwrap();
    table.ensure_table(&schema()).await.unwrap();
    let mut peak = 0;
    let rounds = 80;
    for round in 0..rounds {
        table.batch_put("Series", batch(round)).await.unwrap();
        peak = peak.max(table.write_buffer_bytes());
    }
    // ~24 MB written through 1 MiB memtables: at most the bound plus one batch (~0.4 MB)
    // is ever held.
    assert!(peak <= 2 * MIB + MIB / 2, "memtables held {peak} bytes");
    assert_eq!(table.count("Series").await.unwrap(), rounds * 1000);
    let one = whole_series(&table, "s042").await;
    assert_eq!(one.len() as u64, rounds * 10);
}

#[test]
fn a_bound_below_the_memtable_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = LsmItemTable::open_with(
        dir.path(),
        Durability::Buffered,
        MIB,
        TableMemory {
            memtable_bytes: 4 * MIB,
            write_buffer_bytes: MIB,
        },
    )
    .unwrap_err();
    assert!(matches!(err, LocalError::Port(_)), "{err}");
    assert!(err.to_string().contains("write_buffer_bytes"), "{err}");
}

/// Replaying old batches over many flushed (and compacted) tables replaces items instead of
/// adding any, and range reads see the latest version in sort-key order, before and after a
/// reopen (the keyspace's stored settings are read back).
#[tokio::test]
async fn replays_over_many_flushed_tables_replace_items() {
    let dir = tempfile::tempdir().unwrap();
    let memory = TableMemory {
        memtable_bytes: MIB,
        write_buffer_bytes: 2 * MIB,
    };
    let rounds = 60;
    let replayed = 10;
    {
        let table =
            LsmItemTable::open_with(dir.path(), Durability::Fsync, 4 * MIB, memory).unwrap();
        table.ensure_table(&schema()).await.unwrap();
        for round in 0..rounds {
            table.batch_put("Series", batch(round)).await.unwrap();
        }
        for round in 0..replayed {
            let items = batch(round)
                .into_iter()
                .map(|mut item| {
                    item.insert("pad", AttributeValue::S(format!("replayed {round}")));
                    item
                })
                .collect();
            table.batch_put("Series", items).await.unwrap();
        }
    }
    let table = LsmItemTable::open_with(dir.path(), Durability::Fsync, 4 * MIB, memory).unwrap();
    assert_eq!(table.count("Series").await.unwrap(), rounds * 1000);
    let series = whole_series(&table, "s007").await;
    assert_eq!(series.len() as u64, rounds * 10);
    let times: Vec<u64> = series
        .iter()
        .map(|item| match &item["t"] {
            AttributeValue::N(t) => t.parse().unwrap(),
            other => panic!("t is {other:?}"),
        })
        .collect();
    assert_eq!(times, (0..rounds * 10).collect::<Vec<_>>());
    let replaced = series
        .iter()
        .filter(|item| matches!(&item["pad"], AttributeValue::S(p) if p.starts_with("replayed")))
        .count() as u64;
    assert_eq!(replaced, replayed * 10);
}
