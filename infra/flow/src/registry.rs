//! Task resources and the handlers behind them.
//!
//! A Task's `Resource` resolves through [`HandlerRegistry`]:
//! - `arn:aws:lambda:<region>:<account>:function:NAME[:qualifier]` → the handler registered
//!   with [`HandlerRegistry::register_lambda`] under `NAME` (region, account and qualifier are
//!   ignored);
//! - [`LAMBDA_INVOKE`] → the Lambda named by `Parameters.FunctionName` (a name or an ARN),
//!   called with `Parameters.Payload`; the result is wrapped as `{"Payload": …,
//!   "StatusCode": 200, "ExecutedVersion": "$LATEST"}` as AWS does;
//! - any other ARN (e.g. [`SNS_PUBLISH`]) → the handler registered with
//!   [`HandlerRegistry::register_resource`] for that exact ARN. For `SNS_PUBLISH` the input is
//!   checked and normalised by [`SnsPublish`] first.

use crate::clock::FlowClock;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// The optimized Lambda integration resource.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
/// The SNS Publish integration resource.
pub const SNS_PUBLISH: &str = "arn:aws:states:::sns:publish";

/// An error raised by a state: an error name (`States.TaskFailed`, `PipelineUnhealthy`, ...)
/// and a human-readable cause. Retry and Catch match on `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    /// The error name.
    pub error: String,
    /// The cause.
    pub cause: String,
}

impl TaskError {
    /// An error with the given name and cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// What a handler knows about the call.
#[derive(Clone)]
pub struct TaskContext {
    /// The Task state's name.
    pub state_name: String,
    /// The resource ARN as written in the definition.
    pub resource: String,
    /// The execution's name.
    pub execution_name: String,
    /// How many retries preceded this attempt.
    pub retry_count: u64,
    /// The execution's clock (virtual in tests).
    pub clock: Arc<dyn FlowClock>,
}

/// Code behind a Task resource.
#[async_trait]
pub trait TaskHandler: Send + Sync {
    /// Runs the task on its effective input.
    ///
    /// # Errors
    /// A [`TaskError`]; its `error` is what Retry and Catch match.
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError>;
}

/// A [`TaskHandler`] made from an async closure (see [`handler_fn`]).
pub struct FnHandler<F>(F);

#[async_trait]
impl<F, Fut> TaskHandler for FnHandler<F>
where
    F: Fn(Value, TaskContext) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Value, TaskError>> + Send,
{
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        (self.0)(input, ctx.clone()).await
    }
}

/// Wraps an async closure as a handler.
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn TaskHandler>
where
    F: Fn(Value, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

/// The parameters of an SNS Publish task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsPublish {
    /// `TopicArn`.
    pub topic_arn: String,
    /// `Subject`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `Message` (a JSON `Message` is serialised to text, as SNS receives it).
    pub message: String,
}

impl SnsPublish {
    /// Reads the effective input of an `sns:publish` Task.
    ///
    /// # Errors
    /// `States.Runtime` naming the missing or mistyped parameter.
    pub fn from_input(input: &Value) -> Result<Self, TaskError> {
        let bad = |m: String| TaskError::new("States.Runtime", format!("sns:publish: {m}"));
        if let Some(obj) = input.as_object() {
            if let Some(k) = obj
                .keys()
                .find(|k| !["TopicArn", "Subject", "Message"].contains(&k.as_str()))
            {
                return Err(bad(format!(
                    "unsupported parameter {k:?}; use TopicArn, Subject and Message"
                )));
            }
        } else {
            return Err(bad(format!(
                "the parameters must be an object, got {input}"
            )));
        }
        let field = |k: &str| input.get(k);
        let topic_arn = match field("TopicArn") {
            Some(Value::String(s)) if s.starts_with("arn:") => s.clone(),
            Some(v) => return Err(bad(format!("TopicArn must be an SNS topic ARN, got {v}"))),
            None => return Err(bad("the TopicArn parameter is required".to_string())),
        };
        let subject = match field("Subject") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(bad(format!("Subject must be a string, got {v}"))),
        };
        let message = match field("Message") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => {
                return Err(bad("the Message parameter is required".to_string()));
            }
            Some(v) => v.to_string(),
        };
        Ok(Self {
            topic_arn,
            subject,
            message,
        })
    }
}

/// Maps resources to handlers.
#[derive(Default, Clone)]
pub struct HandlerRegistry {
    lambdas: HashMap<String, Arc<dyn TaskHandler>>,
    resources: HashMap<String, Arc<dyn TaskHandler>>,
}

/// A resolved Task call: the handler and the input it receives.
pub(crate) struct Resolved {
    pub handler: Arc<dyn TaskHandler>,
    pub input: Value,
    pub wrap_payload: bool,
}

/// The function name in a Lambda ARN (or a bare name).
fn lambda_name(arn_or_name: &str) -> Option<&str> {
    if !arn_or_name.starts_with("arn:") {
        return Some(arn_or_name);
    }
    let parts: Vec<&str> = arn_or_name.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name]
        | ["arn", _, "lambda", _, _, "function", name, _] => Some(name),
        _ => None,
    }
}

