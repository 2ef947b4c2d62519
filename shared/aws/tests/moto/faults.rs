//! The retry paths, through the fault-injecting layer in front of moto: what was retried,
//! and what landed (read back from moto).
//!
//! Kinesis writers are sequential (see `common::kinesis_writer`).

use shardline_aws::AwsBackends;
use shardline_core::conformance::unique;
use shardline_core::ports::{
    AttributeValue, Item, ItemQuery, ItemTable, KeyType, Stream, TableSchema,
};
use shardline_core::stream::PutRecordsEntry;
use shardline_core::{ShardId, StartingPosition};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::{backends_with, config, kinesis_writer};
use crate::fault_layer::{FaultClient, Plan};
use crate::kinesis::{by_key, entries, expected_by_key, read_all};

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn faulty() -> (Arc<Plan>, AwsBackends) {
    let plan = Arc::new(Plan::default());
    let b = backends_with(&config(), Some(FaultClient::shared(Arc::clone(&plan)))).await;
    (plan, b)
}

async fn read_stream(b: &AwsBackends, name: &str) -> Vec<shardline_core::stream::Record> {
    let mut all = Vec::new();
    for d in b.stream.list_shards(name).await.unwrap() {
        all.extend(
            read_all(&b.stream, name, d.shard_id, &StartingPosition::TrimHorizon)
                .await
                .0,
        );
    }
    all
}

