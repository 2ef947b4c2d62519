//! [`Function`]: what a Lambda function does with one event, whoever invokes it (the
//! bootstrap binary under a Runtime API, or the local runner in-process).

use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

use crate::error::FunctionError;

/// A Lambda function: an event in, an answer or an error out.
#[async_trait]
pub trait Function: Send + Sync {
    /// The function's name.
    fn name(&self) -> &str;

    /// Handles one event.
    ///
    /// # Errors
    /// The function's error, with its `errorType`.
    async fn invoke(&self, event: Value) -> Result<Value, FunctionError>;

    /// Handles one event given as JSON bytes, answering JSON bytes: what a runtime does. By
    /// default through [`Function::invoke`]; a function may read its event type straight
    /// from the bytes.
    ///
    /// # Errors
    /// As [`Function::invoke`]; an event that is not JSON is [`crate::error::INVALID_EVENT`].
    async fn invoke_bytes(&self, event: &[u8]) -> Result<Vec<u8>, FunctionError> {
        let value = serde_json::from_slice(event)
            .map_err(|e| FunctionError::invalid_event(format!("the event is not JSON: {e}")))?;
        let answer = self.invoke(value).await?;
        Ok(serde_json::to_vec(&answer).unwrap_or_default())
    }
}

/// A function made from an async closure.
pub struct FnFunction<F> {
    name: String,
    f: F,
}

#[async_trait]
impl<F, Fut> Function for FnFunction<F>
where
    F: Fn(Value) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<Value, FunctionError>> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn invoke(&self, event: Value) -> Result<Value, FunctionError> {
        (self.f)(event).await
    }
}

/// Wraps an async closure as a function named `name`.
pub fn function_fn<F, Fut>(name: impl Into<String>, f: F) -> Arc<dyn Function>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, FunctionError>> + Send + 'static,
{
    Arc::new(FnFunction {
        name: name.into(),
        f,
    })
}
