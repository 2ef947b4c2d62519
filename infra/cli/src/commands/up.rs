//! `shardline up`: the whole pipeline on embedded backends.
//!
//! Runs the collectors on their interval, the four consumers (each reading every shard from
//! its own checkpoints), and the Step Functions flow on its EventBridge-style schedule, printing
//! a status line every few seconds. Ctrl-C (or `--duration`) stops the collectors and the
//! scheduler, then each consumer flushes its sink and checkpoints before the log is closed.
//! `--once` collects once, drains every consumer and prints a summary. Unless `--once`, the
//! Kinesis endpoint (`[serve]`, see `serve`) runs on the pipeline's log while `up` runs.

use anyhow::{Context, Result};
use shardline_consumers::runtime::{ConsumerReport, ConsumerStatus};
use shardline_core::ports::DeadLetterStore;
use shardline_flow::{Executor, RealClock, StateMachine};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::UpArgs;
use crate::config::Config;
use crate::handlers::{self, PipelineHandle};
use crate::pipeline::Pipeline;
use crate::wiring;

/// Runs `shardline up`.
pub async fn run(config: Config, args: UpArgs) -> Result<i32> {
    let pipeline = Pipeline::open(config).await?;
    print_banner(&pipeline);
    // The Kinesis endpoint on the pipeline's own log, so outside producers can write into it.
    let served = if pipeline.config.serve.enabled && !args.once {
        let served = super::serve::start(&pipeline.config, pipeline.log.clone()).await?;
        println!(
            "  kinesis   {} (e.g. aws kinesis --endpoint-url {} ...)",
            served.url(),
            served.url()
        );
        Some(served)
    } else {
        None
    };
    let code = if args.once {
        once(&pipeline).await
    } else {
        run_until_stopped(&pipeline, args.duration).await
    };
    if let Some(served) = served {
        served.stop().await;
    }
    pipeline.close().await?;
    code
}

fn print_banner(p: &Pipeline) {
    let c = &p.config;
    println!("shardline: data in {}", c.data_dir.display());
    println!(
        "  stream    {} ({} shards) in {}",
        c.stream.name,
        c.stream.shards,
        c.log_dir().display()
    );
    println!("  parquet   {}", wiring::parquet_root(c).display());
    println!(
        "  table     {} in {}",
        c.consumers.dynamodb.sink.table,
        c.data_dir.join("local/table").display()
    );
    println!(
        "  metrics   namespace {} in {}",
        c.consumers.cloudwatch.sink.namespace,
        c.data_dir.join("local/metrics.redb").display()
    );
    println!("  alerts    topic {}", c.consumers.alerts.sink.topic);
    if c.flow.enabled {
        println!("  flow      {} ({})", c.flow.schedule, c.flow.time_zone);
    }
}

async fn once(p: &Pipeline) -> Result<i32> {
    let (events, report) = p.collect_once(None).await?;
    for f in &report.failed {
        eprintln!("not appended: {}", f.reason);
    }
    let mut tasks = JoinSet::new();
    for consumer in p.consumers()? {
        tasks.spawn(consumer.drain());
    }
    let mut reports = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        reports.push(joined.context("a consumer task panicked")??);
    }
    reports.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    println!(
        "collected {} events, appended {} ({} failed)",
        events.len(),
        report.appended.len(),
        report.failed.len()
    );
    print_summary(&reports);
    Ok(if report.failed.is_empty() { 0 } else { 1 })
}

fn print_summary(reports: &[ConsumerReport]) {
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>8} {:>11} {:>9}",
        "consumer", "read", "shared", "delivered", "dlq", "checkpoints", "time"
    );
    for r in reports {
        println!(
            "{:<14} {:>10} {:>10} {:>10} {:>8} {:>11} {:>8}ms",
            r.consumer,
            r.status.records_in,
            r.status.records_shared,
            r.status.records_delivered,
            r.status.dead_letters,
            r.status.checkpoints,
            r.elapsed_ms
        );
    }
}

