//! Large batches bypass the journal and the memtables (they become sorted tables of their
//! own); whichever path a put took, the later put of a key wins, duplicates within one large
//! batch keep the later item, and everything reads back the same after a reopen.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::series::{contents, item, schema};
use shardline_core::ports::{AttributeValue, Item, ItemQuery, ItemTable};
use shardline_local::table::{INGEST_MIN_ITEMS, TableMemory};
use shardline_local::{Durability, LsmItemTable};

const MIB: u64 = 1024 * 1024;
const SERIES: u64 = 100;

/// Puts `items` and applies them to `model` in order (a later item of one key wins).
async fn put(table: &LsmItemTable, model: &mut BTreeMap<(u64, u64), String>, items: Vec<Item>) {
    for item in &items {
        let (AttributeValue::S(s), AttributeValue::N(t), AttributeValue::S(tag)) =
            (&item["series"], &item["t"], &item["tag"])
        else {
            panic!("{item:?}");
        };
        model.insert((s[1..].parse().unwrap(), t.parse().unwrap()), tag.clone());
    }
    table.batch_put("Series", items).await.unwrap();
}

#[tokio::test]
async fn later_puts_win_across_large_and_small_batches_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let memory = TableMemory {
        memtable_bytes: MIB,
        write_buffer_bytes: 2 * MIB,
    };
    let mut model = BTreeMap::new();
    {
        let table =
            LsmItemTable::open_with(dir.path(), Durability::Fsync, 4 * MIB, memory).unwrap();
        table.ensure_table(&schema()).await.unwrap();
        // A: 3,000 keys (series-major, like a sink's batch is not), then the first 100 again:
        // the later copy must win although the batch is sorted before it is written.
        let mut a: Vec<Item> = (0..30)
            .flat_map(|t| (0..SERIES).map(move |s| item(s, t, "a")))
            .collect();
        a.extend((0..SERIES).map(|s| item(s, 0, "a-again")));
        assert!(a.len() >= INGEST_MIN_ITEMS);
        put(&table, &mut model, a).await;
        // The schema is in a memtable; the batch's ~100 KB are not.
        let held = table.write_buffer_bytes();
        assert!(
            held < 1024,
            "a large batch went through the memtables: {held} bytes"
        );
        // B: small, through the journal, over some of A's keys and new ones.
        let b: Vec<Item> = (25..35).map(|t| item(7, t, "b")).collect();
        assert!(b.len() < INGEST_MIN_ITEMS);
        put(&table, &mut model, b).await;
        // C: large again, over B's keys and A's: C is later than both.
        let c: Vec<Item> = (20..40)
            .flat_map(|t| (0..SERIES).map(move |s| item(s, t, "c")))
            .collect();
        put(&table, &mut model, c).await;
        // D: small, over some of C's keys.
        let d: Vec<Item> = (30..33).map(|t| item(42, t, "d")).collect();
        put(&table, &mut model, d).await;
        assert_eq!(contents(&table, SERIES).await, model);
        assert_eq!(table.count("Series").await.unwrap(), model.len() as u64);
    }
    assert_eq!(model.len() as u64, SERIES * 40);
    assert_eq!(model[&(3, 0)], "a-again");
    assert_eq!(model[&(7, 26)], "c");
    assert_eq!(model[&(42, 31)], "d");
    let table = LsmItemTable::open_with(dir.path(), Durability::Fsync, 4 * MIB, memory).unwrap();
    assert_eq!(contents(&table, SERIES).await, model, "after a reopen");
    assert_eq!(table.count("Series").await.unwrap(), model.len() as u64);
}

/// Many large batches (each its own table, merged by compaction) replayed with new values:
/// nothing is added, every key holds its latest value.
#[tokio::test]
async fn replayed_large_batches_replace_items_through_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let table = LsmItemTable::open_with(
        dir.path(),
        Durability::Buffered,
        4 * MIB,
        TableMemory::default(),
    )
    .unwrap();
    table.ensure_table(&schema()).await.unwrap();
    let mut model = BTreeMap::new();
    let rounds = 24;
    for round in 0..rounds {
        let items = (0..20)
            .flat_map(|t| (0..SERIES).map(move |s| item(s, round * 20 + t, "first")))
            .collect();
        put(&table, &mut model, items).await;
    }
    for round in (0..rounds).step_by(3) {
        let items = (0..20)
            .flat_map(|t| (0..SERIES).map(move |s| item(s, round * 20 + t, "replayed")))
            .collect();
        put(&table, &mut model, items).await;
    }
    assert_eq!(model.len() as u64, SERIES * rounds * 20);
    assert_eq!(contents(&table, SERIES).await, model);
    let replayed = model.values().filter(|tag| *tag == "replayed").count() as u64;
    assert_eq!(replayed, 8 * 20 * SERIES);
}

/// Keys that agree on their first 16 bytes and more (long series names differing only at the
/// end) are still written in order, duplicates resolved to the later put.
#[tokio::test]
async fn long_common_key_prefixes_sort_and_deduplicate() {
    let dir = tempfile::tempdir().unwrap();
    let table = LsmItemTable::open(dir.path(), Durability::Buffered, 4 * MIB).unwrap();
    table.ensure_table(&schema()).await.unwrap();
    let name = |s: u64| format!("a-series-name-longer-than-sixteen-bytes-{s:04}");
    let mk = |s: u64, t: u64, tag: &str| {
        Item::from([
            ("series", AttributeValue::S(name(s))),
            ("t", AttributeValue::N(t.to_string())),
            ("tag", AttributeValue::S(tag.to_string())),
        ])
    };
    // Newest first within the batch, every key twice: the second copy must win.
    let mut items = Vec::new();
    for round in ["first", "second"] {
        for t in (0..40u64).rev() {
            for s in (0..50u64).rev() {
                items.push(mk(s, t * 1_000_003, round));
            }
        }
    }
    assert!(items.len() >= INGEST_MIN_ITEMS);
    table.batch_put("Series", items).await.unwrap();
    assert_eq!(table.count("Series").await.unwrap(), 50 * 40);
    for s in [0u64, 17, 49] {
        let got = table
            .query(&ItemQuery {
                table: "Series".into(),
                partition: AttributeValue::S(name(s)),
                sort_from: None,
                sort_to: None,
                limit: None,
            })
            .await
            .unwrap();
        let times: Vec<u64> = got
            .iter()
            .map(|i| match &i["t"] {
                AttributeValue::N(t) => t.parse().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(times, (0..40u64).map(|t| t * 1_000_003).collect::<Vec<_>>());
        assert!(
            got.iter()
                .all(|i| i["tag"] == AttributeValue::S("second".into()))
        );
    }
}
