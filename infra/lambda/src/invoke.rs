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

/// A [`Function`] called in this process, each invocation on a task of its own (as each
/// Lambda invocation runs in an execution environment of its own): the runner's shards and a
/// mapping's parallel batches invoke at once on the runtime's worker threads. A call past its
/// timeout is stopped where it stands (as Lambda stops the environment) and fails with
/// [`TIMED_OUT`]; a call that panics fails with [`EXIT_ERROR`] (Lambda's answer when the
/// runtime process dies), and the runner goes on.
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
        let function = self.function.clone();
        let mut call = tokio::spawn(async move { function.invoke_bytes(&event).await });
        match tokio::time::timeout(timeout, &mut call).await {
            Ok(Ok(Ok(answer))) => Invocation::Answer(Bytes::from(answer)),
            Ok(Ok(Err(e))) => Invocation::Failed(e),
            Ok(Err(joined)) => Invocation::Failed(FunctionError::new(
                EXIT_ERROR,
                match joined.try_into_panic() {
                    Ok(panic) => format!(
                        "the function panicked: {}",
                        panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(no message)".into())
                    ),
                    Err(_) => "the invocation was cancelled".into(),
                },
            )),
            Err(_) => {
                call.abort();
                Invocation::Failed(FunctionError::new(
                    TIMED_OUT,
                    format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Panics on events holding `"panic"`, sleeps on `"sleep"`, else echoes the event.
    struct Moody;

    #[async_trait]
    impl Function for Moody {
        fn name(&self) -> &str {
            "moody"
        }

        async fn invoke(&self, event: Value) -> Result<Value, FunctionError> {
            match event.as_str() {
                Some("panic") => panic!("poison pill"),
                Some("sleep") => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(event)
                }
                _ => Ok(event),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_or_a_timeout_fails_the_invocation_and_the_next_one_runs() {
        let f = InProcess::new(Arc::new(Moody));
        let t = Duration::from_secs(3);
        let out = f.invoke(Bytes::from_static(b"\"panic\""), t).await;
        let e = out.error().expect("a panicking invocation fails");
        assert_eq!(e.error_type, EXIT_ERROR);
        assert!(e.message.contains("poison pill"), "{e:?}");
        let out = f.invoke(Bytes::from_static(b"\"sleep\""), t).await;
        assert_eq!(out.error().map(|e| e.error_type.as_str()), Some(TIMED_OUT));
        let out = f.invoke(Bytes::from_static(b"\"ok\""), t).await;
        assert_eq!(out, Invocation::Answer(Bytes::from_static(b"\"ok\"")));
    }
}
