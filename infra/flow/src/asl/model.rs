//! The parsed state machine.
//!
//! Invariants once [`StateMachine::from_json`](super::StateMachine::from_json) has returned
//! `Ok`: `start_at` and every `Next`/`Default`/catcher target name a state of the same
//! machine (or branch), every state is reachable from `start_at`, every path parsed, every
//! payload template's `.$` value is a valid path or intrinsic call, and `States.ALL` appears
//! only alone and last in a Retry or Catch list; every `{% … %}` string parsed as JSONata;
//! state names are unique across the whole definition (branches and item processors
//! included) and at most 80 characters long.

use crate::jsonata::Jsonata;
use crate::jsonpath::JsonPath;
use serde_json::Value;
use std::collections::BTreeMap;

/// A state machine (or a Parallel branch, or a Map item processor).
#[derive(Debug, Clone)]
pub struct StateMachine {
    /// `Comment`.
    pub comment: Option<String>,
    /// `StartAt`.
    pub start_at: String,
    /// `States`, by name.
    pub states: BTreeMap<String, State>,
    /// `TimeoutSeconds` of the whole machine, if set.
    pub timeout_seconds: Option<u64>,
    /// `QueryLanguage` (default `JSONPath`), inherited by states that set none.
    pub query_language: QueryLanguage,
}

/// How a state's fields are written and evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLanguage {
    /// `JSONPath`: InputPath, Parameters, ResultSelector, ResultPath, OutputPath, `.$` keys.
    #[default]
    JsonPath,
    /// `JSONata`: Arguments, Output, `{% … %}` expressions with `$states`.
    Jsonata,
}

/// One state.
#[derive(Debug, Clone)]
pub struct State {
    /// The state's name.
    pub name: String,
    /// `InputPath`; `None` means the JSON `null` (the state sees `{}`).
    pub input_path: Option<JsonPath>,
    /// `OutputPath`; `None` means the JSON `null` (the state outputs `{}`).
    pub output_path: Option<JsonPath>,
    /// `Next`, or `None` for `End: true` and for Choice, Succeed and Fail.
    pub next: Option<String>,
    /// The type-specific part.
    pub kind: StateKind,
    /// The state's query language (its own `QueryLanguage` or the machine's).
    pub query_language: QueryLanguage,
    /// `Assign`: variables set when the state succeeds.
    pub assign: Option<Value>,
    /// `Output` (JSONata states).
    pub output: Option<Value>,
}

/// Where a result goes.
#[derive(Debug, Clone)]
pub enum ResultPath {
    /// `"ResultPath": null`: the result is discarded, the output is the input.
    Discard,
    /// A reference path; `$` replaces the input.
    At(JsonPath),
}

/// One `Retry` entry.
#[derive(Debug, Clone)]
pub struct Retrier {
    /// `ErrorEquals`.
    pub error_equals: Vec<String>,
    /// `IntervalSeconds` (default 1).
    pub interval_seconds: u64,
    /// `MaxAttempts` (default 3; 0 never retries).
    pub max_attempts: u64,
    /// `BackoffRate` (default 2.0).
    pub backoff_rate: f64,
    /// `MaxDelaySeconds`, a cap on each delay.
    pub max_delay_seconds: Option<u64>,
    /// `JitterStrategy`: `true` for `FULL`.
    pub full_jitter: bool,
}

/// One `Catch` entry.
#[derive(Debug, Clone)]
pub struct Catcher {
    /// `ErrorEquals`.
    pub error_equals: Vec<String>,
    /// `ResultPath` for the `{"Error", "Cause"}` object (default `$`).
    pub result_path: ResultPath,
    /// `Next`.
    pub next: String,
    /// `Assign`: variables set when the catcher is taken.
    pub assign: Option<Value>,
    /// `Output` (JSONata): the state's output when the catcher is taken.
    pub output: Option<Value>,
}

