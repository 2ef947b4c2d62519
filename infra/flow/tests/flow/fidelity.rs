//! JSONPath-mode behaviour where AWS's answers are recorded: intrinsic functions, JSONPath
//! filters, Wait timestamps, the context object, Map fields and definition validation.
//! Expected values are the answers that LocalStack's snapshot suite recorded against AWS
//! (tests/aws/services/stepfunctions/v2: intrinsic_functions, scenarios, base, assign) and
//! the AWS Step Functions developer guide, unless a row's comment says otherwise.

use super::table::{ECHO, Expect::*, FAIL, Row, check, one};
use serde_json::json;

fn pass_param(expr: &str) -> serde_json::Value {
    one(json!({"Type": "Pass", "Parameters": {"FunctionResult.$": expr}, "End": true}))
}

#[tokio::test]
async fn intrinsic_functions_answer_as_aws() {
    let obj = json!({"Arg1": 1, "Arg2": []});
    let add = |a: f64, b: f64| json!({"FunctionInput": {"fst": a, "snd": b}});
    let math = "States.MathAdd($.FunctionInput.fst, $.FunctionInput.snd)";
    let mut rows = Vec::new();
    // States.MathAdd rounds each argument half up (towards +infinity), then adds.
    for (a, b, sum) in [
        (1.49, 1.5, 3),
        (1.5, 1.51, 4),
        (-1.49, -1.5, -2),
        (-1.5, -1.51, -3),
        (-0.5, 0.0, 0),
        (-0.5, 0.5, 1),
        (2.5, 0.0, 3),
        (-2.5, 0.0, -2),
        (-9.0, 3.0, -6),
    ] {
        rows.push(Row {
            name: "MathAdd rounds half up",
            definition: pass_param(math),
            input: add(a, b),
            expect: Output(json!({"FunctionResult": sum})),
        });
    }
    for (text, want) in [
        ("", json!(null)),
        (" ", json!(null)),
        ("null", json!(null)),
        ("1.1", json!(1.1)),
        ("[1, 2, \"HelloWorld\"]", json!([1, 2, "HelloWorld"])),
    ] {
        rows.push(Row {
            name: "StringToJson",
            definition: pass_param("States.StringToJson($.FunctionInput)"),
            input: json!({"FunctionInput": text}),
            expect: Output(json!({"FunctionResult": want})),
        });
    }
    let fmt2 = "States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)";
    for (v, shown) in [
        (obj.clone(), "{Arg1=1, Arg2=[]}"),
        (json!(null), "null"),
        (json!(1.1), "1.1"),
        (json!(""), ""),
        (
            json!("{\"Arg1\": 1, \"Arg2\": []}"),
            "{\"Arg1\": 1, \"Arg2\": []}",
        ),
    ] {
        rows.push(Row {
            name: "Format prints each argument type as AWS",
            definition: pass_param(fmt2),
            input: json!({"FunctionInput": {"fst": v, "snd": v}}),
            expect: Output(json!({"FunctionResult": format!("Formatting arguments fst={shown} and snd={shown}.")})),
        });
    }
    rows.push(Row {
        name: "JsonToString keeps the input's key order and no spaces",
        definition: pass_param("States.JsonToString($.FunctionInput)"),
        input: json!({"FunctionInput": obj}),
        expect: Output(json!({"FunctionResult": "{\"Arg1\":1,\"Arg2\":[]}"})),
    });
    rows.push(Row {
        name: "a real newline inside a literal is kept",
        definition: pass_param("States.StringSplit('Hello\nWorld', '\n')"),
        input: json!({}),
        expect: Output(json!({"FunctionResult": ["Hello", "World"]})),
    });
    rows.push(Row {
        name: "escaped double quote in a literal: AWS refuses the definition",
        definition: pass_param(
            "States.StringToJson('{\"text\":\"An \\\"escaped double quote\\\" here\"}')",
        ),
        input: json!({}),
        expect: Invalid("is not allowed in a string literal"),
    });
    rows.push(Row {
        name: "escaped quotes in Format: refused too",
        definition: pass_param("States.Format('He said, \\\"Hello, {}!\\\"', 'Test')"),
        input: json!({}),
        expect: Invalid("is not allowed in a string literal"),
    });
    rows.push(Row {
        name: "double quotes inside a single-quoted literal are plain text",
        definition: pass_param(
            "States.JsonMerge(States.StringToJson('{\"constant_in_literal\": \"false\"}'), $$.Execution.Input.input_field, false)",
        ),
        input: json!({"input_field": {"constant_input_field": "constant_value"}}),
        expect: Output(json!({"FunctionResult": {"constant_in_literal": "false", "constant_input_field": "constant_value"}})),
    });
    rows.push(Row {
        name: "a seeded MathRandom with rounded bounds is repeatable",
        definition: pass_param(
            "States.ArrayContains(States.Array(States.MathRandom($.a, $.b, 7)), States.MathRandom(13, 45, 7))",
        ),
        input: json!({"a": 12.5, "b": 44.51}),
        expect: Output(json!({"FunctionResult": true})),
    });
    check(rows).await;
    // States.MathRandom(12.5, 44.51): AWS rounds the bounds to 13 and 45 (end exclusive).
    for _ in 0..20 {
        let out = super::table::outcome(
            &pass_param("States.MathRandom($.a, $.b)"),
            json!({"a": 12.5, "b": 44.51}),
        )
        .await;
        let n = out.ok().and_then(|v| v["FunctionResult"].as_i64());
        assert!(n.is_some_and(|n| (13..45).contains(&n)), "{n:?}");
    }
}

