//! [`Invoker`]: how the runner calls a function, and what came of a call.
//!
//! Two invokers: [`InProcess`] calls a [`Function`] in this process; the Runtime API's
//! [`crate::runtime_api::ProcessFunction`] runs the real bootstrap binary. Both take the event
//! as the JSON bytes a mapping sends and give back the answer's bytes, so the runner reads
//! answers the same way whoever produced them.

use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

use crate::error::FunctionError;
use crate::function::Function;

/// `errorType` of an invocation that ran past the function's timeout (Lambda's name).
pub const TIMED_OUT: &str = "Sandbox.Timedout";
/// `errorType` of an invocation whose runtime process exited (Lambda's name).
pub const EXIT_ERROR: &str = "Runtime.ExitError";
/// `errorType` of a response past Lambda's 6 MB limit.
pub const RESPONSE_TOO_LARGE: &str = "Function.ResponseSizeTooLarge";

/// What came of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// The function answered these bytes (not necessarily JSON).
    Answer(Bytes),
    /// The function failed: its own error, a timeout ([`TIMED_OUT`]), a crash
    /// ([`EXIT_ERROR`]) or an init error.
    Failed(FunctionError),
}

impl Invocation {
    /// The failure, if it failed.
    pub fn error(&self) -> Option<&FunctionError> {
        match self {
            Invocation::Failed(e) => Some(e),
            Invocation::Answer(_) => None,
        }
    }
}

/// Calls a function.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// The function's name.
    fn name(&self) -> &str;

    /// Invokes the function with `event` (JSON bytes), giving it `timeout`.
    async fn invoke(&self, event: Bytes, timeout: Duration) -> Invocation;
}

/// A [`Function`] called in this process. A call past its timeout is dropped where it stands
/// (as Lambda stops the environment) and fails with [`TIMED_OUT`].
pub struct InProcess {
    function: Arc<dyn Function>,
}

impl InProcess {
    /// Invokes `function` in-process.
    pub fn new(function: Arc<dyn Function>) -> Self {
        Self { function }
    }
}

#[async_trait]
impl Invoker for InProcess {
    fn name(&self) -> &str {
        self.function.name()
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Invocation {
        match tokio::time::timeout(timeout, self.function.invoke_bytes(&event)).await {
            Ok(Ok(answer)) => Invocation::Answer(Bytes::from(answer)),
            Ok(Err(e)) => Invocation::Failed(e),
            Err(_) => Invocation::Failed(FunctionError::new(
                TIMED_OUT,
                format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
            )),
        }
    }
}