/// The fields shared by Task, Parallel and Map.
#[derive(Debug, Clone)]
pub struct Io {
    /// `Parameters` (JSONPath) or `Arguments` (JSONata); unused for Map.
    pub parameters: Option<Value>,
    /// `ResultSelector`.
    pub result_selector: Option<Value>,
    /// `ResultPath` (default `$`).
    pub result_path: ResultPath,
    /// `Retry`.
    pub retry: Vec<Retrier>,
    /// `Catch`.
    pub catch: Vec<Catcher>,
}

/// How long a Task may run.
#[derive(Debug, Clone)]
pub enum Timeout {
    /// `TimeoutSeconds`.
    Seconds(u64),
    /// `TimeoutSecondsPath`.
    Path(JsonPath),
    /// `TimeoutSeconds` as a JSONata expression.
    Expr(Jsonata),
}

/// What a Wait state waits for.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// `Seconds`.
    Seconds(u64),
    /// `Timestamp` (epoch milliseconds).
    Timestamp(i64),
    /// `SecondsPath`.
    SecondsPath(JsonPath),
    /// `TimestampPath`.
    TimestampPath(JsonPath),
    /// `Seconds` as a JSONata expression.
    SecondsExpr(Jsonata),
    /// `Timestamp` as a JSONata expression.
    TimestampExpr(Jsonata),
}

/// One Choice rule with where it leads.
#[derive(Debug, Clone)]
pub struct ChoiceRule {
    /// The test (`Variable` + operator, `And`/`Or`/`Not`, or a JSONata `Condition`).
    pub rule: super::choice::Rule,
    /// `Next`.
    pub next: String,
    /// `Assign` when this rule matches.
    pub assign: Option<Value>,
    /// `Output` (JSONata) when this rule matches.
    pub output: Option<Value>,
}

/// A number a Map field takes: a literal, a path (`…Path`) or a JSONata expression.
#[derive(Debug, Clone)]
pub enum Count {
    /// A literal.
    Fixed(f64),
    /// A `…Path` field.
    Path(JsonPath),
    /// A JSONata expression.
    Expr(Jsonata),
}

/// How an `ItemReader` reads its items.
#[derive(Debug, Clone, PartialEq)]
pub enum ReaderFormat {
    /// `arn:aws:states:::s3:listObjectsV2`: one item per object under `Bucket`/`Prefix`.
    ListObjects,
    /// `s3:getObject` with `InputType: JSON`: the object is a JSON array.
    Json,
    /// `InputType: JSONL`: one JSON value per line.
    JsonLines,
    /// `InputType: CSV`: one object per row keyed by the header.
    Csv {
        /// `CSVHeaders` when `CSVHeaderLocation` is `GIVEN`; `None` reads the first line.
        headers: Option<Vec<String>>,
        /// `CSVDelimiter` (`COMMA`, `PIPE`, `SEMICOLON`, `SPACE`, `TAB`).
        delimiter: char,
    },
}

/// `ItemReader`: items read from the object store instead of the state input.
#[derive(Debug, Clone)]
pub struct ItemReader {
    /// `Resource`.
    pub resource: String,
    /// `Parameters`/`Arguments` (`Bucket`, `Key` or `Prefix`).
    pub parameters: Value,
    /// The format, from the resource and `ReaderConfig.InputType`.
    pub format: ReaderFormat,
    /// `ReaderConfig.MaxItems`/`MaxItemsPath`.
    pub max_items: Option<Count>,
}

/// `ItemBatcher`: iterations receive `{"Items": [...], "BatchInput": ...}`.
#[derive(Debug, Clone)]
pub struct ItemBatcher {
    /// `MaxItemsPerBatch`/`MaxItemsPerBatchPath`.
    pub max_items: Option<Count>,
    /// `MaxInputBytesPerBatch`/`MaxInputBytesPerBatchPath`.
    pub max_bytes: Option<Count>,
    /// `BatchInput`, a payload template added to every batch.
    pub batch_input: Option<Value>,
}

