//! `shardline flow validate | run | next`.

use anyhow::{Context, Result, bail};
use shardline_flow::{ExecutionStatus, Executor, HandlerRegistry, RealClock, StateMachine};
use std::io::Write;
use std::sync::Arc;

use crate::cli::FlowCommand;
use crate::data::Data;
use crate::handlers;
use crate::io::Io;
use crate::pipeline::Pipeline;

/// Runs a `flow` subcommand.
pub async fn run(data: &Data, io: &mut Io, command: FlowCommand) -> Result<i32> {
    let config = &*data.config;
    match command {
        FlowCommand::Validate { file } => {
            let file = io.path(&file);
            let text = handlers::load_definition(Some(&file))?;
            // Resources are checked against the handlers `shardline` provides; they open the
            // pipeline only when run, so validating touches no data.
            let registry = handlers::registry(&handlers::PipelineHandle::lazy(config.clone()));
            match parse(&text, &registry) {
                Ok(machine) => {
                    writeln!(
                        io.out,
                        "{}: valid ({} states)",
                        file.display(),
                        machine.states.len()
                    )?;
                    Ok(0)
                }
                Err(errors) => {
                    for e in &errors {
                        writeln!(io.err, "{}: {e}", file.display())?;
                    }
                    writeln!(io.err, "{}: {} problems", file.display(), errors.len())?;
                    Ok(1)
                }
            }
        }
        FlowCommand::Run {
            file,
            input,
            history,
        } => {
            let input: serde_json::Value = serde_json::from_str(&input)
                .with_context(|| format!("--input is not JSON: {input}"))?;
            let file = file.map(|f| io.path(&f));
            let text =
                handlers::load_definition(file.as_deref().or(config.flow.definition.as_deref()))?;
            let pipeline = if data.is_owned() {
                // The running pipeline's own notifier, collectors and producer.
                data.pipeline().await?
            } else {
                // Standard output carries the execution's JSON: notifications meant for it (the
                // flow's own SNS step among them) go to standard error.
                let mut config = config.clone();
                config.notifier = config.notifier.stdout_to_stderr();
                Pipeline::with_parts(config, data.log().await?, data.backends().await?).await?
            };
            let registry = handlers::registry(&handlers::PipelineHandle::ready(pipeline.clone()));
            let machine = match parse(&text, &registry) {
                Ok(m) => m,
                Err(errors) => {
                    for e in &errors {
                        writeln!(io.err, "{e}")?;
                    }
                    bail!("the state machine definition has {} problems", errors.len());
                }
            };
            let executor = Executor::new(machine, Arc::new(registry), Arc::new(RealClock));
            let execution = executor.run(input, None).await;
            crate::dashboard::flows::record(&pipeline.backends, &execution).await;
            if history {
                writeln!(
                    io.out,
                    "{}",
                    serde_json::to_string_pretty(&execution.history)?
                )?;
            }
            match execution.status {
                ExecutionStatus::Succeeded => {
                    let output = execution.output.unwrap_or_default();
                    writeln!(io.out, "{}", serde_json::to_string_pretty(&output)?)?;
                    writeln!(io.err, "execution {} succeeded", execution.name)?;
                    Ok(0)
                }
                status => {
                    writeln!(
                        io.err,
                        "execution {} {status:?}: {}: {}",
                        execution.name,
                        execution.error.unwrap_or_default(),
                        execution.cause.unwrap_or_default()
                    )?;
                    Ok(1)
                }
            }
        }
        FlowCommand::Next { expression, count } => {
            let schedule = shardline_flow::schedule::Schedule::parse(&expression)
                .and_then(|s| s.in_timezone(&config.flow.time_zone))
                .with_context(|| format!("invalid schedule expression {expression:?}"))?;
            let now = chrono::Utc::now();
            for t in schedule.next_firings(now, count) {
                writeln!(
                    io.out,
                    "{}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )?;
            }
            Ok(0)
        }
    }
}

fn parse(
    text: &str,
    registry: &HandlerRegistry,
) -> Result<StateMachine, Vec<shardline_flow::ValidationError>> {
    let machine = StateMachine::from_json(text)?;
    machine.validate(registry)?;
    Ok(machine)
}
