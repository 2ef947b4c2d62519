//! The item table at pipeline scale: puts `BATCHES` batches of 40,000 InfraMetrics-like items
//! (4,000 series, one item per series per second), then times series queries (whole series
//! and one-minute ranges) and a count, and prints the table's runs.
//!
//! `cargo run --profile fast -p shardline-local --example table_bench -- [BATCHES] [CACHE_MIB]`
//! (defaults 125, i.e. 5M items, and the embedded backends' table cache; a fresh directory
//! under the system temp dir, removed afterwards).

use std::time::Instant;

use shardline_core::ports::{AttributeValue, Item, ItemQuery, ItemTable, KeyType, TableSchema};
use shardline_local::{Durability, LocalOptions, LsmItemTable};

const SERIES: i64 = 4_000;
const PER_BATCH: i64 = 40_000;
const START_MS: i64 = 1_771_459_200_000;

fn item(n: i64) -> Item {
    let (series, second) = (n % SERIES, n / SERIES);
    Item::from([
        (
            "metric_id".to_string(),
            AttributeValue::S(format!("cpu-i-{series:06}")),
        ),
        (
            "timestamp".to_string(),
            AttributeValue::N((START_MS + second * 1_000).to_string()),
        ),
        (
            "instance_id".to_string(),
            AttributeValue::S(format!("i-{series:06}")),
        ),
        ("region".to_string(), AttributeValue::S("eu-west-1".into())),
        (
            "sequence_number".to_string(),
            AttributeValue::S(format!("{:056}", n * 7_919)),
        ),
        ("value".to_string(), AttributeValue::N("42.5".into())),
    ])
}

fn series(q: i64) -> AttributeValue {
    AttributeValue::S(format!("cpu-i-{:06}", q * 7_919 % SERIES))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let batches: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(125);
    let cache_bytes = args
        .next()
        .map(|a| a.parse::<u64>().map(|mib| mib * 1024 * 1024))
        .transpose()?
        .unwrap_or(LocalOptions::default().table_cache_size);
    let dir = std::env::temp_dir().join(format!("shardline-table-bench-{}", std::process::id()));
    let table = LsmItemTable::open(&dir, Durability::Fsync, cache_bytes)?;
    let schema = TableSchema {
        name: "InfraMetrics".into(),
        partition_key: ("metric_id".into(), KeyType::S),
        sort_key: Some(("timestamp".into(), KeyType::N)),
    };
    table.ensure_table(&schema).await?;
    let started = Instant::now();
    for batch in 0..batches {
        let items: Vec<Item> = (0..PER_BATCH)
            .map(|i| item(batch * PER_BATCH + i))
            .collect();
        table.batch_put("InfraMetrics", items).await?;
    }
    let items = batches * PER_BATCH;
    println!(
        "put {items} items in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    table.merge_runs()?;
    println!("runs (tiers, oldest first): {:?}", table.run_tiers());
    let seconds = items / SERIES;
    for round in 1..=2 {
        let started = Instant::now();
        let mut read = 0;
        for q in 0..400 {
            read += table
                .query(&ItemQuery {
                    table: "InfraMetrics".into(),
                    partition: series(q),
                    sort_from: None,
                    sort_to: None,
                    limit: None,
                })
                .await?
                .len();
        }
        let whole = started.elapsed().as_secs_f64() * 1000.0 / 400.0;
        let started = Instant::now();
        let from = START_MS + seconds / 2 * 1_000;
        let mut ranged = 0;
        for q in 0..400 {
            ranged += table
                .query(&ItemQuery {
                    table: "InfraMetrics".into(),
                    partition: series(q),
                    sort_from: Some(AttributeValue::N(from.to_string())),
                    sort_to: Some(AttributeValue::N((from + 59_000).to_string())),
                    limit: None,
                })
                .await?
                .len();
        }
        let minute = started.elapsed().as_secs_f64() * 1000.0 / 400.0;
        println!(
            "round {round}: whole series {whole:.3} ms/query ({read} items), one minute \
             {minute:.3} ms/query ({ranged} items)"
        );
    }
    let started = Instant::now();
    let count = table.count("InfraMetrics").await?;
    println!("count {count} in {:.2} s", started.elapsed().as_secs_f64());
    drop(table);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
