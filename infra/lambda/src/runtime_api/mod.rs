//! The Lambda Runtime API on 127.0.0.1, and functions run as their bootstrap binaries under
//! it, so what runs locally is the artefact that deploys.
//!
//! # Layout
//! - [`server`]: [`RuntimeApiServer`], the API of one execution environment.
//! - [`process`]: [`ProcessFunction`], environments (a bootstrap process each) started on
//!   demand, with Lambda's handling of timeouts, crashes and init errors.

pub mod process;
pub mod server;

pub use process::{DEFAULT_MAX_ENVIRONMENTS, ProcessConfig, ProcessFunction};
pub use server::RuntimeApiServer;
