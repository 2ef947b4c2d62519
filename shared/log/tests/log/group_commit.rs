//! Concurrent producers through group commit: one fdatasync per batch, every producer's
//! records whole and in its order. (How many requests share a sync depends on the disk's
//! speed; the crate's unit test `tests::group_commit` holds a sync to count that exactly, and
//! `log_bench` measures it.)

use std::sync::Arc;
use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{ShardId, StartingPosition};
use shardline_core::time::ManualClock;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_share_fsyncs() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = Arc::new(open(dir.path(), options(&clock)).await);
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let producers = 16;
    let calls = 20;
    // Producers start each round together, as concurrent callers do under load.
    let barrier = Arc::new(tokio::sync::Barrier::new(producers as usize));
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (log, barrier) = (log.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            for c in 0..calls {
                barrier.wait().await;
                let e = (0..50)
                    .map(|i| entry(&format!("p{p}"), format!("{p}-{c}-{i}")))
                    .collect();
                put_ok(&log, "s", e).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    let st = &log.shard_stats("s").await.expect("stats")[0];
    assert_eq!(st.appends, producers * calls);
    assert_eq!(st.next_offset, producers * calls * 50);
    assert_eq!(st.syncs, st.batches, "one fdatasync per batch");
    assert!(st.batches <= st.appends);
    let all = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    assert_eq!(all.len() as u64, producers * calls * 50);
    for p in 0..producers {
        let mine: Vec<_> = all
            .iter()
            .filter(|r| r.partition_key == format!("p{p}"))
            .map(|r| r.data.clone())
            .collect();
        let want: Vec<_> = (0..calls)
            .flat_map(|c| (0..50).map(move |i| format!("{p}-{c}-{i}").into_bytes()))
            .collect();
        assert_eq!(mine, want, "producer {p}'s records in its order");
    }
}
