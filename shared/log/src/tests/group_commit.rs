//! Group commit, made deterministic: the writer is held inside one batch's `fdatasync` while
//! sixteen producers queue, so all sixteen share the next sync.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::fault::{Action, Gate, Point, arm};
use crate::log::lock;

/// Requests waiting in shard 0's queue.
fn queued(log: &Log) -> usize {
    let s = log.inner.stream("s").expect("stream");
    let sender = lock(&s.shards[0].sender).clone().expect("open shard");
    crate::writer::QUEUE_DEPTH - sender.capacity()
}

/// Polls `cond` every millisecond for at most ten seconds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queued_during_a_sync_share_the_next_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(dir.path()).await);
    put(&log, "warm", 1).await;
    let gate = Gate::default();
    let _held = arm(
        Point::SegmentSync,
        dir.path(),
        1,
        Action::Wait(gate.clone()),
    );
    let first = {
        let log = log.clone();
        tokio::spawn(async move { put(&log, "held", 1).await })
    };
    eventually("the writer reaching its sync", || gate.reached() == 1).await;
    let producers: Vec<_> = (0..16)
        .map(|p| {
            let log = log.clone();
            tokio::spawn(async move { put(&log, &format!("p{p}"), 5).await })
        })
        .collect();
    eventually("16 requests queued", || queued(&log) == 16).await;
    gate.open();
    assert!(first.await.expect("held put").refused.is_empty());
    for p in producers {
        let o = p.await.expect("producer");
        assert!(o.refused.is_empty(), "{:?}", o.refused);
        assert!(
            o.acked.windows(2).all(|w| w[1].0 == w[0].0 + 1),
            "a request's records are consecutive"
        );
    }
    let shard = &log.inner.stream("s").expect("stream").shards[0].shard;
    let (appends, batches, syncs) = (
        shard.appends.load(Ordering::Relaxed),
        shard.batches.load(Ordering::Relaxed),
        shard.syncs.load(Ordering::Relaxed),
    );
    assert_eq!(
        (appends, batches, syncs),
        (18, 3, 3),
        "warm-up, the held batch, then one batch and one sync for all sixteen"
    );
    assert_eq!(read_all(&log).await.len(), 1 + 1 + 16 * 5);
}
