//! Definition checks: every problem is reported, each naming the state and the field.

use serde_json::json;
use shardline_flow::{HandlerRegistry, StateMachine, handler_fn};

fn errors(def: serde_json::Value) -> Vec<String> {
    match StateMachine::from_value(&def) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn collects_every_problem_with_state_and_field() {
    let def = json!({"StartAt": "CollectCPUMetrics", "States": {
        "CollectCPUMetrics": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:data-collector", "Next": "Foo",
            "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["Other"]}],
            "Catch": [{"ErrorEquals": ["States.ALL", "Other"], "Next": "Done"}],
            "Parameters": {"x.$": "$.a[?(@.x >)]", "y.$": "States.Nope($.a)"}},
        "Both": {"Type": "Pass", "Next": "Done", "End": true},
        "Neither": {"Type": "Pass"},
        "Done": {"Type": "Succeed", "Next": "X"},
        "W": {"Type": "Wait", "Seconds": "5", "End": true},
        "Odd": {"Type": "Task", "Resource": "not-an-arn", "End": true, "Colour": "blue"},
        "Ch": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": "1", "Next": "Done"}]}
    }});
    let errs = errors(def);
    let expect = [
        "state \"CollectCPUMetrics\": field \"Next\": no state named \"Foo\"",
        "state \"CollectCPUMetrics\": field \"Retry[0].ErrorEquals\": a \"States.ALL\" entry must be the last one",
        "state \"CollectCPUMetrics\": field \"Catch[0].ErrorEquals\": \"States.ALL\" must appear alone in ErrorEquals",
        "state \"CollectCPUMetrics\": field \"Parameters.x.$\"",
        "state \"CollectCPUMetrics\": field \"Parameters.y.$\": invalid intrinsic function call",
        "state \"Both\": field \"Next\": cannot be combined with \"End\": true",
        "state \"Neither\": field \"Next\": is required unless \"End\": true",
        "state \"Done\": field \"Next\": is not a field of a Succeed state",
        "state \"W\": field \"Seconds\": must be a non-negative integer",
        "state \"Odd\": field \"Resource\": \"not-an-arn\" is not an ARN",
        "state \"Odd\": field \"Colour\": is not a field of a Task state",
        "state \"Ch\": field \"Choices[0].NumericEquals\": operand \"1\" has the wrong type",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing {want:?} in {errs:#?}"
        );
    }
}

#[test]
fn unreachable_states_and_missing_start_are_reported() {
    let errs = errors(
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "Lost": {"Type": "Succeed"}}}),
    );
    assert_eq!(
        errs,
        ["state \"Lost\": field \"Type\": state is unreachable from StartAt \"A\""]
    );
    let errs = errors(json!({"States": {"A": {"Type": "Succeed"}}}));
    assert_eq!(
        errs,
        ["field \"StartAt\": is required: name the first state"]
    );
    let errs = errors(json!({"StartAt": "Z", "States": {"A": {"Type": "Succeed"}}}));
    assert!(
        errs.contains(&"field \"StartAt\": no state named \"Z\"".to_string()),
        "{errs:?}"
    );
    let branch = errors(
        json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "Next": "P"}}}]}}}),
    );
    assert_eq!(
        branch,
        ["state \"B\": field \"Next\": no state named \"P\""],
        "a branch cannot jump to its parent"
    );
    assert!(
        errors(json!("not an object"))
            .iter()
            .any(|e| e.contains("StartAt"))
    );
    let errs = errors(
        json!({"StartAt": "A", "QueryLanguage": "JSONata", "TimeoutSeconds": 0, "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:f", "TimeoutSeconds": 0, "End": true}}}),
    );
    assert_eq!(
        errs,
        [
            "state \"A\": field \"TimeoutSeconds\": must be a positive integer",
            "field \"TimeoutSeconds\": must be a positive integer, got 0",
        ]
    );
    let deep = format!("{}1{}", "States.Array(".repeat(11), ")".repeat(11));
    let errs = errors(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": deep}, "End": true}}}),
    );
    assert!(
        errs.iter().any(|e| e.contains("more than 10 nested")),
        "{errs:?}"
    );
}

#[test]
fn unknown_resources_are_reported_by_the_registry() {
    let def = include_str!("../../../deploy/statemachine/pipeline.asl.json");
    let machine = StateMachine::from_json(def).expect("seed parses");
    let mut reg = HandlerRegistry::new();
    reg.register_lambda("data-collector", handler_fn(|v, _| async move { Ok(v) }));
    let errs: Vec<String> = machine
        .validate(&reg)
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(errs.iter().any(|e| e.starts_with("state \"CheckPipelineHealth\": field \"Resource\": no handler for Lambda function \"pipeline-health\"")), "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("state \"AnalyzeCPUMetrics\": field \"Resource\""))
    );
    assert!(errs.iter().any(|e| e.starts_with("state \"NotifySuccess\": field \"Resource\": no handler for resource \"arn:aws:states:::sns:publish\"")));
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(StateMachine::from_json("{").is_err_and(|e| e[0].message.contains("not valid JSON")));
}
