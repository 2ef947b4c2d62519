//! Every iterator type, including AT_TIMESTAMP between records, before the trim horizon and
//! after the end, and bad iterators.

use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{ShardId, ShardIterator, StartingPosition};
use shardline_core::time::ManualClock;

use crate::common::*;

const S0: ShardId = ShardId(0);

fn offsets(records: &[shardline_core::Record]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r.sequence_number.parts().expect("parts").offset)
        .collect()
}

#[tokio::test]
async fn each_iterator_type_starts_where_it_should() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), small_segments(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let mut seqs = Vec::new();
    for batch in 0..3 {
        let e = (0..2)
            .map(|i| entry("k", format!("b{batch}r{i}")))
            .collect();
        seqs.extend(put_ok(&log, "s", e).await);
        clock.advance_ms(1000);
    }
    // Arrivals: offsets 0,1 at T0; 2,3 at T0+1000; 4,5 at T0+2000.
    let all = read_all(&log, "s", S0, StartingPosition::TrimHorizon).await;
    assert_eq!(offsets(&all), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(&all[3].data[..], b"b1r1");
    assert_eq!(all[2].approximate_arrival_ms, T0 + 1000);

    let at = read_all(
        &log,
        "s",
        S0,
        StartingPosition::AtSequenceNumber(seqs[2].1.clone()),
    )
    .await;
    assert_eq!(offsets(&at), vec![2, 3, 4, 5]);
    let after = read_all(
        &log,
        "s",
        S0,
        StartingPosition::AfterSequenceNumber(seqs[2].1.clone()),
    )
    .await;
    assert_eq!(offsets(&after), vec![3, 4, 5]);
    let after_last = read_all(
        &log,
        "s",
        S0,
        StartingPosition::AfterSequenceNumber(seqs[5].1.clone()),
    )
    .await;
    assert!(after_last.is_empty());

    let between = read_all(&log, "s", S0, StartingPosition::AtTimestamp(T0 + 500)).await;
    assert_eq!(
        offsets(&between),
        vec![2, 3, 4, 5],
        "first record arriving at or after t"
    );
    let exact = read_all(&log, "s", S0, StartingPosition::AtTimestamp(T0 + 2000)).await;
    assert_eq!(offsets(&exact), vec![4, 5]);
    let before_all = read_all(&log, "s", S0, StartingPosition::AtTimestamp(T0 - 10_000)).await;
    assert_eq!(offsets(&before_all), vec![0, 1, 2, 3, 4, 5]);

    let latest = log
        .get_shard_iterator("s", S0, &StartingPosition::Latest)
        .await
        .expect("latest");
    let past_end = log
        .get_shard_iterator("s", S0, &StartingPosition::AtTimestamp(T0 + 99_000))
        .await
        .expect("end");
    assert!(
        log.get_records(&latest, 10)
            .await
            .expect("read")
            .records
            .is_empty()
    );
    put_ok(&log, "s", vec![entry("k", "new")]).await;
    for it in [latest, past_end] {
        let r = log.get_records(&it, 10).await.expect("read");
        assert_eq!(
            offsets(&r.records),
            vec![6],
            "positioned at the end, sees only new records"
        );
        assert_eq!(&r.records[0].data[..], b"new");
        assert_eq!(r.millis_behind_latest, 0);
    }
}

#[tokio::test]
async fn seeks_use_the_index_across_many_segments() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), small_segments(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let mut seqs = Vec::new();
    for i in 0..200u64 {
        seqs.extend(
            put_ok(
                &log,
                "s",
                vec![entry("k", format!("record-{i:04}-{}", "x".repeat(30)))],
            )
            .await,
        );
        clock.advance_ms(10);
    }
    let stats = log.shard_stats("s").await.expect("stats");
    assert!(stats[0].segments > 5, "small segments roll: {stats:?}");
    for i in (0..200u64).step_by(7) {
        let it = log
            .get_shard_iterator(
                "s",
                S0,
                &StartingPosition::AtSequenceNumber(seqs[i as usize].1.clone()),
            )
            .await
            .expect("iter");
        let r = log.get_records(&it, 1).await.expect("read");
        assert_eq!(offsets(&r.records), vec![i]);
        assert_eq!(
            r.records[0].data,
            format!("record-{i:04}-{}", "x".repeat(30)).into_bytes()
        );
        let t = T0 + i as i64 * 10 - 5;
        let it = log
            .get_shard_iterator("s", S0, &StartingPosition::AtTimestamp(t))
            .await
            .expect("iter");
        let r = log.get_records(&it, 1).await.expect("read");
        assert_eq!(offsets(&r.records), vec![i], "AT_TIMESTAMP {t}");
        assert!(r.millis_behind_latest > 0 || i == 199);
    }
    let it = log
        .get_shard_iterator("s", S0, &StartingPosition::TrimHorizon)
        .await
        .expect("iter");
    let r = log.get_records(&it, 1).await.expect("read");
    assert_eq!(
        r.millis_behind_latest,
        199 * 10,
        "behind by the newest arrival minus this one"
    );
}

