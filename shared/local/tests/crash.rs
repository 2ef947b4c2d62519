//! Kill -9 a process writing objects, checkpoints, item batches and outbox lines; everything
//! it reported as acknowledged must survive, whole, and every store must reopen.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::kill::run_and_kill;
use shardline_core::ports::{
    AttributeValue, CheckpointKey, CheckpointStore, Item, ItemQuery, ItemTable, KeyType,
    Notification, Notifier, ObjectStore, TableSchema,
};
use shardline_core::{SequenceNumber, ShardId};
use shardline_local::{LocalBackends, LocalOptions, OutboxNotifier};

const CHILD_ENV: &str = "SHARDLINE_LOCAL_CRASH_CHILD_DIR";
const OBJECT_BYTES: usize = 256 * 1024;
const MAX_ROUNDS: u64 = 10_000;
/// Items written in round `i`, in one `batch_put`: odd rounds go through the journal, even
/// rounds are large enough to be written as a sorted table of their own.
fn items_per_round(i: u64) -> usize {
    if i.is_multiple_of(2) {
        2 * shardline_local::table::INGEST_MIN_ITEMS
    } else {
        500
    }
}

fn schema() -> TableSchema {
    TableSchema {
        name: "Crash".into(),
        partition_key: ("round".into(), KeyType::S),
        sort_key: Some(("n".into(), KeyType::N)),
    }
}

fn round_items(i: u64) -> Vec<Item> {
    (0..items_per_round(i))
        .map(|j| {
            Item::from([
                ("round".to_string(), AttributeValue::S(format!("r{i}"))),
                ("n".to_string(), AttributeValue::N(j.to_string())),
                ("pad".to_string(), AttributeValue::S("x".repeat(100))),
            ])
        })
        .collect()
}

async fn round_count(b: &LocalBackends, i: u64) -> usize {
    let q = ItemQuery {
        table: "Crash".into(),
        partition: AttributeValue::S(format!("r{i}")),
        sort_from: None,
        sort_to: None,
        limit: None,
    };
    b.table.query(&q).await.unwrap().len()
}

fn key() -> CheckpointKey {
    CheckpointKey {
        consumer: "crash".into(),
        stream: "metrics".into(),
        shard: ShardId(0),
    }
}

fn body(i: u64) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; OBJECT_BYTES])
}

/// The writer: runs only when the parent test starts this binary with `CHILD_ENV` set.
#[test]
fn crash_child() {
    let Some((dir, rt)) = common::kill::child(CHILD_ENV) else {
        return;
    };
    rt.block_on(async move {
        let dir = dir.as_path();
        let b = LocalBackends::open(dir, LocalOptions::default()).unwrap();
        let outbox = OutboxNotifier::open(&dir.join("outbox.jsonl")).unwrap();
        b.objects.ensure_bucket("lake").await.unwrap();
        b.table.ensure_table(&schema()).await.unwrap();
        for i in 1..=MAX_ROUNDS {
            // Overwrite one key and write a new one each round.
            b.objects.put("lake", "hot", body(i), "x").await.unwrap();
            b.objects
                .put("lake", &format!("obj/{i:05}"), body(i), "x")
                .await
                .unwrap();
            b.table.batch_put("Crash", round_items(i)).await.unwrap();
            let seq: SequenceNumber = i.to_string().parse().unwrap();
            b.checkpoints
                .put(&key(), &seq, Some("child"), None)
                .await
                .unwrap();
            let n = Notification {
                topic: "t".into(),
                subject: format!("n{i}"),
                message: "m".repeat(200),
                attributes: Default::default(),
                deduplication_id: Some(format!("d{i}")),
            };
            outbox.publish(&n).await.unwrap();
            println!("ACK {i}");
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // Killed mid-flight: the child is already working on the next round.
    let acked = run_and_kill(
        "crash_child",
        CHILD_ENV,
        dir.path(),
        25,
        Duration::from_secs(20),
    )
    .await;
    assert!(acked >= 1, "the writer acknowledged nothing");

    let b = LocalBackends::open(dir.path(), LocalOptions::default()).unwrap();
    let cp = b.checkpoints.get(&key()).await.unwrap().unwrap();
    let stored: u64 = cp.sequence_number.as_str().parse().unwrap();
    assert!(
        stored >= acked,
        "checkpoint {stored} is behind acknowledged {acked}"
    );
    for i in 1..=acked {
        let got = b.objects.get("lake", &format!("obj/{i:05}")).await.unwrap();
        assert_eq!(
            got,
            Some(body(i)),
            "acknowledged object {i} missing or damaged"
        );
    }
    // Whatever else is there is whole, including the overwritten key.
    for meta in b.objects.list("lake", "").await.unwrap() {
        let bytes = b.objects.get("lake", &meta.key).await.unwrap().unwrap();
        assert_eq!(bytes.len(), OBJECT_BYTES, "{} is partial", meta.key);
        assert!(
            bytes.iter().all(|&x| x == bytes[0]),
            "{} is mixed",
            meta.key
        );
    }
    // The overwritten key holds the acknowledged round or the one in flight at the kill.
    let hot = b.objects.get("lake", "hot").await.unwrap().unwrap();
    let allowed = [body(acked)[0], body(acked + 1)[0]];
    assert!(
        allowed.contains(&hot[0]),
        "hot object is from round byte {}",
        hot[0]
    );
    // Every acknowledged item batch is there whole; the batch in flight at the kill is there
    // whole or not at all (a batch is atomic), and nothing else is.
    for i in 1..=acked {
        assert_eq!(
            round_count(&b, i).await,
            items_per_round(i),
            "round {i}'s items"
        );
    }
    let in_flight = round_count(&b, acked + 1).await;
    assert!(
        in_flight == 0 || in_flight == items_per_round(acked + 1),
        "the batch in flight at the kill is partial: {in_flight} items"
    );
    assert_eq!(
        b.table.count("Crash").await.unwrap(),
        ((1..=acked).map(items_per_round).sum::<usize>() + in_flight) as u64
    );
    // The outbox reopens (a torn line is cut) and holds every acknowledged notification once.
    let outbox = OutboxNotifier::open(&dir.path().join("outbox.jsonl")).unwrap();
    let envelopes = OutboxNotifier::read_all(outbox.path()).unwrap();
    for i in 1..=acked {
        let n = envelopes
            .iter()
            .filter(|e| e.subject == format!("n{i}"))
            .count();
        assert_eq!(n, 1, "notification {i} appears {n} times");
    }
}
