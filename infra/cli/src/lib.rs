//! The `shardline` command: the wiring of backends from configuration, and every subcommand.
//!
//! # Layout
//! - [`cli`]: the clap command line.
//! - [`config`]: `default.toml` overlaid by a file, `SHARDLINE__*` variables and flags.
//! - [`wiring`]: opens the embedded log and backends the configuration names.
//! - [`pipeline`]: the collectors, consumers and flow that `shardline up` runs.
//! - [`handlers`]: the flow's task handlers (data-collector, pipeline-health, metrics-analyzer,
//!   log-processor, SNS publish).
//! - [`health`]: the pipeline-health task: consumer lag from checkpoints or from Lambda's
//!   IteratorAge metric (`[flow] lag_source`).
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
pub mod health;
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

/// The AWS SDK's own crates log at error level only, unless the user's filter names them: their
/// warnings (a region not found on IMDS, a credentials provider skipped) are multi-line dumps of
/// what the command already reports as one clear line.
const SDK_QUIET: &str = "aws_config=error,aws_smithy_runtime=error,aws_smithy_runtime_api=error,\
aws_smithy_http_client=error,aws_sdk_kinesis=error,aws_sdk_s3=error,aws_sdk_dynamodb=error,\
aws_sdk_cloudwatch=error,aws_sdk_sns=error,aws_sdk_sts=error,aws_sdk_sso=error,aws_sdk_ssooidc=error";

/// The filter `init_tracing` installs for the user's `--log` value.
fn tracing_filter(filter: &str) -> String {
    if filter.contains("aws_") {
        filter.to_string()
    } else if filter.trim().is_empty() {
        SDK_QUIET.to_string()
    } else {
        format!("{SDK_QUIET},{filter}")
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(tracing_filter(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(tracing_filter("warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::tracing_filter;

    #[test]
    fn the_sdk_is_quiet_unless_the_filter_names_it() {
        let default = tracing_filter("warn");
        assert!(default.contains("aws_config=error"), "{default}");
        assert!(
            default.ends_with(",warn"),
            "the user's level still applies: {default}"
        );
        assert_eq!(
            tracing_filter("aws_config=debug,info"),
            "aws_config=debug,info"
        );
        assert!(tracing_subscriber::EnvFilter::try_new(tracing_filter("debug")).is_ok());
    }
}
