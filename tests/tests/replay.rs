//! Replay: the S3 Parquet projection rebuilt from the log with other batch boundaries holds
//! exactly the same rows; a restart from the middle of an earlier object adds nothing twice.

use anyhow::{Context, Result};
use shardline::pipeline::Pipeline;
use shardline_consumers::runtime::Consumer;
use shardline_consumers::sinks::s3_parquet::S3ParquetSink;
use shardline_core::ports::CheckpointKey;
use shardline_core::{SequenceNumber, ShardId};
use shardline_tests::{
    TestEnv, drain_all, parquet_files, parquet_root, read_parquet_dir, read_parquet_file,
    table_count, unique_keys,
};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Drains only the S3 consumer, reading `batch` records per call with its sink buffering
/// `buffer_size` bytes.
async fn drain_s3(p: &Pipeline, batch: usize, buffer_size: u64) -> Result<u64> {
    let section = &p.config.consumers.s3;
    let mut sink_cfg = section.sink.clone();
    sink_cfg.buffer_size = buffer_size;
    let sink = S3ParquetSink::new(sink_cfg, p.backends.objects.clone())?;
    let mut consumer_cfg = section.consumer.clone();
    consumer_cfg.batch_size = batch;
    let consumer = Consumer::new(
        consumer_cfg,
        p.stream(),
        p.backends.checkpoints.clone(),
        p.backends.dead_letters.clone(),
        Box::new(sink),
    )?;
    Ok(consumer.drain().await?.status.records_in)
}

fn names(files: &[PathBuf]) -> BTreeSet<String> {
    files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_other_boundaries_is_exactly_once() -> Result<()> {
    let env = TestEnv::new("")?;
    let p = env.open().await?;
    for _ in 0..4 {
        p.collect_once(None).await?;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drain_all(&p).await?;
    let root = parquet_root(&p);
    let first_rows = read_parquet_dir(&root)?;
    let first_keys = unique_keys(&first_rows)?;
    let first_files = names(&parquet_files(&root)?);
    assert_eq!(first_keys.len(), 128);
    let items = table_count(&p).await?;
    assert_eq!(items, 128);
    let (consumer, stream) = (
        p.config.consumers.s3.consumer.name.clone(),
        p.config.stream.name.clone(),
    );

    // 1. Reset and replay everything with 5-record reads and a 2 KiB buffer: the manifest covers every record.
    assert!(p.backends.checkpoints.reset(&consumer, &stream).await? > 0);
    assert_eq!(
        drain_s3(&p, 5, 2048).await?,
        128,
        "replay read the whole log again"
    );
    let rows = read_parquet_dir(&root)?;
    assert_eq!(rows.len(), 128, "replay over covered ranges added no row");
    assert_eq!(unique_keys(&rows)?, first_keys);

    // 2. Rebuild the projection from the log: remove every object (and the manifests), reset,
    //    replay with 5-record reads and a 2 KiB buffer. Same rows, in other objects.
    let bucket = &p.config.consumers.s3.sink.bucket;
    for o in p.backends.objects.list(bucket, "").await? {
        p.backends.objects.delete(bucket, &o.key).await?;
    }
    assert!(
        read_parquet_dir(&root)?.is_empty(),
        "the projection was removed"
    );
    p.backends.checkpoints.reset(&consumer, &stream).await?;
    drain_s3(&p, 5, 2048).await?;
    let rebuilt_rows = read_parquet_dir(&root)?;
    let rebuilt_files = parquet_files(&root)?;
    assert_eq!(rebuilt_rows.len(), 128, "none lost, none twice");
    assert_eq!(unique_keys(&rebuilt_rows)?, first_keys);
    let rebuilt_names = names(&rebuilt_files);
    assert!(
        rebuilt_names.len() > first_files.len() && rebuilt_names != first_files,
        "a smaller buffer cuts other objects: {first_files:?} vs {rebuilt_names:?}"
    );

    // 3. A checkpoint in the middle of an earlier object (as if a later checkpoint was lost),
    //    then a drain with yet another buffer size.
    let widest = rebuilt_files
        .iter()
        .map(|f| read_parquet_file(f).map(|r| (r.len(), r)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .max_by_key(|(n, _)| *n)
        .context("no Parquet object")?
        .1;
    assert!(widest.len() >= 3, "an object with a middle row");
    let mut seqs: Vec<&shardline_tests::Row> = widest.iter().collect();
    seqs.sort_by(|a, b| a.sequence_number.cmp(&b.sequence_number));
    let middle = seqs[seqs.len() / 2];
    let key = CheckpointKey {
        consumer: consumer.clone(),
        stream: stream.clone(),
        shard: middle.shard_id.parse::<ShardId>()?,
    };
    let seq: SequenceNumber = middle.sequence_number.parse()?;
    p.backends.checkpoints.reset(&consumer, &stream).await?;
    p.backends.checkpoints.put(&key, &seq, None, None).await?;
    assert!(
        drain_s3(&p, 7, 3000).await? > 0,
        "records after the checkpoint were re-read"
    );
    let rows = read_parquet_dir(&root)?;
    assert_eq!(rows.len(), 128);
    assert_eq!(unique_keys(&rows)?, first_keys);
    assert_eq!(
        names(&parquet_files(&root)?),
        rebuilt_names,
        "covered: no new object"
    );

    // The table is a projection by key: replaying it adds no item.
    p.backends
        .checkpoints
        .reset(&p.config.consumers.dynamodb.consumer.name, &stream)
        .await?;
    drain_all(&p).await?;
    assert_eq!(table_count(&p).await?, items);
    assert_eq!(read_parquet_dir(&root)?.len(), 128);
    p.close().await?;
    Ok(())
}
