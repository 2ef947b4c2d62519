//! The seed's Step Functions flow with the real handlers, on a virtual clock and for real;
//! user flows with Step Functions Local mock files through the library and the CLI; a
//! distributed Map on the embedded object store.

use anyhow::{Context, Result};
use shardline::cli::FlowCommand;
use shardline::handlers::{self, PIPELINE_UNHEALTHY, PipelineHandle};
use shardline::pipeline::Pipeline;
use shardline_core::ports::{ObjectStore, Stream};
use shardline_core::{MetricEvent, MetricType, StartingPosition};
use shardline_flow::mock::{MockConfig, TestCase};
use shardline_flow::{
    Execution, ExecutionStatus, Executor, FlowClock, HandlerRegistry, StateMachine, VirtualClock,
    handler_fn,
};
use shardline_local::{DirObjectStore, Envelope};
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
    for shard in p.embedded_log()?.list_shards(stream).await? {
        let it = p
            .embedded_log()?
            .get_shard_iterator(stream, shard.shard_id, &StartingPosition::TrimHorizon)
            .await?;
        for r in p.embedded_log()?.get_records(&it, 10_000).await?.records {
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

/// `shardline flow ...` as the binary runs it over a stopped data directory: the directory
/// opened on first use and closed after.
async fn flow_cli(config: &shardline::config::Config, command: FlowCommand) -> Result<i32> {
    let data = shardline::data::Data::local(config.clone());
    let mut io = shardline::io::Io::local();
    let code = shardline::commands::flow::run(&data, &mut io, command).await;
    data.close().await?;
    code
}

/// The seed's flow, unchanged, on the real clock through `shardline flow run` (its Wait
/// really waits 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_runs_for_real_through_the_cli() -> Result<()> {
    let env = TestEnv::new("")?;
    let code = flow_cli(
        &env.config,
        FlowCommand::Run {
            file: None,
            input: "{}".into(),
            history: false,
            mocks: None,
            test_case: None,
            state_machine: None,
        },
    )
    .await?;
    assert_eq!(code, 0, "the seed flow failed on the real clock");
    let p = env.open().await?;
    let (records, types) = metric_types_in_log(&p).await?;
    assert_eq!(records, 32, "4 collectors x 8 instances appended");
    assert_eq!(types, MetricType::ALL.into_iter().collect());
    assert_eq!(flow_notifications(&p)?.len(), 1);
    p.close().await?;
    Ok(())
}

const MOCKS: &str = include_str!("../../infra/deploy/mocks/MockConfigFile.json");
const LAMBDA_SQS: &str = include_str!("../../infra/deploy/mocks/LambdaSQSIntegration.asl.json");

fn mock_case(name: &str) -> Result<TestCase> {
    let cfg = MockConfig::from_json(MOCKS).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    cfg.test_case(Some("LambdaSQSIntegration"), name)
        .map_err(|e| anyhow::anyhow!(e))
}

async fn run_mocked(
    name: &str,
    registry: HandlerRegistry,
) -> Result<(Execution, Arc<VirtualClock>)> {
    let machine = StateMachine::from_json(LAMBDA_SQS).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let case = mock_case(name)?;
    let unresolved = machine.unresolved_resources(&registry, &|s| case.covers(s));
    anyhow::ensure!(unresolved.is_empty(), "{unresolved:?}");
    let clock = Arc::new(VirtualClock::new(1_700_000_000_000));
    let exec = Executor::new(machine, Arc::new(registry), clock.clone())
        .with_mocks(case)
        .run(serde_json::json!({"hello": "world"}), None)
        .await;
    Ok((exec, clock))
}

/// AWS's Step Functions Local example (LambdaSQSIntegration with HappyPath, RetryPath and
/// HybridPath) gives the outcomes AWS's guide describes.
#[tokio::test]
async fn aws_mock_example_gives_the_documented_outcomes() -> Result<()> {
    let sqs_reply = serde_json::json!({
        "MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
        "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"});
    // HappyPath: both tasks mocked; the output is the mocked SQS answer.
    let (happy, clock) = run_mocked("HappyPath", HandlerRegistry::new()).await?;
    assert_eq!(
        happy.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        happy.cause
    );
    assert_eq!(happy.output.as_ref(), Some(&sqs_reply));
    assert!(clock.sleeps().is_empty());

    // RetryPath: invocation 0 throws ResourceNotReady, 1-2 throw Timeout, 3 returns; the
    // state's Retry (3 attempts, 2 s doubling) absorbs the three failures.
    let (retry, clock) = run_mocked("RetryPath", HandlerRegistry::new()).await?;
    assert_eq!(
        retry.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        retry.cause
    );
    assert_eq!(retry.output.as_ref(), Some(&sqs_reply));
    let failures: Vec<String> = retry
        .events("TaskFailed")
        .iter()
        .filter_map(|e| e.details.error.clone())
        .collect();
    assert_eq!(
        failures,
        [
            "Lambda.ResourceNotReadyException",
            "Lambda.TimeoutException",
            "Lambda.TimeoutException"
        ]
    );
    assert_eq!(
        retry.events("TaskScheduled").len(),
        5,
        "4 Lambda attempts and 1 SQS call"
    );
    let waits: Vec<u64> = clock.sleeps().iter().map(|(_, ms)| *ms).collect();
    assert_eq!(waits, [2_000, 4_000, 8_000]);
    let lambda_out = retry
        .history
        .iter()
        .find(|e| {
            e.event_type == "TaskStateExited" && e.details.name.as_deref() == Some("LambdaState")
        })
        .and_then(|e| e.details.output.clone());
    assert_eq!(
        lambda_out,
        Some(
            serde_json::json!({"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}})
        )
    );

    // HybridPath: only LambdaState is mocked; SQSState needs a real handler.
    let case = mock_case("HybridPath")?;
    let machine = StateMachine::from_json(LAMBDA_SQS).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let missing = machine.unresolved_resources(&HandlerRegistry::new(), &|s| case.covers(s));
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].state.as_deref(), Some("SQSState"));
    let mut reg = HandlerRegistry::new();
    reg.register_resource(
        "arn:aws:states:::sqs:sendMessage",
        handler_fn(|input: serde_json::Value, _| async move {
            Ok(serde_json::json!({"MessageId": "real", "Sent": input["MessageBody"]}))
        }),
    );
    let (hybrid, _) = run_mocked("HybridPath", reg).await?;
    assert_eq!(
        hybrid.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        hybrid.cause
    );
    assert_eq!(
        hybrid.output,
        Some(
            serde_json::json!({"MessageId": "real", "Sent": {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}})
        )
    );
    Ok(())
}

/// `flow validate`, `flow run --mocks --test-case` and `flow test` on the same example, with the
/// SQS task mapped to a local command in the configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_validates_runs_and_tests_user_flows_with_mocks() -> Result<()> {
    let env = TestEnv::new(
        "[flow.tasks.\"arn:aws:states:::sqs:sendMessage\"]\ncommand = [\"cat\"]\ntimeout = \"20s\"\n",
    )?;
    let dir = env.dir.path();
    let mocks = dir.join("MockConfigFile.json");
    std::fs::write(&mocks, MOCKS)?;
    let def = dir.join("LambdaSQSIntegration.asl.json");
    std::fs::write(&def, LAMBDA_SQS)?;
    let flow = |c: FlowCommand| flow_cli(&env.config, c);
    // Valid ASL whose Lambda has no handler here: a warning, exit 0.
    assert_eq!(flow(FlowCommand::Validate { file: def.clone() }).await?, 0);
    let bad = dir.join("bad.asl.json");
    std::fs::write(
        &bad,
        r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}"#,
    )?;
    assert_eq!(flow(FlowCommand::Validate { file: bad }).await?, 1);
    // Without mocks the Lambda state has no handler: run refuses, naming it.
    let refused = flow(FlowCommand::Run {
        file: Some(def.clone()),
        input: "{}".into(),
        history: false,
        mocks: None,
        test_case: None,
        state_machine: None,
    })
    .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| format!("{e:#}").contains("have no handler")),
        "{refused:?}"
    );
    let happy = flow(FlowCommand::Run {
        file: Some(def.clone()),
        input: "{}".into(),
        history: false,
        mocks: Some(mocks.clone()),
        test_case: Some("HappyPath".into()),
        state_machine: None,
    })
    .await?;
    assert_eq!(happy, 0);
    assert_eq!(
        flow(FlowCommand::Test {
            mocks: mocks.clone()
        })
        .await?,
        0
    );
    // A wrong expectation makes `flow test` fail.
    let wrong = MOCKS.replace(
        "\"HybridPath\": {\n        \"Status\": \"SUCCEEDED\"",
        "\"HybridPath\": {\n        \"Status\": \"FAILED\"",
    );
    assert_ne!(wrong, MOCKS);
    std::fs::write(&mocks, wrong)?;
    assert_eq!(flow(FlowCommand::Test { mocks }).await?, 1);
    Ok(())
}

