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
//! - [`commands`]: one module per subcommand.

pub mod alloc;
pub mod cli;
pub mod commands;
pub mod config;
pub mod functions;
pub mod handlers;
pub mod pipeline;
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
