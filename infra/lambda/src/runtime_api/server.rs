//! The Lambda Runtime API, served on 127.0.0.1 for one execution environment.
//!
//! | request | answer |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | waits for an invocation; 200 with the event and the `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`, `-Trace-Id` headers |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | 202; the answer (413 past 6 MB: the invocation fails) |
//! | `POST /2018-06-01/runtime/invocation/{id}/error` | 202; the invocation fails with the posted `errorType` |
//! | `POST /2018-06-01/runtime/init/error` | 202; the environment failed to start |
//! | an unknown request id | 400 `InvalidRequestID` |
//!
//! Invariant: an invocation is answered once; a second answer, or one after the invocation
//! timed out, gets 400.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::FunctionError;
use crate::invoke::{Invocation, RESPONSE_TOO_LARGE};
use crate::kinesis::MAX_PAYLOAD_BYTES;

const PREFIX: &str = "/2018-06-01/runtime";

/// An invocation waiting for `GET next`.
pub(super) struct Pending {
    pub request_id: String,
    pub event: Bytes,
    pub deadline_ms: i64,
    pub function_arn: String,
    pub done: oneshot::Sender<Invocation>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    init_error: watch::Sender<Option<FunctionError>>,
}

/// A Runtime API server; dropping it stops serving.
pub struct RuntimeApiServer {
    addr: SocketAddr,
    queue: mpsc::Sender<Pending>,
    init_error: watch::Receiver<Option<FunctionError>>,
    stop: Option<oneshot::Sender<()>>,
}

impl RuntimeApiServer {
    /// Serves on an ephemeral port of 127.0.0.1.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (queue, rx) = mpsc::channel(1);
        let (init_tx, init_error) = watch::channel(None);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(rx),
            in_flight: Mutex::new(HashMap::new()),
            init_error: init_tx,
        });
        let (stop, mut stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = &mut stopped => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            queue,
            init_error,
            stop: Some(stop),
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an invocation for the runtime's next `GET next`.
    pub(super) async fn submit(&self, pending: Pending) -> bool {
        self.queue.send(pending).await.is_ok()
    }

    /// The init error the runtime posted, if any.
    pub(super) fn init_error(&self) -> watch::Receiver<Option<FunctionError>> {
        self.init_error.clone()
    }
}

impl Drop for RuntimeApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type Answer = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: serde_json::Value) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn accepted() -> Answer {
    reply(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
}

fn invalid_id(id: &str) -> Answer {
    reply(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"errorType": "InvalidRequestID", "errorMessage": format!("Invalid request ID: {id}")}),
    )
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Answer, hyper::Error> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            serde_json::json!({"errorType": "NotFound", "errorMessage": path}),
        ));
    };
    match (req.method(), rest) {
        (&Method::GET, "/invocation/next") => Ok(next(&shared).await),
        (&Method::POST, "/init/error") => {
            let (error_type, body) = error_of(req).await;
            let e = parse_error(&error_type, &body, "Runtime.InitError");
            let _ = shared.init_error.send(Some(e));
            Ok(accepted())
        }
        (&Method::POST, r) if r.starts_with("/invocation/") => {
            let tail = &r["/invocation/".len()..];
            let (id, what) = match tail.rsplit_once('/') {
                Some((id, what)) => (id.to_string(), what.to_string()),
                None => {
                    return Ok(reply(
                        StatusCode::NOT_FOUND,
                        serde_json::json!({"errorType": "NotFound", "errorMessage": path}),
                    ));
                }
            };
            let taken = shared
                .in_flight
                .lock()
                .map(|mut m| m.remove(&id))
                .unwrap_or(None);
            let Some(done) = taken else {
                return Ok(invalid_id(&id));
            };
            match what.as_str() {
                "response" => {
                    let limited = Limited::new(req.into_body(), MAX_PAYLOAD_BYTES);
                    match limited.collect().await {
                        Ok(body) => {
                            let _ = done.send(Invocation::Answer(body.to_bytes()));
                            Ok(accepted())
                        }
                        Err(_) => {
                            let _ = done.send(Invocation::Failed(FunctionError::new(
                                RESPONSE_TOO_LARGE,
                                format!("the response is larger than {MAX_PAYLOAD_BYTES} bytes"),
                            )));
                            Ok(reply(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                serde_json::json!({"errorType": "RequestEntityTooLarge", "errorMessage": "response too large"}),
                            ))
                        }
                    }
                }
                "error" => {
                    let (error_type, body) = error_of(req).await;
                    let _ = done.send(Invocation::Failed(parse_error(
                        &error_type,
                        &body,
                        "Unhandled",
                    )));
                    Ok(accepted())
                }
                _ => Ok(reply(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"errorType": "NotFound", "errorMessage": path}),
                )),
            }
        }
        _ => Ok(reply(
            StatusCode::NOT_FOUND,
            serde_json::json!({"errorType": "NotFound", "errorMessage": path}),
        )),
    }
}

/// Hands the next invocation to the runtime (waiting for one).
async fn next(shared: &Shared) -> Answer {
    let pending = {
        let mut queue = shared.queue.lock().await;
        queue.recv().await
    };
    let Some(p) = pending else {
        return reply(
            StatusCode::GONE,
            serde_json::json!({"errorType": "Shutdown", "errorMessage": "the environment is stopping"}),
        );
    };
    if let Ok(mut m) = shared.in_flight.lock() {
        m.insert(p.request_id.clone(), p.done);
    }
    let mut r = Response::new(Full::new(p.event));
    let h = r.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", &p.request_id);
    set("lambda-runtime-deadline-ms", &p.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &p.function_arn);
    set(
        "lambda-runtime-trace-id",
        &format!(
            "Root=1-{:08x}-{};Sampled=0",
            p.deadline_ms / 1000,
            &p.request_id.replace('-', "")[..24]
        ),
    );
    set("content-type", "application/json");
    r
}

/// The error type header and the body of an error post.
async fn error_of(req: Request<Incoming>) -> (String, Bytes) {
    let header = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = Limited::new(req.into_body(), MAX_PAYLOAD_BYTES)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (header, body)
}

/// Lambda's error document (`errorType`, `errorMessage`), else the header's type.
fn parse_error(header_type: &str, body: &[u8], fallback: &str) -> FunctionError {
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error_type = doc
        .get("errorType")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .or(Some(header_type).filter(|s| !s.is_empty()))
        .unwrap_or(fallback);
    let message = doc
        .get("errorMessage")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    FunctionError::new(error_type, message)
}
