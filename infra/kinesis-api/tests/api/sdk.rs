//! aws-sdk-rust against the endpoint: every action, unchanged, with only an endpoint URL.

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ScalingType, ShardFilter, ShardFilterType, ShardIteratorType,
};
use shardline_core::time::ManualClock;
use shardline_kinesis_api::ServeConfig;
use shardline_log::LogOptions;

use crate::support::Served;

fn code<E: ProvideErrorMetadata>(e: &aws_sdk_kinesis::error::SdkError<E>) -> Option<String> {
    e.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string)
}

async fn read_to_end(
    c: &aws_sdk_kinesis::Client,
    stream: &str,
    shard: &str,
) -> (Vec<Vec<u8>>, Vec<String>) {
    let mut it = c
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator
        .expect("iterator");
    let mut data = Vec::new();
    for _ in 0..1000 {
        let r = c
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .expect("get_records");
        data.extend(r.records.iter().map(|r| r.data.as_ref().to_vec()));
        match r.next_shard_iterator {
            Some(next) if !r.records.is_empty() => it = next,
            Some(_) => return (data, Vec::new()),
            None => {
                let kids = r
                    .child_shards
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.shard_id.clone())
                    .collect();
                return (data, kids);
            }
        }
    }
    panic!("shard {shard} did not end");
}

#[tokio::test]
async fn streams_records_and_iterators_round_trip() {
    let s = Served::start().await;
    let c = s.sdk();
    c.create_stream()
        .stream_name("m")
        .shard_count(2)
        .send()
        .await
        .expect("create");
    let e = c
        .create_stream()
        .stream_name("m")
        .shard_count(2)
        .send()
        .await
        .expect_err("exists");
    assert_eq!(code(&e).as_deref(), Some("ResourceInUseException"));
    let d = c
        .describe_stream()
        .stream_name("m")
        .send()
        .await
        .expect("describe");
    let desc = d.stream_description.expect("description");
    assert_eq!(desc.stream_status.as_str(), "ACTIVE");
    assert_eq!(desc.shards.len(), 2);
    assert_eq!(
        desc.stream_arn,
        "arn:aws:kinesis:us-east-1:000000000000:stream/m"
    );
    let entries: Vec<_> = (0..500u32)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{}", i % 17))
                .data(Blob::new(i.to_be_bytes().to_vec()))
                .build()
                .expect("entry")
        })
        .collect();
    let r = c
        .put_records()
        .stream_name("m")
        .set_records(Some(entries))
        .send()
        .await
        .expect("put_records");
    assert_eq!(r.failed_record_count, Some(0));
    assert_eq!(r.records.len(), 500);
    let one = c
        .put_record()
        .stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/m")
        .partition_key("k1")
        .data(Blob::new(b"by arn".to_vec()))
        .send()
        .await
        .expect("put_record by ARN");
    let mut all = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        all.extend(read_to_end(&c, "m", shard).await.0);
    }
    assert_eq!(all.len(), 501, "every record once");
    assert!(all.contains(&b"by arn".to_vec()));
    // AT/AFTER_SEQUENCE_NUMBER and AT_TIMESTAMP.
    let at = c
        .get_shard_iterator()
        .stream_name("m")
        .shard_id(&one.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(&one.sequence_number)
        .send()
        .await
        .expect("at")
        .shard_iterator
        .expect("it");
    let r = c
        .get_records()
        .shard_iterator(at)
        .send()
        .await
        .expect("read at");
    assert_eq!(r.records[0].data.as_ref(), b"by arn");
    assert!(r.records[0].approximate_arrival_timestamp.is_some());
    let after = c
        .get_shard_iterator()
        .stream_name("m")
        .shard_id(&one.shard_id)
        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
        .starting_sequence_number(&one.sequence_number)
        .send()
        .await
        .expect("after")
        .shard_iterator
        .expect("it");
    assert!(
        c.get_records()
            .shard_iterator(after)
            .send()
            .await
            .expect("read after")
            .records
            .is_empty()
    );
    let ts = c
        .get_shard_iterator()
        .stream_name("m")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(DateTime::from_secs(0))
        .send()
        .await
        .expect("at timestamp")
        .shard_iterator
        .expect("it");
    assert!(
        !c.get_records()
            .shard_iterator(ts)
            .send()
            .await
            .expect("read")
            .records
            .is_empty()
    );
    let e = c
        .get_shard_iterator()
        .stream_name("m")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::Latest)
        .starting_sequence_number("1")
        .send()
        .await
        .expect_err("LATEST with a sequence number");
    assert_eq!(code(&e).as_deref(), Some("InvalidArgumentException"));
    let e = c
        .get_records()
        .shard_iterator("bm90IGFuIGl0ZXJhdG9y")
        .send()
        .await
        .expect_err("forged");
    assert_eq!(code(&e).as_deref(), Some("InvalidArgumentException"));
    let e = c
        .describe_stream()
        .stream_name("nope")
        .send()
        .await
        .expect_err("missing");
    assert_eq!(code(&e).as_deref(), Some("ResourceNotFoundException"));
    assert_eq!(
        e.as_service_error().and_then(|e| e.message()),
        Some("Stream nope under account 000000000000 not found.")
    );
    c.delete_stream()
        .stream_name("m")
        .send()
        .await
        .expect("delete");
    assert!(
        c.list_streams()
            .send()
            .await
            .expect("list")
            .stream_names
            .is_empty()
    );
    s.stop().await;
}