#[tokio::test]
async fn jsonpath_filters_and_script_indexes_select_as_aws() {
    let input = json!({"items": [
        {"id": 1, "status": 0, "price": 5, "tag": "a"},
        {"id": 2, "status": 1, "price": 15},
        {"id": 3, "status": 0, "price": 25, "tag": "b"}], "limit": 10});
    let sel = |p: &str| one(json!({"Type": "Pass", "Parameters": {"r.$": p}, "End": true}));
    let rows = vec![
        Row {
            name: "equality filter",
            definition: sel("$.items[?(@.status == 0)].id"),
            input: input.clone(),
            expect: Output(json!({"r": [1, 3]})),
        },
        Row {
            name: "comparison against the root",
            definition: sel("$.items[?(@.price > $.limit)].id"),
            input: input.clone(),
            expect: Output(json!({"r": [2, 3]})),
        },
        Row {
            name: "existence and conjunction",
            definition: sel("$.items[?(@.tag && @.price < 20)].id"),
            input: input.clone(),
            expect: Output(json!({"r": [1]})),
        },
        Row {
            name: "string comparison",
            definition: sel("$.items[?(@.tag == 'b')]"),
            input: input.clone(),
            expect: Output(json!({"r": [{"id": 3, "status": 0, "price": 25, "tag": "b"}]})),
        },
        Row {
            name: "script index: the last element",
            definition: sel("$.items[(@.length-1)].id"),
            input: input.clone(),
            expect: Output(json!({"r": 3})),
        },
        Row {
            name: "a filter that matches nothing gives an empty array",
            definition: sel("$.items[?(@.status == 7)]"),
            input: input.clone(),
            expect: Output(json!({"r": []})),
        },
        Row {
            name: "a filter is not a reference path (ResultPath)",
            definition: one(json!({"Type": "Pass", "ResultPath": "$.items[?(@.id)]", "End": true})),
            input: input.clone(),
            expect: Invalid("not a reference path"),
        },
    ];
    check(rows).await;
}

