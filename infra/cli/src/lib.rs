//! The `shardline` command: the wiring of backends from configuration, and every subcommand.
//!
//! # Layout
//! - [`cli`]: the clap command line.
//! - [`config`]: `default.toml` overlaid by a file, `SHARDLINE__*` variables and flags.
//! - [`wiring`]: opens the embedded log and backends the configuration names.
//! - [`pipeline`]: the collectors, consumers and flow that `shardline up` runs.
//! - [`handlers`]: the flow's task handlers (data-collector, pipeline-health, metrics-analyzer,
//!   log-processor, SNS publish).
//! - [`functions`]: the pipeline's Lambda functions (sinks and flow tasks) from the configuration.
//! - [`commands`]: one module per subcommand; [`commands::execute`] runs one on a data
//!   directory, here or for a control client.
//! - [`data`]: a command's access to the data directory (opened here, or lent by its owner).
//! - [`io`]: a command's output, input and cancellation (this terminal, or a control client).
//! - [`control`]: the control API through which commands reach a directory `up` owns.
//! - [`consumer_set`]: `up`'s consumers, each pausable for checkpoint moves and replays.
//! - [`progress`]: progress bars of long commands, local or drawn by a control client.
//! - [`dashboard`]: the dashboard's HTTP server, JSON API and embedded page.

pub mod alloc;
pub mod cli;
pub mod commands;
pub mod config;
pub mod consumer_set;
pub mod control;
pub mod dashboard;
pub mod data;
pub mod functions;
pub mod handlers;
pub mod io;
pub mod pipeline;
pub mod progress;
pub mod wiring;

use clap::Parser;
use std::process::ExitCode;

/// Parses the process arguments, runs the command and maps errors to one clear line on stderr.
pub fn run_from_args() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
