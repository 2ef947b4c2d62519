//! The dashboard: the seed's CloudWatch dashboard (CPU, memory, disk and network per instance),
//! alarm states and recent notifications, consumers' throughput and lag, dead letters and flow
//! executions, served by the owner of the data directory at `http://127.0.0.1:PORT/`.
//!
//! The page and its script are embedded in the binary (no CDN, no network); it polls the JSON
//! API every few seconds. Charts show the top N instances of each metric (by their newest
//! minute's average), or those whose id matches a search, so the page stays light with
//! thousands of instances: ranking costs two seeks per series in the metric store
//! ([`shardline_local::RedbMetricStore::latest_by_series`]), and only the N charted series are
//! read over the range.
//!
//! # Layout
//! - [`api`]: the JSON endpoints (`/api/overview`, `/api/chart`).
//! - [`flows`]: the journal of flow executions.
//! - `assets/`: `index.html`, `app.js` (SVG line charts, no library), `style.css`.

pub mod api;
pub mod flows;

use anyhow::{Context, Result};
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::consumer_set::ConsumerSet;
use crate::data::Data;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// Binds the dashboard's address: `listen`, or any free port of the same host when `listen`'s
/// port is taken (the address actually bound is returned).
///
/// # Errors
/// When `listen` is not a loopback address, or nothing can be bound.
pub async fn bind(listen: &str) -> Result<(TcpListener, SocketAddr)> {
    let addr: SocketAddr = listen.parse().with_context(|| {
        format!("dashboard address {listen:?} is not HOST:PORT (e.g. 127.0.0.1:8740)")
    })?;
    if !addr.ip().is_loopback() {
        anyhow::bail!(
            "dashboard address {addr} is not a loopback address: the dashboard serves \
             127.0.0.1 only (it has no authentication)"
        );
    }
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(%addr, "dashboard port in use; taking a free one");
            TcpListener::bind(SocketAddr::new(addr.ip(), 0))
                .await
                .with_context(|| format!("cannot bind the dashboard on {}", addr.ip()))?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot bind the dashboard on {addr}")),
    };
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Serves the dashboard of `data` on `listener` until the task is aborted.
pub fn serve(
    listener: TcpListener,
    data: Arc<Data>,
    consumers: Option<Arc<ConsumerSet>>,
) -> JoinHandle<()> {
    let state = Arc::new(api::DashState::new(data, consumers));
    let app = Router::new()
        .route(
            "/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/overview", get(api::overview))
        .route("/api/chart", get(api::chart))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "dashboard server stopped");
        }
    })
}

fn page(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
