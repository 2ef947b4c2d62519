//! The item table's runs: a full run closes, closed runs of one tier merge, and through it
//! all a key reads back as its latest put, once; the layout survives a reopen, a run left
//! unfinished is deleted at open, and a kill -9 during writes and merges loses nothing
//! acknowledged.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::kill::run_and_kill;
use common::series::{contents, item, schema};
use shardline_core::ports::{AttributeValue, Item, ItemQuery, ItemTable};
use shardline_local::table::TableMemory;
use shardline_local::table::runs::RunPolicy;
use shardline_local::{Durability, LsmItemTable};

const MIB: u64 = 1024 * 1024;
const SERIES: u64 = 40;

fn small_runs() -> RunPolicy {
    RunPolicy {
        run_bytes: 64 * 1024,
        merge_runs: 3,
    }
}

fn open(dir: &Path, policy: RunPolicy) -> LsmItemTable {
    let memory = TableMemory {
        memtable_bytes: MIB,
        write_buffer_bytes: 4 * MIB,
    };
    LsmItemTable::open_with_runs(dir, Durability::Buffered, 4 * MIB, memory, policy).unwrap()
}

/// Puts `keys` with `tag` and applies them to `model`.
async fn put(
    table: &LsmItemTable,
    model: &mut BTreeMap<(u64, u64), String>,
    keys: impl Iterator<Item = (u64, u64)>,
    tag: &str,
) {
    let items: Vec<Item> = keys
        .map(|(s, t)| {
            model.insert((s, t), tag.to_string());
            item(s, t, tag)
        })
        .collect();
    table.batch_put("Series", items).await.unwrap();
}

