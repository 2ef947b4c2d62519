//! A small time-series table for item table tests: series `sNNN`, numeric time `t`, a `tag`.

use std::collections::BTreeMap;

use shardline_core::ports::{AttributeValue, Item, ItemQuery, ItemTable, KeyType, TableSchema};
use shardline_local::LsmItemTable;

/// The table `Series`: partition key `series` (S), sort key `t` (N).
pub fn schema() -> TableSchema {
    TableSchema {
        name: "Series".into(),
        partition_key: ("series".into(), KeyType::S),
        sort_key: Some(("t".into(), KeyType::N)),
    }
}

/// The item of (`series`, `t`) carrying `tag`.
pub fn item(series: u64, t: u64, tag: &str) -> Item {
    Item::from([
        ("series", AttributeValue::S(format!("s{series:03}"))),
        ("t", AttributeValue::N(t.to_string())),
        ("tag", AttributeValue::S(tag.to_string())),
    ])
}

/// Every (series, t) -> tag the table holds for series `0..series`, read series by series;
/// fails if a series comes back out of order or with a key twice.
pub async fn contents(table: &LsmItemTable, series: u64) -> BTreeMap<(u64, u64), String> {
    let mut out = BTreeMap::new();
    for s in 0..series {
        let items = table
            .query(&ItemQuery {
                table: "Series".into(),
                partition: AttributeValue::S(format!("s{s:03}")),
                sort_from: None,
                sort_to: None,
                limit: None,
            })
            .await
            .unwrap();
        let mut last = None;
        for item in items {
            let AttributeValue::N(t) = &item["t"] else {
                panic!("t is {:?}", item["t"]);
            };
            let t: u64 = t.parse().unwrap();
            assert!(last < Some(t), "series {s}: t={t} out of order or twice");
            last = Some(t);
            let AttributeValue::S(tag) = &item["tag"] else {
                panic!("tag is {:?}", item["tag"]);
            };
            out.insert((s, t), tag.clone());
        }
    }
    out
}
