//! Running state machines.
//!
//! Layout: [`executor`] (the public [`Executor`] and the state loop), `dataflow` (a state's
//! fields in its query language), `guard` (Retry and Catch around Task, Parallel and Map),
//! `parallel`, `map` (inline and distributed Map), `distributed` (ItemReader, ItemBatcher,
//! ResultWriter on the object store), `task`, [`vars`] (variables and their scopes) and
//! [`retry`] (AWS's error matching and backoff).
//!
//! Data flows through a JSONPath state in AWS's order: InputPath → Parameters (or
//! ItemSelector) → the work → ResultSelector → Assign → ResultPath (applied to the state's
//! raw input) → OutputPath; a JSONata state goes Arguments → the work → Assign and Output.
//! A caught error's `{"Error", "Cause"}` goes through the catcher's ResultPath (or Output).

mod dataflow;
mod distributed;
pub mod executor;
mod guard;
mod map;
mod parallel;
pub mod retry;
mod task;
pub mod vars;

pub use executor::{Execution, ExecutionStatus, Executor, ExecutorConfig};
