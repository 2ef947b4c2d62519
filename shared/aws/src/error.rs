//! SDK errors to [`shardline_core::Error`]: the right retry class and one line a user can act on.
//!
//! Every message names the service, the action and its target, then says what to do:
//! `DynamoDB Query on table "InfraMetrics": ...`. The SDK's debug output never reaches the
//! user; the service's own message (one line) is quoted where it helps.
//!
//! | what happened | error | retry class |
//! |---|---|---|
//! | throttling (`ProvisionedThroughputExceeded`, `Throttling`, `SlowDown`, ...) | `Throttled` | retryable |
//! | 5xx, `InternalFailure`, timeouts, connection refused | `Unavailable` | retryable |
//! | a conditional write lost (`ConditionalCheckFailed`, S3 412) | `Conflict` | retryable |
//! | missing stream, table, bucket or topic | `NotFound` (says: run `shardline infra bootstrap`) | permanent |
//! | no credentials, rejected credentials, access denied, wrong region | `Internal` (says what to set) | permanent |
//! | anything else the service refused | `InvalidArgument` with its message | permanent |

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use shardline_core::Error;
use std::fmt;

/// The AWS services the adapters call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Kinesis Data Streams.
    Kinesis,
    /// S3.
    S3,
    /// DynamoDB.
    DynamoDb,
    /// CloudWatch.
    CloudWatch,
    /// SNS.
    Sns,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Kinesis => "Kinesis",
            Service::S3 => "S3",
            Service::DynamoDb => "DynamoDB",
            Service::CloudWatch => "CloudWatch",
            Service::Sns => "SNS",
        })
    }
}

/// What a request was about, for the error line: `Kinesis PutRecords on stream "metrics"`.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The service.
    pub service: Service,
    /// The action, as AWS names it.
    pub action: &'a str,
    /// What it acted on, e.g. `stream "metrics"`.
    pub target: String,
    /// The region the client is configured for.
    pub region: &'a str,
}

impl fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} on {}", self.service, self.action, self.target)
    }
}

const THROTTLING: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "KMSThrottlingException",
    "RequestLimitExceededException",
];

const UNAVAILABLE: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalErrorException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSInternalException",
];

const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "ResourceNotFound",
    "NoSuchBucket",
    "NotFound",
    "NotFoundException",
    "TableNotFoundException",
];

const CONFLICT: &[&str] = &[
    "ConditionalCheckFailedException",
    "PreconditionFailed",
    "ConditionalRequestConflict",
    "TransactionConflictException",
];

const CREDENTIALS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "AuthorizationErrorException",
];

const WRONG_REGION: &[&str] = &[
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
];

/// Maps an SDK error of `call` to a Shardline error.
pub fn map_sdk_error<E>(call: &Call<'_>, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let chain = source_chain(&err);
    match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let e = se.err();
            let code = e.code().unwrap_or("").to_string();
            let message = one_line(e.message().unwrap_or(""));
            service_error(call, status, &code, &message)
        }
        SdkError::TimeoutError(_) => Error::Unavailable(format!(
            "{call}: timed out; check the network and the endpoint, or raise `aws.attempt_timeout`"
        )),
        SdkError::DispatchFailure(d) => {
            if let Some(why) = credentials_problem(&chain) {
                return Error::Internal(format!("{call}: {why}"));
            }
            if d.is_timeout() {
                Error::Unavailable(format!(
                    "{call}: timed out connecting; check the endpoint and the network"
                ))
            } else if d.is_io() {
                Error::Unavailable(format!(
                    "{call}: cannot reach the endpoint ({}); check AWS_ENDPOINT_URL / `aws.endpoint_url` and the network",
                    last_cause(&chain)
                ))
            } else {
                Error::Unavailable(format!("{call}: request failed: {}", last_cause(&chain)))
            }
        }
        SdkError::ResponseError(_) => Error::Unavailable(format!(
            "{call}: unreadable response ({}); the endpoint may not be {}",
            last_cause(&chain),
            call.service
        )),
        SdkError::ConstructionFailure(_) => match credentials_problem(&chain) {
            Some(why) => Error::Internal(format!("{call}: {why}")),
            None => Error::InvalidArgument(format!(
                "{call}: the request could not be built: {}",
                last_cause(&chain)
            )),
        },
        _ => Error::Internal(format!("{call}: {}", last_cause(&chain))),
    }
}

