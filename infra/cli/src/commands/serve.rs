//! `shardline serve`: the Kinesis-compatible endpoint over the data directory's log, and the
//! same endpoint inside `shardline up` (`[serve] enabled`).
//!
//! The endpoint's URL is printed at start and written to `<data_dir>/kinesis-endpoint` (removed
//! at a clean stop), so scripts and tests find a port chosen with `listen = "127.0.0.1:0"`.
//! Listening anywhere but loopback is announced on stderr, louder still without access keys.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use shardline_kinesis_api::{Endpoint, Running};
use shardline_log::Log;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::wiring;

/// The file holding the running endpoint's URL.
pub fn endpoint_file(config: &Config) -> PathBuf {
    config.data_dir.join("kinesis-endpoint")
}

/// A running endpoint and the file announcing it.
pub struct Served {
    running: Running,
    file: PathBuf,
}

impl Served {
    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.running.local_addr())
    }

    /// Stops accepting, lets requests in flight finish, removes the announcement.
    pub async fn stop(self) {
        self.running.shutdown().await;
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Starts the endpoint of `config.serve` on `log`.
///
/// # Errors
/// An invalid `[serve]` section, or an address that cannot be bound (named, with the fix).
pub async fn start(config: &Config, log: Arc<Log>) -> Result<Served> {
    let endpoint = Endpoint::new(log, config.serve.clone()).map_err(anyhow::Error::msg)?;
    let listen = config.serve.listen;
    let running = shardline_kinesis_api::serve(Arc::new(endpoint))
        .await
        .with_context(|| {
            format!(
                "cannot serve the Kinesis endpoint on {listen}; set [serve] listen to another \
                 address (\"127.0.0.1:0\" picks a free port) or [serve] enabled = false"
            )
        })?;
    let addr = running.local_addr();
    if !addr.ip().is_loopback() {
        eprintln!(
            "WARNING: the Kinesis endpoint listens on {addr}, reachable from other machines{}",
            if config.serve.access_keys.is_empty() {
                ": with no [serve] access_keys configured, ANYONE who can reach it can read and \
                 write every stream. Configure access_keys or listen on 127.0.0.1."
            } else {
                "; requests must be signed with a configured access key."
            }
        );
        tracing::warn!(%addr, signed = !config.serve.access_keys.is_empty(), "kinesis endpoint listening beyond loopback");
    }
    let file = endpoint_file(config);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    std::fs::write(&file, format!("http://{addr}\n"))
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(Served { running, file })
}

/// Runs `shardline serve` until Ctrl-C or SIGTERM.
pub async fn run(mut config: Config, args: ServeArgs) -> Result<i32> {
    if let Some(listen) = args.listen {
        config.serve.listen = listen;
    }
    if args.limits {
        config.stream.enforce_limits = true;
    }
    let log = wiring::open_log(&config).await?;
    let served = start(&config, log.clone()).await?;
    let url = served.url();
    println!("shardline serve: Kinesis endpoint {url}");
    println!("  log        {}", config.log_dir().display());
    println!(
        "  streams    {}",
        log.stream_names().unwrap_or_default().join(", ")
    );
    println!(
        "  signatures {}",
        if config.serve.access_keys.is_empty() {
            "not required (no [serve] access_keys)".to_string()
        } else {
            format!(
                "required ({} access key(s))",
                config.serve.access_keys.len()
            )
        }
    );
    println!(
        "  limits     {}",
        if config.stream.enforce_limits {
            "Kinesis per-shard limits enforced"
        } else {
            "off"
        }
    );
    println!("  try        aws kinesis list-streams --endpoint-url {url}");
    wait_for_stop().await;
    eprintln!("stopping: finishing requests in flight...");
    served.stop().await;
    log.close().await.context("closing the log")?;
    Ok(0)
}

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
