//! The request pipeline, independent of the HTTP stack: [`Endpoint::respond`] takes a request's
//! method, target, headers and body and returns the answer, in Kinesis's order of checks (the
//! order kinesalite's connection tests recorded from Kinesis):
//!
//! 1. `OPTIONS` with `Origin`: a CORS preflight answer; `Origin` otherwise adds CORS headers.
//! 2. A method other than `POST`: `AccessDeniedException` (403, XML).
//! 3. No body: `SerializationException` for a known action, else `UnknownOperationException`
//!    (400, JSON for `x-amz-json-1.1`, CBOR otherwise).
//! 4. A content type other than JSON 1.1, CBOR 1.1 or `application/json`: 403
//!    `AccessDeniedException` without a target, else 404 `UnknownOperationException` (XML).
//! 5. A body that does not decode to an object: `SerializationException` (the `Output`/`Version`
//!    form for `application/json`).
//! 6. `application/json` (the deprecated form): `UnknownOperationException` (404).
//! 7. An unknown service or action: `UnknownOperationException`.
//! 8. With access keys configured: the SigV4 signature (`sigv4`).
//! 9. Types, then constraints (`validate`); then the action.
//!
//! A PutRecords request in JSON of the common kind (`actions::fast_put`) skips the document:
//! once steps 1 to 8 hold for it, it is read straight into the log's entries; whatever that
//! reader declines takes the steps above, which word every error. PutRecords and GetRecords
//! answers in JSON are written straight from the records (the same bytes as their documents).

use std::sync::Arc;

use http::HeaderMap;
use shardline_core::time::{Clock, SystemClock};
use shardline_log::Log;
use tracing::debug;

use crate::config::ServeConfig;
use crate::error::{Account, ApiError};
use crate::sigv4::{self, Signed};
use crate::value::{self, Value};
use crate::{AMZ_CBOR, AMZ_JSON, SERVICE, actions, cbor, shape, validate};

/// The endpoint: the log it serves and how.
pub struct Endpoint {
    pub(crate) log: Arc<Log>,
    pub(crate) config: ServeConfig,
    pub(crate) account: Account,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) subscriptions: Arc<crate::subscribe::Subscriptions>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("listen", &self.config.listen)
            .field("signed", &!self.config.access_keys.is_empty())
            .finish_non_exhaustive()
    }
}

/// A request, as the HTTP layer received it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a str,
    /// The path as sent.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// `:authority` of an HTTP/2 request (HTTP/1.1 has a Host header).
    pub authority: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
}

/// An answer for the HTTP layer to send.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers besides Content-Length.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// For an event stream (SubscribeToShard): chunks sent after `body` as they come.
    pub stream: Option<tokio::sync::mpsc::Receiver<bytes::Bytes>>,
}

/// The encoding of a request and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Json,
    Cbor,
}

impl Encoding {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => AMZ_JSON,
            Encoding::Cbor => AMZ_CBOR,
        }
    }

    fn write(self, v: &Value) -> Vec<u8> {
        match self {
            Encoding::Json => value::to_json(v),
            Encoding::Cbor => cbor::encode(v),
        }
    }
}

fn xml_error(kind: &str, message: Option<&str>, status: u16) -> Response {
    let body = match message {
        Some(m) => format!("<{kind}>\n  <Message>{m}</Message>\n</{kind}>\n"),
        None => format!("<{kind}/>\n"),
    };
    Response {
        status,
        headers: vec![("x-amzn-ErrorType", kind.to_string())],
        body: body.into_bytes(),
        stream: None,
    }
}

fn encoded(enc: Encoding, status: u16, v: &Value) -> Response {
    Response {
        status,
        headers: vec![("content-type", enc.content_type().to_string())],
        body: enc.write(v),
        stream: None,
    }
}

/// A JSON answer written by the action itself, or its error.
fn json_answer(enc: Encoding, operation: &str, answer: Result<Vec<u8>, ApiError>) -> Response {
    match answer {
        Ok(body) => Response {
            status: 200,
            headers: vec![("content-type", enc.content_type().to_string())],
            body,
            stream: None,
        },
        Err(e) => {
            debug!(action = operation, error = %e, "request refused");
            error_response(enc, &e)
        }
    }
}

/// The answer for `e` in `enc`.
fn error_response(enc: Encoding, e: &ApiError) -> Response {
    let mut members = vec![("__type".to_string(), Value::s(e.kind))];
    if let Some(m) = &e.message {
        let key = if e.capital_message {
            "Message"
        } else {
            "message"
        };
        members.push((key.to_string(), Value::s(m.clone())));
    }
    let mut r = encoded(enc, e.status, &Value::Map(members));
    r.headers.push(("x-amzn-ErrorType", e.kind.to_string()));
    r
}

fn deprecated(kind: &str, status: u16) -> Response {
    let v = Value::map([
        (
            "Output",
            Value::map([(
                "__type",
                Value::s(format!("com.amazon.coral.service#{kind}")),
            )]),
        ),
        ("Version", Value::s("1.0")),
    ]);
    Response {
        status,
        headers: vec![
            ("content-type", "application/json".to_string()),
            ("x-amzn-ErrorType", kind.to_string()),
        ],
        body: value::to_json(&v),
        stream: None,
    }
}

