//! `QueryLanguage: "JSONata"`: Arguments, Output, Assign, Condition, Items and `$states`.
//! Expected causes are the ones LocalStack's snapshot suite recorded against AWS
//! (v2/assign, v2/query_language, v2/scenarios, v2/intrinsic_functions/*_jsonata).

use super::table::{ECHO, Expect::*, FAIL, Row, check, one};
use serde_json::{Value, json};

fn jsonata(states: Value, start: &str) -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": start, "States": states})
}

#[tokio::test]
async fn jsonata_states_evaluate_as_aws() {
    let pass_out = |o: Value| {
        jsonata(
            json!({"S": {"Type": "Pass", "Output": o, "End": true}}),
            "S",
        )
    };
    let rows = vec![
        Row {
            name: "Output from $states.input",
            definition: pass_out(json!({"sum": "{% $sum($states.input.n) %}", "lit": "x"})),
            input: json!({"n": [1, 2, 3]}),
            expect: Output(json!({"sum": 6, "lit": "x"})),
        },
        Row {
            name: "a string with text around {% %} is a literal",
            definition: pass_out(json!({"a": " {% states.input %} ", "b": "$states.input"})),
            input: json!({}),
            expect: Output(json!({"a": " {% states.input %} ", "b": "$states.input"})),
        },
        Row {
            name: "an undefined Output",
            definition: pass_out(json!("{% $doesNotExist %}")),
            input: json!({}),
            expect: Error(
                "States.QueryEvaluationError",
                "An error occurred while executing the state 'S' (entered at the event id #2). The JSONata expression '$doesNotExist' specified for the field 'Output' returned nothing (undefined).",
            ),
        },
        Row {
            name: "an undefined Output field",
            definition: pass_out(json!({"result": "{% $doesNotExist %}"})),
            input: json!({}),
            expect: Error(
                "States.QueryEvaluationError",
                "specified for the field 'Output/result' returned nothing (undefined).",
            ),
        },
        Row {
            name: "an evaluation error names the JSONata code",
            definition: pass_out(json!({"FunctionResult": "{% $randomSeeded(1) %}"})),
            input: json!({}),
            expect: Error(
                "States.QueryEvaluationError",
                "specified for the field 'Output/FunctionResult' threw an error during evaluation. T1006",
            ),
        },
        Row {
            name: "AWS's functions",
            definition: pass_out(json!({
                "p": "{% $partition([1,2,3], 2) %}", "r": "{% $range(1, 5, 2) %}",
                "h": "{% $hash('input data', 'MD5') %}", "j": "{% $parse('[1, {\"a\": 2}]') %}",
                "u": "{% $length($uuid()) %}", "x": "{% $random() < 1 %}"})),
            input: json!({}),
            expect: Output(json!({"p": [[1, 2], [3]], "r": [1, 3, 5],
                "h": "812f45842bc6d66ee14572ce20db8e86", "j": [1, {"a": 2}], "u": 36, "x": true})),
        },
        Row {
            name: "Task: Arguments in, the result out by default",
            definition: jsonata(
                json!({"T": {"Type": "Task", "Resource": ECHO,
                "Arguments": {"who": "{% $states.input.name %}", "n": 1}, "End": true}}),
                "T",
            ),
            input: json!({"name": "Ada"}),
            expect: Output(json!({"who": "Ada", "n": 1})),
        },
        Row {
            name: "Task: Output over $states.result and $states.input",
            definition: jsonata(
                json!({"T": {"Type": "Task", "Resource": ECHO,
                "Output": {"r": "{% $states.result.x * 2 %}", "i": "{% $states.input.x %}"}, "End": true}}),
                "T",
            ),
            input: json!({"x": 21}),
            expect: Output(json!({"r": 42, "i": 21})),
        },
        Row {
            name: "an undefined Arguments field",
            definition: jsonata(
                json!({"T": {"Type": "Task", "Resource": ECHO,
                "Arguments": {"FunctionName": "{% $doesNotExist %}"}, "End": true}}),
                "T",
            ),
            input: json!({}),
            expect: Error(
                "States.QueryEvaluationError",
                "specified for the field 'Arguments/FunctionName' returned nothing (undefined).",
            ),
        },
        Row {
            name: "Catch: $states.errorOutput and the catcher's Output",
            definition: jsonata(
                json!({
                "T": {"Type": "Task", "Resource": FAIL, "Catch": [{"ErrorEquals": ["States.ALL"],
                    "Output": {"e": "{% $states.errorOutput.Error %}", "in": "{% $states.input %}"}, "Next": "D"}], "End": true},
                "D": {"Type": "Succeed"}}),
                "T",
            ),
            input: json!({"k": 1}),
            expect: Output(json!({"e": "Boom", "in": {"k": 1}})),
        },
        Row {
            name: "Catch without Output passes the error output",
            definition: jsonata(
                json!({
                "T": {"Type": "Task", "Resource": FAIL, "Catch": [{"ErrorEquals": ["Boom"], "Next": "D"}], "End": true},
                "D": {"Type": "Succeed"}}),
                "T",
            ),
            input: json!({}),
            expect: Output(json!({"Error": "Boom", "Cause": "it failed"})),
        },
        Row {
            name: "Choice with Condition and a rule's Output",
            definition: jsonata(
                json!({
                "C": {"Type": "Choice", "Choices": [
                    {"Condition": "{% $states.input.n > 1 %}", "Next": "Big", "Output": {"size": "big"}}],
                    "Default": "Small"},
                "Big": {"Type": "Succeed"}, "Small": {"Type": "Succeed", "Output": "small"}}),
                "C",
            ),
            input: json!({"n": 5}),
            expect: Output(json!({"size": "big"})),
        },
        Row {
            name: "Choice falls to Default",
            definition: jsonata(
                json!({
                "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 1 %}", "Next": "Big"}], "Default": "Small"},
                "Big": {"Type": "Succeed"}, "Small": {"Type": "Succeed", "Output": "small"}}),
                "C",
            ),
            input: json!({"n": 0}),
            expect: Output(json!("small")),
        },
        Row {
            name: "Map Items from an expression, ItemSelector with $states.context.Map",
            definition: jsonata(
                json!({"M": {"Type": "Map", "Items": "{% $states.input.xs %}",
                "ItemSelector": {"i": "{% $states.context.Map.Item.Index %}", "v": "{% $states.context.Map.Item.Value * 10 %}"},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}),
                "M",
            ),
            input: json!({"xs": [1, 2]}),
            expect: Output(json!([{"i": 0, "v": 10}, {"i": 1, "v": 20}])),
        },
        Row {
            name: "Map Items that are not an array",
            definition: jsonata(
                json!({"M": {"Type": "Map", "Items": "{% 1 %}",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}),
                "M",
            ),
            input: json!({}),
            expect: Error(
                "States.QueryEvaluationError",
                "The JSONata expression '1' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was 'number' for value: 1",
            ),
        },
        Row {
            name: "Wait Seconds and Fail Error/Cause from expressions",
            definition: jsonata(
                json!({
                "W": {"Type": "Wait", "Seconds": "{% $states.input.s %}", "Next": "F"},
                "F": {"Type": "Fail", "Error": "{% 'E' & $states.input.s %}", "Cause": "{% $string($states.input) %}"}}),
                "W",
            ),
            input: json!({"s": 3}),
            expect: Error("E3", "{\"s\":3}"),
        },
        Row {
            name: "Parallel Arguments and Output",
            definition: jsonata(
                json!({"P": {"Type": "Parallel", "Arguments": {"v": "{% $states.input.v + 1 %}"},
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                             {"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": "{% $states.input.v * 2 %}", "End": true}}}],
                "Output": "{% $states.result[1] %}", "End": true}}),
                "P",
            ),
            input: json!({"v": 1}),
            expect: Output(json!(4)),
        },
        Row {
            name: "a JSONata state inside a JSONPath machine",
            definition: json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Result": {"x": 1}, "Next": "B"},
                "B": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"y": "{% $states.input.x %}"}, "End": true}}}),
            input: json!({}),
            expect: Output(json!({"y": 1})),
        },
        Row {
            name: "a JSONPath state in a JSONata machine",
            definition: jsonata(
                json!({"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}),
                "A",
            ),
            input: json!({}),
            expect: Invalid("\"JSONPath\" is not allowed"),
        },
        Row {
            name: "InputPath in a JSONata state",
            definition: jsonata(
                json!({"A": {"Type": "Pass", "InputPath": "$.a", "End": true}}),
                "A",
            ),
            input: json!({}),
            expect: Invalid("is a JSONPath field"),
        },
        Row {
            name: "Arguments in a JSONPath state",
            definition: one(
                json!({"Type": "Task", "Resource": ECHO, "Arguments": {}, "End": true}),
            ),
            input: json!({}),
            expect: Invalid("is a JSONata field"),
        },
        Row {
            name: "a malformed expression is refused with the definition",
            definition: pass_out(json!({"a": "{% 1 + %}"})),
            input: json!({}),
            expect: Invalid("invalid JSONata expression"),
        },
        Row {
            name: "$eval is not available",
            definition: pass_out(json!("{% $eval('1') %}")),
            input: json!({}),
            expect: Error("States.QueryEvaluationError", "use $parse instead"),
        },
    ];
    check(rows).await;
}
