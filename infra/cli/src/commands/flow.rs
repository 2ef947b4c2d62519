//! `shardline flow validate | run | test | next`.
//!
//! `validate` answers AWS's question (is this valid ASL?) with errors, and says as warnings
//! which Task resources have no handler here. `run` needs every Task answered: by a built-in
//! handler, a `[flow.tasks]` command or endpoint, or a mock test case (`--mocks FILE
//! --test-case NAME`, Step Functions Local's MockConfigFile format). `test` runs every test case
//! of a mock file against its state machine and checks the documented outcome.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use shardline_core::ports::ObjectStore;
use shardline_flow::mock::{MockConfig, TestCase};
use shardline_flow::{
    Execution, ExecutionStatus, Executor, ExecutorConfig, FlowClock, HandlerRegistry, RealClock,
    StateMachine, VirtualClock,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::FlowCommand;
use crate::config::Config;
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
            validate(config, io, &file)
        }
        FlowCommand::Run {
            file,
            input,
            history,
            mocks,
            test_case,
            state_machine,
        } => {
            let input: Value = serde_json::from_str(&input)
                .with_context(|| format!("--input is not JSON: {input}"))?;
            let file = file.map(|f| io.path(&f));
            let mocks = mocks.map(|m| io.path(&m));
            let path = file.as_deref().or(config.flow.definition.as_deref());
            let text = handlers::load_definition(path)?;
            let case = match (&mocks, &test_case) {
                (Some(m), Some(t)) => Some(
                    load_mocks(m)?
                        .0
                        .test_case(state_machine.as_deref(), t)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", m.display()))?,
                ),
                _ => None,
            };
            let name = case.as_ref().map(|c| c.state_machine.clone());
            let pipeline = open_pipeline(data).await?;
            let clock = Arc::new(RealClock);
            let execution = execute(&pipeline, io, &text, input, case, name, clock).await?;
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
        FlowCommand::Test { mocks } => {
            let mocks = io.path(&mocks);
            test(data, io, &mocks).await
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

fn validate(config: &Config, io: &mut Io, file: &Path) -> Result<i32> {
    let text = handlers::load_definition(Some(file))?;
    let machine = match StateMachine::from_json(&text) {
        Ok(m) => m,
        Err(errors) => {
            for e in &errors {
                writeln!(io.err, "{}: error: {e}", file.display())?;
            }
            writeln!(io.err, "{}: {} problems", file.display(), errors.len())?;
            return Ok(1);
        }
    };
    // Resources are checked against the handlers `shardline` provides; they open the
    // pipeline only when run, so validating touches no data.
    let registry = handlers::registry(&handlers::PipelineHandle::lazy(config.clone()));
    let warnings = machine.unresolved_resources(&registry, &|_| false);
    for w in &warnings {
        writeln!(
            io.err,
            "{}: warning: {w} (valid ASL; to run it here, map the resource in [flow.tasks] or mock the state with --mocks)",
            file.display()
        )?;
    }
    writeln!(
        io.out,
        "{}: valid ({} states{})",
        file.display(),
        machine.all_states().len(),
        if warnings.is_empty() {
            String::new()
        } else {
            format!(", {} Task resources without a handler here", warnings.len())
        }
    )?;
    Ok(0)
}

/// The pipeline the flow runs on: the running owner's (its own notifier, collectors and
/// producer), or one opened on the data directory with notifications meant for stdout sent to
/// stderr (stdout carries the execution's JSON).
async fn open_pipeline(data: &Data) -> Result<Pipeline> {
    handlers::task_targets(&data.config)?;
    if data.is_owned() {
        return data.pipeline().await;
    }
    let mut config = Config::clone(&data.config);
    config.notifier = config.notifier.stdout_to_stderr();
    Pipeline::with_parts(
        config,
        data.stream().await?,
        data.embedded_log().await?,
        data.backends().await?,
    )
    .await
}

/// Parses, checks that every Task is answered, and runs one execution.
async fn execute(
    pipeline: &Pipeline,
    io: &mut Io,
    text: &str,
    input: Value,
    case: Option<TestCase>,
    state_machine_name: Option<String>,
    clock: Arc<dyn FlowClock>,
) -> Result<Execution> {
    let registry: HandlerRegistry =
        handlers::registry(&handlers::PipelineHandle::ready(pipeline.clone()));
    let machine = match StateMachine::from_json(text) {
        Ok(m) => m,
        Err(errors) => {
            for e in &errors {
                writeln!(io.err, "error: {e}")?;
            }
            bail!("the state machine definition has {} problems", errors.len());
        }
    };
    let unresolved =
        machine.unresolved_resources(&registry, &|s| case.as_ref().is_some_and(|c| c.covers(s)));
    if !unresolved.is_empty() {
        for e in &unresolved {
            writeln!(io.err, "error: {e}")?;
        }
        bail!(
            "{} Task states have no handler here: map their resources in [flow.tasks] (see infra/cli/src/default.toml) or answer them with --mocks FILE --test-case NAME",
            unresolved.len()
        );
    }
    let mut cfg = ExecutorConfig::default();
    if let Some(name) = state_machine_name {
        cfg.state_machine_name = name;
    }
    let objects: Arc<dyn ObjectStore> = pipeline.backends.objects.clone();
    let mut executor =
        Executor::with_config(machine, Arc::new(registry), clock, cfg).with_object_store(objects);
    if let Some(case) = case {
        executor = executor.with_mocks(case);
    }
    Ok(executor.run(input, None).await)
}

/// A mock file and its raw JSON (for the `Definitions` and `Expectations` sections).
fn load_mocks(path: &Path) -> Result<(MockConfig, Value)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the mock configuration {}", path.display()))?;
    let config = MockConfig::from_json(&text).map_err(|errors| {
        anyhow::anyhow!(
            "{}: {} problems:\n{}",
            path.display(),
            errors.len(),
            errors.join("\n")
        )
    })?;
    let raw: Value = serde_json::from_str(&text)?;
    Ok((config, raw))
}

/// Runs every test case of a mock file. A case passes when its execution ends with the
/// expected `Status` (default `SUCCEEDED`) and, where given, the expected `Output` or
/// `Error`. Executions run on a virtual clock, so Wait states and retry backoffs cost no time.
async fn test(data: &Data, io: &mut Io, path: &Path) -> Result<i32> {
    let (mocks, raw) = load_mocks(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let pipeline = open_pipeline(data).await?;
    let (mut passed, mut failed) = (0, 0);
    for (sm, cases) in &mocks.state_machines {
        let def_path: PathBuf = match raw["Definitions"][sm].as_str() {
            Some(p) => dir.join(p),
            None => dir.join(format!("{sm}.asl.json")),
        };
        let text = match std::fs::read_to_string(&def_path) {
            Ok(t) => t,
            Err(e) => {
                writeln!(
                    io.out,
                    "FAIL {sm}: cannot read its definition {} ({e}); put it beside the mock file or name it under \"Definitions\"",
                    def_path.display()
                )?;
                failed += cases.len();
                continue;
            }
        };
        for name in cases.keys() {
            let expect = &raw["Expectations"][sm][name];
            let input = expect
                .get("Input")
                .cloned()
                .unwrap_or(serde_json::json!({}));
            let case = mocks
                .test_case(Some(sm), name)
                .map_err(|e| anyhow::anyhow!(e))?;
            // Mocked tasks take no time: waits and retry backoffs run on a virtual clock.
            let clock = Arc::new(VirtualClock::new(chrono::Utc::now().timestamp_millis()));
            let run = execute(
                &pipeline,
                io,
                &text,
                input,
                Some(case),
                Some(sm.clone()),
                clock,
            );
            let verdict = match run.await {
                Ok(exec) => judge(&exec, expect),
                Err(e) => Err(format!("{e:#}")),
            };
            match verdict {
                Ok(()) => {
                    passed += 1;
                    writeln!(io.out, "PASS {sm}/{name}")?;
                }
                Err(why) => {
                    failed += 1;
                    writeln!(io.out, "FAIL {sm}/{name}: {why}")?;
                }
            }
            io.flush().await?;
        }
    }
    writeln!(io.out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 { 0 } else { 1 })
}

fn judge(exec: &Execution, expect: &Value) -> Result<(), String> {
    let status = serde_json::to_value(exec.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let want_status = expect
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or("SUCCEEDED");
    if status != want_status {
        return Err(format!(
            "status {status}, expected {want_status} ({}: {})",
            exec.error.clone().unwrap_or_default(),
            exec.cause.clone().unwrap_or_default()
        ));
    }
    if let Some(want) = expect.get("Output")
        && exec.output.as_ref() != Some(want)
    {
        return Err(format!(
            "output {}, expected {want}",
            exec.output.clone().unwrap_or_default()
        ));
    }
    if let Some(want) = expect.get("Error").and_then(Value::as_str)
        && exec.error.as_deref() != Some(want)
    {
        return Err(format!(
            "error {:?}, expected {want:?}",
            exec.error.clone().unwrap_or_default()
        ));
    }
    Ok(())
}