#[tokio::test]
async fn tags_retention_limits_and_summary() {
    let s = Served::start().await;
    let c = s.sdk();
    c.create_stream()
        .stream_name("t")
        .shard_count(1)
        .send()
        .await
        .expect("create");
    c.add_tags_to_stream()
        .stream_name("t")
        .tags("team", "infra")
        .tags("env", "dev")
        .send()
        .await
        .expect("tags");
    let tags = c
        .list_tags_for_stream()
        .stream_name("t")
        .limit(1)
        .send()
        .await
        .expect("list tags");
    assert_eq!(tags.tags.len(), 1);
    assert_eq!(tags.tags[0].key, "env");
    assert!(tags.has_more_tags);
    c.remove_tags_from_stream()
        .stream_name("t")
        .tag_keys("env")
        .send()
        .await
        .expect("untag");
    let tags = c
        .list_tags_for_stream()
        .stream_name("t")
        .send()
        .await
        .expect("list tags");
    assert_eq!(
        tags.tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        vec!["team"]
    );
    c.increase_stream_retention_period()
        .stream_name("t")
        .retention_period_hours(48)
        .send()
        .await
        .expect("increase");
    let e = c
        .decrease_stream_retention_period()
        .stream_name("t")
        .retention_period_hours(72)
        .send()
        .await
        .expect_err("longer");
    assert!(
        e.as_service_error()
            .and_then(|e| e.message())
            .is_some_and(|m| m.contains("Use IncreaseRetentionPeriod API"))
    );
    let e = c
        .decrease_stream_retention_period()
        .stream_name("t")
        .retention_period_hours(12)
        .send()
        .await
        .expect_err("short");
    assert!(
        e.as_service_error()
            .and_then(|e| e.message())
            .is_some_and(|m| m.starts_with("Minimum allowed retention period is 24 hours"))
    );
    let sum = c
        .describe_stream_summary()
        .stream_name("t")
        .send()
        .await
        .expect("summary");
    let sum = sum.stream_description_summary.expect("summary");
    assert_eq!((sum.retention_period_hours, sum.open_shard_count), (48, 1));
    let limits = c.describe_limits().send().await.expect("limits");
    assert_eq!((limits.shard_limit, limits.open_shard_count), (1000, 1));
    s.stop().await;
}

