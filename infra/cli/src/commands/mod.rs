//! One module per subcommand; [`run`] dispatches.

pub mod config;
pub mod consume;
pub mod cost;
pub mod dlq;
pub mod esm;
pub mod flow;
pub mod infra;
pub mod lambda;
pub mod loadgen;
pub mod metrics;
pub mod query;
pub mod serve;
pub mod stream;
pub mod table;
pub mod up;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::config::Config;

/// Runs the parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    let mut config = Config::load(cli.config.as_deref(), cli.data_dir.as_deref())?;
    if let Some(kind) = cli.backend {
        config.set_backend(kind);
    }
    match cli.command {
        Command::Up(args) => up::run(config, args).await,
        Command::Consume(args) => consume::run(config, args).await,
        Command::Infra(c) => infra::run(&config, c).await,
        Command::Cost(args) => cost::run(&config, args),
        Command::Stream(c) => stream::run(&config, c).await,
        Command::Query(args) => query::run(&config, args).await,
        Command::Table(c) => table::run(&config, c).await,
        Command::Metrics(c) => metrics::run(&config, c).await,
        Command::Alarms(c) => metrics::run_alarms(&config, c).await,
        Command::Dlq(c) => dlq::run(&config, c).await,
        Command::Flow(c) => flow::run(&config, c).await,
        Command::Config(c) => config::run(&config, c),
        Command::Serve(args) => serve::run(config, args).await,
        Command::Loadgen(args) => loadgen::run(&config, args).await,
        Command::Esm(c) => esm::run(config, c).await,
        Command::Lambda(c) => lambda::run(config, c).await,
    }
}
