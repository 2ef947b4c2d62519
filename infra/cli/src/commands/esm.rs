//! `shardline esm run`: a local Kinesis event source mapping over the embedded log.
//!
//! In-process, this process opens the log and the embedded backends and calls the sink
//! function; with `--binary`, it opens only the log and its checkpoints and runs the
//! function's bootstrap under a local Runtime API, which opens the sink stores itself.

use anyhow::{Context, Result, bail};
use shardline_lambda::esm::{Destination, EsmRunner, MappingConfig, Until, mapping_uuid};
use shardline_lambda::invoke::{InProcess, Invoker};
use shardline_lambda::runtime_api::{ProcessConfig, ProcessFunction};
use shardline_lambda::{SinkKind, config::CONFIG_ENV};
use shardline_local::LocalBackends;
use std::sync::Arc;

use crate::cli::{EsmCommand, EsmRunArgs};
use crate::config::Config;
use crate::functions::{function_config, sink_function};
use crate::wiring;

/// Runs `shardline esm ...`.
pub async fn run(config: Config, command: EsmCommand) -> Result<i32> {
    match command {
        EsmCommand::Run(args) => run_mapping(config, args).await,
    }
}

async fn run_mapping(config: Config, args: EsmRunArgs) -> Result<i32> {
    let Some(kind) = SinkKind::from_function_name(&args.function) else {
        bail!(
            "--function {}: an event source mapping feeds a sink function: s3-parquet, dynamodb, \
             cloudwatch or alerts (invoke the flow's tasks with `shardline lambda invoke`)",
            args.function
        );
    };
    let mut mapping = MappingConfig {
        function: args.function.clone(),
        ..config.esm.clone()
    };
    if let Some(n) = args.batch_size {
        mapping.batch_size = n;
    }
    mapping
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid [esm] settings")?;
    let log = wiring::open_log(&config).await?;
    let mut backends: Option<LocalBackends> = None;
    let (invoker, process): (Arc<dyn Invoker>, Option<Arc<ProcessFunction>>) = match &args.binary {
        None => {
            let b = wiring::open_local(&config)?;
            let f = sink_function(&config, kind, &b).map_err(anyhow::Error::msg)?;
            backends = Some(b);
            (Arc::new(InProcess::new(f)), None)
        }
        Some(binary) => {
            let mut p = ProcessConfig::new(&args.function, binary);
            p.region.clone_from(&mapping.region);
            p.account.clone_from(&mapping.account);
            p.env.insert("SHARDLINE_BACKEND".into(), "embedded".into());
            p.env.insert(
                "SHARDLINE_DATA".into(),
                config.data_dir.display().to_string(),
            );
            p.env.insert(
                CONFIG_ENV.into(),
                serde_json::to_string(&function_config(&config, kind))?,
            );
            let f = ProcessFunction::new(p);
            (f.clone(), Some(f))
        }
    };
    let on_failure = match &mapping.on_failure {
        None => None,
        Some(d) => Some(destination(&config, d, backends.as_ref())?),
    };
    let state_dir = config
        .data_dir
        .join("esm")
        .join(mapping_uuid(&mapping.function, &mapping.stream));
    let runner = EsmRunner::new(mapping, log.clone(), invoker, on_failure, &state_dir)?;
    let until = if args.once {
        Until::CaughtUp
    } else {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let duration = args.duration;
        tokio::spawn(async move {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            let _ = tx.send(true);
        });
        Until::Shutdown(rx)
    };
    let started = std::time::Instant::now();
    let result = runner.run(until).await;
    if let Some(p) = process {
        p.shutdown().await;
    }
    log.close().await.context("cannot close the log")?;
    let counts = result?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "function": args.function,
            "mapping": runner.identity().uuid,
            "counts": counts,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "records_per_second": if secs > 0.0 { (counts.records_done as f64 / secs).round() } else { 0.0 },
        }))?
    );
    Ok(0)
}

/// The OnFailure destination `spec` names: an SNS topic ARN (the notifier), an S3 bucket ARN
/// (the object store) or a directory (under the data directory when relative).
fn destination(
    config: &Config,
    spec: &str,
    backends: Option<&LocalBackends>,
) -> Result<Destination> {
    if spec.starts_with("arn:aws:sns:") {
        let notifier = shardline_local::build_notifier(&config.notifier, &config.data_dir)
            .context("cannot set up the notifier for the OnFailure destination")?;
        return Ok(Destination::Sns {
            topic_arn: spec.to_string(),
            notifier,
        });
    }
    if let Some(bucket) = spec.strip_prefix("arn:aws:s3:::") {
        let store: Arc<dyn shardline_core::ports::ObjectStore> = match backends {
            Some(b) => b.objects.clone(),
            None => Arc::new(
                shardline_local::DirObjectStore::open(&config.data_dir.join("s3"))
                    .context("cannot open the object store for the OnFailure destination")?,
            ),
        };
        return Ok(Destination::S3 {
            bucket: bucket.to_string(),
            store,
        });
    }
    if spec.starts_with("arn:") {
        bail!("on_failure = {spec:?}: use an SNS topic ARN, arn:aws:s3:::<bucket> or a directory");
    }
    let dir = std::path::Path::new(spec);
    Ok(Destination::Directory(if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        config.data_dir.join(dir)
    }))
}