/// `ResultWriter`: the Map's results written to the object store.
#[derive(Debug, Clone)]
pub struct ResultWriter {
    /// `Resource` (`arn:aws:states:::s3:putObject`).
    pub resource: String,
    /// `Parameters`/`Arguments` (`Bucket`, `Prefix`).
    pub parameters: Value,
}

/// A Map state's fields.
#[derive(Debug, Clone)]
pub struct MapState {
    /// `ItemProcessor` (or legacy `Iterator`).
    pub processor: StateMachine,
    /// `ItemProcessor.ProcessorConfig.Mode` is `DISTRIBUTED`.
    pub distributed: bool,
    /// `ItemsPath` (JSONPath; default `$`).
    pub items_path: JsonPath,
    /// `Items` (JSONata): an array or an expression.
    pub items: Option<Value>,
    /// `ItemSelector` (or legacy `Parameters`).
    pub item_selector: Option<Value>,
    /// `MaxConcurrency`/`MaxConcurrencyPath` (0 = unlimited).
    pub max_concurrency: Count,
    /// `ToleratedFailureCount`/`…Path`.
    pub tolerated_count: Option<Count>,
    /// `ToleratedFailurePercentage`/`…Path`.
    pub tolerated_percentage: Option<Count>,
    /// `ItemReader`.
    pub item_reader: Option<ItemReader>,
    /// `ItemBatcher`.
    pub item_batcher: Option<ItemBatcher>,
    /// `ResultWriter`.
    pub result_writer: Option<ResultWriter>,
    /// `Label`.
    pub label: Option<String>,
    /// ResultSelector, ResultPath, Retry, Catch.
    pub io: Io,
}

/// The type-specific part of a state.
#[derive(Debug, Clone)]
pub enum StateKind {
    /// `Type: Task`.
    Task {
        /// `Resource`.
        resource: String,
        /// Parameters, ResultSelector, ResultPath, Retry, Catch.
        io: Io,
        /// `TimeoutSeconds` / `TimeoutSecondsPath`.
        timeout: Option<Timeout>,
        /// `HeartbeatSeconds` (accepted; handlers run in-process and need no heartbeat).
        heartbeat_seconds: Option<u64>,
    },
    /// `Type: Pass`.
    Pass {
        /// `Result`.
        result: Option<Value>,
        /// `Parameters`.
        parameters: Option<Value>,
        /// `ResultPath`.
        result_path: ResultPath,
    },
    /// `Type: Choice`.
    Choice {
        /// `Choices`, each with its `Next`.
        choices: Vec<ChoiceRule>,
        /// `Default`.
        default: Option<String>,
    },
    /// `Type: Wait`.
    Wait(WaitFor),
    /// `Type: Succeed`.
    Succeed,
    /// `Type: Fail`.
    Fail {
        /// `Error` or `ErrorPath`.
        error: Option<Source>,
        /// `Cause` or `CausePath`.
        cause: Option<Source>,
    },
    /// `Type: Parallel`.
    Parallel {
        /// `Branches`.
        branches: Vec<StateMachine>,
        /// Parameters, ResultSelector, ResultPath, Retry, Catch.
        io: Io,
    },
    /// `Type: Map`.
    Map(Box<MapState>),
}

/// A Fail state's Error/Cause: literal text or a path.
#[derive(Debug, Clone)]
pub enum Source {
    /// A literal.
    Literal(String),
    /// A path into the state input (or `$$`) or an intrinsic call.
    Path(crate::payload::Expr),
    /// A JSONata expression.
    Jsonata(Jsonata),
}

impl StateKind {
    /// The ASL type name (`Task`, `Pass`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            StateKind::Task { .. } => "Task",
            StateKind::Pass { .. } => "Pass",
            StateKind::Choice { .. } => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail { .. } => "Fail",
            StateKind::Parallel { .. } => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}
