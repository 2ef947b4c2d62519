//! Conformance of [`LeaseStore`]: creation once, counters that move by one per change,
//! conditional takes, renewals and checkpoints, owner switches, eviction, lineage, listing.

use super::{seq, unique};
use crate::ShardId;
use crate::error::Error;
use crate::lease::{Lease, LeaseCheckpoint, LeaseStore};
use crate::ports::CheckpointKey;

fn key(consumer: &str, stream: &str, shard: u32) -> CheckpointKey {
    CheckpointKey {
        consumer: consumer.to_string(),
        stream: stream.to_string(),
        shard: ShardId(shard),
    }
}

fn conflict<T: std::fmt::Debug>(r: crate::Result<T>, what: &str) {
    match r {
        Err(Error::Conflict(_)) => {}
        other => panic!("lease store: {what} must fail with Conflict, got {other:?}"),
    }
}

/// Runs the lease store suite with a fresh consumer name.
///
/// # Panics
/// When the store breaks the [`LeaseStore`] contract; the message says where.
pub async fn lease_store(store: &dyn LeaseStore) {
    let consumer = unique("conformance-leases");
    let k0 = key(&consumer, "metrics", 0);
    let k1 = key(&consumer, "metrics", 1);
    let k2 = key(&consumer, "metrics", 2);
    let get = |k: CheckpointKey| async move {
        store
            .get_lease(&k)
            .await
            .unwrap_or_else(|e| panic!("lease store: get_lease({k:?}) failed: {e}"))
    };
    assert_eq!(
        get(k0.clone()).await,
        None,
        "lease store: a lease never created must read as None"
    );

    // Creation happens once; parents are kept.
    for (k, parents) in [
        (&k0, vec![]),
        (&k1, vec![]),
        (&k2, vec![ShardId(0), ShardId(1)]),
    ] {
        let created = store
            .create_lease_if_absent(k, LeaseCheckpoint::TrimHorizon, parents)
            .await
            .unwrap_or_else(|e| panic!("lease store: create_lease_if_absent failed: {e}"));
        assert!(created, "lease store: a new lease must be created");
    }
    let again = store
        .create_lease_if_absent(&k0, LeaseCheckpoint::Latest, vec![])
        .await
        .unwrap_or_else(|e| panic!("lease store: second create failed: {e}"));
    assert!(
        !again,
        "lease store: creating an existing lease must report false"
    );
    let fresh = get(k0.clone()).await;
    assert_eq!(
        fresh,
        Some(Lease::new(k0.clone(), LeaseCheckpoint::TrimHorizon, vec![])),
        "lease store: a new lease has counter 1, no owner, and is not replaced by a second create"
    );
    assert_eq!(
        get(k2.clone())
            .await
            .map(|l| l.parent_shard_ids)
            .unwrap_or_default(),
        vec![ShardId(0), ShardId(1)],
        "lease store: parent shard ids must round trip"
    );

    // Take: counter condition, owner switch counted.
    let taken = store
        .take_lease(&k0, "worker-a", 1)
        .await
        .unwrap_or_else(|e| panic!("lease store: take with the current counter failed: {e}"));
    assert_eq!(
        (
            taken.lease_counter,
            taken.lease_owner.as_deref(),
            taken.owner_switches_since_checkpoint
        ),
        (2, Some("worker-a"), 1),
        "lease store: a take sets the owner, bumps the counter, counts an owner switch"
    );
    conflict(
        store.take_lease(&k0, "worker-b", 1).await,
        "a take with a stale counter",
    );
    assert_eq!(
        get(k0.clone()).await,
        Some(taken.clone()),
        "lease store: a conflicting take must change nothing"
    );

    // Renew: owner and counter must both match.
    let renewed = store
        .renew_lease(&k0, "worker-a", 2)
        .await
        .unwrap_or_else(|e| panic!("lease store: renew by the owner failed: {e}"));
    assert_eq!(
        (
            renewed.lease_counter,
            renewed.owner_switches_since_checkpoint
        ),
        (3, 1),
        "lease store: a renewal moves only the counter"
    );
    conflict(
        store.renew_lease(&k0, "worker-b", 3).await,
        "a renewal by a worker that does not own the lease",
    );
    conflict(
        store.renew_lease(&k0, "worker-a", 2).await,
        "a renewal with a stale counter",
    );

    // Checkpoint: by the owner only; resets owner switches.
    let position = LeaseCheckpoint::Sequence(seq(0, 41));
    conflict(
        store
            .checkpoint_lease(&k0, "worker-b", 3, position.clone())
            .await,
        "a checkpoint by a worker that does not own the lease",
    );
    let checkpointed = store
        .checkpoint_lease(&k0, "worker-a", 3, position.clone())
        .await
        .unwrap_or_else(|e| panic!("lease store: checkpoint by the owner failed: {e}"));
    assert_eq!(
        (
            checkpointed.checkpoint.clone(),
            checkpointed.lease_counter,
            checkpointed.owner_switches_since_checkpoint
        ),
        (position.clone(), 4, 0),
        "lease store: a checkpoint stores the position, bumps the counter, resets owner switches"
    );

    // Another worker takes the expired lease; the old owner can no longer checkpoint.
    let stolen = store
        .take_lease(&k0, "worker-b", 4)
        .await
        .unwrap_or_else(|e| panic!("lease store: take of an expired lease failed: {e}"));
    assert_eq!(
        (
            stolen.lease_owner.as_deref(),
            stolen.owner_switches_since_checkpoint,
            stolen.checkpoint.clone()
        ),
        (Some("worker-b"), 1, position.clone()),
        "lease store: a take by another worker keeps the checkpoint and counts the switch"
    );
    conflict(
        store
            .checkpoint_lease(&k0, "worker-a", 5, LeaseCheckpoint::ShardEnd)
            .await,
        "a checkpoint by the worker that lost the lease",
    );

    // Racing takes of one lease: exactly one wins.
    let race = |owner: &'static str| {
        let k1 = k1.clone();
        async move { store.take_lease(&k1, owner, 1).await }
    };
    let results = tokio::join!(race("w1"), race("w2"), race("w3"));
    let results = [results.0, results.1, results.2];
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        wins, 1,
        "lease store: of 3 workers taking one lease with the same counter exactly one must win: {results:?}"
    );

    // Evict, children, listing, delete.
    let evicted = store
        .evict_lease(&k0, 5)
        .await
        .unwrap_or_else(|e| panic!("lease store: evict failed: {e}"));
    assert_eq!(
        (evicted.lease_owner.clone(), evicted.lease_counter),
        (None, 6),
        "lease store: an evicted lease has no owner and a new counter"
    );
    let with_children = store
        .set_child_shards(&k0, 6, vec![ShardId(3), ShardId(4)])
        .await
        .unwrap_or_else(|e| panic!("lease store: set_child_shards failed: {e}"));
    assert_eq!(
        with_children.child_shard_ids,
        vec![ShardId(3), ShardId(4)],
        "lease store: child shard ids must round trip"
    );
    store
        .create_lease_if_absent(
            &key(&consumer, "other-stream", 0),
            LeaseCheckpoint::Latest,
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("lease store: create failed: {e}"));
    let listed = store
        .list_leases(&consumer, "metrics")
        .await
        .unwrap_or_else(|e| panic!("lease store: list_leases failed: {e}"));
    let shards: Vec<u32> = listed.iter().map(|l| l.key.shard.0).collect();
    assert_eq!(
        shards,
        vec![0, 1, 2],
        "lease store: list_leases returns the consumer's leases on that stream, sorted by shard"
    );
    assert_eq!(
        listed[0], with_children,
        "lease store: listed leases are as stored"
    );
    conflict(
        store.delete_lease(&k2, 7).await,
        "a delete with a stale counter",
    );
    store
        .delete_lease(&k2, 1)
        .await
        .unwrap_or_else(|e| panic!("lease store: delete failed: {e}"));
    assert_eq!(
        get(k2.clone()).await,
        None,
        "lease store: a deleted lease reads as None"
    );
    conflict(
        store.take_lease(&k2, "worker-a", 1).await,
        "a take of a deleted lease",
    );
}
