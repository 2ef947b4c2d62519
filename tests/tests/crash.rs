//! A crash between a sink's write and its checkpoint, deterministically: every consumer's
//! checkpoints are rolled back (as if those checkpoint writes were lost) and the consumers
//! drain again. Nothing may appear twice in any projection.

use anyhow::Result;
use shardline::pipeline::Pipeline;
use shardline_core::ports::{CheckpointKey, Stream};
use shardline_core::{SequenceNumber, StartingPosition};
use shardline_tests::{
    TestEnv, check_unique_dedup_ids, drain_all, log_records, outbox, parquet_root, put_raw,
    read_parquet_dir, sample_count_sum, table_count, unique_keys,
};

/// The sequence number of the `index`-th record of every shard (shards with fewer records
/// are left out).
async fn nth_sequence_numbers(
    p: &Pipeline,
    index: usize,
) -> Result<Vec<(shardline_core::ShardId, SequenceNumber)>> {
    let stream = &p.config.stream.name;
    let mut out = Vec::new();
    for shard in p.embedded_log()?.list_shards(stream).await? {
        let it = p
            .embedded_log()?
            .get_shard_iterator(stream, shard.shard_id, &StartingPosition::TrimHorizon)
            .await?;
        let got = p.embedded_log()?.get_records(&it, index + 1).await?;
        if let Some(r) = got.records.get(index) {
            out.push((shard.shard_id, r.sequence_number.clone()));
        }
    }
    Ok(out)
}

/// One instance's CPU over six minutes ending an hour ago: three minutes above the seed's 80 %
/// threshold, then three below (an ALARM and an OK notification).
fn hot_episode(instance: &str) -> Vec<String> {
    let t0 = (shardline_core::time::now_ms() / 1000 - 3600) / 60 * 60;
    [95.0, 96.0, 97.0, 10.0, 11.0, 12.0]
        .iter()
        .enumerate()
        .map(|(k, v)| {
            let ts = t0 + 60 * k as i64;
            format!(
                r#"{{"metric_id":"cpu-{ts}","metric_type":"cpu_utilization","timestamp":{ts},"value":{v},"instance_id":"{instance}","region":"eu-west-1","collected_at":"{ts}"}}"#
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_checkpoints_cause_no_duplicates() -> Result<()> {
    let env = TestEnv::new("")?;
    let data = env.config.data_dir.clone();
    let p = env.open().await?;
    for instance in ["i-hot1", "i-hot2"] {
        put_raw(&p, instance, &hot_episode(instance)).await?;
    }
    for round in 0..3 {
        p.collect_once(None).await?;
        put_raw(&p, "k", &[format!("not json {round}")]).await?;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drain_all(&p).await?;
    let root = parquet_root(&p);
    let rows = read_parquet_dir(&root)?;
    let keys = unique_keys(&rows)?;
    assert_eq!(rows.len(), 108, "96 collected + 12 episode events");
    let items = table_count(&p).await?;
    let samples = sample_count_sum(&p, &rows).await?;
    let letters = p.backends.dead_letters.count(None).await?;
    let sent = outbox(&data)?;
    assert_eq!((items, samples), (108, 108.0));
    assert_eq!(letters, 12, "3 bad records x 4 consumers");
    let with_ids = check_unique_dedup_ids(&sent)?;
    for instance in ["i-hot1", "i-hot2"] {
        let about: Vec<&str> = sent
            .iter()
            .filter(|e| e.message.contains(instance) || e.subject.contains(instance))
            .map(|e| e.subject.as_str())
            .collect();
        assert_eq!(
            about.len(),
            2,
            "one ALARM and one OK for {instance}: {about:?}"
        );
    }
    assert_eq!(
        with_ids,
        sent.len(),
        "every alert carries a deduplication id"
    );

    // Roll every consumer's checkpoints back to the 2nd, then the 10th record of each shard.
    for index in [1usize, 9] {
        let targets = nth_sequence_numbers(&p, index).await?;
        let stream = p.config.stream.name.clone();
        for consumer in p.consumer_names() {
            p.backends.checkpoints.reset(&consumer, &stream).await?;
            for (shard, seq) in &targets {
                let key = CheckpointKey {
                    consumer: consumer.clone(),
                    stream: stream.clone(),
                    shard: *shard,
                };
                p.backends.checkpoints.put(&key, seq, None, None).await?;
            }
        }
        let reports = drain_all(&p).await?;
        let reread: u64 = reports.iter().map(|r| r.status.records_in).sum();
        assert!(reread > 0, "the rollback made the consumers read again");

        let again = read_parquet_dir(&root)?;
        assert_eq!(
            again.len(),
            rows.len(),
            "Parquet rows after rollback to #{index}"
        );
        assert_eq!(unique_keys(&again)?, keys);
        assert_eq!(table_count(&p).await?, items, "table items");
        assert_eq!(
            sample_count_sum(&p, &again).await?,
            samples,
            "SampleCount sum"
        );
        assert_eq!(
            p.backends.dead_letters.count(None).await?,
            letters,
            "dead letters"
        );
        // Nothing is notified twice. The outbox only grows: it starts with what was sent
        // before, and any line after that is a new transition (a unique deduplication id),
        // not a repeat. New ones can only come from the synthetic events collected at "now":
        // their minute may end between two drains, and a drain that stops evaluates the
        // periods that ended by then.
        let sent_again = outbox(&data)?;
        assert_eq!(
            check_unique_dedup_ids(&sent_again)?,
            sent_again.len(),
            "every alert carries a deduplication id, none twice"
        );
        assert!(sent_again.len() >= sent.len(), "outbox lines");
        assert_eq!(
            sent_again[..sent.len()]
                .iter()
                .map(|e| &e.deduplication_id)
                .collect::<Vec<_>>(),
            sent.iter().map(|e| &e.deduplication_id).collect::<Vec<_>>(),
            "the outbox keeps what was sent"
        );
        for extra in &sent_again[sent.len()..] {
            assert!(
                !extra.subject.contains("i-hot") && !extra.message.contains("i-hot"),
                "the hot episodes were notified again: {extra:?}"
            );
        }
    }
    assert_eq!(
        log_records(&p).await?,
        111,
        "108 events and 3 bad records in the log"
    );
    p.close().await?;
    Ok(())
}
