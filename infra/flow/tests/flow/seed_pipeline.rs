//! The seed's state machine (infra/deploy/statemachine/pipeline.asl.json) run end to end
//! with in-process handlers on a virtual clock.

use serde_json::{Value, json};
use shardline_flow::{
    Execution, ExecutionStatus, Executor, FlowClock, HandlerRegistry, SNS_PUBLISH, StateMachine,
    TaskError, VirtualClock, handler_fn,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const DEFINITION: &str = include_str!("../../../deploy/statemachine/pipeline.asl.json");

type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// Handlers that record every call; `fail_first[metric]` makes the collector fail that many
/// times for the metric (`u32::MAX` = always).
fn registry(calls: &Calls, fail_first: HashMap<&'static str, u32>) -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let c = calls.clone();
    r.register_lambda(
        "data-collector",
        handler_fn(move |input: Value, _ctx| {
            let c = c.clone();
            let attempts = attempts.clone();
            let fail_first = fail_first.clone();
            async move {
                let metric = input["metric_type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                c.lock()
                    .map_err(|_| TaskError::new("Poisoned", ""))?
                    .push(("data-collector".into(), input.clone()));
                let n = {
                    let mut a = attempts
                        .lock()
                        .map_err(|_| TaskError::new("Poisoned", ""))?;
                    let n = a.entry(metric.clone()).or_default();
                    *n += 1;
                    *n
                };
                if n <= fail_first.get(metric.as_str()).copied().unwrap_or(0) {
                    return Err(TaskError::new(
                        "CollectorError",
                        format!("{metric} source unavailable (attempt {n})"),
                    ));
                }
                Ok(json!({"metric_type": metric, "records": 10}))
            }
        }),
    );
    for name in ["pipeline-health", "metrics-analyzer"] {
        let c = calls.clone();
        r.register_lambda(
            name,
            handler_fn(move |input: Value, _ctx| {
                let c = c.clone();
                async move {
                    c.lock().map_err(|_| TaskError::new("Poisoned", ""))?.push((name.into(), input.clone()));
                    Ok(json!({"handler": name, "healthy": true, "metric_type": input.get("metric_type")}))
                }
            }),
        );
    }
    let c = calls.clone();
    r.register_resource(
        SNS_PUBLISH,
        handler_fn(move |input: Value, _ctx| {
            let c = c.clone();
            async move {
                c.lock()
                    .map_err(|_| TaskError::new("Poisoned", ""))?
                    .push(("sns".into(), input));
                Ok(json!({"MessageId": "m-1"}))
            }
        }),
    );
    r
}

async fn run(
    fail_first: HashMap<&'static str, u32>,
) -> (Execution, Vec<(String, Value)>, Arc<VirtualClock>) {
    let machine = StateMachine::from_json(DEFINITION).expect("seed definition parses");
    let calls: Calls = Arc::default();
    let reg = registry(&calls, fail_first);
    machine
        .validate(&reg)
        .expect("every resource has a handler");
    let clock = Arc::new(VirtualClock::at("2026-02-19T11:25:09.123Z").expect("timestamp"));
    let exec = Executor::new(machine, Arc::new(reg), clock.clone());
    let out = exec.run(json!({}), Some("seed-run".into())).await;
    let calls = calls.lock().expect("lock").clone();
    (out, calls, clock)
}

fn calls_to<'a>(calls: &'a [(String, Value)], who: &str) -> Vec<&'a Value> {
    calls
        .iter()
        .filter(|(n, _)| n == who)
        .map(|(_, v)| v)
        .collect()
}

#[tokio::test]
async fn seed_flow_runs_every_state_and_notifies() {
    let (exec, calls, clock) = run(HashMap::new()).await;
    assert_eq!(
        exec.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        exec.error,
        exec.cause
    );

    let mut metrics: Vec<&str> = calls_to(&calls, "data-collector")
        .iter()
        .filter_map(|v| v["metric_type"].as_str())
        .collect();
    metrics.sort();
    assert_eq!(
        metrics,
        [
            "cpu_utilization",
            "disk_usage",
            "memory_usage",
            "network_traffic"
        ]
    );

    // WaitForProcessing takes exactly 5 s of virtual time.
    assert_eq!(
        clock.sleeps().iter().map(|s| s.1).collect::<Vec<_>>(),
        [5_000]
    );
    let wait_in = exec.events("WaitStateEntered")[0].timestamp_ms;
    let wait_out = exec.events("WaitStateExited")[0].timestamp_ms;
    assert_eq!(wait_out - wait_in, 5_000);

    // Health sees the four collector outputs, in branch order.
    let health = calls_to(&calls, "pipeline-health");
    assert_eq!(health.len(), 1);
    let order: Vec<&str> = health[0]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|v| v["metric_type"].as_str())
        .collect();
    assert_eq!(
        order,
        [
            "cpu_utilization",
            "memory_usage",
            "disk_usage",
            "network_traffic"
        ]
    );

    let analyzed: Vec<&str> = calls_to(&calls, "metrics-analyzer")
        .iter()
        .filter_map(|v| v["metric_type"].as_str())
        .collect();
    assert_eq!(analyzed.len(), 2);
    assert!(analyzed.contains(&"cpu_utilization") && analyzed.contains(&"memory_usage"));

    let notify_entered = exec
        .events("TaskStateEntered")
        .into_iter()
        .find(|e| e.details.name.as_deref() == Some("NotifySuccess"))
        .expect("NotifySuccess entered")
        .timestamp
        .clone();
    assert_eq!(notify_entered, "2026-02-19T11:25:14.123Z");
    let sns = calls_to(&calls, "sns");
    assert_eq!(
        sns,
        [&json!({
            "TopicArn": "arn:aws:sns:eu-west-1:190517931751:InfraMonitoring-Alarms",
            "Subject": "Pipeline Execution Success",
            "Message": format!("Pipeline execution completed successfully at {notify_entered}"),
        })]
    );
    assert_eq!(exec.output, Some(json!({"MessageId": "m-1"})));

    let entered: Vec<&str> = exec
        .history
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .filter_map(|e| e.details.name.as_deref())
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
        assert!(entered.contains(&state), "{state} missing from history");
    }
    assert_eq!(
        exec.history.first().map(|e| e.event_type.as_str()),
        Some("ExecutionStarted")
    );
    assert_eq!(
        exec.history.last().map(|e| e.event_type.as_str()),
        Some("ExecutionSucceeded")
    );
    for (i, e) in exec.history.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1);
        assert!(e.previous_event_id < e.id);
    }
    let json = serde_json::to_value(&exec.history).expect("history serializes");
    assert_eq!(json[0]["type"], "ExecutionStarted");
    assert_eq!(json[0]["timestamp"], "2026-02-19T11:25:09.123Z");
}

