//! [`ApiError`]: a Kinesis error response, and the mapping of the log's errors onto Kinesis's.
//!
//! A JSON or CBOR error answer is `{"__type": TYPE, "message": TEXT}` with the status and an
//! `X-Amzn-ErrorType: TYPE` header; `SerializationException` carries `Message` (capitalised), as
//! Kinesis sends it. Requests whose content type the service does not speak get the XML forms
//! Kinesis sends (`<TYPE>\n  <Message>TEXT</Message>\n</TYPE>\n`).

use shardline_log::LogError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {}", message.as_deref().unwrap_or(""))]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The `__type`, e.g. `ResourceNotFoundException`.
    pub kind: &'static str,
    /// The message, when there is one.
    pub message: Option<String>,
    /// Whether the message member is spelled `Message` (serialization errors).
    pub capital_message: bool,
}

impl ApiError {
    /// A 400 answer of `kind` with `message`.
    pub fn client(kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind,
            message: Some(message.into()),
            capital_message: false,
        }
    }

    /// A 400 answer of `kind` with no message.
    pub fn bare(kind: &'static str) -> ApiError {
        ApiError {
            status: 400,
            kind,
            message: None,
            capital_message: false,
        }
    }

    /// `SerializationException` with `Message`.
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "SerializationException",
            message: Some(message.into()),
            capital_message: true,
        }
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::client("ValidationException", message)
    }

    /// `InvalidArgumentException`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::client("InvalidArgumentException", message)
    }

    /// `ResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::client("ResourceNotFoundException", message)
    }

    /// A 500 `InternalFailure` naming what failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            kind: "InternalFailure",
            message: Some(message.into()),
            capital_message: false,
        }
    }

    /// Whether the client may retry the same request (throttling, server-side failures).
    pub fn retryable(&self) -> bool {
        self.status >= 500
            || matches!(
                self.kind,
                "ProvisionedThroughputExceededException" | "LimitExceededException"
            )
    }
}

/// Names the account in Kinesis's messages ("Stream s under account 000000000000 not found.").
#[derive(Debug, Clone)]
pub struct Account {
    /// Twelve digits.
    pub id: String,
    /// The region ARNs name.
    pub region: String,
}

impl Account {
    /// `Stream {name} under account {id} not found.`
    pub fn stream_not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(format!(
            "Stream {name} under account {} not found.",
            self.id
        ))
    }

    /// The ARN of stream `name`.
    pub fn stream_arn(&self, name: &str) -> String {
        format!("arn:aws:kinesis:{}:{}:stream/{name}", self.region, self.id)
    }

    /// Maps a log error met while serving a request on stream `stream`.
    pub fn map(&self, stream: &str, e: LogError) -> ApiError {
        match e {
            LogError::StreamNotFound(name) => self.stream_not_found(&name),
            LogError::ShardNotFound { stream, shard } => ApiError::not_found(format!(
                "Shard {shard} in stream {stream} under account {} does not exist",
                self.id
            )),
            LogError::StreamExists(name) => ApiError::client(
                "ResourceInUseException",
                format!("Stream {name} under account {} already exists.", self.id),
            ),
            LogError::InvalidArgument(m) => ApiError::invalid(m),
            LogError::BadIterator(_) => ApiError::invalid("Invalid ShardIterator."),
            LogError::ExpiredIterator(m) => ApiError::client("ExpiredIteratorException", m),
            LogError::Throttled(m) => ApiError::client(
                "ProvisionedThroughputExceededException",
                format!(
                    "Rate exceeded for shard in stream {stream} under account {}: {m}",
                    self.id
                ),
            ),
            LogError::LimitExceeded(m) => ApiError::client("LimitExceededException", m),
            other => ApiError::internal(other.to_string()),
        }
    }
}