#[tokio::test]
async fn wait_timestamps_follow_iso_8601_as_aws() {
    let wait_path = one(json!({"Type": "Wait", "TimestampPath": "$.TimestampValue", "End": true}));
    let mut rows = Vec::new();
    for bad in [
        "2016-12-05 21:29:29Z",
        "2016-12-05T21:29:29",
        "05-12-2016T21:29:29Z",
        "2016-13-05T21:29:29Z",
        "2016-12-05T25:29:29Z",
    ] {
        rows.push(Row {
            name: "an invalid Timestamp makes the definition invalid",
            definition: one(json!({"Type": "Wait", "Timestamp": bad, "End": true})),
            input: json!({}),
            expect: Invalid("ISO-8601"),
        });
    }
    rows.push(Row {
        name: "TimestampPath without T fails the execution with States.Runtime",
        definition: wait_path.clone(),
        input: json!({"TimestampValue": "2016-12-05 21:29:29Z"}),
        expect: Error(
            "States.Runtime",
            "(entered at the event id #2). The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: $.TimestampValue == 2016-12-05 21:29:29Z",
        ),
    });
    rows.push(Row {
        name: "a past timestamp does not wait",
        definition: wait_path,
        input: json!({"TimestampValue": "2016-12-05T21:29:29Z"}),
        expect: Output(json!({"TimestampValue": "2016-12-05T21:29:29Z"})),
    });
    rows.push(Row {
        name: "offsets other than Z are accepted",
        definition: one(
            json!({"Type": "Wait", "Timestamp": "2016-12-05T21:29:29.5+01:00", "End": true}),
        ),
        input: json!({"a": 1}),
        expect: Output(json!({"a": 1})),
    });
    for (v, cause) in [
        (
            json!(-1),
            "The SecondsPath parameter references a negative value: $.s == -1",
        ),
        (
            json!(1.5),
            "The SecondsPath parameter cannot be parsed as a long value: $.s == 1.5",
        ),
    ] {
        rows.push(Row {
            name: "SecondsPath values AWS refuses",
            definition: one(json!({"Type": "Wait", "SecondsPath": "$.s", "End": true})),
            input: json!({"s": v}),
            expect: Error("States.Runtime", cause),
        });
    }
    check(rows).await;
}

#[tokio::test]
async fn the_context_object_has_the_fields_aws_fills() {
    let ctx = |p: &str| one(json!({"Type": "Pass", "Parameters": {"v.$": p}, "End": true}));
    let rows = vec![
        Row {
            name: "RoleArn is always there",
            definition: ctx("$$.Execution.RoleArn"),
            input: json!({}),
            expect: Output(
                json!({"v": "arn:aws:iam::190517931751:role/InfraMonitoring-Pipeline-Orchestration-role"}),
            ),
        },
        Row {
            name: "RedriveCount starts at 0",
            definition: ctx("$$.Execution.RedriveCount"),
            input: json!({}),
            expect: Output(json!({"v": 0})),
        },
        Row {
            name: "StartTime is ISO 8601 with milliseconds",
            definition: ctx("$$.Execution.StartTime"),
            input: json!({}),
            expect: Output(json!({"v": "2023-11-14T22:13:20.000Z"})),
        },
        Row {
            name: "the execution's name, input and the state's name",
            definition: one(json!({"Type": "Pass", "Parameters": {
                "n.$": "$$.Execution.Name", "i.$": "$$.Execution.Input", "s.$": "$$.State.Name",
                "r.$": "$$.State.RetryCount"}, "End": true})),
            input: json!({"k": 1}),
            expect: Output(json!({"n": "row", "i": {"k": 1}, "s": "S", "r": 0})),
        },
        Row {
            name: "Format of an object from the context",
            definition: ctx("States.Format('{}', $$.StateMachine)"),
            input: json!({}),
            expect: Output(
                json!({"v": "{Id=arn:aws:states:eu-west-1:190517931751:stateMachine:InfraMonitoring-Pipeline-Orchestration, Name=InfraMonitoring-Pipeline-Orchestration}"}),
            ),
        },
    ];
    check(rows).await;
}

