//! `shardline lambda package` and `shardline lambda invoke`.
//!
//! `package` builds the seven bootstraps and zips each as `bootstrap` (mode 0755) into
//! `<out>/<name>.zip`, the paths infra/deploy/template.yaml names. With cargo-lambda on the
//! PATH it builds with `cargo lambda build`; otherwise with cargo for this machine's target,
//! x86_64-unknown-linux-gnu, which the provided.al2023 x86_64 runtime runs (an arm64 build
//! needs the aarch64 Rust target and a cross linker, which this machine does not have).
//! With `--binaries DIR` it zips bootstraps built already (e.g. by `cargo build --bins`)
//! and runs no cargo: how the tests package the debug binaries their build made.
//!
//! `invoke` runs one function once with an event file, in-process or as its bootstrap under
//! a local Runtime API, and prints the answer (or Lambda's error document) on stdout.

mod zip;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use shardline_lambda::SinkKind;
use shardline_lambda::config::CONFIG_ENV;
use shardline_lambda::invoke::{InProcess, Invocation, Invoker};
use shardline_lambda::runtime_api::{ProcessConfig, ProcessFunction};
use std::path::{Path, PathBuf};

use crate::cli::LambdaCommand;
use crate::config::Config;
use crate::functions::{
    FUNCTIONS, TASK_FUNCTIONS, bootstrap_backend, function_config, sink_function_on, task_function,
};
use crate::handlers::PipelineHandle;
use crate::wiring;

/// Runs `shardline lambda ...`.
pub async fn run(config: Config, command: LambdaCommand) -> Result<i32> {
    match command {
        LambdaCommand::Package {
            out,
            profile,
            functions,
            binaries,
        } => package(&out, &profile, &functions, binaries.as_deref()),
        LambdaCommand::Invoke {
            name,
            event,
            binary,
            timeout,
        } => invoke(config, &name, &event, binary.as_deref(), timeout).await,
    }
}

async fn invoke(
    config: Config,
    name: &str,
    event_file: &Path,
    binary: Option<&Path>,
    timeout: std::time::Duration,
) -> Result<i32> {
    if !FUNCTIONS.contains(&name) {
        bail!(
            "{name} is not a function; use one of {}",
            FUNCTIONS.join(", ")
        );
    }
    let text = std::fs::read(event_file)
        .with_context(|| format!("cannot read the event file {}", event_file.display()))?;
    serde_json::from_slice::<serde_json::Value>(&text).with_context(|| {
        format!(
            "{} is not JSON; give the event as a JSON document",
            event_file.display()
        )
    })?;
    let outcome = match binary {
        Some(binary) => {
            let kind = SinkKind::from_function_name(name);
            let mut p = ProcessConfig::new(name, binary);
            p.env.insert(
                "SHARDLINE_BACKEND".into(),
                bootstrap_backend(&config, kind.is_none())?.into(),
            );
            p.env.insert(
                "SHARDLINE_DATA".into(),
                config.data_dir.display().to_string(),
            );
            if let Some(kind) = kind {
                p.env.insert(
                    CONFIG_ENV.into(),
                    serde_json::to_string(&function_config(&config, kind))?,
                );
            } else {
                // A flow task reads the whole configuration, as `shardline` does.
                let dir = config.data_dir.join("lambda");
                let file = dir.join(format!("{name}.toml"));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                std::fs::write(&file, config.to_toml()?)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                p.env
                    .insert("SHARDLINE_CONFIG".into(), file.display().to_string());
            }
            let f = ProcessFunction::new(p);
            let out = f.invoke(Bytes::from(text), timeout).await;
            f.shutdown().await;
            out
        }
        None => match SinkKind::from_function_name(name) {
            Some(kind) => {
                let backends = wiring::open_backends(&config).await?;
                let f = sink_function_on(&config, kind, &backends).map_err(anyhow::Error::msg)?;
                InProcess::new(f).invoke(Bytes::from(text), timeout).await
            }
            None => {
                let pipeline = PipelineHandle::lazy(config);
                let f = task_function(&pipeline, name).context("not a flow task")?;
                let out = InProcess::new(f).invoke(Bytes::from(text), timeout).await;
                pipeline.close().await?;
                out
            }
        },
    };
    match outcome {
        Invocation::Answer(a) => {
            println!("{}", String::from_utf8_lossy(&a));
            Ok(0)
        }
        Invocation::Failed(e) => {
            println!("{}", e.to_document());
            eprintln!("error: {name} failed: {e}");
            Ok(1)
        }
    }
}

