//! The seed's Step Functions flow with the real handlers on a virtual clock.

use anyhow::{Context, Result};
use shardline::handlers::{self, PIPELINE_UNHEALTHY, PipelineHandle};
use shardline::pipeline::Pipeline;
use shardline_core::ports::Stream;
use shardline_core::{MetricEvent, MetricType, StartingPosition};
use shardline_flow::{ExecutionStatus, Executor, FlowClock, StateMachine, VirtualClock};
use shardline_local::Envelope;
use shardline_tests::{TestEnv, drain_all, outbox};
use std::collections::BTreeSet;
use std::sync::Arc;

fn executor(p: &Pipeline, clock: Arc<VirtualClock>) -> Result<Executor> {
    let registry = handlers::registry(&PipelineHandle::ready(p.clone()));
    let machine = StateMachine::from_json(handlers::SEED_FLOW)
        .map_err(|e| anyhow::anyhow!("seed flow does not parse: {e:?}"))?;
    machine
        .validate(&registry)
        .map_err(|e| anyhow::anyhow!("seed flow does not validate: {e:?}"))?;
    Ok(Executor::new(machine, Arc::new(registry), clock))
}

async fn metric_types_in_log(p: &Pipeline) -> Result<(usize, BTreeSet<MetricType>)> {
    let stream = &p.config.stream.name;
    let (mut n, mut types) = (0, BTreeSet::new());
    for shard in p.log.list_shards(stream).await? {
        let it = p
            .log
            .get_shard_iterator(stream, shard.shard_id, &StartingPosition::TrimHorizon)
            .await?;
        for r in p.log.get_records(&it, 10_000).await?.records {
            types.insert(MetricEvent::from_json(&r.data)?.metric_type);
            n += 1;
        }
    }
    Ok((n, types))
}

/// The flow's notifications in the outbox. Alarm notifications share the outbox: synthetic
/// samples collected at "now" may cross a threshold, and their minute may end while a test runs.
fn flow_notifications(p: &Pipeline) -> Result<Vec<Envelope>> {
    Ok(outbox(&p.config.data_dir)?
        .into_iter()
        .filter(|e| e.subject.starts_with("Pipeline Execution"))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_succeeds_on_a_virtual_clock() -> Result<()> {
    let env = TestEnv::new("")?;
    let p = env.open().await?;
    let start = shardline_core::time::now_ms();
    let clock = Arc::new(VirtualClock::new(start));
    let execution = executor(&p, clock.clone())?
        .run(serde_json::json!({}), None)
        .await;
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{:?}: {:?}",
        execution.error,
        execution.cause
    );
    let (records, types) = metric_types_in_log(&p).await?;
    assert_eq!(records, 32, "4 collectors x 8 instances appended");
    assert_eq!(types, MetricType::ALL.into_iter().collect());

    let entered: BTreeSet<String> = execution
        .history
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .filter_map(|e| e.details.name.clone())
        .collect();
    for state in [
        "ParallelDataCollection",
        "CollectCPUMetrics",
        "CollectMemoryMetrics",
        "CollectDiskMetrics",
        "CollectNetworkMetrics",
        "WaitForProcessing",
        "CheckPipelineHealth",
        "ParallelAnalytics",
        "AnalyzeCPUMetrics",
        "AnalyzeMemoryMetrics",
        "NotifySuccess",
    ] {
        assert!(entered.contains(state), "{state} not entered: {entered:?}");
    }
    assert!(
        clock.sleeps().iter().any(|(_, ms)| *ms == 5000),
        "{:?}",
        clock.sleeps()
    );
    let wait = |t: &str| {
        execution
            .history
            .iter()
            .find(|e| e.event_type == t && e.details.name.as_deref() == Some("WaitForProcessing"))
            .map(|e| e.timestamp_ms)
            .context("no WaitForProcessing event")
    };
    assert_eq!(wait("WaitStateExited")? - wait("WaitStateEntered")?, 5000);
    assert!(clock.now_ms() >= start + 5000);

    let notify = execution
        .history
        .iter()
        .find(|e| {
            e.event_type == "TaskStateEntered" && e.details.name.as_deref() == Some("NotifySuccess")
        })
        .context("NotifySuccess not entered")?;
    let sent = flow_notifications(&p)?;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].message,
        format!(
            "Pipeline execution completed successfully at {}",
            notify.timestamp
        )
    );
    assert_eq!(sent[0].subject, "Pipeline Execution Success");
    p.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_consumers_fail_the_flow() -> Result<()> {
    let env = TestEnv::new("")?;
    let p = env.open().await?;
    let clock = Arc::new(VirtualClock::new(shardline_core::time::now_ms()));
    // Records appended and drained are not lag: the flow succeeds.
    p.collect_once(None).await?;
    drain_all(&p).await?;
    let ok = executor(&p, clock.clone())?
        .run(serde_json::json!({}), None)
        .await;
    assert_eq!(
        ok.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        ok.error,
        ok.cause
    );
    drain_all(&p).await?;

    // New records nobody reads, older than max_consumer_lag by the virtual clock.
    p.collect_once(None).await?;
    let lag = u64::try_from(p.config.flow.max_consumer_lag.as_millis())?;
    clock.advance_ms(lag + 60_000);
    let before = flow_notifications(&p)?.len();
    let failed = executor(&p, clock.clone())?
        .run(serde_json::json!({}), None)
        .await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some(PIPELINE_UNHEALTHY));
    let cause = failed.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("s3-parquet") && cause.contains("records"),
        "{cause}"
    );
    assert!(
        !failed
            .history
            .iter()
            .any(|e| e.details.name.as_deref() == Some("NotifySuccess")),
        "the flow stopped at CheckPipelineHealth"
    );
    assert_eq!(
        flow_notifications(&p)?.len(),
        before,
        "no success notification"
    );
    p.close().await?;
    Ok(())
}
