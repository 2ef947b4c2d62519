//! Shardline's consumers and flow tasks as AWS Lambda functions, a local Lambda Runtime API,
//! and a local Kinesis event-source-mapping runner.
//!
//! The same sink code runs three ways: in the long-running consumer (`shardline up`), as a
//! Lambda function fed by a Kinesis event source mapping, and under this crate's runner, which
//! feeds a function exactly as a mapping would: in-process, or as the real `bootstrap` binary
//! under a Runtime API served on 127.0.0.1, so what runs locally is the artefact that deploys.
//!
//! # Layout
//! - [`error`]: [`FunctionError`] and the `errorType` names retries tell apart.
//! - [`function`]: the [`Function`] trait (event in, answer out).
//! - [`config`]: [`FunctionConfig`] (`SHARDLINE_FUNCTION_CONFIG`), [`SinkKind`].
//! - [`backends`]: [`FunctionBackends`], the ports; `SHARDLINE_BACKEND` chooses them.
//! - [`sink_function`]: [`SinkFunction`], a consumer's sink as a function.
//! - [`kinesis`]: the Kinesis event and partial batch response in AWS's exact shape.
//! - [`invoke`]: [`invoke::Invoker`] (in-process or a process) and what an invocation gave.
//! - [`bootstrap`]: the body of every bootstrap binary (`src/bin/`).
//! - [`runtime_api`]: the Lambda Runtime API on 127.0.0.1 and [`runtime_api::ProcessFunction`], a bootstrap
//!   run under it with Lambda's timeout, crash and init-error handling.
//! - [`esm`]: the event source mapping runner.

pub mod backends;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod esm;
pub mod function;
pub mod invoke;
pub mod kinesis;
pub mod runtime_api;
pub mod sink_function;

pub use backends::{BackendChoice, FunctionBackends};
pub use config::{FunctionConfig, SinkKind};
pub use error::{ErrorKind, FunctionError};
pub use function::{Function, function_fn};
pub use sink_function::SinkFunction;