#[tokio::test]
async fn positions_before_the_trim_horizon_move_to_it() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), small_segments(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let old_it = log
        .get_shard_iterator("s", S0, &StartingPosition::TrimHorizon)
        .await
        .expect("iter");
    let mut first = None;
    for i in 0..100 {
        let put = put_ok(
            &log,
            "s",
            vec![entry("k", format!("old-{i}-{}", "y".repeat(40)))],
        )
        .await;
        first.get_or_insert(put[0].1.clone());
    }
    clock.advance_ms(2 * 3_600_000);
    put_ok(&log, "s", vec![entry("k", "fresh")]).await;
    let report = log.enforce_retention().await.expect("retention");
    assert!(report.segments_deleted > 0);
    let trim = log.shard_stats("s").await.expect("stats")[0].trim_offset;
    assert!(trim > 0);
    let err = log
        .get_records(&old_it, 10_000)
        .await
        .expect_err("an iterator two hours old has expired")
        .to_string();
    assert!(err.contains("Iterator expired"), "{err}");
    let first = first.expect("a first record");
    let it = log
        .get_shard_iterator("s", S0, &StartingPosition::AtSequenceNumber(first))
        .await
        .expect("a sequence number retention passed still resolves");
    let r = log.get_records(&it, 10_000).await.expect("read");
    assert_eq!(
        offsets(&r.records).first(),
        Some(&trim),
        "moved to the trim horizon"
    );
    let at = read_all(&log, "s", S0, StartingPosition::AtTimestamp(T0)).await;
    assert_eq!(offsets(&at).first(), Some(&trim));
    assert_eq!(&at.last().expect("records").data[..], b"fresh");
}

#[tokio::test]
async fn bad_iterators_and_sequence_numbers_are_refused_clearly() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 2, Duration::from_secs(3600))
        .await
        .expect("create");
    let err = log
        .get_records(&ShardIterator("nonsense".into()), 10)
        .await
        .expect_err("bad");
    assert!(err.to_string().contains("shard iterator"), "{err}");
    let it = log
        .get_shard_iterator("s", S0, &StartingPosition::TrimHorizon)
        .await
        .expect("iter");
    log.delete_stream("s").await.expect("delete");
    clock.advance_ms(5);
    log.create_stream("s", 2, Duration::from_secs(3600))
        .await
        .expect("re-create");
    let err = log.get_records(&it, 10).await.expect_err("stale");
    assert!(err.to_string().contains("re-created"), "{err}");
    let seqs = put_ok(
        &log,
        "s",
        (0..20).map(|i| entry(&format!("k{i}"), "d")).collect(),
    )
    .await;
    let (shard, seq) = seqs
        .iter()
        .find(|(s, _)| *s == ShardId(1))
        .expect("a record in shard 1");
    assert_eq!(*shard, ShardId(1));
    let err = log
        .get_shard_iterator("s", S0, &StartingPosition::AtSequenceNumber(seq.clone()))
        .await
        .expect_err("other shard");
    assert!(
        err.to_string().contains("belongs to shardId-000000000001"),
        "{err}"
    );
    let err = log
        .get_shard_iterator("s", ShardId(9), &StartingPosition::Latest)
        .await
        .expect_err("no shard");
    assert!(
        matches!(err, shardline_core::Error::NotFound { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn position_markers_resume_at_their_position_without_skipping() {
    let dir = tempdir();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), options(&clock)).await;
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    let start = log
        .get_shard_iterator("s", S0, &StartingPosition::TrimHorizon)
        .await
        .expect("iter");
    let marker = log.position_marker(&start).expect("marker");
    put_ok(&log, "s", vec![entry("k", "first"), entry("k", "second")]).await;
    for position in [
        StartingPosition::AfterSequenceNumber(marker.clone()),
        StartingPosition::AtSequenceNumber(marker.clone()),
    ] {
        let records = read_all(&log, "s", S0, position).await;
        assert_eq!(&records[0].data[..], b"first", "nothing skipped");
    }
    // A marker at the end stands before records written later.
    let latest = log
        .get_shard_iterator("s", S0, &StartingPosition::Latest)
        .await
        .expect("iter");
    let end = log.position_marker(&latest).expect("marker");
    put_ok(&log, "s", vec![entry("k", "third")]).await;
    let records = read_all(&log, "s", S0, StartingPosition::AfterSequenceNumber(end)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0].data[..], b"third");
}