#[tokio::test]
async fn runs_close_and_merge_while_every_key_reads_back_as_its_latest_put() {
    let dir = tempfile::tempdir().unwrap();
    let table = open(dir.path(), small_runs());
    table.ensure_table(&schema()).await.unwrap();
    let mut model = BTreeMap::new();
    for round in 0..36u64 {
        // Even rounds: 1,600 new items (a sorted table of their own); odd rounds: 200 new ones
        // through the journal. Every third round also puts again 150 keys of earlier rounds,
        // so a key's latest item is in a newer run than its first.
        let n = if round % 2 == 0 { 1_600 } else { 200 };
        let new = (0..n).map(|i| (i % SERIES, round * 10_000 + i / SERIES));
        put(&table, &mut model, new, &format!("r{round}")).await;
        if round % 3 == 2 {
            let old = (0..150).map(|i| (i % SERIES, (round / 2) * 10_000 + i / SERIES));
            put(&table, &mut model, old, &format!("again{round}")).await;
        }
        if round % 9 == 8 {
            // Read while the background thread may be merging.
            assert_eq!(contents(&table, SERIES).await, model, "after round {round}");
        }
    }
    table.merge_runs().unwrap();
    let tiers = table.run_tiers();
    assert!(
        tiers.iter().any(|&t| t >= 2),
        "runs merged twice over: {tiers:?}"
    );
    let closed = &tiers[..tiers.len() - 1];
    for tier in 0..=*closed.iter().max().unwrap() {
        let n = closed.iter().filter(|&&t| t == tier).count();
        assert!(
            n < 3,
            "{n} closed runs of tier {tier} left unmerged: {tiers:?}"
        );
    }
    assert!(
        tiers.windows(2).all(|w| w[0] >= w[1]),
        "older runs have higher tiers: {tiers:?}"
    );
    assert_eq!(contents(&table, SERIES).await, model);
    assert_eq!(table.count("Series").await.unwrap(), model.len() as u64);

    // A series' range query spans runs too.
    let some = table
        .query(&ItemQuery {
            table: "Series".into(),
            partition: AttributeValue::S("s007".into()),
            sort_from: Some(AttributeValue::N("20000".into())),
            sort_to: Some(AttributeValue::N("160000".into())),
            limit: Some(25),
        })
        .await
        .unwrap();
    let expected: Vec<String> = model
        .range((7, 20_000)..=(7, 160_000))
        .take(25)
        .map(|(_, tag)| tag.clone())
        .collect();
    let got: Vec<String> = some
        .iter()
        .map(|i| match &i["tag"] {
            AttributeValue::S(s) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, expected);

    drop(table);
    let table = open(dir.path(), small_runs());
    assert_eq!(table.run_tiers(), tiers, "the layout survives a reopen");
    assert_eq!(contents(&table, SERIES).await, model);
    assert_eq!(table.count("Series").await.unwrap(), model.len() as u64);
}

#[tokio::test]
async fn a_run_the_manifest_does_not_name_is_deleted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    {
        let table = open(dir.path(), small_runs());
        table.ensure_table(&schema()).await.unwrap();
        put(
            &table,
            &mut model,
            (0..500).map(|i| (i % SERIES, i)),
            "kept",
        )
        .await;
    }
    // What a merge or a new run interrupted by a crash leaves: a run keyspace with items
    // (here, newer ones for the same keys) that the manifest does not list.
    {
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let orphan = db
            .keyspace("items-77", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let donor = db
            .keyspace("items", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        for entry in donor.iter() {
            let (k, _) = entry.into_inner().unwrap();
            orphan.insert(k, b"not an item".to_vec()).unwrap();
        }
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let table = open(dir.path(), small_runs());
    assert_eq!(contents(&table, SERIES).await, model);
    assert_eq!(table.count("Series").await.unwrap(), 500);
    drop(table);
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let names: Vec<String> = db
        .list_keyspace_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(
        !names.iter().any(|n| n == "items-77"),
        "the orphan is still there: {names:?}"
    );
}

const CHILD_ENV: &str = "SHARDLINE_LOCAL_RUNS_CHILD_DIR";

/// Rounds of the kill test: 1,200 items, as a sorted table of its own (odd rounds) or in
/// three journal batches of 400 (even rounds), keys of the round and, every other round,
/// keys of round `i / 2` again.
fn round_keys(i: u64) -> Vec<(u64, u64)> {
    let mut keys: Vec<(u64, u64)> = (0..1_000)
        .map(|j| (j % SERIES, i * 1_000 + j / SERIES))
        .collect();
    if i.is_multiple_of(2) {
        keys.extend((0..200).map(|j| (j % SERIES, (i / 2) * 1_000 + j / SERIES)));
    } else {
        keys.extend((1_000..1_200).map(|j| (j % SERIES, i * 1_000 + j / SERIES)));
    }
    keys
}

fn kill_policy() -> RunPolicy {
    RunPolicy {
        run_bytes: 96 * 1024,
        merge_runs: 2,
    }
}

/// The writer: runs only when the parent test starts this binary with `CHILD_ENV` set.
#[test]
fn runs_child() {
    let Some((dir, rt)) = common::kill::child(CHILD_ENV) else {
        return;
    };
    rt.block_on(async move {
        let memory = TableMemory {
            memtable_bytes: MIB,
            write_buffer_bytes: 4 * MIB,
        };
        let table =
            LsmItemTable::open_with_runs(&dir, Durability::Fsync, 4 * MIB, memory, kill_policy())
                .unwrap();
        table.ensure_table(&schema()).await.unwrap();
        for i in 1..=10_000u64 {
            let items: Vec<Item> = round_keys(i)
                .into_iter()
                .map(|(s, t)| item(s, t, &format!("r{i}")))
                .collect();
            if i % 2 == 1 {
                table.batch_put("Series", items).await.unwrap();
            } else {
                for chunk in items.chunks(400) {
                    table.batch_put("Series", chunk.to_vec()).await.unwrap();
                }
            }
            println!("ACK {i}");
        }
    });
}

#[tokio::test]
async fn a_kill_during_writes_and_merges_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let acked = run_and_kill(
        "runs_child",
        CHILD_ENV,
        dir.path(),
        40,
        Duration::from_secs(30),
    )
    .await;
    assert!(acked >= 8, "the writer acknowledged only {acked} rounds");

    let table = open(dir.path(), kill_policy());
    let tiers = table.run_tiers();
    assert!(
        tiers.iter().any(|&t| t >= 1),
        "no merge happened: {tiers:?}"
    );
    // Acknowledged rounds are there with their latest tag; the round in flight may be there
    // in part (its journal batches are separate puts), nothing else is.
    let mut expected = BTreeMap::new();
    for i in 1..=acked {
        for key in round_keys(i) {
            expected.insert(key, format!("r{i}"));
        }
    }
    let got = contents(&table, SERIES).await;
    let in_flight: std::collections::BTreeSet<(u64, u64)> =
        round_keys(acked + 1).into_iter().collect();
    for (key, tag) in &expected {
        let found = got.get(key);
        let newer =
            found.is_some_and(|t| *t == format!("r{}", acked + 1)) && in_flight.contains(key);
        assert!(
            found == Some(tag) || newer,
            "{key:?}: expected {tag}, found {found:?}"
        );
    }
    for (key, tag) in &got {
        assert!(
            expected.contains_key(key)
                || (in_flight.contains(key) && *tag == format!("r{}", acked + 1)),
            "{key:?} = {tag} was never acknowledged"
        );
    }
    assert_eq!(table.count("Series").await.unwrap(), got.len() as u64);
}
