//! The manifest's fencing: a writer whose shard was taken over cannot save over the new
//! owner's manifest, whether it is about to stage a flush or to commit one.

use shardline_core::ShardId;
use std::sync::Arc;

use super::manifest::is_fenced;
use super::tests::{DAY0_MS, config, expected_rows, feed, records, row_multiset, store};
use super::*;
use crate::Sink;

#[tokio::test]
async fn a_writer_whose_shard_was_taken_over_writes_nothing_more_for_it() {
    let (_dir, store) = store();
    let mut old = S3ParquetSink::new(config(u64::MAX), Arc::clone(&store)).expect("sink");
    feed(&mut old, records(0, 0..10, DAY0_MS), 10).await;
    // The new owner starts from the checkpoint after record 9 and commits 10..20.
    let mut new = S3ParquetSink::new(config(u64::MAX), Arc::clone(&store)).expect("sink");
    feed(&mut new, records(0, 10..20, DAY0_MS), 10).await;
    // The old writer, paused through the takeover, still holds records 10..25.
    old.write(ShardId(0), &records(0, 10..25, DAY0_MS), 0)
        .await
        .expect("buffered");
    let err = old.flush(0, true).await.expect_err("fenced");
    assert!(is_fenced(&err), "{err}");
    assert!(
        old.write(ShardId(0), &records(0, 25..26, DAY0_MS), 0)
            .await
            .is_err(),
        "a fenced shard takes nothing more"
    );
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..20));
}

#[tokio::test]
async fn a_writer_fenced_after_writing_its_objects_leaves_the_new_owners_rows_alone() {
    let (_dir, store) = store();
    let mut old = S3ParquetSink::new(config(u64::MAX), Arc::clone(&store)).expect("sink");
    feed(&mut old, records(0, 0..10, DAY0_MS), 10).await;
    // The old writer stages 10..25 and writes its objects, then pauses before the commit.
    old.write(ShardId(0), &records(0, 10..25, DAY0_MS), 0)
        .await
        .expect("buffered");
    old.flush_without_commit(ShardId(0))
        .await
        .expect("staged and written");
    // The new owner reconciles the pending flush (adopting it: every object exists), so it
    // goes on after 24; then commits 25..30.
    let mut new = S3ParquetSink::new(config(u64::MAX), Arc::clone(&store)).expect("sink");
    feed(&mut new, records(0, 10..30, DAY0_MS), 10).await;
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..30));
    // The old writer's commit is refused; its objects are the new owner's now and stay.
    let err = old.flush(0, true).await.expect_err("fenced");
    assert!(is_fenced(&err), "{err}");
    assert_eq!(row_multiset(store.as_ref()).await, expected_rows(0, 0..30));
}
