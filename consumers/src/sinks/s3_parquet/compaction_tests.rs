//! The manifest stays one range per stretch read, and replays over it still leave each row
//! exactly once. The runtime's side is played here: each batch's valid records go to `write`,
//! then the whole stretch (dead letters included) to `handed`, as `runtime::read` does.

use shardline_core::ports::ObjectStore;
use shardline_core::{SequenceNumber, ShardId};
use std::collections::BTreeSet;
use std::sync::Arc;

use super::manifest::{ShardManifest, Start};
use super::tests::{DAY0_MS, config, record, row_multiset, seq, store};
use super::{S3ParquetConfig, S3ParquetSink};
use crate::Sink;

/// Hands offsets `from..to` of shard 0 in batches of `batch`, the offsets in `dead` being
/// dead letters (never written), continuing after `after`; then force-flushes.
async fn hand(
    sink: &mut S3ParquetSink,
    after: Option<u64>,
    from: u64,
    to: u64,
    batch: u64,
    dead: &BTreeSet<u64>,
) {
    let mut after = after.map(|a| seq(0, a));
    let mut start = from;
    while start < to {
        let end = (start + batch).min(to);
        let valid: Vec<_> = (start..end)
            .filter(|o| !dead.contains(o))
            .map(|o| record(0, o, DAY0_MS))
            .collect();
        if !valid.is_empty() {
            sink.write(ShardId(0), &valid, 0).await.expect("write");
        }
        let (first, last) = (seq(0, start), seq(0, end - 1));
        sink.handed(ShardId(0), after.as_ref(), &first, &last);
        after = Some(last);
        start = end;
    }
    sink.flush(0, true).await.expect("flush");
}

async fn manifest(store: &dyn ObjectStore) -> (ShardManifest, usize) {
    let cfg = S3ParquetConfig::default();
    let key = ShardManifest::key(&cfg.prefix, ShardId(0));
    let bytes = store
        .get(&cfg.bucket, &key)
        .await
        .expect("get")
        .expect("manifest");
    let m = ShardManifest::load(store, &cfg.bucket, &cfg.prefix, ShardId(0))
        .await
        .expect("load");
    (m, bytes.len())
}

fn sink(store: &Arc<dyn ObjectStore>) -> S3ParquetSink {
    // A buffer of one record: every batch is its own flush.
    S3ParquetSink::new(config(1), Arc::clone(store)).expect("sink")
}

fn ranges(m: &ShardManifest) -> Vec<(Start, SequenceNumber)> {
    m.ranges()
        .iter()
        .map(|r| (r.start.clone(), r.last.clone()))
        .collect()
}

#[tokio::test]
async fn a_shard_read_through_dead_letters_and_restarts_keeps_one_range() {
    let (_dir, store) = store();
    let dead: BTreeSet<u64> = [37, 38, 120, 195, 196, 197, 198, 199].into();
    let mut first = sink(&store);
    hand(&mut first, None, 0, 200, 10, &dead).await;
    assert!(first.stats().flushes >= 19, "{:?}", first.stats());
    let (m, bytes) = manifest(store.as_ref()).await;
    // Dead letters at the end included: the stretch is committed through offset 199.
    assert_eq!(ranges(&m), [(Start::At(seq(0, 0)), seq(0, 199))]);
    assert_eq!(m.rows(), 192);
    drop(first);

    // Restarts from the checkpoint, 40 of them, each a few flushes: still one range, and the
    // manifest's size does not grow with them.
    let mut next = 200;
    for _ in 0..40 {
        let mut restarted = sink(&store);
        hand(
            &mut restarted,
            Some(next - 1),
            next,
            next + 25,
            5,
            &[next + 3].into(),
        )
        .await;
        next += 25;
    }
    let (m, after_restarts) = manifest(store.as_ref()).await;
    assert_eq!(ranges(&m), [(Start::At(seq(0, 0)), seq(0, next - 1))]);
    assert_eq!(m.rows(), 192 + 40 * 24);
    assert!(
        after_restarts <= bytes + 8,
        "{after_restarts} bytes after, {bytes} before"
    );
    let rows = row_multiset(store.as_ref()).await;
    assert_eq!(rows.len() as u64, m.rows());
    assert!(rows.values().all(|&n| n == 1), "a row written twice");
}

#[tokio::test]
async fn replays_over_merged_ranges_write_only_what_is_missing() {
    let (_dir, store) = store();
    let dead: BTreeSet<u64> = [5, 6, 150].into();
    // First read from LATEST: offsets 100..200 only.
    let mut live = sink(&store);
    hand(&mut live, None, 100, 200, 7, &dead).await;
    let (m, _) = manifest(store.as_ref()).await;
    assert_eq!(ranges(&m), [(Start::At(seq(0, 100)), seq(0, 199))]);
    drop(live);

    // A replay from the start with other batch boundaries: 0..100 are written, the rest is
    // found covered; the ranges join.
    let mut replay = sink(&store);
    hand(&mut replay, None, 0, 200, 13, &dead).await;
    assert_eq!(replay.stats().rows, 98, "{:?}", replay.stats());
    assert_eq!(replay.stats().skipped_covered, 99);
    let (m, _) = manifest(store.as_ref()).await;
    assert_eq!(ranges(&m), [(Start::At(seq(0, 0)), seq(0, 199))]);

    // Once more, from the middle of an earlier flush: nothing new.
    let mut again = sink(&store);
    hand(&mut again, Some(41), 42, 200, 50, &dead).await;
    assert_eq!(again.stats().rows, 0);
    let rows = row_multiset(store.as_ref()).await;
    assert_eq!(rows.len(), 197);
    assert!(rows.values().all(|&n| n == 1), "a row written twice");
}

#[tokio::test]
async fn a_stretch_never_read_stays_a_gap_until_it_is_read() {
    let (_dir, store) = store();
    let none = BTreeSet::new();
    let mut a = sink(&store);
    hand(&mut a, None, 0, 50, 10, &none).await;
    drop(a);
    // Started again at a later position without a checkpoint (AT_TIMESTAMP): 50..80 unread.
    let mut b = sink(&store);
    hand(&mut b, None, 80, 120, 10, &none).await;
    drop(b);
    let (m, _) = manifest(store.as_ref()).await;
    assert_eq!(
        ranges(&m),
        [
            (Start::At(seq(0, 0)), seq(0, 49)),
            (Start::At(seq(0, 80)), seq(0, 119))
        ]
    );
    assert!(!m.covers(&seq(0, 65)));
    let mut fill = sink(&store);
    hand(&mut fill, None, 0, 120, 30, &none).await;
    assert_eq!(fill.stats().rows, 30);
    let (m, _) = manifest(store.as_ref()).await;
    assert_eq!(ranges(&m), [(Start::At(seq(0, 0)), seq(0, 119))]);
    let rows = row_multiset(store.as_ref()).await;
    assert_eq!(rows.len(), 120);
    assert!(rows.values().all(|&n| n == 1));
}