/// Positions in `sent` of the entries of `key` from its `from`-th on.
fn suffix_of(sent: &[PutRecordsEntry], key: &str, from: usize) -> Vec<usize> {
    sent.iter()
        .enumerate()
        .filter(|(_, e)| e.partition_key == key)
        .skip(from)
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_put_records_entries_are_retried_alone_and_land_once_in_order() {
    let _writer = kinesis_writer().await;
    let (plan, b) = faulty().await;
    let name = unique("faulty-stream");
    b.stream.create_stream(&name, 2, DAY).await.unwrap();
    let sent = entries(6, 10, 0);
    // Round 1: every entry of i-1 from its 4th on fails (a throttled shard fails a suffix),
    // and all of i-4; round 2 (those 17 entries, in order): the last 3 of i-4 fail again.
    let mut first = suffix_of(&sent, "i-1", 3);
    first.extend(suffix_of(&sent, "i-4", 0));
    assert_eq!(first.len(), 17);
    plan.put_records_failures
        .lock()
        .unwrap()
        .extend([first.clone(), vec![14, 15, 16]]);
    let before = b.counters().calls("Kinesis", "PutRecords");

    let results = b.stream.put_records(&name, sent.clone()).await.unwrap();

    assert!(
        results.iter().all(|r| r.is_ok()),
        "every entry lands after retries: {results:?}"
    );
    let calls = b.counters().calls("Kinesis", "PutRecords") - before;
    let stats = b.stream.stats();
    assert_eq!(
        plan.entries_failed.load(Ordering::Relaxed),
        first.len() as u64 + 3
    );
    assert_eq!(calls, 3, "one request, then one per retry round");
    assert_eq!(
        stats.entries_retried,
        first.len() as u64 + 3,
        "only the failed entries are sent again"
    );
    assert_eq!(stats.keys_reordered, 0);
    let landed = read_stream(&b, &name).await;
    assert_eq!(landed.len(), sent.len(), "each record lands exactly once");
    assert_eq!(
        by_key(&landed),
        expected_by_key(&sent),
        "per-key order is kept across retries"
    );
    b.stream.delete_stream(&name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_entry_landing_before_a_failed_one_is_counted_as_reordered() {
    let _writer = kinesis_writer().await;
    let (plan, b) = faulty().await;
    let name = unique("faulty-stream");
    b.stream.create_stream(&name, 1, DAY).await.unwrap();
    let sent = entries(2, 3, 0);
    // i-0's first entry fails while its later ones land: Kinesis itself allows this.
    plan.put_records_failures.lock().unwrap().push_back(vec![0]);
    let results = b.stream.put_records(&name, sent.clone()).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        b.stream.stats().keys_reordered,
        1,
        "the key whose order broke is counted"
    );
    let landed = read_stream(&b, &name).await;
    assert_eq!(landed.len(), 6, "still exactly once");
    b.stream.delete_stream(&name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_still_failing_after_the_last_round_are_returned_failed() {
    let _writer = kinesis_writer().await;
    let (plan, b) = faulty().await;
    let name = unique("faulty-stream");
    b.stream.create_stream(&name, 1, DAY).await.unwrap();
    let sent = entries(3, 2, 0);
    let rounds = config().retry.max_rounds as usize;
    plan.put_records_failures
        .lock()
        .unwrap()
        .extend((0..rounds).map(|_| vec![0]));
    let results = b.stream.put_records(&name, sent).await.unwrap();
    let failed: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        failed,
        vec![0],
        "only the entry that kept failing is reported failed"
    );
    assert_eq!(
        read_stream(&b, &name).await.len(),
        5,
        "the others landed once"
    );
    b.stream.delete_stream(&name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_calls_are_retried_by_the_sdk_then_by_the_adapter() {
    let _writer = kinesis_writer().await;
    let (plan, b) = faulty().await;
    let name = unique("throttled-stream");
    b.stream.create_stream(&name, 1, DAY).await.unwrap();
    let sent = entries(2, 5, 0);
    // Five throttles: the SDK's three attempts, then the adapter's next round (two more
    // throttled attempts and a success).
    plan.throttle
        .lock()
        .unwrap()
        .extend((0..5).map(|_| "Kinesis_20131202.PutRecords".to_string()));
    let before = b.counters().calls("Kinesis", "PutRecords");
    let results = b.stream.put_records(&name, sent.clone()).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(plan.throttled.load(Ordering::Relaxed), 5);
    assert_eq!(
        b.counters().calls("Kinesis", "PutRecords") - before,
        6,
        "every attempt is a billed request"
    );

    // Reads: four throttles, then the records.
    plan.throttle
        .lock()
        .unwrap()
        .extend((0..4).map(|_| "Kinesis_20131202.GetRecords".to_string()));
    let landed = read_all(&b.stream, &name, ShardId(0), &StartingPosition::TrimHorizon)
        .await
        .0;
    assert_eq!(
        by_key(&landed),
        expected_by_key(&sent),
        "every record once, in order, after throttling"
    );
    assert_eq!(
        b.stream.stats().read_throttles,
        1,
        "one adapter round after the SDK's attempts"
    );
    b.stream.delete_stream(&name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_iterator_is_renewed_after_the_last_record_read() {
    let _writer = kinesis_writer().await;
    let (plan, b) = faulty().await;
    let name = unique("expiring-stream");
    b.stream.create_stream(&name, 1, DAY).await.unwrap();
    let sent = entries(1, 9, 0);
    b.stream.put_records(&name, sent.clone()).await.unwrap();
    let it = b
        .stream
        .get_shard_iterator(&name, ShardId(0), &StartingPosition::TrimHorizon)
        .await
        .unwrap();
    let first = b.stream.get_records(&it, 4).await.unwrap();
    assert_eq!(first.records.len(), 4);
    plan.expire_get_records.store(1, Ordering::Relaxed);
    let before = b.counters().calls("Kinesis", "GetShardIterator");
    let second = b
        .stream
        .get_records(first.next_iterator.as_ref().unwrap(), 100)
        .await
        .unwrap();
    assert_eq!(plan.expired.load(Ordering::Relaxed), 1);
    assert_eq!(b.stream.stats().iterators_renewed, 1);
    assert_eq!(
        b.counters().calls("Kinesis", "GetShardIterator") - before,
        1
    );
    let mut all = first.records;
    all.extend(second.records);
    assert_eq!(
        by_key(&all),
        expected_by_key(&sent),
        "no record lost or repeated across the renewal"
    );
    b.stream.delete_stream(&name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprocessed_items_are_retried_until_every_item_landed() {
    let (plan, b) = faulty().await;
    let table = unique("faulty-items");
    b.table
        .ensure_table(&TableSchema {
            name: table.clone(),
            partition_key: ("metric_id".into(), KeyType::S),
            sort_key: Some(("timestamp".into(), KeyType::N)),
        })
        .await
        .unwrap();
    let items: Vec<Item> = (0..60)
        .map(|i| {
            Item::from([
                (
                    "metric_id".to_string(),
                    AttributeValue::S(format!("cpu#i-{}", i % 3)),
                ),
                ("timestamp".to_string(), AttributeValue::N(i.to_string())),
                ("value".to_string(), AttributeValue::N(format!("{i}.5"))),
            ])
        })
        .collect();
    // 60 items are 3 requests (25, 25, 10); two answers leave items unprocessed, and one of
    // the retries does too.
    plan.unprocessed.lock().unwrap().extend([10, 5, 3]);
    let before = b.counters().calls("DynamoDB", "BatchWriteItem");
    b.table.batch_put(&table, items.clone()).await.unwrap();
    let calls = b.counters().calls("DynamoDB", "BatchWriteItem") - before;
    let (retried, rounds) = b.table.stats();
    assert_eq!(plan.items_unprocessed.load(Ordering::Relaxed), 18);
    assert_eq!(retried, 18, "exactly the unprocessed items are sent again");
    assert_eq!(
        calls,
        3 + rounds,
        "one request per batch of 25, plus one per retry round"
    );
    assert!(rounds >= 2);
    assert_eq!(
        b.table.count(&table).await.unwrap(),
        60,
        "every item landed"
    );
    let q = ItemQuery {
        table: table.clone(),
        partition: AttributeValue::S("cpu#i-1".into()),
        sort_from: None,
        sort_to: None,
        limit: None,
    };
    assert_eq!(b.table.query(&q).await.unwrap().len(), 20);
    // A replay of the same items changes nothing.
    b.table.batch_put(&table, items).await.unwrap();
    assert_eq!(
        b.table.count(&table).await.unwrap(),
        60,
        "replaying a batch is idempotent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_end_with_child_shards_is_followed_without_listing_shards() {
    let _writer = kinesis_writer().await;
    let (plan, b) = faulty().await;
    let name = unique("ending-stream");
    b.stream.create_stream(&name, 1, DAY).await.unwrap();
    let it = b
        .stream
        .get_shard_iterator(&name, ShardId(0), &StartingPosition::TrimHorizon)
        .await
        .unwrap();
    // As Kinesis answers at the end of a closed shard (moto never does).
    *plan.end_with_children.lock().unwrap() = Some(vec![
        "shardId-000000000001".into(),
        "shardId-000000000002".into(),
    ]);
    let before = b.counters().calls("Kinesis", "ListShards");
    let end = b.stream.get_records(&it, 100).await.unwrap();
    assert_eq!(
        end.next_iterator, None,
        "no next iterator at the end of a closed shard"
    );
    assert_eq!(
        b.stream.child_shards(&name, ShardId(0)).await.unwrap(),
        vec![ShardId(1), ShardId(2)],
        "the children come from the answer's ChildShards"
    );
    assert_eq!(
        b.counters().calls("Kinesis", "ListShards") - before,
        0,
        "no ListShards needed"
    );
    b.stream.delete_stream(&name).await.unwrap();
}