/// Where cargo puts `profile`'s binaries.
fn target_dir(profile: &str) -> PathBuf {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    root.join(if profile == "dev" { "debug" } else { profile })
}

fn package(out: &Path, profile: &str, only: &[String], binaries: Option<&Path>) -> Result<i32> {
    let names: Vec<&str> = if only.is_empty() {
        FUNCTIONS.to_vec()
    } else {
        for f in only {
            if !FUNCTIONS.contains(&f.as_str()) {
                bail!(
                    "--function {f}: not a function; use one of {}",
                    FUNCTIONS.join(", ")
                );
            }
        }
        only.iter().map(String::as_str).collect()
    };
    let built: Vec<PathBuf> = match binaries {
        Some(dir) => names
            .iter()
            .map(|name| {
                let binary = dir.join(name);
                if !binary.is_file() {
                    bail!(
                        "--binaries {}: no {name} there; build the bootstraps first \
                         (`cargo build --bins -p shardline -p shardline-lambda`) or leave \
                         --binaries out to build them",
                        dir.display()
                    );
                }
                Ok(binary)
            })
            .collect::<Result<_>>()?,
        None => build(profile, &names)?,
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, binary) in names.iter().zip(&built) {
        let body = std::fs::read(binary)
            .with_context(|| format!("cannot read the built bootstrap {}", binary.display()))?;
        let zip = out.join(format!("{name}.zip"));
        zip::write_single(&zip, "bootstrap", &body, 0o755)
            .with_context(|| format!("cannot write {}", zip.display()))?;
        println!(
            "{}\t{} bytes",
            zip.display(),
            std::fs::metadata(&zip).map(|m| m.len()).unwrap_or(0)
        );
    }
    Ok(0)
}

/// Builds the bootstraps `names` with `profile`; where each binary is.
fn build(profile: &str, names: &[&str]) -> Result<Vec<PathBuf>> {
    if !Path::new("Cargo.toml").exists() || !Path::new("infra/lambda").is_dir() {
        bail!(
            "run `shardline lambda package` from the Shardline repository's root (it builds the \
             functions with cargo), or give --binaries DIR with bootstraps built already"
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let has_cargo_lambda = std::process::Command::new(&cargo)
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = std::process::Command::new(&cargo);
    if has_cargo_lambda && profile == "release" {
        cmd.args(["lambda", "build", "--release"]);
    } else {
        cmd.args(["build", "--profile", profile]);
    }
    let (sinks, tasks): (Vec<&str>, Vec<&str>) =
        names.iter().partition(|n| !TASK_FUNCTIONS.contains(n));
    for (package, bins) in [("shardline-lambda", &sinks), ("shardline", &tasks)] {
        if bins.is_empty() {
            continue;
        }
        let mut c = std::process::Command::new(cmd.get_program());
        c.args(cmd.get_args()).args(["-p", package]);
        for b in bins.iter() {
            c.args(["--bin", b]);
        }
        eprintln!(
            "building {} ({package}, profile {profile}{})",
            bins.join(", "),
            if has_cargo_lambda {
                ", cargo-lambda"
            } else {
                ""
            }
        );
        let status = c.status().context("cannot run cargo")?;
        if !status.success() {
            bail!("building {} failed ({status})", bins.join(", "));
        }
    }
    Ok(if has_cargo_lambda && profile == "release" {
        let root = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("lambda");
        names
            .iter()
            .map(|n| root.join(n).join("bootstrap"))
            .collect()
    } else {
        let root = target_dir(profile);
        names.iter().map(|n| root.join(n)).collect()
    })
}
