//! The backend-agnostic conformance suites of `shardline-core`, run against the embedded
//! stand-ins.
#![allow(clippy::unwrap_used)]

mod common;

use shardline_core::conformance;
use shardline_local::{LocalBackends, LocalOptions, OutboxNotifier};

fn open() -> (tempfile::TempDir, LocalBackends) {
    let dir = tempfile::tempdir().unwrap();
    let backends = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    (dir, backends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_conforms() {
    let (_dir, b) = open();
    conformance::object_store(b.objects.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_store_conforms() {
    let (_dir, b) = open();
    conformance::checkpoint_store(b.checkpoints.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_store_conforms() {
    let (_dir, b) = open();
    conformance::lease_store(b.leases.as_ref()).await;
}

/// A checkpoint written through a lease is what the checkpoint store reads for that shard,
/// so `up`'s views (pipeline-health, `shardline checkpoints`) see leased consumers' progress.
#[tokio::test]
async fn lease_checkpoints_are_seen_by_the_checkpoint_store() {
    use shardline_core::lease::{LeaseCheckpoint, LeaseStore};
    use shardline_core::ports::{CheckpointKey, CheckpointStore};
    use shardline_core::{SequenceParts, ShardId};
    let (_dir, b) = open();
    let key = CheckpointKey {
        consumer: "s3-parquet".into(),
        stream: "metrics".into(),
        shard: ShardId(2),
    };
    assert!(
        b.leases
            .create_lease_if_absent(&key, LeaseCheckpoint::TrimHorizon, vec![])
            .await
            .unwrap()
    );
    let taken = b.leases.take_lease(&key, "w1", 1).await.unwrap();
    assert_eq!(b.checkpoints.get(&key).await.unwrap(), None);
    let seq = SequenceParts {
        shard_index: 2,
        offset: 41,
        shard_created_secs: 1_700_000_000,
        arrival_secs: 1_700_000_041,
    }
    .encode();
    b.leases
        .checkpoint_lease(
            &key,
            "w1",
            taken.lease_counter,
            LeaseCheckpoint::Sequence(seq.clone()),
        )
        .await
        .unwrap();
    let seen = b.checkpoints.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (seen.sequence_number, seen.lease_owner.as_deref()),
        (seq, Some("w1"))
    );
    // Leases of another consumer or stream are not listed with these.
    let other = CheckpointKey {
        consumer: "s3-parquet-2".into(),
        ..key.clone()
    };
    b.leases
        .create_lease_if_absent(&other, LeaseCheckpoint::Latest, vec![])
        .await
        .unwrap();
    let listed = b.leases.list_leases("s3-parquet", "metrics").await.unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn item_table_conforms() {
    let (_dir, b) = open();
    conformance::item_table(b.table.as_ref()).await;
}

#[tokio::test]
async fn metric_publisher_conforms() {
    let (_dir, b) = open();
    conformance::metric_publisher(b.metrics.as_ref()).await;
}

#[tokio::test]
async fn dead_letter_store_conforms() {
    let (_dir, b) = open();
    conformance::dead_letter_store(b.dead_letters.as_ref()).await;
}

#[tokio::test]
async fn state_store_conforms() {
    let (_dir, b) = open();
    conformance::state_store(b.state.as_ref()).await;
}

#[tokio::test]
async fn suites_pass_twice_on_one_data_directory() {
    let (_dir, b) = open();
    for _ in 0..2 {
        conformance::checkpoint_store(b.checkpoints.as_ref()).await;
        conformance::item_table(b.table.as_ref()).await;
        conformance::dead_letter_store(b.dead_letters.as_ref()).await;
        conformance::state_store(b.state.as_ref()).await;
    }
}

#[tokio::test]
async fn outbox_notifier_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    let outbox = OutboxNotifier::open(&path).unwrap();
    conformance::notifier(&outbox, "alerts", || async {
        OutboxNotifier::read_all(&path)
            .unwrap()
            .iter()
            .map(|e| e.notification())
            .collect()
    })
    .await;
}

#[tokio::test]
async fn webhook_notifier_conforms() {
    let server = common::WebhookServer::start(vec![]).await;
    let hook = shardline_local::WebhookNotifier::new(
        &server.url(),
        std::time::Duration::from_secs(5),
        None,
    )
    .unwrap();
    conformance::notifier(&hook, "alerts", || async { server.notifications() }).await;
}

#[tokio::test]
async fn fanout_notifier_conforms_on_each_target() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::WebhookServer::start(vec![]).await;
    let config = shardline_local::NotifierConfig::Fanout {
        targets: vec![
            shardline_local::NotifierConfig::Outbox { path: None },
            shardline_local::NotifierConfig::Webhook {
                url: server.url(),
                timeout: std::time::Duration::from_secs(5),
                connect_timeout: std::time::Duration::from_secs(3),
                ca_file: None,
            },
        ],
    };
    let fanout = shardline_local::build_notifier(&config, dir.path()).unwrap();
    let outbox = dir.path().join("notifications/outbox.jsonl");
    conformance::notifier(fanout.as_ref(), "alerts", || async {
        OutboxNotifier::read_all(&outbox)
            .unwrap()
            .iter()
            .map(|e| e.notification())
            .collect()
    })
    .await;
    // The webhook got the same notifications: fanout published to both.
    let subjects = |v: Vec<shardline_core::ports::Notification>| {
        let mut s: Vec<String> = v.into_iter().map(|n| n.subject).collect();
        s.sort();
        s
    };
    let from_outbox = OutboxNotifier::read_all(&outbox)
        .unwrap()
        .into_iter()
        .map(|e| e.notification())
        .collect();
    assert_eq!(subjects(server.notifications()), subjects(from_outbox));
}
