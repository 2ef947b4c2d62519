//! Step Functions (Amazon States Language) interpreter and EventBridge-style schedules.
//!
//! A definition is parsed and checked with [`StateMachine::from_json`] (every problem is
//! reported, naming the state and field) and [`StateMachine::validate`] (every Task resource
//! has a handler in the [`HandlerRegistry`]). An [`Executor`] runs it on a [`FlowClock`] —
//! [`VirtualClock`] in tests, [`RealClock`] in production — and returns an [`Execution`]
//! with its output or error and a `GetExecutionHistory`-like history.
//!
//! # Layout
//! - [`asl`]: the definition model, parsing, Choice rules, validation.
//! - [`jsonpath`]: JSONPath selection (filters, variables) and `ResultPath` writes.
//! - [`jsonata`]: JSONata expressions (`{% … %}`) with `$states` and AWS's extra functions.
//! - [`payload`]: `.$` payload templates (`Parameters`, `ResultSelector`, `ItemSelector`).
//! - [`intrinsics`]: the 18 `States.*` intrinsic functions.
//! - [`mock`]: Step Functions Local's MockConfigFile: test cases answering Task states.
//! - [`registry`]: [`TaskHandler`], [`HandlerRegistry`], resource ARNs, [`TaskError`].
//! - [`exec`]: the [`Executor`], Retry/Catch, Parallel, Map, Task invocation.
//! - [`external`]: Task handlers that run a local command or POST to an HTTP endpoint.
//! - [`history`]: execution history events.
//! - [`clock`]: [`FlowClock`], [`RealClock`], [`VirtualClock`].
//! - [`schedule`]: EventBridge `rate()`, `cron()` and `at()` expressions, the Scheduled
//!   Event input and a bounded [`schedule::Scheduler`].

pub mod asl;
pub mod clock;
pub mod exec;
pub mod external;
pub mod history;
pub mod intrinsics;
pub mod jsonata;
pub mod jsonpath;
pub mod mock;
pub mod payload;
pub mod registry;
pub mod schedule;

pub use asl::{StateMachine, ValidationError};
pub use clock::{FlowClock, RealClock, VirtualClock};
pub use exec::{Execution, ExecutionStatus, Executor, ExecutorConfig};
pub use history::HistoryEvent;
pub use registry::{
    HandlerRegistry, LAMBDA_INVOKE, SNS_PUBLISH, SnsPublish, TaskContext, TaskError, TaskHandler,
    handler_fn,
};
