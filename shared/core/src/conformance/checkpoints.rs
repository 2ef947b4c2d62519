//! Conformance of [`CheckpointStore`]: round trips, lease counters, conditional writes,
//! listing order and resets.

use super::{seq, unique};
use crate::ShardId;
use crate::error::Error;
use crate::ports::{CheckpointKey, CheckpointStore};

fn key(consumer: &str, stream: &str, shard: u32) -> CheckpointKey {
    CheckpointKey {
        consumer: consumer.to_string(),
        stream: stream.to_string(),
        shard: ShardId(shard),
    }
}

/// Runs the checkpoint store suite with fresh consumer names.
///
/// # Panics
/// When the store breaks the [`CheckpointStore`] contract; the message says where.
pub async fn checkpoint_store(store: &dyn CheckpointStore) {
    let consumer = unique("conformance-consumer");
    let other = unique("conformance-other");
    let k0 = key(&consumer, "metrics", 0);

    let get = |k: CheckpointKey| async move {
        store
            .get(&k)
            .await
            .unwrap_or_else(|e| panic!("checkpoint store: get({k:?}) failed: {e}"))
    };
    assert_eq!(
        get(k0.clone()).await,
        None,
        "checkpoint store: a key never written must read as None"
    );

    // Unconditional write, then read back.
    let first = store
        .put(&k0, &seq(0, 10), Some("worker-a"), None)
        .await
        .unwrap_or_else(|e| panic!("checkpoint store: first put failed: {e}"));
    assert_eq!(
        first.lease_counter, 1,
        "checkpoint store: the first write must leave lease counter 1"
    );
    assert_eq!(
        first.sequence_number,
        seq(0, 10),
        "checkpoint store: put must return the sequence number written"
    );
    assert_eq!(
        first.lease_owner.as_deref(),
        Some("worker-a"),
        "checkpoint store: put must store the owner"
    );
    assert_eq!(
        get(k0.clone()).await,
        Some(first.clone()),
        "checkpoint store: get must return what put returned"
    );

    // Conditional writes: the right counter wins, a stale one conflicts and changes nothing.
    let second = store
        .put(&k0, &seq(0, 20), Some("worker-a"), Some(1))
        .await
        .unwrap_or_else(|e| {
            panic!("checkpoint store: conditional put with the current counter failed: {e}")
        });
    assert_eq!(
        second.lease_counter, 2,
        "checkpoint store: each write must bump the lease counter by one"
    );
    match store.put(&k0, &seq(0, 30), Some("worker-b"), Some(1)).await {
        Err(Error::Conflict(_)) => {}
        other => panic!(
            "checkpoint store: a put with a stale expected counter must fail with Conflict, got {other:?}"
        ),
    }
    let after = get(k0.clone()).await;
    assert_eq!(
        after,
        Some(second.clone()),
        "checkpoint store: a conflicting put must leave the checkpoint unchanged"
    );

    // A missing checkpoint counts as counter 0.
    let k1 = key(&consumer, "metrics", 1);
    match store.put(&k1, &seq(1, 5), None, Some(3)).await {
        Err(Error::Conflict(_)) => {}
        other => panic!(
            "checkpoint store: expected counter 3 on a missing checkpoint must conflict, got {other:?}"
        ),
    }
    let created = store
        .put(&k1, &seq(1, 5), None, Some(0))
        .await
        .unwrap_or_else(|e| {
            panic!("checkpoint store: expected counter 0 on a missing checkpoint must succeed: {e}")
        });
    assert_eq!(
        (created.lease_counter, created.lease_owner),
        (1, None),
        "checkpoint store: conditional create"
    );

    // Racing conditional writers: exactly one wins.
    let race = |owner: &'static str| {
        let k0 = k0.clone();
        async move { store.put(&k0, &seq(0, 40), Some(owner), Some(2)).await }
    };
    let results = tokio::join!(race("w1"), race("w2"), race("w3"), race("w4"));
    let results = [results.0, results.1, results.2, results.3];
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Conflict(_))))
        .count();
    assert_eq!(
        (wins, conflicts),
        (1, 3),
        "checkpoint store: of 4 racing writers expecting the same counter, exactly one must win and 3 conflict: {results:?}"
    );
    assert_eq!(
        get(k0.clone()).await.map(|c| c.lease_counter),
        Some(3),
        "checkpoint store: the race winner's write must be stored"
    );

    // Listing: sorted by key, filtered by consumer.
    store
        .put(&key(&consumer, "alerts", 2), &seq(2, 1), None, None)
        .await
        .unwrap_or_else(|e| panic!("checkpoint store: put failed: {e}"));
    store
        .put(&key(&other, "metrics", 0), &seq(0, 99), None, None)
        .await
        .unwrap_or_else(|e| panic!("checkpoint store: put failed: {e}"));
    let listed = store
        .list(Some(&consumer))
        .await
        .unwrap_or_else(|e| panic!("checkpoint store: list failed: {e}"));
    let keys: Vec<(String, u32)> = listed
        .iter()
        .map(|(k, _)| (k.stream.clone(), k.shard.0))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("alerts".to_string(), 2),
            ("metrics".to_string(), 0),
            ("metrics".to_string(), 1)
        ],
        "checkpoint store: list(consumer) must return that consumer's checkpoints sorted by stream, shard"
    );
    assert!(
        listed.iter().all(|(k, _)| k.consumer == consumer),
        "checkpoint store: list(consumer) returned another consumer's checkpoint"
    );
    let everything = store
        .list(None)
        .await
        .unwrap_or_else(|e| panic!("checkpoint store: list(None) failed: {e}"));
    let ours: Vec<&CheckpointKey> = everything
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.consumer == consumer || k.consumer == other)
        .collect();
    assert_eq!(
        ours.len(),
        4,
        "checkpoint store: list(None) must include every consumer"
    );
    assert!(
        everything.windows(2).all(|w| w[0].0 <= w[1].0),
        "checkpoint store: list(None) must be sorted by key"
    );

    // Reset: one consumer's one stream, all shards.
    let removed = store
        .reset(&consumer, "metrics")
        .await
        .unwrap_or_else(|e| panic!("checkpoint store: reset failed: {e}"));
    assert_eq!(
        removed, 2,
        "checkpoint store: reset must report how many checkpoints it removed"
    );
    assert_eq!(
        get(k0.clone()).await,
        None,
        "checkpoint store: a reset checkpoint must read as None"
    );
    assert!(
        get(key(&consumer, "alerts", 2)).await.is_some(),
        "checkpoint store: reset must keep the consumer's other streams"
    );
    assert!(
        get(key(&other, "metrics", 0)).await.is_some(),
        "checkpoint store: reset must keep other consumers' checkpoints"
    );
    let again = store
        .reset(&consumer, "metrics")
        .await
        .unwrap_or_else(|e| panic!("checkpoint store: second reset failed: {e}"));
    assert_eq!(
        again, 0,
        "checkpoint store: resetting nothing removes nothing"
    );
}
