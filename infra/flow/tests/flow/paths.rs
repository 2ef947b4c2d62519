//! Input and output processing, one case per step, with the examples of the AWS pages
//! "Manipulate parameters in Step Functions workflows" (InputPath, Parameters,
//! ResultSelector), "Specifying state output using ResultPath in Step Functions" (ResultPath)
//! and "Example: Manipulating state data with paths in Step Functions workflows" (OutputPath).

use serde_json::{Value, json};
use shardline_flow::{
    ExecutionStatus, Executor, HandlerRegistry, StateMachine, TaskError, VirtualClock, handler_fn,
};
use std::sync::Arc;

/// Runs a one-state machine whose Task calls `handler` (returns `result` or greets `who`).
async fn run_state(state: Value, input: Value, result: Option<Value>) -> Result<Value, TaskError> {
    let def = json!({"StartAt": "S", "States": {"S": state}});
    let machine =
        StateMachine::from_value(&def).map_err(|e| TaskError::new("Invalid", format!("{e:?}")))?;
    let mut reg = HandlerRegistry::new();
    reg.register_lambda(
        "fixed",
        handler_fn(move |input: Value, _| {
            let result = result.clone();
            async move {
                Ok(result.unwrap_or_else(|| {
                    json!(format!("Hello, {}!", input["who"].as_str().unwrap_or("?")))
                }))
            }
        }),
    );
    reg.register_lambda(
        "echo",
        handler_fn(|input: Value, _| async move { Ok(input) }),
    );
    let exec = Executor::new(
        machine,
        Arc::new(reg),
        Arc::new(VirtualClock::new(1_771_500_309_123)),
    )
    .run(input, Some("paths".into()))
    .await;
    match exec.status {
        ExecutionStatus::Succeeded => Ok(exec.output.unwrap_or_default()),
        _ => Err(TaskError::new(
            exec.error.unwrap_or_default(),
            exec.cause.unwrap_or_default(),
        )),
    }
}

const FIXED: &str = "arn:aws:lambda:us-east-1:123456789012:function:fixed";
const ECHO: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

#[tokio::test]
async fn input_path_selects_the_effective_input() {
    let input = json!({
        "comment": "Example for InputPath.",
        "dataset1": {"val1": 1, "val2": 2, "val3": 3},
        "dataset2": {"val1": "a", "val2": "b", "val3": "c"}
    });
    let out = run_state(
        json!({"Type": "Task", "Resource": ECHO, "InputPath": "$.dataset2", "End": true}),
        input,
        None,
    )
    .await;
    assert_eq!(out, Ok(json!({"val1": "a", "val2": "b", "val3": "c"})));
}

#[tokio::test]
async fn parameters_build_the_task_input() {
    let input = json!({
        "comment": "Example for Parameters.",
        "product": {
            "details": {"color": "blue", "size": "small", "material": "cotton"},
            "availability": "in stock", "sku": "2317", "cost": "$23"
        }
    });
    let state = json!({"Type": "Task", "Resource": ECHO, "End": true, "Parameters": {
        "comment": "Selecting what I care about.",
        "MyDetails": {"size.$": "$.product.details.size", "exists.$": "$.product.availability", "StaticValue": "foo"}
    }});
    let out = run_state(state, input, None).await;
    assert_eq!(
        out,
        Ok(json!({
            "comment": "Selecting what I care about.",
            "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}
        }))
    );
}

