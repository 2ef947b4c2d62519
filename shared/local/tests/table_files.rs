//! The item table's files: runs merged away give their disk space back (no descriptor of a
//! deleted file stays open), and the table keeps at most its configured number of table
//! files open, however many it has, while every item still reads back.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::series::{contents, item, schema};
use shardline_core::ports::{Item, ItemTable};
use shardline_local::table::runs::RunPolicy;
use shardline_local::table::{TableMemory, TableOptions};
use shardline_local::{Durability, LsmItemTable};

const MIB: u64 = 1024 * 1024;
const SERIES: u64 = 40;

fn options(open_files: usize, merge_runs: usize) -> TableOptions {
    TableOptions {
        cache_bytes: MIB,
        memory: TableMemory {
            memtable_bytes: MIB,
            write_buffer_bytes: 4 * MIB,
        },
        runs: RunPolicy {
            run_bytes: 64 * 1024,
            merge_runs,
        },
        open_files,
    }
}

/// What this process's open descriptors under `dir` point to (a deleted file's name ends
/// with " (deleted)").
fn open_files_under(dir: &Path) -> Vec<String> {
    let prefix = dir.canonicalize().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p.starts_with(&prefix))
        .collect()
}

/// Writes `rounds` batches of 1,600 new items (each a sorted table of its own), reading every
/// series back every fifth round, so the tables' descriptors are cached as reads and merges
/// open them.
async fn fill(table: &LsmItemTable, model: &mut BTreeMap<(u64, u64), String>, rounds: u64) {
    for round in 0..rounds {
        let tag = format!("r{round}");
        let items: Vec<Item> = (0..1_600u64)
            .map(|i| {
                let key = (i % SERIES, round * 10_000 + i / SERIES);
                model.insert(key, tag.clone());
                item(key.0, key.1, &tag)
            })
            .collect();
        table.batch_put("Series", items).await.unwrap();
        if round % 5 == 4 {
            assert_eq!(&contents(table, SERIES).await, model, "after round {round}");
        }
    }
}

#[tokio::test]
async fn runs_merged_away_leave_no_descriptor_of_a_deleted_file_open() {
    let dir = tempfile::tempdir().unwrap();
    let table =
        LsmItemTable::open_with_options(dir.path(), Durability::Buffered, options(256, 3)).unwrap();
    table.ensure_table(&schema()).await.unwrap();
    let mut model = BTreeMap::new();
    fill(&table, &mut model, 60).await;
    table.merge_runs().unwrap();
    let tiers = table.run_tiers();
    assert!(
        tiers.iter().any(|&t| t >= 2),
        "runs merged twice over: {tiers:?}"
    );
    // Read everything once more: the merged runs' tables are opened, the deleted ones not.
    assert_eq!(contents(&table, SERIES).await, model);

    let open = open_files_under(dir.path());
    let deleted: Vec<&String> = open.iter().filter(|p| p.ends_with(" (deleted)")).collect();
    assert!(
        deleted.is_empty(),
        "{} of {} open descriptors point to deleted files: {deleted:?}",
        deleted.len(),
        open.len()
    );
    assert!(
        open.iter().any(|p| p.contains("/tables/")),
        "the live runs' tables are open: {open:?}"
    );
    assert_eq!(table.count("Series").await.unwrap(), model.len() as u64);
}

#[tokio::test]
async fn the_table_keeps_at_most_its_bound_of_table_files_open() {
    let dir = tempfile::tempdir().unwrap();
    let bound = 16;
    // Runs are not merged (100 per merge), so the table keeps one or more tables per run.
    let table =
        LsmItemTable::open_with_options(dir.path(), Durability::Buffered, options(bound, 100))
            .unwrap();
    table.ensure_table(&schema()).await.unwrap();
    let mut model = BTreeMap::new();
    fill(&table, &mut model, 60).await;
    // Every read spans every run, more tables than the bound: files are opened again as
    // needed, and every item still reads back.
    assert_eq!(contents(&table, SERIES).await, model);
    let tables = table.table_files();
    assert!(
        tables > bound,
        "the test needs more tables ({tables}) than the bound ({bound})"
    );
    let open: Vec<String> = open_files_under(dir.path())
        .into_iter()
        .filter(|p| p.contains("/tables/"))
        .collect();
    assert!(
        open.len() <= bound,
        "{} table files open, above the bound of {bound}: {open:?}",
        open.len()
    );
}

#[test]
fn a_bound_below_sixteen_open_files_is_refused_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let Err(err) = LsmItemTable::open_with_options(dir.path(), Durability::Buffered, options(8, 3))
    else {
        panic!("a bound of 8 open files was accepted");
    };
    let text = err.to_string();
    assert!(text.contains("open_files") && text.contains('8'), "{text}");
}

#[tokio::test]
async fn no_index_block_stays_in_memory_however_many_tables_the_runs_hold() {
    let dir = tempfile::tempdir().unwrap();
    let table =
        LsmItemTable::open_with_options(dir.path(), Durability::Buffered, options(256, 100))
            .unwrap();
    table.ensure_table(&schema()).await.unwrap();
    let mut model = BTreeMap::new();
    fill(&table, &mut model, 30).await;
    // Runs are not merged (100 per merge): one or more tables per run. Index blocks are
    // read through the block cache, so memory does not grow with the tables.
    let tables = table.table_files();
    assert!(tables >= 8, "the test needs tables: {tables}");
    assert_eq!(table.pinned_bytes(), 0, "bytes pinned in {tables} tables");
    assert_eq!(contents(&table, SERIES).await, model);
}