impl HandlerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the Lambda function `name` (any region, account or qualifier).
    pub fn register_lambda(
        &mut self,
        name: impl Into<String>,
        handler: Arc<dyn TaskHandler>,
    ) -> &mut Self {
        self.lambdas.insert(name.into(), handler);
        self
    }

    /// Registers a handler for an exact resource ARN (e.g. [`SNS_PUBLISH`]).
    pub fn register_resource(
        &mut self,
        arn: impl Into<String>,
        handler: Arc<dyn TaskHandler>,
    ) -> &mut Self {
        self.resources.insert(arn.into(), handler);
        self
    }

    /// Checks that a resource can be served; for [`LAMBDA_INVOKE`] the function name is
    /// checked at run time (it may come from a path).
    ///
    /// # Errors
    /// A message saying what to register.
    pub fn check_resource(&self, resource: &str) -> Result<(), String> {
        if resource == LAMBDA_INVOKE || self.resources.contains_key(resource) {
            return Ok(());
        }
        if let Some(name) = resource
            .contains(":lambda:")
            .then(|| lambda_name(resource))
            .flatten()
        {
            return if self.lambdas.contains_key(name) {
                Ok(())
            } else {
                Err(format!(
                    "no handler for Lambda function {name:?}; register it with register_lambda"
                ))
            };
        }
        Err(format!(
            "no handler for resource {resource:?}; register it with register_resource"
        ))
    }

    /// As [`HandlerRegistry::check_resource`], and for [`LAMBDA_INVOKE`] also checks the
    /// function its `Parameters`/`Arguments` name literally (`"FunctionName": "name or ARN"`);
    /// a name that comes from a path or an expression is checked at run time.
    ///
    /// # Errors
    /// A message saying what to register.
    pub fn check_task(&self, resource: &str, parameters: Option<&Value>) -> Result<(), String> {
        self.check_resource(resource)?;
        if resource != LAMBDA_INVOKE {
            return Ok(());
        }
        match parameters
            .and_then(|p| p.get("FunctionName"))
            .and_then(Value::as_str)
            .filter(|n| !n.starts_with("{%"))
            .and_then(lambda_name)
        {
            Some(name) if !self.lambdas.contains_key(name) => Err(format!(
                "no handler for Lambda function {name:?} (called through {LAMBDA_INVOKE}); register it with register_lambda"
            )),
            _ => Ok(()),
        }
    }

    /// Finds the handler for a call and shapes its input.
    pub(crate) fn resolve(&self, resource: &str, input: Value) -> Result<Resolved, TaskError> {
        let missing = |m: String| TaskError::new("States.Runtime", m);
        if resource == LAMBDA_INVOKE {
            let name = input
                .get("FunctionName")
                .and_then(Value::as_str)
                .and_then(lambda_name)
                .ok_or_else(|| {
                    missing("lambda:invoke needs a FunctionName parameter".to_string())
                })?;
            let handler = self
                .lambdas
                .get(name)
                .cloned()
                .ok_or_else(|| missing(format!("no handler for Lambda function {name:?}")))?;
            let payload = input.get("Payload").cloned().unwrap_or_else(|| json!({}));
            return Ok(Resolved {
                handler,
                input: payload,
                wrap_payload: true,
            });
        }
        if let Some(handler) = self.resources.get(resource) {
            let input = if resource == SNS_PUBLISH {
                serde_json::to_value(SnsPublish::from_input(&input)?)
                    .map_err(|e| missing(e.to_string()))?
            } else {
                input
            };
            return Ok(Resolved {
                handler: handler.clone(),
                input,
                wrap_payload: false,
            });
        }
        let handler = lambda_name(resource)
            .filter(|_| resource.contains(":lambda:"))
            .and_then(|n| self.lambdas.get(n))
            .cloned()
            .ok_or_else(|| missing(format!("no handler for resource {resource:?}")))?;
        Ok(Resolved {
            handler,
            input,
            wrap_payload: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_arns_resolve_by_name() {
        assert_eq!(
            lambda_name("arn:aws:lambda:eu-west-1:190517931751:function:data-collector"),
            Some("data-collector")
        );
        assert_eq!(
            lambda_name("arn:aws:lambda:us-east-1:1:function:f:prod"),
            Some("f")
        );
        assert_eq!(lambda_name("arn:aws:sns:eu-west-1:1:topic"), None);
        let mut r = HandlerRegistry::new();
        r.register_lambda("f", handler_fn(|v, _| async move { Ok(v) }));
        assert!(
            r.check_resource("arn:aws:lambda:us-east-1:1:function:f:7")
                .is_ok()
        );
        let err = r
            .check_resource("arn:aws:lambda:us-east-1:1:function:g")
            .err();
        assert!(err.is_some_and(|e| e.contains("\"g\"")));
        assert!(r.check_resource(SNS_PUBLISH).is_err());
    }

    #[test]
    fn sns_parameters_are_checked() {
        let ok =
            SnsPublish::from_input(&json!({"TopicArn": "arn:aws:sns:x:1:t", "Message": {"a": 1}}));
        assert_eq!(ok.map(|p| p.message), Ok("{\"a\":1}".to_string()));
        let extra = SnsPublish::from_input(
            &json!({"TopicArn": "arn:aws:sns:x:1:t", "Message": "m", "PhoneNumber": "1"}),
        );
        assert!(extra.is_err_and(|e| e.cause.contains("\"PhoneNumber\"")));
        let bad = SnsPublish::from_input(&json!({"Message": "m"}));
        assert!(bad.is_err_and(|e| e.cause.contains("TopicArn")));
    }
}