#[tokio::test]
async fn resharding_paging_filters_and_child_shards() {
    let s = Served::start().await;
    let c = s.sdk();
    c.create_stream()
        .stream_name("r")
        .shard_count(2)
        .send()
        .await
        .expect("create");
    let put = |n: u32| {
        let c = c.clone();
        async move {
            let entries: Vec<_> = (0..50u32)
                .map(|i| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(format!("k{i}"))
                        .data(Blob::new(format!("{n}-{i}")))
                        .build()
                        .expect("entry")
                })
                .collect();
            c.put_records()
                .stream_name("r")
                .set_records(Some(entries))
                .send()
                .await
                .expect("put");
        }
    };
    put(0).await;
    c.split_shard()
        .stream_name("r")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("170141183460469231731687303715884105727")
        .send()
        .await
        .expect_err("the key must be inside the shard, not at its end");
    c.split_shard()
        .stream_name("r")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("42535295865117307932921825928971026432")
        .send()
        .await
        .expect("split");
    put(1).await;
    c.merge_shards()
        .stream_name("r")
        .shard_to_merge("shardId-000000000003")
        .adjacent_shard_to_merge("shardId-000000000001")
        .send()
        .await
        .expect("merge");
    put(2).await;
    let u = c
        .update_shard_count()
        .stream_name("r")
        .target_shard_count(4)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .expect("update");
    assert_eq!(
        (u.current_shard_count, u.target_shard_count),
        (Some(2), Some(4))
    );
    put(3).await;
    // Paging with MaxResults and NextToken (which may not come with StreamName).
    let mut ids = Vec::new();
    let mut page = c
        .list_shards()
        .stream_name("r")
        .max_results(2)
        .send()
        .await
        .expect("page");
    loop {
        ids.extend(
            page.shards
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.shard_id),
        );
        let Some(token) = page.next_token else { break };
        let e = c
            .list_shards()
            .stream_name("r")
            .next_token(&token)
            .send()
            .await
            .expect_err("both");
        assert_eq!(code(&e).as_deref(), Some("InvalidArgumentException"));
        page = c
            .list_shards()
            .next_token(token)
            .max_results(2)
            .send()
            .await
            .expect("next page");
    }
    let all = c
        .list_shards()
        .stream_name("r")
        .send()
        .await
        .expect("all")
        .shards
        .unwrap_or_default();
    assert_eq!(
        ids,
        all.iter().map(|s| s.shard_id.clone()).collect::<Vec<_>>()
    );
    let latest = c
        .list_shards()
        .stream_name("r")
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .expect("filter"),
        )
        .send()
        .await
        .expect("at latest")
        .shards
        .unwrap_or_default();
    assert_eq!(latest.len(), 4);
    assert!(latest.iter().all(|s| {
        s.sequence_number_range
            .as_ref()
            .is_some_and(|r| r.ending_sequence_number.is_none())
    }));
    // Every closed parent reads to its end and names its children; every record once.
    let mut records = Vec::new();
    for sh in &all {
        let (data, kids) = read_to_end(&c, "r", &sh.shard_id).await;
        records.extend(data);
        let closed = sh
            .sequence_number_range
            .as_ref()
            .is_some_and(|r| r.ending_sequence_number.is_some());
        assert_eq!(
            !kids.is_empty(),
            closed,
            "{} closed={closed} children={kids:?}",
            sh.shard_id
        );
    }
    records.sort();
    let before = records.len();
    records.dedup();
    assert_eq!((before, records.len()), (200, 200));
    s.stop().await;
}

#[tokio::test]
async fn iterators_expire_after_five_minutes() {
    let clock = ManualClock::new(1_700_000_000_000);
    let s = Served::with(
        ServeConfig::default(),
        LogOptions {
            clock: clock.clone(),
            ..LogOptions::default()
        },
    )
    .await;
    let c = s.sdk();
    c.create_stream()
        .stream_name("e")
        .shard_count(1)
        .send()
        .await
        .expect("create");
    let it = c
        .get_shard_iterator()
        .stream_name("e")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("it")
        .shard_iterator
        .expect("it");
    clock.advance_ms(300_001);
    let e = c
        .get_records()
        .shard_iterator(it)
        .send()
        .await
        .expect_err("expired");
    assert_eq!(code(&e).as_deref(), Some("ExpiredIteratorException"));
    s.stop().await;
}

#[tokio::test]
async fn limits_mode_throttles_records_over_a_thousand_a_second() {
    let clock = ManualClock::new(1_700_000_000_000);
    let options = LogOptions {
        enforce_throughput_limits: true,
        clock: clock.clone(),
        ..LogOptions::default()
    };
    let s = Served::with(ServeConfig::default(), options).await;
    let c = s.sdk();
    c.create_stream()
        .stream_name("l")
        .shard_count(1)
        .send()
        .await
        .expect("create");
    let batch = || -> Vec<PutRecordsRequestEntry> {
        (0..500)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("k{i}"))
                    .data(Blob::new("x"))
                    .build()
                    .expect("entry")
            })
            .collect()
    };
    let mut failed = 0;
    for _ in 0..2 {
        failed += c
            .put_records()
            .stream_name("l")
            .set_records(Some(batch()))
            .send()
            .await
            .expect("put")
            .failed_record_count
            .unwrap_or(0);
    }
    assert_eq!(
        failed, 0,
        "1,000 records in one second are within the limit"
    );
    let r = c
        .put_records()
        .stream_name("l")
        .set_records(Some(batch()))
        .send()
        .await
        .expect("put");
    assert_eq!(
        r.failed_record_count,
        Some(500),
        "over 1,000 in the same second"
    );
    assert_eq!(
        r.records[0].error_code.as_deref(),
        Some("ProvisionedThroughputExceededException")
    );
    clock.advance_ms(1000);
    let r = c
        .put_records()
        .stream_name("l")
        .set_records(Some(batch()))
        .send()
        .await
        .expect("put");
    assert_eq!(r.failed_record_count, Some(0), "the next second");
    s.stop().await;
}