async fn run_until_stopped(p: &Pipeline, duration: Option<Duration>) -> Result<i32> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut consumers = JoinSet::new();
    let mut statuses: Vec<(String, Arc<ConsumerStatus>)> = Vec::new();
    for consumer in p.consumers()? {
        statuses.push((consumer.config().name.clone(), consumer.status()));
        consumers.spawn(consumer.run(stop_rx.clone()));
    }
    let mut background = JoinSet::new();
    background.spawn(collect_loop(p.clone(), stop_rx.clone()));
    if p.config.flow.enabled {
        background.spawn(flow_loop(p.clone(), stop_rx.clone()));
    }
    background.spawn(status_loop(p.clone(), statuses, stop_rx.clone()));

    let stop = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("stopping: flushing sinks and checkpointing..."),
        _ = stop => eprintln!("duration reached: flushing sinks and checkpointing..."),
    }
    let _ = stop_tx.send(true);
    // A collection waiting to retry throttled records stops waiting (they are reported).
    p.producer.close();
    while let Some(joined) = background.join_next().await {
        if let Err(e) = joined {
            eprintln!("a background task panicked: {e}");
        }
    }
    let mut reports = Vec::new();
    let mut failed = false;
    while let Some(joined) = consumers.join_next().await {
        match joined.context("a consumer task panicked")? {
            Ok(r) => reports.push(r),
            Err(e) => {
                failed = true;
                eprintln!("error: consumer stopped: {e}");
            }
        }
    }
    reports.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    print_summary(&reports);
    Ok(if failed { 1 } else { 0 })
}

async fn collect_loop(p: Pipeline, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(p.config.collectors.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match p.collect_once(None).await {
            Ok((_, report)) => {
                for f in report.failed {
                    tracing::warn!(reason = %f.reason, "event not appended");
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "collection failed"),
        }
    }
}

async fn flow_loop(p: Pipeline, mut stop: watch::Receiver<bool>) {
    let flow = &p.config.flow;
    let schedule = match shardline_flow::schedule::Schedule::parse(&flow.schedule)
        .and_then(|s| s.in_timezone(&flow.time_zone))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: flow.schedule {:?}: {e}; the flow will not run",
                flow.schedule
            );
            return;
        }
    };
    let text = match handlers::load_definition(flow.definition.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}; the flow will not run");
            return;
        }
    };
    let registry = Arc::new(handlers::registry(&PipelineHandle::ready(p.clone())));
    let machine =
        match StateMachine::from_json(&text).and_then(|m| m.validate(&registry).map(|()| m)) {
            Ok(m) => m,
            Err(errors) => {
                for e in errors {
                    eprintln!("error: flow definition: {e}");
                }
                return;
            }
        };
    let executor = Executor::new(machine, registry, Arc::new(RealClock));
    loop {
        let now = chrono::Utc::now();
        let Some(next) = schedule.next_firings(now, 1).into_iter().next() else {
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let input = schedule.event(next);
        let execution = executor.run(input, None).await;
        println!(
            "flow {} {:?} at {}{}",
            execution.name,
            execution.status,
            next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            execution
                .error
                .map(|e| format!(": {e}: {}", execution.cause.unwrap_or_default()))
                .unwrap_or_default()
        );
    }
}

async fn status_loop(
    p: Pipeline,
    statuses: Vec<(String, Arc<ConsumerStatus>)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(p.config.status.interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let events: u64 = match p.log.shard_stats(&p.config.stream.name).await {
            Ok(stats) => stats.iter().map(|s| s.next_offset).sum(),
            Err(_) => 0,
        };
        let lags: Vec<String> = statuses
            .iter()
            .map(|(name, s)| {
                let snap = s.snapshot();
                format!("{name} {}ms", snap.max_millis_behind())
            })
            .collect();
        let dlq = p.backends.dead_letters.count(None).await.unwrap_or(0);
        let alarms = handlers::alarms_in_alarm(&p).await.unwrap_or(0);
        println!(
            "[{}] events in {events} | lag {} | dlq {dlq} | alarms {alarms}",
            chrono::Utc::now().format("%H:%M:%S"),
            lags.join(", ")
        );
    }
}