#[tokio::test]
async fn map_fields_behave_as_aws() {
    let inner = json!({"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}});
    let failing = json!({"StartAt": "I", "States": {"I": {"Type": "Choice",
        "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "P"},
        "F": {"Type": "Fail", "Error": "Two", "Cause": "item two"},
        "P": {"Type": "Pass", "End": true}}});
    let dist = |extra: serde_json::Value, proc: &serde_json::Value| {
        let mut proc = proc.clone();
        proc["ProcessorConfig"] = json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
        let mut s = json!({"Type": "Map", "ItemProcessor": proc, "End": true});
        for (k, v) in extra.as_object().into_iter().flatten() {
            s[k] = v.clone();
        }
        one(s)
    };
    let rows = vec![
        Row {
            name: "MaxConcurrencyPath to a number",
            definition: one(
                json!({"Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.mc", "ItemProcessor": inner, "End": true}),
            ),
            input: json!({"items": [1, 2, 3], "mc": 1}),
            expect: Output(json!([1, 2, 3])),
        },
        Row {
            name: "MaxConcurrencyPath to a non-number fails at run time",
            definition: one(
                json!({"Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.MaxConcurrencyValue", "ItemProcessor": inner, "End": true}),
            ),
            input: json!({"items": [1], "MaxConcurrencyValue": "NoNumber"}),
            expect: Error(
                "States.Runtime",
                "(entered at the event id #2). The MaxConcurrencyPath field refers to value \"NoNumber\" which is not a valid integer: $.MaxConcurrencyValue",
            ),
        },
        Row {
            name: "ItemSelector with the item's index and value",
            definition: one(
                json!({"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {
                "i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "k.$": "$.k"}, "ItemProcessor": inner, "End": true}),
            ),
            input: json!({"items": ["a", "b"], "k": 9}),
            expect: Output(json!([{"i": 0, "v": "a", "k": 9}, {"i": 1, "v": "b", "k": 9}])),
        },
        Row {
            name: "Map input that is not an array",
            definition: one(json!({"Type": "Map", "ItemProcessor": inner, "End": true})),
            input: json!(1),
            expect: Error(
                "States.Runtime",
                "Map state input must be an array but was: 1",
            ),
        },
        Row {
            name: "ItemBatcher groups items (distributed)",
            definition: dist(
                json!({"ItemsPath": "$.items", "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"b.$": "$.b"}}}),
                &inner,
            ),
            input: json!({"items": [1, 2, 3], "b": "x"}),
            expect: Output(
                json!([{"Items": [1, 2], "BatchInput": {"b": "x"}}, {"Items": [3], "BatchInput": {"b": "x"}}]),
            ),
        },
        Row {
            name: "ItemBatcher needs a distributed processor",
            definition: one(
                json!({"Type": "Map", "ItemBatcher": {"MaxItemsPerBatch": 2}, "ItemProcessor": inner, "End": true}),
            ),
            input: json!([]),
            expect: Invalid("needs a distributed Map"),
        },
        Row {
            name: "one tolerated failure: the Map succeeds with the error in its slot",
            definition: dist(
                json!({"ToleratedFailureCount": 1, "Label": "Items"}),
                &failing,
            ),
            input: json!([1, 2, 3]),
            // AWS documents the threshold, not the failed slot's shape; {"Error", "Cause"}
            // is what this interpreter puts there.
            expect: Output(json!([1, {"Error": "Two", "Cause": "item two"}, 3])),
        },
        Row {
            name: "more failures than tolerated",
            definition: dist(json!({"ToleratedFailurePercentage": 10}), &failing),
            input: json!([1, 2, 3]),
            expect: Error(
                "States.ExceedToleratedFailureThreshold",
                "The specified tolerated failure threshold was exceeded",
            ),
        },
        Row {
            name: "ToleratedFailurePercentagePath to a non-number",
            definition: dist(
                json!({"ItemsPath": "$.items", "ToleratedFailurePercentagePath": "$.p"}),
                &inner,
            ),
            input: json!({"items": [1], "p": "NoNumber"}),
            expect: Error(
                "States.Runtime",
                "The ToleratedFailurePercentagePath field refers to value \"NoNumber\" which is not a valid float: $.p",
            ),
        },
        Row {
            name: "ToleratedFailureCountPath negative",
            definition: dist(
                json!({"ItemsPath": "$.items", "ToleratedFailureCountPath": "$.n"}),
                &inner,
            ),
            input: json!({"items": [1], "n": -1}),
            expect: Error(
                "States.Runtime",
                "ToleratedFailureCount cannot be negative.",
            ),
        },
        Row {
            name: "a Label with a forbidden character",
            definition: dist(json!({"Label": "a/b"}), &inner),
            input: json!([]),
            expect: Invalid("Label"),
        },
        Row {
            name: "a failing iteration without a threshold fails the Map",
            definition: one(json!({"Type": "Map", "ItemProcessor": failing, "End": true})),
            input: json!([1, 2, 3]),
            expect: Error("Two", "item two"),
        },
    ];
    check(rows).await;
}

#[tokio::test]
async fn validation_separates_valid_from_invalid_as_aws() {
    let inner =
        |name: &str| json!({"StartAt": name, "States": {name: {"Type": "Pass", "End": true}}});
    let long = "N".repeat(81);
    let rows = vec![
        Row {
            name: "a state name reused inside a Map's iterator",
            definition: json!({"StartAt": "A", "States": {"A": {"Type": "Map", "Iterator": inner("A"), "End": true}}}),
            input: json!([]),
            expect: Invalid("used more than once"),
        },
        Row {
            name: "a state name reused in two Parallel branches",
            definition: json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [inner("B"), inner("B")], "End": true}}}),
            input: json!({}),
            expect: Invalid("used more than once"),
        },
        Row {
            name: "field and field.$ together",
            definition: one(
                json!({"Type": "Pass", "Parameters": {"x": 1, "x.$": "$.a"}, "End": true}),
            ),
            input: json!({}),
            expect: Invalid("cannot be combined with \"x\""),
        },
        Row {
            name: "a name over 80 characters",
            definition: json!({"StartAt": long, "States": {long.clone(): {"Type": "Succeed"}}}),
            input: json!({}),
            expect: Invalid("longer than 80"),
        },
        Row {
            name: "80 characters are fine",
            definition: json!({"StartAt": "N".repeat(80), "States": {"N".repeat(80): {"Type": "Succeed"}}}),
            input: json!({"ok": true}),
            expect: Output(json!({"ok": true})),
        },
        Row {
            name: "Parameters as an array",
            definition: one(
                json!({"Type": "Pass", "Parameters": [1, {"a.$": "$.x"}], "End": true}),
            ),
            input: json!({"x": 2}),
            expect: Output(json!([1, {"a": 2}])),
        },
        Row {
            name: "Result as an array",
            definition: one(json!({"Type": "Pass", "Result": [1, 2], "End": true})),
            input: json!({}),
            expect: Output(json!([1, 2])),
        },
        Row {
            name: "Parameters as an array on a Task",
            definition: one(
                json!({"Type": "Task", "Resource": ECHO, "Parameters": ["a", {"b.$": "$.b"}], "End": true}),
            ),
            input: json!({"b": true}),
            expect: Output(json!(["a", {"b": true}])),
        },
        Row {
            name: "Catch with a ResultPath keeps the input",
            definition: json!({"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": FAIL, "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "D"}], "End": true},
                "D": {"Type": "Succeed"}}}),
            input: json!({"k": 1}),
            expect: Output(json!({"k": 1, "err": {"Error": "Boom", "Cause": "it failed"}})),
        },
    ];
    check(rows).await;
}
