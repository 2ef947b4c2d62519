//! Behaviour of each state type: Choice, Wait, Fail, Map, Parallel, Task timeouts,
//! lambda:invoke and the catchability rules.

use serde_json::{Value, json};
use shardline_flow::{
    Execution, ExecutionStatus, Executor, FlowClock, HandlerRegistry, StateMachine, TaskError,
    VirtualClock, handler_fn,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn registry() -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.register_lambda(
        "echo",
        handler_fn(|input: Value, _| async move { Ok(input) }),
    );
    r.register_lambda(
        "fail",
        handler_fn(|_, _| async { Err(TaskError::new("Boom", "always fails")) }),
    );
    r.register_lambda(
        "slow",
        handler_fn(|input: Value, ctx| async move {
            ctx.clock.sleep_ms(30_000).await;
            Ok(input)
        }),
    );
    r
}

async fn run_with(
    def: Value,
    input: Value,
    reg: HandlerRegistry,
    clock: Arc<VirtualClock>,
) -> Execution {
    let machine =
        StateMachine::from_value(&def).unwrap_or_else(|e| panic!("definition rejected: {e:?}"));
    machine
        .validate(&reg)
        .unwrap_or_else(|e| panic!("resources: {e:?}"));
    Executor::new(machine, Arc::new(reg), clock)
        .run(input, Some("t".into()))
        .await
}

async fn run(def: Value, input: Value) -> Execution {
    run_with(def, input, registry(), Arc::new(VirtualClock::new(0))).await
}

const ECHO: &str = "arn:aws:lambda:eu-west-1:1:function:echo";

#[tokio::test]
async fn choice_rules_pick_the_documented_branch() {
    let def = |rule: Value| {
        let mut r = rule;
        r["Next"] = json!("Yes");
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [r], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "yes", "End": true},
            "No": {"Type": "Pass", "Result": "no", "End": true}
        }})
    };
    let input = json!({"n": 5, "s": "log-2026.json", "b": true, "t": "2026-02-19T11:25:09Z", "nul": null, "m": 7, "arr": [1]});
    let cases = [
        (json!({"Variable": "$.n", "NumericEquals": 5}), true),
        (json!({"Variable": "$.n", "NumericLessThan": 5}), false),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEquals": 5}),
            true,
        ),
        (
            json!({"Variable": "$.n", "NumericLessThanPath": "$.m"}),
            true,
        ),
        (json!({"Variable": "$.n", "NumericEquals": 5.0}), true),
        (
            json!({"Variable": "$.s", "StringEquals": "log-2026.json"}),
            true,
        ),
        (json!({"Variable": "$.s", "StringGreaterThan": "log"}), true),
        (
            json!({"Variable": "$.s", "StringMatches": "log-*.json"}),
            true,
        ),
        (json!({"Variable": "$.s", "StringMatches": "*.csv"}), false),
        (json!({"Variable": "$.s", "StringEqualsPath": "$.s"}), true),
        (json!({"Variable": "$.n", "StringEquals": "5"}), false),
        (json!({"Variable": "$.b", "BooleanEquals": true}), true),
        (
            json!({"Variable": "$.t", "TimestampGreaterThan": "2026-01-01T00:00:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampEquals": "2026-02-19T12:25:09+01:00"}),
            true,
        ),
        (json!({"Variable": "$.nul", "IsNull": true}), true),
        (json!({"Variable": "$.absent", "IsPresent": false}), true),
        (json!({"Variable": "$.n", "IsPresent": true}), true),
        (json!({"Variable": "$.n", "IsNumeric": true}), true),
        (json!({"Variable": "$.s", "IsString": true}), true),
        (json!({"Variable": "$.b", "IsBoolean": false}), false),
        (json!({"Variable": "$.t", "IsTimestamp": true}), true),
        (
            json!({"And": [{"Variable": "$.n", "NumericGreaterThan": 1}, {"Variable": "$.b", "BooleanEquals": true}]}),
            true,
        ),
        (
            json!({"Or": [{"Variable": "$.n", "NumericGreaterThan": 9}, {"Variable": "$.b", "BooleanEquals": false}]}),
            false,
        ),
        (
            json!({"Not": {"Variable": "$.s", "StringEquals": "x"}}),
            true,
        ),
    ];
    for (rule, want) in cases {
        let out = run(def(rule.clone()), input.clone()).await;
        assert_eq!(
            out.output,
            Some(json!(if want { "yes" } else { "no" })),
            "{rule}"
        );
    }
    // A Variable that selects nothing is a runtime error; no Default is States.NoChoiceMatched.
    let missing = run(
        def(json!({"Variable": "$.absent", "NumericEquals": 1})),
        input.clone(),
    )
    .await;
    assert_eq!(missing.error.as_deref(), Some("States.Runtime"));
    let no_default = json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
        {"Variable": "$.n", "NumericEquals": 0, "Next": "E"}]}, "E": {"Type": "Succeed"}}});
    assert_eq!(
        run(no_default, input).await.error.as_deref(),
        Some("States.NoChoiceMatched")
    );
}

