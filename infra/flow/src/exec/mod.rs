//! Running state machines.
//!
//! Layout: [`executor`] (the public [`Executor`] and the state loop), `guard` (Retry and
//! Catch around Task, Parallel and Map), `parallel`, `map`, `task`, and [`retry`] (AWS's
//! error matching and backoff).
//!
//! Data flows through a state in AWS's order: InputPath → Parameters (or ItemSelector) →
//! the work → ResultSelector → ResultPath (applied to the state's raw input) → OutputPath.
//! A caught error's `{"Error", "Cause"}` goes through the catcher's ResultPath only.

pub mod executor;
mod guard;
mod map;
mod parallel;
pub mod retry;
mod task;

pub use executor::{Execution, ExecutionStatus, Executor, ExecutorConfig};