#[tokio::test]
async fn result_selector_reshapes_the_result() {
    let result = json!({
        "resourceType": "elasticmapreduce",
        "resource": "createCluster.sync",
        "output": {
            "SdkHttpMetadata": {"HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": "1234-5678-9012"},
            "ClusterId": "AKIAIOSFODNN7EXAMPLE"
        }
    });
    let state = json!({"Type": "Task", "Resource": FIXED, "End": true,
        "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"}});
    let out = run_state(state, json!({}), Some(result)).await;
    assert_eq!(
        out,
        Ok(json!({"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}))
    );
}

#[tokio::test]
async fn result_path_places_discards_or_replaces() {
    let input = json!({
        "comment": "This is a test of the input and output of a Task state.",
        "details": "Default example",
        "who": "AWS Step Functions"
    });
    let task = |rp: Value| {
        let mut s = json!({"Type": "Task", "Resource": FIXED, "End": true});
        if !rp.is_string() || rp != "absent" {
            s["ResultPath"] = rp;
        }
        s
    };
    let mut with_result = input.clone();
    with_result["taskresult"] = json!("Hello, AWS Step Functions!");
    let cases = [
        (json!("$.taskresult"), with_result),
        (json!("absent"), json!("Hello, AWS Step Functions!")),
        (json!("$"), json!("Hello, AWS Step Functions!")),
        (Value::Null, input.clone()),
        (json!("$.strings.lambdaresult"), {
            let mut v = input.clone();
            v["strings"] = json!({"lambdaresult": "Hello, AWS Step Functions!"});
            v
        }),
    ];
    for (rp, want) in cases {
        assert_eq!(
            run_state(task(rp.clone()), input.clone(), None).await,
            Ok(want),
            "ResultPath {rp}"
        );
    }
    let clash = run_state(task(json!("$.who.inner")), input, None).await;
    assert_eq!(
        clash.map_err(|e| e.error),
        Err("States.ResultPathMatchFailure".to_string())
    );
}

#[tokio::test]
async fn output_path_filters_after_result_path() {
    let input = json!({
        "comment": "An input comment.",
        "data": {"val1": 23, "val2": 17},
        "extra": "foo",
        "lambda": {"who": "AWS Step Functions"}
    });
    let state = json!({"Type": "Task", "Resource": FIXED, "End": true,
        "InputPath": "$.lambda", "ResultPath": "$.data.lambdaresult", "OutputPath": "$.data"});
    let out = run_state(state, input, None).await;
    assert_eq!(
        out,
        Ok(json!({"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}))
    );
}

#[tokio::test]
async fn null_paths_and_context_object() {
    let null_io = json!({"Type": "Pass", "InputPath": null, "OutputPath": null, "End": true});
    assert_eq!(
        run_state(null_io, json!({"a": 1}), None).await,
        Ok(json!({}))
    );
    let ctx = json!({"Type": "Pass", "End": true, "Parameters": {
        "name.$": "$$.Execution.Name", "entered.$": "$$.State.EnteredTime", "state.$": "$$.State.Name",
        "machine.$": "$$.StateMachine.Name", "retries.$": "$$.State.RetryCount", "input.$": "$$.Execution.Input.k",
        "exec.$": "$$.Execution.Id"
    }});
    let out = run_state(ctx, json!({"k": "v"}), None).await;
    assert_eq!(
        out,
        Ok(json!({
            "name": "paths", "entered": "2026-02-19T11:25:09.123Z", "state": "S",
            "machine": "InfraMonitoring-Pipeline-Orchestration", "retries": 0, "input": "v",
            "exec": "arn:aws:states:eu-west-1:190517931751:execution:InfraMonitoring-Pipeline-Orchestration:paths"
        }))
    );
    let missing = run_state(
        json!({"Type": "Pass", "InputPath": "$.nope", "End": true}),
        json!({}),
        None,
    )
    .await;
    assert_eq!(
        missing.map_err(|e| e.error),
        Err("States.Runtime".to_string())
    );
    let bad_param = json!({"Type": "Pass", "Parameters": {"x.$": "$.nope"}, "End": true});
    let err = run_state(bad_param, json!({}), None)
        .await
        .err()
        .unwrap_or_else(|| TaskError::new("", ""));
    assert_eq!(err.error, "States.Runtime");
    assert!(
        err.cause.contains("\"x.$\"") && err.cause.contains("$.nope"),
        "{}",
        err.cause
    );
    let bad_call =
        json!({"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.s)"}, "End": true});
    let err = run_state(bad_call, json!({"s": "text"}), None)
        .await
        .err()
        .unwrap_or_else(|| TaskError::new("", ""));
    assert_eq!(err.error, "States.IntrinsicFailure");
    assert!(err.cause.contains("States.ArrayLength"), "{}", err.cause);
    let wildcard = json!({"Type": "Pass", "Parameters": {"ids.$": "$.items[*].id"}, "End": true});
    let out = run_state(wildcard, json!({"items": [{"id": 1}, {"id": 2}]}), None).await;
    assert_eq!(out, Ok(json!({"ids": [1, 2]})));
}
