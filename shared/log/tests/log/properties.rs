//! Property tests: routing by MD5, per-shard order, increasing sequence numbers, exact bytes.

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use shardline_core::ports::Stream;
use shardline_core::stream::{
    HashKeyRange, PutRecordResult, PutRecordsEntry, ShardId, StartingPosition, hash_key,
};
use shardline_core::time::ManualClock;
use shardline_log::{Durability, LogOptions};

use crate::common::*;

fn entries() -> impl Strategy<Value = Vec<PutRecordsEntry>> {
    proptest::collection::vec(
        (
            "[a-zA-Z0-9:_-]{1,40}",
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::option::weighted(0.2, any::<u128>()),
        ),
        1..300,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(k, d, h)| PutRecordsEntry {
                partition_key: k,
                explicit_hash_key: h,
                data: Bytes::from(d),
            })
            .collect()
    })
}

async fn check(
    shards: u32,
    chunk: usize,
    records: Vec<PutRecordsEntry>,
) -> Result<(), TestCaseError> {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let opts = LogOptions {
        durability: Durability::Buffered,
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..options(&clock)
    };
    let log = open(dir.path(), opts).await;
    log.create_stream("p", shards, Duration::from_secs(3600))
        .await
        .expect("create");
    let ranges = HashKeyRange::split_even(shards);
    let mut sent: Vec<Vec<(PutRecordsEntry, shardline_core::SequenceNumber)>> =
        vec![Vec::new(); shards as usize];
    for part in records.chunks(chunk) {
        clock.advance_ms(7);
        let results = log.put_records("p", part.to_vec()).await.expect("put");
        prop_assert_eq!(results.len(), part.len());
        for (e, r) in part.iter().zip(results) {
            let PutRecordResult::Ok {
                shard_id,
                sequence_number,
            } = r
            else {
                return Err(TestCaseError::fail(format!("{r:?}")));
            };
            let key = e
                .explicit_hash_key
                .unwrap_or_else(|| hash_key(&e.partition_key));
            prop_assert!(
                ranges[shard_id.index() as usize].contains(key),
                "key {} in {}",
                key,
                shard_id
            );
            sent[shard_id.index() as usize].push((e.clone(), sequence_number));
        }
    }
    for (s, want) in sent.iter().enumerate() {
        let got = read_all(&log, "p", ShardId(s as u32), StartingPosition::TrimHorizon).await;
        prop_assert_eq!(got.len(), want.len());
        for w in got.windows(2) {
            prop_assert!(w[0].sequence_number < w[1].sequence_number);
        }
        for (g, (e, seq)) in got.iter().zip(want) {
            prop_assert_eq!(&g.sequence_number, seq);
            prop_assert_eq!(&g.partition_key, &e.partition_key);
            prop_assert_eq!(g.explicit_hash_key, e.explicit_hash_key);
            prop_assert_eq!(&g.data, &e.data);
        }
    }
    log.close().await.expect("close");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn records_route_by_hash_keep_order_and_bytes(shards in 1u32..6, chunk in 1usize..120, records in entries()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(check(shards, chunk, records))?;
    }
}
