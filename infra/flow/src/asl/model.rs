//! The parsed state machine.
//!
//! Invariants once [`StateMachine::from_json`](super::StateMachine::from_json) has returned
//! `Ok`: `start_at` and every `Next`/`Default`/catcher target name a state of the same
//! machine (or branch), every state is reachable from `start_at`, every path parsed, every
//! payload template's `.$` value is a valid path or intrinsic call, and `States.ALL` appears
//! only alone and last in a Retry or Catch list.

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
}

/// The fields shared by Task, Parallel and Map.
#[derive(Debug, Clone)]
pub struct Io {
    /// `Parameters` (for Map, also `ItemSelector`'s legacy spelling is kept separately).
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
        choices: Vec<(super::choice::Rule, String)>,
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
    /// `Type: Map` (inline).
    Map {
        /// `ItemProcessor` or `Iterator`.
        processor: Box<StateMachine>,
        /// `ItemsPath` (default `$`).
        items_path: JsonPath,
        /// `ItemSelector` (or legacy `Parameters`, stored here too).
        item_selector: Option<Value>,
        /// `MaxConcurrency` (0 = unlimited).
        max_concurrency: u64,
        /// ResultSelector, ResultPath, Retry, Catch (`parameters` is unused for Map).
        io: Io,
    },
}

/// A Fail state's Error/Cause: literal text or a path.
#[derive(Debug, Clone)]
pub enum Source {
    /// A literal.
    Literal(String),
    /// A path into the state input (or `$$`) or an intrinsic call.
    Path(crate::payload::Expr),
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
            StateKind::Map { .. } => "Map",
        }
    }
}
