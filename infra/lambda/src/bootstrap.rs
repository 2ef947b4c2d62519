//! The body of every `bootstrap` binary: Lambda's logging conventions, the function built
//! once per execution environment (init), then lambda_runtime's loop over the Runtime API.
//!
//! - Logging: `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else INFO) and
//!   `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines, on standard output as Lambda collects them.
//! - Init: a function that cannot be built (bad configuration, backends that cannot be
//!   opened) is reported to `/runtime/init/error` with its `errorType`, and the process exits
//!   1, as Lambda expects of a custom runtime.
//! - Sink functions take `KinesisEvent` and answer `KinesisEventResponse` (aws_lambda_events);
//!   other functions take and answer any JSON.

use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backends::BackendChoice;
use crate::config::{FunctionConfig, SinkKind};
use crate::error::FunctionError;
use crate::function::Function;
use crate::sink_function::SinkFunction;

/// The Runtime API's address variable (`host:port`).
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// Runs the sink function `kind` as a bootstrap: `main` of the sink binaries.
pub fn run_sink(kind: SinkKind) -> ExitCode {
    run_with(kind.function_name(), async move || {
        let config = FunctionConfig::from_env()?;
        let backends = BackendChoice::from_env()?.open(&config).await?;
        let f = Arc::new(SinkFunction::new(kind, config, backends)?);
        Ok(move |event: LambdaEvent<KinesisEvent>| {
            let f = Arc::clone(&f);
            async move { f.handle(event.payload).await }
        })
    })
}

/// Runs `build`'s function as a bootstrap, JSON in and out: `main` of the flow-task binaries.
pub fn run_function<B, Fut>(name: &str, build: B) -> ExitCode
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = Result<Arc<dyn Function>, FunctionError>>,
{
    run_with(name, async move || {
        let f = build().await?;
        Ok(move |event: LambdaEvent<Value>| {
            let f = Arc::clone(&f);
            async move { f.invoke(event.payload).await }
        })
    })
}

fn run_with<B, H, E, R, HFut>(name: &str, build: B) -> ExitCode
where
    B: AsyncFnOnce() -> Result<H, FunctionError>,
    H: Fn(LambdaEvent<E>) -> HFut,
    E: for<'de> serde::Deserialize<'de>,
    R: serde::Serialize,
    HFut: Future<Output = Result<R, FunctionError>>,
{
    lambda_runtime::tracing::init_default_subscriber();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let handler = match build().await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(function = name, error_type = %e.error_type, error = %e.message, "init failed");
                if let Err(report) = report_init_error(&e).await {
                    tracing::error!(error = %report, "cannot report the init error to the Runtime API");
                }
                return ExitCode::FAILURE;
            }
        };
        match lambda_runtime::run(service_fn(handler)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(function = name, error = %e, "runtime loop ended");
                ExitCode::FAILURE
            }
        }
    })
}

/// Posts `error` to `/2018-06-01/runtime/init/error` (one HTTP/1.1 request).
async fn report_init_error(error: &FunctionError) -> std::io::Result<()> {
    let api = std::env::var(RUNTIME_API_ENV)
        .map_err(|_| std::io::Error::other(format!("{RUNTIME_API_ENV} is not set")))?;
    let body = error.to_document().to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        error.error_type,
        body.len()
    );
    let mut stream = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(api.as_str()),
    )
    .await
    .map_err(|_| std::io::Error::other("connecting to the Runtime API timed out"))??;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await
    .map_err(|_| std::io::Error::other("the Runtime API did not answer the init error"))??;
    Ok(())
}
