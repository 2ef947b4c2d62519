//! One module per subcommand; [`run`] dispatches, [`execute`] runs a command on a data directory.
//!
//! Commands that read or change the data directory ([`uses_data_dir`]) are each one function
//! taking a [`Data`] and an [`Io`]: [`run`] sends them to the running owner of the directory
//! through the control API when there is one, and otherwise runs them here; the owner's control
//! server calls [`execute`] with the same command. Output and exit codes are therefore the same
//! whichever process runs them. With every port on AWS (`--backend aws`) the data directory
//! holds nothing and has no owner: those commands run here, on the AWS backends. Commands that
//! are processes of their own (`up`, `serve`, `consume`, `esm`, `loadgen`) or touch no data
//! directory (`infra`, `cost`, `lambda`, `config`) always run here.

pub mod backfill;
pub mod checkpoints;
pub mod config;
pub mod consume;
pub mod cost;
pub mod dashboard;
pub mod dlq;
pub mod esm;
pub mod flow;
pub mod infra;
pub mod lambda;
pub mod loadgen;
pub mod metrics;
pub mod query;
pub mod replay;
pub mod serve;
pub mod stream;
pub mod table;
pub mod up;

use anyhow::{Result, bail};
use std::io::Write;
use std::time::Duration;

use crate::cli::{Cli, Command, FlowCommand, ListFormat, StreamCommand};
use crate::config::Config;
use crate::control;
use crate::data::{Data, is_in_use};
use crate::io::Io;

/// How long a command that finds the data directory locked waits for its owner's control
/// socket (the owner takes its locks a moment before it listens).
const OWNER_PATIENCE: Duration = Duration::from_secs(5);

/// Runs the parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    let mut config = Config::load(cli.config.as_deref(), cli.data_dir.as_deref())?;
    if let Some(kind) = cli.backend {
        config.set_backend(kind);
    }
    let command = cli.command;
    if !uses_data_dir(&command) {
        return match command {
            Command::Up(args) => {
                if config.backend.uses_data_dir()
                    && control::client::connect(&config.data_dir).await?.is_some()
                {
                    bail!(
                        "{} is owned by a shardline that is already running; stop it first, or \
                         use another --data-dir",
                        config.data_dir.display()
                    );
                }
                up::run(config, args).await
            }
            Command::Config(c) => config::run(&config, c),
            Command::Flow(c) => {
                let data = Data::local(config);
                let mut io = Io::local();
                let code = execute(&data, &mut io, Command::Flow(c)).await;
                Ok(code)
            }
            Command::Consume(args) => consume::run(config, args).await,
            Command::Infra(c) => infra::run(&config, c).await,
            Command::Cost(args) => cost::run(&config, args),
            Command::Serve(args) => serve::run(config, args).await,
            Command::Loadgen(args) => loadgen::run(&config, args).await,
            Command::Esm(c) => esm::run(config, c).await,
            Command::Lambda(c) => lambda::run(config, c).await,
            _ => unreachable_local(),
        };
    }
    if !config.backend.uses_data_dir() {
        // Every port on AWS: the data directory holds nothing, so no process owns it and the
        // command runs here, on the AWS backends.
        if let Command::Dashboard(args) = command {
            return dashboard::serve_stopped(config, args).await;
        }
        return run_here(Data::local(config), command).await;
    }
    let stdin = needs_stdin(&command);
    if let Some(conn) = control::client::connect(&config.data_dir).await? {
        return control::client::run(conn, stdin).await;
    }
    if let Command::Dashboard(args) = command {
        return dashboard::serve_stopped(config, args).await;
    }
    let data = Data::local(config);
    let io = Io::local();
    if let Err(e) = data.open_for(&command).await {
        if is_in_use(&e) {
            if let Some(conn) =
                control::client::wait_for_owner(&data.config.data_dir, OWNER_PATIENCE).await?
            {
                return control::client::run(conn, stdin).await;
            }
            bail!(
                "{e:#}\n(the process holding {} offers no control socket: it may be starting, \
                 stopping, or an older shardline; wait for it or stop it)",
                data.config.data_dir.display()
            );
        }
        return Err(e);
    }
    finish(data, io, command).await
}

/// Runs `command` here on `data` (opened up front, as [`Data::open_for`] says).
async fn run_here(data: Data, command: Command) -> Result<i32> {
    data.open_for(&command).await?;
    finish(data, Io::local(), command).await
}

/// Runs `command` here on `data`, then closes what it opened and flushes the output.
async fn finish(data: Data, mut io: Io, command: Command) -> Result<i32> {
    let code = execute(&data, &mut io, command).await;
    let closed = data.close().await;
    let _ = io.flush().await;
    closed?;
    Ok(code)
}

fn unreachable_local() -> Result<i32> {
    bail!("internal: command routed wrongly")
}

/// Whether `command` reads or changes the data directory (so it goes through the owner's
/// control API when one runs). `flow validate`/`next` and `config show` do not, nor do the
/// commands that run on their own: `up`, `serve`, `consume`, `esm` and `loadgen` (each opens
/// what it serves or drives, and says so when another process holds it), `infra`, `cost` and
/// `lambda`.
pub fn uses_data_dir(command: &Command) -> bool {
    match command {
        Command::Up(_)
        | Command::Config(_)
        | Command::Consume(_)
        | Command::Infra(_)
        | Command::Cost(_)
        | Command::Serve(_)
        | Command::Loadgen(_)
        | Command::Esm(_)
        | Command::Lambda(_) => false,
        Command::Flow(FlowCommand::Run { .. } | FlowCommand::Test { .. }) => true,
        Command::Flow(_) => false,
        _ => true,
    }
}

/// Whether `command` reads standard input.
pub fn needs_stdin(command: &Command) -> bool {
    matches!(command, Command::Stream(StreamCommand::Put { .. }))
}

/// Runs a command on `data`, writing to `io`; errors are printed as `error: ...` on standard
/// error with exit code 1, as the binary prints its own.
pub async fn execute(data: &Data, io: &mut Io, command: Command) -> i32 {
    let result = match command {
        Command::Stream(c) => stream::run(data, io, c).await,
        Command::Query(args) => query::run(data, io, args).await,
        Command::Table(c) => table::run(data, io, c).await,
        Command::Metrics(c) => metrics::run(data, io, c).await,
        Command::Alarms(c) => metrics::run_alarms(data, io, c).await,
        Command::Dlq(c) => dlq::run(data, io, c).await,
        Command::Flow(c) => flow::run(data, io, c).await,
        Command::Checkpoints(c) => checkpoints::run(data, io, c).await,
        Command::Replay(args) => replay::run(data, io, args).await,
        Command::Backfill(args) => backfill::run(data, io, args).await,
        Command::Dashboard(args) => dashboard::run(data, io, args).await,
        Command::Up(_)
        | Command::Config(_)
        | Command::Consume(_)
        | Command::Infra(_)
        | Command::Cost(_)
        | Command::Serve(_)
        | Command::Loadgen(_)
        | Command::Esm(_)
        | Command::Lambda(_) => Err(anyhow::anyhow!(
            "this command does not run on another process's data directory"
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io.err, "error: {e:#}");
            1
        }
    }
}

/// The list format asked for, or the default: a table on a terminal, JSON Lines otherwise.
pub fn list_format(asked: Option<ListFormat>, io: &Io) -> ListFormat {
    asked.unwrap_or(if io.terminal {
        ListFormat::Table
    } else {
        ListFormat::Json
    })
}

/// Writes `rows` as a table with aligned columns (the header first).
///
/// # Errors
/// When the output cannot be written.
pub fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