/// Maps a service's error answer (status, code, message) for `call`.
pub fn service_error(call: &Call<'_>, status: u16, code: &str, message: &str) -> Error {
    let quoted = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    };
    let is = |set: &[&str]| set.contains(&code);
    if is(THROTTLING) || status == 429 {
        Error::Throttled(format!("{call}: {quoted}"))
    } else if is(CONFLICT) || status == 412 {
        Error::Conflict(format!("{call}: {quoted}"))
    } else if is(NOT_FOUND) {
        Error::NotFound {
            what: format!(
                "{} {} in region {} ({}; run `shardline infra bootstrap` to create it, or check the region)",
                call.service, call.target, call.region, call.action
            ),
        }
    } else if is(CREDENTIALS) {
        Error::Internal(format!(
            "{call}: AWS rejected the credentials ({quoted}); check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and refresh expired session tokens"
        ))
    } else if is(DENIED) || status == 403 {
        Error::Internal(format!(
            "{call}: access denied ({quoted}); grant {}:{} to these credentials",
            iam_prefix(call.service),
            call.action
        ))
    } else if is(WRONG_REGION) || status == 301 {
        Error::Internal(format!(
            "{call}: the resource is in another region than {} ({quoted}); set AWS_REGION or `aws.region` to its region",
            call.region
        ))
    } else if is(UNAVAILABLE) || status >= 500 {
        Error::Unavailable(format!("{call}: {quoted}"))
    } else if status == 404 {
        Error::NotFound {
            what: format!(
                "{} {} in region {} ({}; run `shardline infra bootstrap` to create it)",
                call.service, call.target, call.region, call.action
            ),
        }
    } else {
        Error::InvalidArgument(format!("{call}: {quoted}"))
    }
}

fn iam_prefix(service: Service) -> &'static str {
    match service {
        Service::Kinesis => "kinesis",
        Service::S3 => "s3",
        Service::DynamoDb => "dynamodb",
        Service::CloudWatch => "cloudwatch",
        Service::Sns => "sns",
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn source_chain(err: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![one_line(&err.to_string())];
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push(one_line(&e.to_string()));
        cur = e.source();
    }
    out
}

fn last_cause(chain: &[String]) -> String {
    chain
        .iter()
        .rev()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "unknown error".to_string())
}

fn credentials_problem(chain: &[String]) -> Option<String> {
    let text = chain.join(": ").to_ascii_lowercase();
    let missing = text.contains("no credentials")
        || text.contains("credentials provider was not enabled")
        || text.contains("no providers in chain provided credentials")
        || text.contains("failed to load credentials")
        || (text.contains("identity") && text.contains("resolver"));
    missing.then(|| {
        "no AWS credentials found; set AWS_PROFILE (with `aws configure` or `aws sso login` and \
         `aws configure export-credentials`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::RetryClass;

    fn call() -> Call<'static> {
        Call {
            service: Service::DynamoDb,
            action: "Query",
            target: "table \"InfraMetrics\"".into(),
            region: "eu-west-1",
        }
    }

    #[test]
    fn classes_follow_the_code() {
        let c = call();
        let throttled = service_error(&c, 400, "ProvisionedThroughputExceededException", "slow");
        assert!(matches!(throttled, Error::Throttled(_)));
        assert_eq!(throttled.retry_class(), RetryClass::Retryable);
        let conflict = service_error(&c, 400, "ConditionalCheckFailedException", "");
        assert!(matches!(conflict, Error::Conflict(_)));
        assert!(matches!(
            service_error(&c, 500, "InternalFailure", ""),
            Error::Unavailable(_)
        ));
        let bad = service_error(&c, 400, "ValidationException", "bad key");
        assert_eq!(bad.retry_class(), RetryClass::Permanent);
        assert_eq!(
            bad.to_string(),
            "invalid argument: DynamoDB Query on table \"InfraMetrics\": ValidationException: bad key"
        );
    }

    #[test]
    fn missing_resources_say_how_to_create_them() {
        let e = service_error(
            &call(),
            400,
            "ResourceNotFoundException",
            "Requested resource not found",
        );
        assert_eq!(
            e.to_string(),
            "DynamoDB table \"InfraMetrics\" in region eu-west-1 (Query; run `shardline infra bootstrap` to create it, or check the region) not found"
        );
    }

    #[test]
    fn credential_and_permission_errors_say_what_to_set() {
        let e = service_error(
            &call(),
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
        let line = e.to_string();
        assert!(
            line.contains("AWS_PROFILE") && !line.contains('\n'),
            "{line}"
        );
        let denied = service_error(&call(), 400, "AccessDeniedException", "no");
        assert!(
            denied.to_string().contains("grant dynamodb:Query"),
            "{denied}"
        );
    }

    #[test]
    fn missing_credentials_are_recognised_in_the_cause_chain() {
        let chain = vec![
            "dispatch failure".to_string(),
            "other".to_string(),
            "the credential provider was not enabled".to_string(),
            "no providers in chain provided credentials".to_string(),
        ];
        assert!(credentials_problem(&chain).is_some());
        assert!(credentials_problem(&["connection refused".to_string()]).is_none());
    }
}
