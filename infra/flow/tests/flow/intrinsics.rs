//! One table row per intrinsic function. Expected values are the examples of the AWS page
//! "Intrinsic functions for JSONPath states in Step Functions" unless noted.

use serde_json::{Value, json};
use shardline_flow::intrinsics::{Call, IntrinsicError};

fn eval(expr: &str, input: &Value) -> Result<Value, IntrinsicError> {
    Call::parse(expr)?.eval(input, &json!({"Execution": {"Name": "run-1"}}))
}

#[test]
fn every_function_matches_the_documented_example() {
    let nine = json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5, "index": 5});
    let table: Vec<(&str, Value, Value)> = vec![
        // States.Format: "Hello, my name is {}." with name Arnav.
        (
            "States.Format('Hello, my name is {}.', $.name)",
            json!({"name": "Arnav"}),
            json!("Hello, my name is Arnav."),
        ),
        // States.StringToJson: an escaped JSON string.
        (
            "States.StringToJson($.escapedJsonString)",
            json!({"escapedJsonString": "{\"foo\": \"bar\"}"}),
            json!({"foo": "bar"}),
        ),
        // States.JsonToString: a JSON object.
        (
            "States.JsonToString($.dataset)",
            json!({"dataset": {"name": "Foo", "year": 2021}}),
            json!("{\"name\":\"Foo\",\"year\":2021}"),
        ),
        // States.Array: "BuildId.$": "States.Array($.Id)".
        ("States.Array($.Id)", json!({"Id": 123456}), json!([123456])),
        (
            "States.Array('Foo', 2020, $.someJson, null)",
            json!({"someJson": {"random": "abcdefghij"}}),
            json!(["Foo", 2020, {"random": "abcdefghij"}, null]),
        ),
        // States.ArrayPartition with chunk size 4.
        (
            "States.ArrayPartition($.inputArray,4)",
            nine.clone(),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
        ),
        // States.ArrayContains looking for 5.
        (
            "States.ArrayContains($.inputArray, $.lookingFor)",
            nine.clone(),
            json!(true),
        ),
        // States.ArrayRange(1, 9, 2).
        (
            "States.ArrayRange(1, 9, 2)",
            json!({}),
            json!([1, 3, 5, 7, 9]),
        ),
        // States.ArrayGetItem at index 5.
        (
            "States.ArrayGetItem($.inputArray, $.index)",
            nine.clone(),
            json!(6),
        ),
        // States.ArrayLength.
        ("States.ArrayLength($.inputArray)", nine.clone(), json!(9)),
        // States.ArrayUnique.
        (
            "States.ArrayUnique($.inputArray)",
            json!({"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}),
            json!([1, 2, 3, 4]),
        ),
        // States.Base64Encode / Base64Decode: "Data to encode".
        (
            "States.Base64Encode($.input)",
            json!({"input": "Data to encode"}),
            json!("RGF0YSB0byBlbmNvZGU="),
        ),
        (
            "States.Base64Decode($.base64)",
            json!({"base64": "RGF0YSB0byBlbmNvZGU="}),
            json!("Data to encode"),
        ),
        // States.Hash of "input data" with SHA-1; the other algorithms checked against Python's hashlib.
        (
            "States.Hash($.Data, $.Algorithm)",
            json!({"Data": "input data", "Algorithm": "SHA-1"}),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
        ),
        (
            "States.Hash('input data', 'MD5')",
            json!({}),
            json!("812f45842bc6d66ee14572ce20db8e86"),
        ),
        (
            "States.Hash('input data', 'SHA-256')",
            json!({}),
            json!("b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"),
        ),
        // States.JsonMerge (shallow): json2's "a" replaces json1's.
        (
            "States.JsonMerge($.json1, $.json2, false)",
            json!({"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}}),
            json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
        ),
        // States.MathAdd(111, -1).
        (
            "States.MathAdd($.value1, $.step)",
            json!({"value1": 111, "step": -1}),
            json!(110),
        ),
        // States.StringSplit on "," and on a set of delimiter characters.
        (
            "States.StringSplit($.inputString, $.splitter)",
            json!({"inputString": "1,2,3,4,5", "splitter": ","}),
            json!(["1", "2", "3", "4", "5"]),
        ),
        (
            "States.StringSplit($.inputString, $.splitter)",
            json!({"inputString": "This.is+a,test=string", "splitter": ".+,="}),
            json!(["This", "is", "a", "test", "string"]),
        ),
        // Nested calls and the context object.
        (
            "States.Format('{}-{}', $$.Execution.Name, States.ArrayLength($.inputArray))",
            nine.clone(),
            json!("run-1-9"),
        ),
        // Escapes in a Format template: \{ \} \' \\ are literals.
        (
            r"States.Format('a \{b\} {} \'q\' \\', $.name)",
            json!({"name": "x"}),
            json!(r"a {b} x 'q' \"),
        ),
    ];
    for (expr, input, want) in table {
        assert_eq!(eval(expr, &input), Ok(want), "{expr}");
    }
}

#[test]
fn random_and_uuid_are_in_range_and_well_formed() {
    let input = json!({"start": 1, "end": 999});
    for _ in 0..100 {
        let v = eval("States.MathRandom($.start, $.end)", &input)
            .ok()
            .and_then(|v| v.as_i64());
        assert!(v.is_some_and(|v| (1..999).contains(&v)), "{v:?}");
    }
    let seeded = |s: i64| eval(&format!("States.MathRandom(1, 1000000, {s})"), &json!({}));
    assert_eq!(seeded(7), seeded(7));
    assert_ne!(seeded(7), seeded(8));
    let id = eval("States.UUID()", &json!({}))
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    assert_eq!(id.len(), 36);
    assert_eq!(id.as_bytes()[14], b'4', "version 4 UUID: {id}");
}

#[test]
fn bad_arguments_are_intrinsic_failures_naming_the_function() {
    let cases = [
        ("States.ArrayGetItem($.a, 3)", "States.ArrayGetItem"),
        ("States.ArrayLength($.s)", "States.ArrayLength"),
        ("States.Format('{} {}', $.s)", "States.Format"),
        ("States.Hash($.s, 'SHA-3')", "States.Hash"),
        ("States.MathAdd($.s, 1)", "States.MathAdd"),
        ("States.ArrayRange(1, 5, 0)", "States.ArrayRange"),
        ("States.JsonMerge($.a, $.a, false)", "States.JsonMerge"),
        ("States.StringToJson($.s)", "States.StringToJson"),
        ("States.Base64Decode('***')", "States.Base64Decode"),
        ("States.UUID(1)", "States.UUID"),
    ];
    let input = json!({"a": [1, 2], "s": "text"});
    for (expr, function) in cases {
        match eval(expr, &input) {
            Err(IntrinsicError::Failure { function: f, .. }) => assert_eq!(f, function, "{expr}"),
            other => panic!("{expr}: expected a failure, got {other:?}"),
        }
    }
    for bad in [
        "States.Nope(1)",
        "States.Format('x'",
        "States.Array(1 2)",
        "States.Array(@)",
    ] {
        assert!(
            matches!(Call::parse(bad), Err(IntrinsicError::Syntax { .. })),
            "{bad} parsed"
        );
    }
}
