//! Conformance of [`ItemTable`]: schemas, idempotent batch puts of any size, numeric and
//! string sort order, inclusive bounds, limits, counts and attribute round trips.

use super::unique;
use crate::ports::{AttributeValue, Item, ItemQuery, ItemTable, KeyType, TableSchema};

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn item(pk: &str, ts: &str, value: &str) -> Item {
    let mut item = Item::new();
    item.insert("metric_id", s(pk));
    item.insert("timestamp", n(ts));
    item.insert("value", n(value));
    item
}

fn query(
    table: &str,
    pk: &str,
    from: Option<&str>,
    to: Option<&str>,
    limit: Option<usize>,
) -> ItemQuery {
    ItemQuery {
        table: table.to_string(),
        partition: s(pk),
        sort_from: from.map(n),
        sort_to: to.map(n),
        limit,
    }
}

fn sort_values(items: &[Item]) -> Vec<f64> {
    items
        .iter()
        .map(|i| {
            i.get("timestamp")
                .and_then(AttributeValue::as_f64)
                .unwrap_or(f64::NAN)
        })
        .collect()
}

/// Runs the item table suite on fresh tables.
///
/// # Panics
/// When the table breaks the [`ItemTable`] contract; the message says where.
pub async fn item_table(table: &dyn ItemTable) {
    let name = unique("conformance-items");
    let schema = TableSchema {
        name: name.clone(),
        partition_key: ("metric_id".into(), KeyType::S),
        sort_key: Some(("timestamp".into(), KeyType::N)),
    };
    table
        .ensure_table(&schema)
        .await
        .unwrap_or_else(|e| panic!("item table: ensure_table failed: {e}"));
    table.ensure_table(&schema).await.unwrap_or_else(|e| {
        panic!("item table: ensure_table with the same schema must succeed: {e}")
    });
    let mut changed = schema.clone();
    changed.sort_key = Some(("timestamp".into(), KeyType::S));
    assert!(
        table.ensure_table(&changed).await.is_err(),
        "item table: ensure_table with a different key schema must fail"
    );

    let run = |q: ItemQuery| async move {
        table
            .query(&q)
            .await
            .unwrap_or_else(|e| panic!("item table: query {q:?} failed: {e}"))
    };
    let count = || async {
        table
            .count(&name)
            .await
            .unwrap_or_else(|e| panic!("item table: count failed: {e}"))
    };

    assert!(
        run(query(&name, "cpu#i-1", None, None, None))
            .await
            .is_empty(),
        "item table: an empty partition must query as empty"
    );
    assert_eq!(
        count().await,
        0,
        "item table: a new table must count 0 items"
    );

    // More than one 25-item batch; sort keys spanning negatives, fractions and magnitudes,
    // inserted out of order.
    let mut sort_keys: Vec<String> = (0..50).map(|i| (i * 37 % 50 * 100).to_string()).collect();
    sort_keys.extend(
        [
            "-5",
            "-0.5",
            "0.25",
            "12.5",
            "2.5e4",
            "-1000",
            "99999999999",
            "7.125",
        ]
        .map(String::from),
    );
    let items: Vec<Item> = sort_keys.iter().map(|k| item("cpu#i-1", k, "1")).collect();
    table
        .batch_put(&name, items.clone())
        .await
        .unwrap_or_else(|e| panic!("item table: batch_put of {} items failed: {e}", items.len()));
    let other: Vec<Item> = (0..3)
        .map(|i| item("mem#i-1", &i.to_string(), "2"))
        .collect();
    table
        .batch_put(&name, other)
        .await
        .unwrap_or_else(|e| panic!("item table: batch_put failed: {e}"));
    assert_eq!(
        count().await,
        61,
        "item table: count must be the number of distinct keys put"
    );

    let all = run(query(&name, "cpu#i-1", None, None, None)).await;
    let mut expected: Vec<f64> = sort_keys.iter().filter_map(|k| k.parse().ok()).collect();
    expected.sort_by(f64::total_cmp);
    assert_eq!(
        sort_values(&all),
        expected,
        "item table: a query must return its partition's items in numeric sort-key order"
    );

    // Inclusive bounds and limits.
    let bounded = run(query(&name, "cpu#i-1", Some("-5"), Some("100"), None)).await;
    assert_eq!(
        sort_values(&bounded),
        vec![-5.0, -0.5, 0.0, 0.25, 7.125, 12.5, 100.0],
        "item table: sort bounds must be inclusive at both ends"
    );
    let limited = run(query(&name, "cpu#i-1", Some("0"), None, Some(3))).await;
    assert_eq!(
        sort_values(&limited),
        vec![0.0, 0.25, 7.125],
        "item table: limit must return the first items in sort order"
    );
    let upper_only = run(query(&name, "cpu#i-1", None, Some("-1"), None)).await;
    assert_eq!(
        sort_values(&upper_only),
        vec![-1000.0, -5.0],
        "item table: an upper bound alone must cut the partition"
    );
    assert_eq!(
        sort_values(&run(query(&name, "mem#i-1", None, None, None)).await),
        vec![0.0, 1.0, 2.0],
        "item table: partitions must not mix"
    );

    // Idempotent replays; a put replaces the item with the same key.
    table
        .batch_put(&name, items.clone())
        .await
        .unwrap_or_else(|e| panic!("item table: repeated batch_put failed: {e}"));
    assert_eq!(
        count().await,
        61,
        "item table: putting the same items again must not add items"
    );
    let mut replaced = item("cpu#i-1", "12.5", "42.5");
    replaced.insert("note", s("replaced"));
    table
        .batch_put(&name, vec![replaced.clone()])
        .await
        .unwrap_or_else(|e| panic!("item table: batch_put failed: {e}"));
    let got = run(query(&name, "cpu#i-1", Some("12.5"), Some("12.5"), None)).await;
    assert_eq!(got.len(), 1, "item table: exactly one item per key");
    assert_eq!(
        got[0].get("note"),
        Some(&s("replaced")),
        "item table: a put must replace the whole item"
    );
    assert_eq!(
        got[0].get("value").and_then(AttributeValue::as_f64),
        Some(42.5),
        "item table: replaced value"
    );

    // Attribute types round trip.
    let mut rich = item("rich", "1", "3.25");
    rich.insert("bin", AttributeValue::B(vec![0, 1, 2, 255]));
    rich.insert("flag", AttributeValue::Bool(true));
    rich.insert("nothing", AttributeValue::Null);
    rich.insert("text", s("héllo, wörld"));
    table
        .batch_put(&name, vec![rich.clone()])
        .await
        .unwrap_or_else(|e| panic!("item table: batch_put failed: {e}"));
    let back = run(query(&name, "rich", None, None, None)).await;
    assert_eq!(back.len(), 1, "item table: the item must be stored");
    for attr in ["bin", "flag", "nothing", "text", "metric_id"] {
        assert_eq!(
            back[0].get(attr),
            rich.get(attr),
            "item table: attribute {attr:?} must round trip"
        );
    }
    assert_eq!(
        back[0].get("value").and_then(AttributeValue::as_f64),
        Some(3.25),
        "item table: numbers must round trip"
    );

    // String sort keys order as strings.
    let names = unique("conformance-strings");
    let string_schema = TableSchema {
        name: names.clone(),
        partition_key: ("pk".into(), KeyType::S),
        sort_key: Some(("sk".into(), KeyType::S)),
    };
    table
        .ensure_table(&string_schema)
        .await
        .unwrap_or_else(|e| panic!("item table: ensure_table failed: {e}"));
    let words = ["b", "a", "ab", "B", "a0"];
    let rows = words
        .iter()
        .map(|w| Item::from([("pk".to_string(), s("p")), ("sk".to_string(), s(w))]))
        .collect();
    table
        .batch_put(&names, rows)
        .await
        .unwrap_or_else(|e| panic!("item table: batch_put failed: {e}"));
    let q = ItemQuery {
        table: names.clone(),
        partition: s("p"),
        sort_from: None,
        sort_to: None,
        limit: None,
    };
    let ordered: Vec<String> = run(q)
        .await
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s()).map(String::from))
        .collect();
    assert_eq!(
        ordered,
        vec!["B", "a", "a0", "ab", "b"],
        "item table: string sort keys must order by their UTF-8 bytes"
    );

    // Missing tables and malformed items are errors.
    assert!(
        table
            .query(&query(
                &unique("conformance-missing"),
                "x",
                None,
                None,
                None
            ))
            .await
            .is_err(),
        "item table: querying a missing table must fail"
    );
    let mut keyless = Item::new();
    keyless.insert("value", n("1"));
    assert!(
        table.batch_put(&name, vec![keyless]).await.is_err(),
        "item table: an item without its key attributes must be rejected"
    );
}