#[tokio::test]
async fn wait_variants_advance_virtual_time() {
    let start = 1_771_500_000_000; // 2026-02-19T11:20:00Z
    let cases = [
        (json!({"Seconds": 7}), json!({}), 7_000),
        (
            json!({"SecondsPath": "$.delay"}),
            json!({"delay": 12}),
            12_000,
        ),
        (
            json!({"Timestamp": "2026-02-19T11:21:30Z"}),
            json!({}),
            90_000,
        ),
        (
            json!({"TimestampPath": "$.until"}),
            json!({"until": "2026-02-19T11:20:01.500Z"}),
            1_500,
        ),
        (json!({"Timestamp": "2020-01-01T00:00:00Z"}), json!({}), 0),
    ];
    for (spec, input, want) in cases {
        let mut wait = json!({"Type": "Wait", "End": true});
        for (k, v) in spec.as_object().into_iter().flatten() {
            wait[k] = v.clone();
        }
        let clock = Arc::new(VirtualClock::new(start));
        let def = json!({"StartAt": "W", "States": {"W": wait}});
        let out = run_with(def, input.clone(), registry(), clock.clone()).await;
        assert_eq!(out.status, ExecutionStatus::Succeeded, "{spec}");
        assert_eq!(out.output, Some(input), "a Wait passes its input through");
        assert_eq!(clock.now_ms() - start, want, "{spec}");
    }
    let bad = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.d", "End": true}}});
    assert_eq!(
        run(bad, json!({"d": "soon"})).await.error.as_deref(),
        Some("States.Runtime")
    );
    // Input can ask for any wait: time saturates at the end of time instead of overflowing.
    let huge = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.d", "End": true}}});
    let clock = Arc::new(VirtualClock::new(start));
    let out = run_with(huge, json!({"d": i64::MAX}), registry(), clock.clone()).await;
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(clock.now_ms(), i64::MAX);
}

#[tokio::test]
async fn fail_reports_error_and_cause_from_literals_or_paths() {
    let lit = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "PipelineUnhealthy", "Cause": "lag"}}});
    let out = run(lit, json!({})).await;
    assert_eq!(
        (out.status, out.error.as_deref(), out.cause.as_deref()),
        (
            ExecutionStatus::Failed,
            Some("PipelineUnhealthy"),
            Some("lag")
        )
    );
    let paths = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e",
        "CausePath": "States.Format('shard {} behind', $.shard)"}}});
    let out = run(paths, json!({"e": "Lagging", "shard": 3})).await;
    assert_eq!(
        (out.error.as_deref(), out.cause.as_deref()),
        (Some("Lagging"), Some("shard 3 behind"))
    );
}

#[tokio::test]
async fn map_processes_items_in_order_with_item_context() {
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.shards", "MaxConcurrency": 2,
        "ItemSelector": {"shard.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "region.$": "$.region"},
        "ItemProcessor": {"StartAt": "Do", "States": {"Do": {"Type": "Task", "Resource": ECHO, "End": true}}},
        "ResultPath": "$.results", "End": true}}});
    let out = run(
        def,
        json!({"region": "eu-west-1", "shards": ["a", "b", "c"]}),
    )
    .await;
    assert_eq!(
        out.output,
        Some(
            json!({"region": "eu-west-1", "shards": ["a", "b", "c"], "results": [
                {"shard": "a", "index": 0, "region": "eu-west-1"},
                {"shard": "b", "index": 1, "region": "eu-west-1"},
                {"shard": "c", "index": 2, "region": "eu-west-1"}
            ]})
        )
    );
    assert_eq!(out.events("MapIterationSucceeded").len(), 3);
    assert_eq!(out.events("MapStateSucceeded").len(), 1);
}