#[tokio::test]
async fn collector_failing_twice_is_retried_after_10s_then_20s() {
    let (exec, calls, clock) = run(HashMap::from([("cpu_utilization", 2)])).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    let cpu_calls = calls_to(&calls, "data-collector")
        .into_iter()
        .filter(|v| v["metric_type"] == "cpu_utilization")
        .count();
    assert_eq!(cpu_calls, 3);
    let scheduled: Vec<i64> = exec
        .events("TaskScheduled")
        .into_iter()
        .filter(|e| e.details.name.as_deref() == Some("CollectCPUMetrics"))
        .map(|e| e.timestamp_ms)
        .collect();
    assert_eq!(scheduled.len(), 3);
    assert_eq!(
        [scheduled[1] - scheduled[0], scheduled[2] - scheduled[1]],
        [10_000, 20_000]
    );
    let waits: Vec<u64> = exec
        .events("TaskRetryScheduled")
        .iter()
        .filter_map(|e| e.details.wait_ms)
        .collect();
    assert_eq!(waits, [10_000, 20_000]);
    assert_eq!(
        clock.sleeps().iter().map(|s| s.1).collect::<Vec<_>>(),
        [10_000, 20_000, 5_000]
    );
    let health = calls_to(&calls, "pipeline-health");
    assert_eq!(
        health[0][0],
        json!({"metric_type": "cpu_utilization", "records": 10})
    );
}

#[tokio::test]
async fn collector_always_failing_is_caught_and_the_flow_succeeds() {
    let (exec, calls, _clock) = run(HashMap::from([("memory_usage", u32::MAX)])).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    // 1 attempt + MaxAttempts 3, with 10 s, 20 s and 40 s between them.
    let mem_calls = calls_to(&calls, "data-collector")
        .into_iter()
        .filter(|v| v["metric_type"] == "memory_usage")
        .count();
    assert_eq!(mem_calls, 4);
    let waits: Vec<u64> = exec
        .events("TaskRetryScheduled")
        .iter()
        .filter_map(|e| e.details.wait_ms)
        .collect();
    assert_eq!(waits, [10_000, 20_000, 40_000]);
    let failed_entered = exec
        .events("PassStateEntered")
        .into_iter()
        .find(|e| e.details.name.as_deref() == Some("MemoryCollectionFailed"))
        .expect("the catcher's Next ran");
    let input = failed_entered.details.input.clone().unwrap_or_default();
    assert_eq!(input["memory_error"]["Error"], "CollectorError");
    assert_eq!(
        input["memory_error"]["Cause"],
        "memory_usage source unavailable (attempt 4)"
    );
    let health = calls_to(&calls, "pipeline-health");
    assert_eq!(
        health[0][1],
        json!({"status": "failed", "metric": "memory_usage"})
    );
    assert_eq!(calls_to(&calls, "sns").len(), 1);
}

#[tokio::test]
async fn unhealthy_pipeline_fails_the_execution_without_notifying() {
    let machine = StateMachine::from_json(DEFINITION).expect("parses");
    let calls: Calls = Arc::default();
    let mut reg = registry(&calls, HashMap::new());
    reg.register_lambda(
        "pipeline-health",
        handler_fn(|_, _| async { Err(TaskError::new("PipelineUnhealthy", "lag 900 s")) }),
    );
    let clock: Arc<dyn FlowClock> = Arc::new(VirtualClock::new(0));
    let exec = Executor::new(machine, Arc::new(reg), clock)
        .run(json!({}), None)
        .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(
        (exec.error.as_deref(), exec.cause.as_deref()),
        (Some("PipelineUnhealthy"), Some("lag 900 s"))
    );
    assert!(calls_to(&calls.lock().expect("lock"), "sns").is_empty());
    assert_eq!(
        exec.history.last().map(|e| e.event_type.as_str()),
        Some("ExecutionFailed")
    );
}
