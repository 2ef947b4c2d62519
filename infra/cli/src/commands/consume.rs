//! `shardline consume`: the consumers only (no collectors, no flow), each under a
//! [`LeaseWorker`], so several `consume` processes, on one machine or many, share the stream's
//! shards: each takes its fair share of leases, renews them, lets go of them on shutdown after
//! a final checkpoint, takes over the leases of a worker that stopped renewing, and starts a
//! child shard only after its parents are done (see `shardline_consumers::runtime::lease`).
//!
//! Leases live where checkpoints do: DynamoDB (KCL lease schema) on AWS; on the embedded
//! backends `<data>/local/checkpoints.redb`, which one process owns, so there `consume` is one
//! worker reading every shard through the same lease protocol.
//!
//! Every ownership change is printed on standard output as one line:
//! `lease <consumer> <shard> took|released|lost|finished by <worker> at <epoch ms> counter <n>[: detail]`.
//! Ctrl-C or SIGTERM (or `--duration`) stops the workers: each consumer flushes and
//! checkpoints, then its leases are released. Run `consume` workers or `up` for a consumer
//! name, not both: `up` reads every shard without leases.

use anyhow::{Context, Result, bail};
use shardline_consumers::runtime::lease::{LeaseBackends, worker_id};
use shardline_consumers::runtime::{ConsumerError, ConsumerStatus, LeaseWorker};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::ConsumeArgs;
use crate::commands::up::print_api_calls;
use crate::config::Config;
use crate::pipeline::Pipeline;

/// Runs `shardline consume`.
pub async fn run(config: Config, args: ConsumeArgs) -> Result<i32> {
    config
        .leases
        .validate()
        .context("invalid [leases] configuration")?;
    let p = Pipeline::open(config).await?;
    let me = args.worker_id.clone().unwrap_or_else(worker_id);
    let kinds: Vec<_> = p
        .enabled()
        .into_iter()
        .filter(|k| {
            args.consumers.is_empty() || args.consumers.contains(&p.consumer_config(*k).name)
        })
        .collect();
    for name in &args.consumers {
        if !p.consumer_names().contains(name) {
            bail!(
                "--consumer {name}: no enabled consumer has that name (enabled: {})",
                p.consumer_names().join(", ")
            );
        }
    }
    println!(
        "shardline consume: worker {me} on stream {} ({} consumer(s), leases every {})",
        p.config.stream.name,
        kinds.len(),
        humantime::format_duration(p.config.leases.renew_interval)
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = JoinSet::new();
    let mut statuses: Vec<(String, Arc<ConsumerStatus>)> = Vec::new();
    for kind in kinds {
        let consumer = p.consumer_config(kind);
        let backends = LeaseBackends {
            stream: p.stream(),
            leases: Arc::clone(&p.backends.leases),
            checkpoints: Arc::clone(&p.backends.checkpoints),
            state: Arc::clone(&p.backends.state),
        };
        let pipeline = p.clone();
        let name = consumer.name.clone();
        let factory = Box::new(move |checkpoints| {
            pipeline
                .build_with(kind, checkpoints)
                .map_err(|e| ConsumerError::Start {
                    consumer: name.clone(),
                    reason: format!("{e:#}"),
                })
        });
        let worker = LeaseWorker::new(
            p.config.leases.clone(),
            consumer.clone(),
            backends,
            me.clone(),
            factory,
        )
        .with_context(|| format!("cannot start consumer `{}`", consumer.name))?
        .with_events(Arc::new(|e| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{e}");
            let _ = out.flush();
        }));
        statuses.push((consumer.name.clone(), worker.status()));
        workers.spawn(worker.run(stop_rx.clone()));
    }
    let status = tokio::spawn(status_loop(
        p.config.status.interval,
        statuses,
        stop_rx.clone(),
    ));
    wait_for_stop(args.duration).await;
    let _ = stop_tx.send(true);
    let mut failed = false;
    let mut reports = Vec::new();
    while let Some(joined) = workers.join_next().await {
        match joined.context("a lease worker panicked")? {
            Ok(r) => reports.push(r),
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    let _ = status.await;
    reports.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    println!(
        "{:<14} {:>6} {:>9} {:>5} {:>9} {:>10} {:>10} {:>11}",
        "consumer", "taken", "released", "lost", "finished", "read", "delivered", "checkpoints"
    );
    for r in &reports {
        let (read, delivered, checkpoints) = r.report.as_ref().map_or((0, 0, 0), |c| {
            (
                c.status.records_in,
                c.status.records_delivered,
                c.status.checkpoints,
            )
        });
        println!(
            "{:<14} {:>6} {:>9} {:>5} {:>9} {:>10} {:>10} {:>11}",
            r.consumer, r.taken, r.released, r.lost, r.finished, read, delivered, checkpoints
        );
    }
    print_api_calls(&p);
    p.close().await?;
    Ok(if failed { 1 } else { 0 })
}

/// Returns on Ctrl-C, SIGTERM or after `duration`.
async fn wait_for_stop(duration: Option<Duration>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("stopping: final checkpoints, then releasing the leases..."),
        _ = term => eprintln!("SIGTERM: final checkpoints, then releasing the leases..."),
        _ = timer => eprintln!("duration reached: final checkpoints, then releasing the leases..."),
    }
}

async fn status_loop(
    every: Duration,
    statuses: Vec<(String, Arc<ConsumerStatus>)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let parts: Vec<String> = statuses
            .iter()
            .map(|(name, s)| {
                let snap = s.snapshot();
                format!(
                    "{name} read {} lag {}ms",
                    snap.records_in,
                    snap.max_millis_behind()
                )
            })
            .collect();
        println!(
            "[{}] {}",
            chrono::Utc::now().format("%H:%M:%S"),
            parts.join(" | ")
        );
    }
}