#[tokio::test]
async fn map_respects_max_concurrency_and_legacy_iterator() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut reg = registry();
    let (f, p) = (in_flight.clone(), peak.clone());
    reg.register_lambda(
        "count",
        handler_fn(move |input: Value, _| {
            let (f, p) = (f.clone(), p.clone());
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
                f.fetch_sub(1, Ordering::SeqCst);
                Ok(json!(input.as_i64().unwrap_or(0) * 10))
            }
        }),
    );
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 2,
        "Iterator": {"StartAt": "Do", "States": {"Do": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:count", "End": true}}},
        "End": true}}});
    let out = run_with(
        def,
        json!([1, 2, 3, 4, 5]),
        reg,
        Arc::new(VirtualClock::new(0)),
    )
    .await;
    assert_eq!(out.output, Some(json!([10, 20, 30, 40, 50])));
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn failing_parallel_branch_cancels_the_others() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let mut reg = registry();
    let (c, f) = (cancelled.clone(), finished.clone());
    reg.register_lambda(
        "forever",
        handler_fn(move |_, _| {
            let (c, f) = (c.clone(), f.clone());
            async move {
                let _guard = DropFlag(c);
                futures::future::pending::<()>().await;
                f.store(true, Ordering::SeqCst);
                Ok(json!(null))
            }
        }),
    );
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "Hang", "States": {"Hang": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:forever", "End": true}}},
        {"StartAt": "Boom", "States": {"Boom": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:fail", "End": true}}}
    ]}}});
    let out = run_with(def, json!({}), reg, Arc::new(VirtualClock::new(0))).await;
    assert_eq!(
        (out.error.as_deref(), out.cause.as_deref()),
        (Some("Boom"), Some("always fails"))
    );
    assert!(
        cancelled.load(Ordering::SeqCst),
        "the hanging branch was dropped"
    );
    assert!(!finished.load(Ordering::SeqCst));
    assert_eq!(out.events("ParallelStateFailed").len(), 1);
}

#[tokio::test]
async fn task_timeout_is_only_caught_by_timeout_or_all() {
    let def = |errors: Value| {
        json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:slow", "TimeoutSeconds": 10, "HeartbeatSeconds": 5,
              "Catch": [{"ErrorEquals": errors, "ResultPath": "$.err", "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "End": true}}})
    };
    let out = run(def(json!(["States.TaskFailed"])), json!({})).await;
    assert_eq!(out.error.as_deref(), Some("States.Timeout"));
    assert_eq!(out.events("TaskTimedOut").len(), 1);
    for catching in [json!(["States.Timeout"]), json!(["States.ALL"])] {
        let out = run(def(catching), json!({})).await;
        assert_eq!(
            out.output.map(|o| o["err"]["Error"].clone()),
            Some(json!("States.Timeout"))
        );
    }
}

#[tokio::test]
async fn runtime_errors_are_not_caught_by_states_all() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": ECHO, "InputPath": "$.missing",
              "Retry": [{"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "End": true}}});
    let out = run(def, json!({})).await;
    assert_eq!(out.error.as_deref(), Some("States.Runtime"));
    assert!(out.events("TaskRetryScheduled").is_empty());
}

#[tokio::test]
async fn lambda_invoke_wraps_the_payload_and_retry_count_is_visible() {
    let mut reg = registry();
    reg.register_lambda(
        "flaky",
        handler_fn(|input: Value, ctx| async move {
            if ctx.retry_count < 2 {
                return Err(TaskError::new("Lambda.ServiceException", "try again"));
            }
            Ok(json!({"got": input, "retries": ctx.retry_count}))
        }),
    );
    let def = json!({"StartAt": "I", "States": {"I": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "arn:aws:lambda:eu-west-1:1:function:flaky:$LATEST", "Payload": {"n.$": "$.n", "try.$": "$$.State.RetryCount"}},
        "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxDelaySeconds": 5}],
        "ResultSelector": {"body.$": "$.Payload", "code.$": "$.StatusCode"}, "End": true}}});
    let clock = Arc::new(VirtualClock::new(0));
    let out = run_with(def, json!({"n": 1}), reg, clock.clone()).await;
    assert_eq!(
        out.output,
        Some(json!({"body": {"got": {"n": 1, "try": 2}, "retries": 2}, "code": 200}))
    );
    assert_eq!(
        clock.sleeps().iter().map(|s| s.1).collect::<Vec<_>>(),
        [2_000, 5_000]
    );
}

#[tokio::test]
async fn max_attempts_zero_never_retries_and_transitions_are_bounded() {
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:fail",
        "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}], "End": true}}});
    let out = run(def, json!({})).await;
    assert_eq!(out.error.as_deref(), Some("Boom"));
    assert_eq!(
        out.events("TaskScheduled").len(),
        1,
        "the first matching retrier decides"
    );
    let looping = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}});
    let out = run(looping, json!({})).await;
    assert_eq!(out.error.as_deref(), Some("States.Runtime"));
    assert!(out.cause.is_some_and(|c| c.contains("25000")));
}

#[tokio::test]
async fn runs_on_the_real_clock() {
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 0, "Next": "T"},
        "T": {"Type": "Task", "Resource": ECHO, "TimeoutSeconds": 5, "End": true}}});
    let machine = StateMachine::from_value(&def).unwrap_or_else(|e| panic!("{e:?}"));
    let exec = Executor::new(
        machine,
        Arc::new(registry()),
        Arc::new(shardline_flow::RealClock),
    )
    .run(json!({"k": 1}), None)
    .await;
    assert_eq!(
        (exec.status, exec.output),
        (ExecutionStatus::Succeeded, Some(json!({"k": 1})))
    );
    assert!(exec.start_date <= exec.stop_date);
    assert_eq!(exec.name.len(), 36, "a generated execution name is a UUID");
}
