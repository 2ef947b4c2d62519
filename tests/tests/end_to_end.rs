//! `up --once` at library level: every appended event is exactly one Parquet row, one table
//! item and one CloudWatch sample, whether the collections run through `up --once` itself or
//! through the pipeline's parts.

use anyhow::Result;
use shardline_tests::{
    TestEnv, drain_all, parquet_root, query_count, read_parquet_dir, sample_count_sum, table_count,
    unique_keys,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_once_three_times() -> Result<()> {
    let env = TestEnv::new("")?;
    for _ in 0..3 {
        let args = shardline::cli::UpArgs {
            once: true,
            duration: None,
        };
        let code = shardline::commands::up::run(env.config.clone(), args).await?;
        assert_eq!(code, 0, "up --once exit code");
    }
    let p = env.open().await?;
    let root = parquet_root(&p);
    let rows = read_parquet_dir(&root)?;
    let logged = shardline_tests::log_records(&p).await?;
    assert_eq!(logged, 96, "3 collections of 8 instances x 4 metric types");
    assert_eq!(
        rows.len() as u64,
        logged,
        "Parquet rows read with the parquet crate"
    );
    assert_eq!(unique_keys(&rows)?.len() as u64, logged);
    assert_eq!(
        query_count(&root).await?,
        logged,
        "SELECT COUNT(*) FROM metrics"
    );
    assert_eq!(table_count(&p).await?, logged, "items in InfraMetrics");
    assert_eq!(
        sample_count_sum(&p, &rows).await?,
        logged as f64,
        "SampleCount sum"
    );
    p.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_reach_every_sink_once() -> Result<()> {
    let env = TestEnv::new("")?;
    let p = env.open().await?;
    let mut appended = 0usize;
    for _ in 0..3 {
        let (events, report) = p.collect_once(None).await?;
        assert!(
            report.failed.is_empty(),
            "appends failed: {:?}",
            report.failed
        );
        assert_eq!(
            events.len(),
            32,
            "8 instances x 4 metric types per collection"
        );
        appended += report.appended.len();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let reports = drain_all(&p).await?;
    assert_eq!(reports.len(), 4, "four consumers drained");
    for r in &reports {
        assert_eq!(
            r.status.records_in, 96,
            "consumer {} read every record",
            r.consumer
        );
        assert_eq!(r.status.dead_letters, 0, "consumer {}", r.consumer);
    }

    let root = parquet_root(&p);
    let rows = read_parquet_dir(&root)?;
    assert_eq!(appended, 96);
    assert_eq!(
        rows.len(),
        appended,
        "Parquet rows read with the parquet crate"
    );
    assert_eq!(unique_keys(&rows)?.len(), appended, "no (shard, seq) twice");
    assert_eq!(
        query_count(&root).await?,
        appended as u64,
        "SELECT COUNT(*) FROM metrics"
    );
    assert_eq!(
        table_count(&p).await?,
        appended as u64,
        "items in InfraMetrics"
    );
    assert_eq!(
        sample_count_sum(&p, &rows).await?,
        appended as f64,
        "SampleCount sum"
    );
    let instances: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.instance_id.as_str()).collect();
    assert_eq!(instances.len(), 8);
    p.close().await?;
    Ok(())
}