impl Endpoint {
    /// An endpoint serving `log` with `config`.
    ///
    /// # Errors
    /// A message naming the setting that is wrong.
    pub fn new(log: Arc<Log>, config: ServeConfig) -> Result<Endpoint, String> {
        config.validate()?;
        Ok(Endpoint {
            log,
            account: Account {
                id: config.account_id.clone(),
                region: config.region.clone(),
            },
            config,
            clock: Arc::new(SystemClock),
            subscriptions: Arc::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// Answers one request (never panics on any input; see the module doc for the order).
    pub async fn respond(&self, req: &Request<'_>) -> Response {
        let mut r = self.respond_inner(req).await;
        r.headers
            .push(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()));
        if req.headers.contains_key("origin") && req.method != "OPTIONS" {
            r.headers.push(("Access-Control-Allow-Origin", "*".into()));
            r.headers.push((
                "Access-Control-Expose-Headers",
                "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"
                    .into(),
            ));
        }
        r
    }

    async fn respond_inner(&self, req: &Request<'_>) -> Response {
        let h = req.headers;
        let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        if req.method == "OPTIONS" && h.contains_key("origin") {
            let mut headers = vec![
                ("Access-Control-Allow-Origin", "*".to_string()),
                ("Access-Control-Max-Age", "172800".to_string()),
            ];
            if h.contains_key("access-control-request-headers") {
                headers.push((
                    "Access-Control-Allow-Headers",
                    header("access-control-request-headers").to_string(),
                ));
            }
            if h.contains_key("access-control-request-method") {
                headers.push((
                    "Access-Control-Allow-Methods",
                    header("access-control-request-method").to_string(),
                ));
            }
            return Response {
                status: 200,
                headers,
                body: Vec::new(),
                stream: None,
            };
        }
        if req.method != "POST" {
            return xml_error(
                "AccessDeniedException",
                Some("Unable to determine service/operation name to be authorized"),
                403,
            );
        }
        let content_type = header("content-type")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let (service, operation) = match header("x-amz-target").split_once('.') {
            Some((s, o)) => (s, o),
            None => (header("x-amz-target"), ""),
        };
        let service_ok = service == SERVICE;
        let operation_ok = crate::ACTIONS.contains(&operation);
        let enc = if content_type == AMZ_JSON {
            Encoding::Json
        } else {
            Encoding::Cbor
        };
        if req.body.is_empty() {
            let kind = if service_ok && operation_ok {
                "SerializationException"
            } else {
                "UnknownOperationException"
            };
            return error_response(enc, &ApiError::bare(kind));
        }
        let content_ok = [AMZ_JSON, AMZ_CBOR, "application/json"].contains(&content_type.as_str());
        if !content_ok {
            if service.is_empty() || operation.is_empty() {
                return xml_error(
                    "AccessDeniedException",
                    Some("Unable to determine service/operation name to be authorized"),
                    403,
                );
            }
            return xml_error("UnknownOperationException", None, 404);
        }
        if content_type == AMZ_JSON
            && service_ok
            && operation == "PutRecords"
            && let Some(put) = actions::fast_put::FastPut::parse(req.body)
        {
            // The common PutRecords request: what the general path would accept, read
            // without its document (see `actions::fast_put`).
            if let Err(e) = self.check_signature(req, operation) {
                return error_response(enc, &e);
            }
            return json_answer(enc, operation, actions::records::put_fast(self, put).await);
        }
        let decoded = if content_type == AMZ_CBOR {
            cbor::decode(req.body)
        } else {
            value::from_json(req.body)
        };
        let Some(body @ Value::Map(_)) = decoded else {
            if content_type == "application/json" {
                return deprecated("SerializationException", 400);
            }
            return error_response(enc, &ApiError::bare("SerializationException"));
        };
        if content_type == "application/json" {
            return deprecated("UnknownOperationException", 404);
        }
        if !service_ok || !operation_ok {
            return error_response(enc, &ApiError::bare("UnknownOperationException"));
        }
        if let Err(e) = self.check_signature(req, operation) {
            return error_response(enc, &e);
        }
        if operation == "SubscribeToShard" {
            let outcome = match self.validated(operation, &body) {
                Ok(typed) => crate::subscribe::subscribe(self, enc, &typed).await,
                Err(e) => Err(e),
            };
            return outcome.unwrap_or_else(|e| error_response(enc, &e));
        }
        if enc == Encoding::Json && actions::DIRECT_JSON.contains(&operation) {
            // The data-plane answers are written as JSON straight from the records.
            let answer = match self.validated(operation, &body) {
                Ok(typed) => actions::run_json(self, operation, &typed).await,
                Err(e) => Err(e),
            };
            return json_answer(enc, operation, answer);
        }
        match self.run(operation, &body).await {
            Ok(v) => encoded(enc, 200, &v),
            Err(e) => {
                debug!(action = operation, error = %e, "request refused");
                error_response(enc, &e)
            }
        }
    }

    /// With access keys configured, checks the request's SigV4 signature.
    fn check_signature(&self, req: &Request<'_>, operation: &str) -> Result<(), ApiError> {
        if self.config.access_keys.is_empty() {
            return Ok(());
        }
        let signed = Signed {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: req.headers,
            authority: req.authority,
            body: req.body,
        };
        sigv4::verify(&signed, &self.config.access_keys, self.clock.now_ms()).inspect_err(|e| {
            debug!(action = operation, error = %e, "request refused: signature");
        })
    }

    /// Validates `body` against `action`'s shape and runs the action.
    async fn run(&self, action: &str, body: &Value) -> Result<Value, ApiError> {
        let typed = self.validated(action, body)?;
        actions::run(self, action, &typed).await
    }

    /// `body` type-checked and validated against `action`'s shape.
    fn validated(&self, action: &str, body: &Value) -> Result<Value, ApiError> {
        let members =
            shape::request(action).ok_or_else(|| ApiError::bare("UnknownOperationException"))?;
        let typed = validate::check_types(body, members)?;
        validate::check_constraints(&typed, members)?;
        Ok(typed)
    }
}
