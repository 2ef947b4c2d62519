//! [`serve`]: the accept loop, over hyper (HTTP/1.1 and HTTP/2 on one listener).
//!
//! Per connection: headers must arrive within `request_timeout` (a slow client is cut off and
//! holds nothing else up); per request: a body longer than `max_request_size` is refused with
//! 413 before it is read whole (by its Content-Length, or as it streams), and a body that takes
//! longer than `request_timeout` to arrive gets 408. Every answer closes nothing but its own
//! connection at worst, so one client cannot stop the server for others.
//!
//! Shutdown ([`Running::shutdown`]) stops accepting, lets requests in flight finish (at most
//! [`DRAIN`]), then returns.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::dispatch::{Endpoint, Request};

/// How long shutdown waits for requests in flight.
pub const DRAIN: Duration = Duration::from_secs(5);

/// A running endpoint.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// The address it listens on (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, waits for requests in flight (at most [`DRAIN`]) and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `endpoint`'s configured address and serves it until [`Running::shutdown`].
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub async fn serve(endpoint: Arc<Endpoint>) -> std::io::Result<Running> {
    let listener = TcpListener::bind(endpoint.config.listen).await?;
    serve_on(listener, endpoint)
}

/// Serves `endpoint` on an already bound listener.
///
/// # Errors
/// The listener's address cannot be read.
pub fn serve_on(listener: TcpListener, endpoint: Arc<Endpoint>) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(endpoint.config.request_timeout)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        info!(%addr, "kinesis endpoint listening");
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and the like: wait a little rather than spin.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let ep = endpoint.clone();
            let service = hyper::service::service_fn(move |req| {
                let ep = ep.clone();
                async move { Ok::<_, Infallible>(handle(&ep, req).await) }
            });
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(DRAIN, graceful.shutdown())
            .await
            .is_err()
        {
            warn!("requests still in flight after the drain period; closing them");
        }
        info!(%addr, "kinesis endpoint stopped");
    });
    Ok(Running { addr, stop, task })
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).boxed()
}

fn plain(status: u16, kind: &str, message: String) -> http::Response<Body> {
    let body = crate::value::to_json(&crate::value::Value::map([
        ("__type", crate::value::Value::s(kind)),
        ("message", crate::value::Value::s(message)),
    ]));
    http::Response::builder()
        .status(status)
        .header("content-type", crate::AMZ_JSON)
        .header("x-amzn-ErrorType", kind)
        .header("connection", "close")
        .body(full(body))
        .unwrap_or_else(|_| http::Response::new(full(Vec::new())))
}

async fn handle(ep: &Endpoint, req: http::Request<Incoming>) -> http::Response<Body> {
    let (parts, body) = req.into_parts();
    let max = usize::try_from(ep.config.max_request_size.bytes()).unwrap_or(usize::MAX);
    let too_large = || {
        plain(
            413,
            "RequestEntityTooLargeException",
            format!(
                "the request body exceeds serve.max_request_size ({}); send smaller batches",
                ep.config.max_request_size
            ),
        )
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let body =
        match tokio::time::timeout(ep.config.request_timeout, Limited::new(body, max).collect())
            .await
        {
            Err(_) => {
                return plain(
                    408,
                    "RequestTimeoutException",
                    format!(
                        "the request body did not arrive within serve.request_timeout ({:?})",
                        ep.config.request_timeout
                    ),
                );
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Ok(Err(e)) => {
                return plain(
                    400,
                    "SerializationException",
                    format!("the request body could not be read: {e}"),
                );
            }
            Ok(Ok(c)) => c.to_bytes(),
        };
    let r = ep
        .respond(&Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            authority: parts.uri.authority().map(|a| a.as_str()),
            headers: &parts.headers,
            body: &body,
        })
        .await;
    let mut builder = http::Response::builder().status(r.status);
    for (k, v) in &r.headers {
        builder = builder.header(*k, v.as_str());
    }
    let body = match r.stream {
        None => full(r.body),
        Some(rx) => {
            // An event stream: chunks as the subscription sends them, until it ends.
            let first = (!r.body.is_empty()).then(|| Bytes::from(r.body));
            let chunks = futures::stream::unfold((first, rx), |(first, mut rx)| async move {
                let next = match first {
                    Some(b) => Some(b),
                    None => rx.recv().await,
                };
                next.map(|b| (Ok::<_, Infallible>(hyper::body::Frame::data(b)), (None, rx)))
            });
            BodyExt::boxed(StreamBody::new(chunks))
        }
    };
    builder
        .body(body)
        .unwrap_or_else(|e| plain(500, "InternalFailure", format!("bad response header: {e}")))
}
