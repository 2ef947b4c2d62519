//! `shardline esm run`: a local Kinesis event source mapping over the stream `[backend]`
//! chooses: the embedded log, Kinesis (`aws`), or `shardline serve` (`aws` with
//! `[aws] endpoint_url` at its URL).
//!
//! In-process, this process opens the stream and the sink function's ports (each on its
//! backend) and calls the function; with `--binary`, it opens only the stream and the
//! mapping's own checkpoints and runs the function's bootstrap under a local Runtime API,
//! which opens the sink stores itself (on the one backend [`bootstrap_backend`] names). The
//! mapping keeps its checkpoints under the data directory (`esm/<mapping uuid>`) whatever
//! the backend, as an event source mapping keeps its own position. The OnFailure destination
//! is an SNS topic ARN (SNS when the notifier is on `aws`, else the `[notifier]` targets),
//! `arn:aws:s3:::bucket` (S3 when the objects port is on `aws`, else the embedded store) or a
//! directory.

use anyhow::{Context, Result, bail};
use shardline_aws::AwsBackends;
use shardline_core::ports::ObjectStore;
use shardline_lambda::esm::{Destination, EsmRunner, MappingConfig, Until, mapping_uuid};
use shardline_lambda::invoke::{InProcess, Invoker};
use shardline_lambda::runtime_api::{DEFAULT_MAX_ENVIRONMENTS, ProcessConfig, ProcessFunction};
use shardline_lambda::{SinkKind, config::CONFIG_ENV};
use shardline_local::LocalBackends;
use std::sync::Arc;

use crate::cli::{EsmCommand, EsmRunArgs};
use crate::config::{BackendKind, Config};
use crate::functions::{bootstrap_backend, function_config, sink_function_on};
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
    let aws = wiring::open_aws(&config).await?;
    let (stream, log) = wiring::open_stream(&config, aws.as_ref()).await?;
    let mut local: Option<LocalBackends> = None;
    let (invoker, process): (Arc<dyn Invoker>, Option<Arc<ProcessFunction>>) = match &args.binary {
        None => {
            let b = wiring::open_backends_with(&config, aws.clone())?;
            let f = sink_function_on(&config, kind, &b).map_err(anyhow::Error::msg)?;
            local = b.local;
            (Arc::new(InProcess::new(f)), None)
        }
        Some(binary) => {
            let mut p = ProcessConfig::new(&args.function, binary);
            p.region.clone_from(&mapping.region);
            p.account.clone_from(&mapping.account);
            let backend = bootstrap_backend(&config, false)?;
            // Over AWS's services environments scale out as Lambda's do; the embedded
            // stores take one process at a time.
            if backend == "aws" {
                p.max_environments = DEFAULT_MAX_ENVIRONMENTS;
            }
            p.env.insert("SHARDLINE_BACKEND".into(), backend.into());
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
        Some(d) => Some(destination(&config, d, local.as_ref(), aws.as_ref())?),
    };
    let state_dir = config
        .data_dir
        .join("esm")
        .join(mapping_uuid(&mapping.function, &mapping.stream));
    let runner = EsmRunner::new(mapping, stream, invoker, on_failure, &state_dir)?;
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
    if let Some(log) = log {
        log.close().await.context("cannot close the log")?;
    }
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
/// (the object store) or a directory (under the data directory when relative), on the
/// backends of the notifier and objects ports.
fn destination(
    config: &Config,
    spec: &str,
    local: Option<&LocalBackends>,
    aws: Option<&AwsBackends>,
) -> Result<Destination> {
    let on_aws = |kind: BackendKind| -> Result<Option<&AwsBackends>> {
        match kind {
            BackendKind::Aws => aws.map(Some).context("the AWS backend is not set up"),
            BackendKind::Embedded => Ok(None),
        }
    };
    if spec.starts_with("arn:aws:sns:") {
        let notifier: Arc<dyn shardline_core::ports::Notifier> =
            match on_aws(config.backend.notifier)? {
                Some(aws) => Arc::new(aws.notifier.clone()),
                None => shardline_local::build_notifier(&config.notifier, &config.data_dir)
                    .context("cannot set up the notifier for the OnFailure destination")?,
            };
        return Ok(Destination::Sns {
            topic_arn: spec.to_string(),
            notifier,
        });
    }
    if let Some(bucket) = spec.strip_prefix("arn:aws:s3:::") {
        let store: Arc<dyn ObjectStore> = match (on_aws(config.backend.objects)?, local) {
            (Some(aws), _) => aws.object_store(),
            (None, Some(b)) => b.objects.clone(),
            (None, None) => Arc::new(
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