/// A distributed Map reading from and writing to the embedded object store.
#[tokio::test]
async fn distributed_map_reads_and_writes_the_object_store() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(DirObjectStore::open(dir.path())?);
    store.ensure_bucket("input-bucket").await?;
    for (k, body) in [
        ("data/a.json", "{}"),
        ("data/b.json", "{}"),
        ("other/c.json", "{}"),
        ("rows.csv", "id,name\n1,ann\n2,\"bo, b\"\n3,cy\n"),
        ("items.json", "[{\"n\": 1}, {\"n\": 2}]"),
    ] {
        store
            .put("input-bucket", k, bytes::Bytes::from(body), "text/plain")
            .await?;
    }
    let distributed = |reader: serde_json::Value,
                       extra: serde_json::Value,
                       proc: serde_json::Value| {
        let mut m = serde_json::json!({"Type": "Map", "ItemReader": reader, "End": true,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "P", "States": {"P": proc}}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            m[k] = v.clone();
        }
        serde_json::json!({"StartAt": "M", "States": {"M": m}})
    };
    let run = |def: serde_json::Value| {
        let store = store.clone();
        async move {
            let machine = StateMachine::from_value(&def).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let objects: Arc<dyn ObjectStore> = store;
            let exec = Executor::new(
                machine,
                Arc::new(HandlerRegistry::new()),
                Arc::new(VirtualClock::new(0)),
            )
            .with_object_store(objects)
            .run(serde_json::json!({"prefix": "data/"}), None)
            .await;
            anyhow::ensure!(
                exec.status == ExecutionStatus::Succeeded,
                "{:?}: {:?}",
                exec.error,
                exec.cause
            );
            Ok::<_, anyhow::Error>(exec.output.unwrap_or_default())
        }
    };
    let key_of = serde_json::json!({"Type": "Pass", "Parameters": {"key.$": "$.Key", "size.$": "$.Size"}, "End": true});
    // Objects under a prefix, results written by ResultWriter.
    let out = run(distributed(
        serde_json::json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "input-bucket", "Prefix.$": "$.prefix"}}),
        serde_json::json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "results-bucket", "Prefix": "results"}}}),
        key_of.clone(),
    ))
    .await?;
    let manifest_key = out["ResultWriterDetails"]["Key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        manifest_key.starts_with("results/") && manifest_key.ends_with("/manifest.json"),
        "{out}"
    );
    assert!(
        out["MapRunArn"]
            .as_str()
            .is_some_and(|a| a.contains(":mapRun:")),
        "{out}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &store
            .get("results-bucket", &manifest_key)
            .await?
            .unwrap_or_default(),
    )?;
    let succeeded_key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let records: Vec<serde_json::Value> = serde_json::from_slice(
        &store
            .get("results-bucket", &succeeded_key)
            .await?
            .unwrap_or_default(),
    )?;
    let outputs: Vec<serde_json::Value> = records
        .iter()
        .filter_map(|r| {
            r["Output"]
                .as_str()
                .and_then(|o| serde_json::from_str(o).ok())
        })
        .collect();
    assert_eq!(
        outputs,
        [
            serde_json::json!({"key": "data/a.json", "size": 2}),
            serde_json::json!({"key": "data/b.json", "size": 2})
        ]
    );
    assert!(records.iter().all(|r| r["Status"] == "SUCCEEDED"));
    // A CSV object, batched two rows at a time.
    let out = run(distributed(
        serde_json::json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}, "Parameters": {"Bucket": "input-bucket", "Key": "rows.csv"}}),
        serde_json::json!({"ItemBatcher": {"MaxItemsPerBatch": 2}}),
        serde_json::json!({"Type": "Pass", "Parameters": {"names.$": "$.Items[*].name"}, "End": true}),
    ))
    .await?;
    assert_eq!(
        out,
        serde_json::json!([{"names": ["ann", "bo, b"]}, {"names": ["cy"]}])
    );
    // A JSON array object with MaxItems.
    let out = run(distributed(
        serde_json::json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON", "MaxItems": 1}, "Parameters": {"Bucket": "input-bucket", "Key": "items.json"}}),
        serde_json::json!({}),
        serde_json::json!({"Type": "Pass", "End": true}),
    ))
    .await?;
    assert_eq!(out, serde_json::json!([{"n": 1}]));
    // A missing object fails with States.ItemReaderFailed.
    let machine = StateMachine::from_value(&distributed(
        serde_json::json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Bucket": "input-bucket", "Key": "nope.json"}}),
        serde_json::json!({}),
        serde_json::json!({"Type": "Pass", "End": true}),
    ))
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let objects: Arc<dyn ObjectStore> = store.clone();
    let failed = Executor::new(
        machine,
        Arc::new(HandlerRegistry::new()),
        Arc::new(VirtualClock::new(0)),
    )
    .with_object_store(objects)
    .run(serde_json::json!({}), None)
    .await;
    assert_eq!(
        failed.error.as_deref(),
        Some("States.ItemReaderFailed"),
        "{:?}",
        failed.cause
    );
    Ok(())
}
