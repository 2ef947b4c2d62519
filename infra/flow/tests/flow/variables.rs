//! Workflow variables (`Assign`) in both query languages, with AWS's scoping and ordering.
//! Definitions follow LocalStack's recorded suite (templates/assign: base_evaluation_order,
//! base_scope_map, base_scope_parallel, base_assign_in_choice, base_assign_in_catch,
//! jsonata_assign_jsonpath_reference) and the developer guide's "Passing data between states
//! with variables".

use super::table::{Expect::*, FAIL, Row, check};
use serde_json::json;

#[tokio::test]
async fn variables_are_assigned_and_scoped_as_aws() {
    let rows = vec![
        Row {
            // AWS's recorded answer: "42". Every field of State1 reads $answer as it was on
            // entry; its own Assign takes effect afterwards.
            name: "evaluation order: references read the value from state entry",
            definition: json!({"StartAt": "State0", "States": {
                "State0": {"Type": "Pass", "Result": {"theQuestion": "?"},
                    "Assign": {"question.$": "$.theQuestion", "answer": 42}, "Next": "State1"},
                "State1": {"Type": "Pass", "InputPath": "$answer", "ResultPath": "$.theAnswer",
                    "OutputPath": "$answer", "Assign": {"answer": "<omitted>"}, "End": true}}}),
            input: json!({}),
            expect: Output(json!(42)),
        },
        Row {
            name: "Assign's $ is the state's result",
            definition: json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Result": {"answer": 42}, "Assign": {"theAnswer.$": "$.answer"}, "Next": "B"},
                "B": {"Type": "Pass", "Parameters": {"v.$": "$theAnswer"}, "End": true}}}),
            input: json!({}),
            expect: Output(json!({"v": 42})),
        },
        Row {
            name: "one Assign swaps two variables",
            definition: json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Assign": {"a": 1, "b": 2}, "Next": "B"},
                "B": {"Type": "Pass", "Assign": {"a.$": "$b", "b.$": "$a"}, "Next": "C"},
                "C": {"Type": "Pass", "Parameters": {"a.$": "$a", "b.$": "$b"}, "End": true}}}),
            input: json!({}),
            expect: Output(json!({"a": 2, "b": 1})),
        },
        Row {
            name: "a Map iteration reads the outer scope; its assignments stay inside",
            definition: json!({"StartAt": "State0", "States": {
                "State0": {"Type": "Pass", "Assign": {"x": 42, "items": [1, 2, 3]}, "Next": "State1"},
                "State1": {"Type": "Map", "ItemsPath": "$items", "MaxConcurrency": 1,
                    "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Inner", "States": {
                        "Inner": {"Type": "Pass", "Assign": {"innerX.$": "$x", "x": 0},
                            "Parameters": {"seen.$": "$x"}, "End": true}}},
                    "Next": "State2"},
                "State2": {"Type": "Pass", "Parameters": {"final.$": "$x", "map.$": "$"}, "End": true}}}),
            input: json!({}),
            expect: Output(json!({"final": 42, "map": [{"seen": 42}, {"seen": 42}, {"seen": 42}]})),
        },
        Row {
            name: "a variable assigned in a branch is not visible after the Parallel",
            definition: json!({"StartAt": "P", "States": {
                "P": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {
                    "B": {"Type": "Pass", "Assign": {"inner": 1}, "End": true}}}], "Next": "After"},
                "After": {"Type": "Pass", "Parameters": {"v.$": "$inner"}, "End": true}}}),
            input: json!({}),
            expect: Error("States.Runtime", "$inner"),
        },
        Row {
            name: "a distributed Map's iterations cannot read outer variables",
            definition: json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "M"},
                "M": {"Type": "Map", "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"},
                    "StartAt": "I", "States": {"I": {"Type": "Pass", "Parameters": {"x.$": "$x"}, "End": true}}},
                    "End": true}}}),
            input: json!([1]),
            expect: Error("States.Runtime", "$x"),
        },
        Row {
            name: "Assign on a matched Choice rule",
            definition: json!({"StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true,
                    "Assign": {"result": "CORRECT"}, "Next": "D"}],
                    "Default": "D", "Assign": {"result": "INCORRECT"}},
                "D": {"Type": "Pass", "Parameters": {"result.$": "$result"}, "End": true}}}),
            input: json!({"ok": true}),
            expect: Output(json!({"result": "CORRECT"})),
        },
        Row {
            name: "Assign in a JSONPath Catch reads the error output",
            definition: json!({"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": FAIL, "Catch": [{"ErrorEquals": ["States.ALL"],
                    "Assign": {"why.$": "$.Cause"}, "ResultPath": null, "Next": "D"}], "End": true},
                "D": {"Type": "Pass", "Parameters": {"why.$": "$why"}, "End": true}}}),
            input: json!({}),
            expect: Output(json!({"why": "it failed"})),
        },
        Row {
            name: "JSONata reads a variable a JSONPath state assigned, and the other way",
            definition: json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Assign": {"theAnswerVar": 42}, "Next": "B"},
                "B": {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"doubled": "{% $theAnswerVar * 2 %}"}, "Next": "C"},
                "C": {"Type": "Pass", "Parameters": {"old.$": "$theAnswerVar", "new.$": "$doubled"}, "End": true}}}),
            input: json!({}),
            expect: Output(json!({"old": 42, "new": 84})),
        },
        Row {
            name: "variables in intrinsic functions",
            definition: json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Assign": {"bias": 4.3, "x": 1}, "Next": "B"},
                "B": {"Type": "Pass", "Parameters": {"s.$": "States.MathAdd($x, $bias)"}, "End": true}}}),
            input: json!({}),
            expect: Output(json!({"s": 5})),
        },
        Row {
            name: "an undefined variable in a JSONata Assign",
            definition: json!({"QueryLanguage": "JSONata", "StartAt": "State0", "States": {
                "State0": {"Type": "Pass", "Assign": {"result": "{% $doesNotExist %}"}, "End": true}}}),
            input: json!({}),
            expect: Error(
                "States.QueryEvaluationError",
                "The JSONata expression '$doesNotExist' specified for the field 'Assign/result' returned nothing (undefined).",
            ),
        },
        Row {
            name: "an Assign over 256 KiB",
            definition: json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Assign": {"big.$": "$.s"}, "End": true}}}),
            input: json!({"s": "x".repeat(300 * 1024)}),
            expect: Error("States.DataLimitExceeded", "256"),
        },
        Row {
            name: "\"states\" is a reserved name",
            definition: json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Assign": {"states": 1}, "End": true}}}),
            input: json!({}),
            expect: Invalid("reserved"),
        },
    ];
    check(rows).await;
}
