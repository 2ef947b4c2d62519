//! The errors a function reports, with names that retries can tell apart.
//!
//! A function error reaches its caller as Lambda's error document, `{"errorType": ...,
//! "errorMessage": ...}`. Step Functions matches `errorType` in Retry and Catch; the event
//! source mapping retries any error per its settings, and its OnFailure record names the
//! condition. The names:
//!
//! | `errorType` | meaning | what to do |
//! |---|---|---|
//! | [`RETRYABLE`] | a backend throttled or was unavailable; trying again may succeed | retry with backoff |
//! | [`PERMANENT`] | the request, the configuration or stored data is wrong; retrying gives the same answer | fix the cause; do not retry |
//! | [`INVALID_EVENT`] | the event is not what the function takes (not a KinesisEvent, a bad record id) | fix the caller |
//! | anything else | a flow task's own name (`PipelineUnhealthy`, `InvalidParameter`, `States.TaskFailed`) | as the flow says |
//!
//! Functions never panic on bad input; a panic is the runtime's `Runtime.ExitError`.

use shardline_core::RetryClass;

/// `errorType` of an error that may go away when the call is tried again.
pub const RETRYABLE: &str = "Shardline.RetryableError";
/// `errorType` of an error that trying again does not fix.
pub const PERMANENT: &str = "Shardline.PermanentError";
/// `errorType` of an event the function cannot take.
pub const INVALID_EVENT: &str = "Shardline.InvalidEvent";

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient: retry with backoff.
    Retryable,
    /// Retrying gives the same answer.
    Permanent,
}

/// A function's error: its `errorType` and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct FunctionError {
    /// Lambda's `errorType`.
    pub error_type: String,
    /// Lambda's `errorMessage`.
    pub message: String,
}

impl FunctionError {
    /// An error named `error_type`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
        }
    }

    /// A [`RETRYABLE`] or [`PERMANENT`] error.
    pub fn of_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        let name = match kind {
            ErrorKind::Retryable => RETRYABLE,
            ErrorKind::Permanent => PERMANENT,
        };
        Self::new(name, message)
    }

    /// An [`INVALID_EVENT`] error.
    pub fn invalid_event(message: impl Into<String>) -> Self {
        Self::new(INVALID_EVENT, message)
    }

    /// The kind its name implies: only [`RETRYABLE`] is retryable.
    pub fn kind(&self) -> ErrorKind {
        if self.error_type == RETRYABLE {
            ErrorKind::Retryable
        } else {
            ErrorKind::Permanent
        }
    }

    /// Lambda's error document.
    pub fn to_document(&self) -> serde_json::Value {
        serde_json::json!({ "errorType": self.error_type, "errorMessage": self.message })
    }
}

impl From<shardline_core::Error> for FunctionError {
    fn from(e: shardline_core::Error) -> Self {
        let kind = match e.retry_class() {
            RetryClass::Retryable => ErrorKind::Retryable,
            RetryClass::Permanent => ErrorKind::Permanent,
        };
        Self::of_kind(kind, e.to_string())
    }
}

impl From<FunctionError> for lambda_runtime::Diagnostic {
    fn from(e: FunctionError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type,
            error_message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_errors_keep_their_retry_class_in_the_name() {
        let throttled: FunctionError = shardline_core::Error::Throttled("slow down".into()).into();
        assert_eq!(throttled.error_type, RETRYABLE);
        assert_eq!(throttled.kind(), ErrorKind::Retryable);
        let bad: FunctionError = shardline_core::Error::InvalidArgument("no".into()).into();
        assert_eq!(bad.error_type, PERMANENT);
        assert_eq!(bad.kind(), ErrorKind::Permanent);
        assert_eq!(
            bad.to_document(),
            serde_json::json!({"errorType": PERMANENT, "errorMessage": "invalid argument: no"})
        );
    }
}
