//! `shardline up`: the whole pipeline, on the embedded backends or AWS (`[backend]`).
//!
//! Runs the collectors on their interval, the four consumers (each reading every shard from
//! its own checkpoints, each under a [`Supervisor`]), and the Step Functions flow on its
//! EventBridge-style schedule, printing a status line every few seconds that says what each
//! consumer does (its lag; retrying since when, with the last error; restarting after a
//! panic). Ctrl-C (or `--duration`) stops the collectors and the scheduler, then each consumer
//! flushes its sink and checkpoints before the log is closed.
//!
//! A consumer whose sink (or store) keeps failing is restarted from its checkpoints, with
//! backoff, for as long as it fails; one that panics is restarted at once, and a record that
//! keeps making its sink panic is dead-lettered (see `shardline_consumers::runtime`).
//!
//! With any port on AWS the summary (and the status line) also gives the API calls per
//! service for every 1,000 events appended: AWS bills per request, so batching is a cost
//! feature.
//! Unless `--once`, the Kinesis endpoint (`[serve]`, see `serve`) runs on the pipeline's log
//! while `up` runs, so outside producers can write into it.
//!
//! `--once` collects once, drains every consumer and prints a summary. It is bounded: a
//! failing call gets `retry.max_attempts` tries (by default 10, the backoff ceiling doubling
//! from 100 ms to 10 s: at most about 43 s of waiting per call), then that consumer gives up,
//! and `--once` exits 1 naming it and the error once the others are done. A record that
//! panics the sink is set aside as in `up`; panics at no record (in a flush) end the consumer
//! after `retry.max_attempts` in a row.

mod status;

use anyhow::Result;
use shardline_consumers::runtime::ConsumerReport;
use shardline_flow::{Executor, RealClock, StateMachine};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::UpArgs;
use crate::config::{BackendKind, Config};
use crate::consumer_set::ConsumerSet;
use crate::control::server::ControlServer;
use crate::dashboard;
use crate::data::Data;
use crate::handlers::{self, PipelineHandle};
use crate::pipeline::Pipeline;
use crate::wiring;

/// Runs `shardline up`.
pub async fn run(config: Config, args: UpArgs) -> Result<i32> {
    let pipeline = Pipeline::open(config).await?;
    print_banner(&pipeline);
    // The Kinesis endpoint on the pipeline's own log, so outside producers can write into it.
    // With the stream on Kinesis there is no embedded log to serve.
    let served = if let (true, false, Some(log)) = (
        pipeline.config.serve.enabled,
        args.once,
        pipeline.log.clone(),
    ) {
        let served = super::serve::start(&pipeline.config, log).await?;
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
    let place = |kind: BackendKind, embedded: String, aws: String| match kind {
        BackendKind::Embedded => embedded,
        BackendKind::Aws => aws,
    };
    let region = p
        .backends
        .aws
        .as_ref()
        .map(|a| a.clients.region.clone())
        .unwrap_or_default();
    let b = &c.backend;
    println!("shardline: data in {}", c.data_dir.display());
    println!(
        "  stream    {} ({} shards) {}",
        c.stream.name,
        c.stream.shards,
        place(
            b.stream,
            format!("in {}", c.log_dir().display()),
            format!("on Kinesis in {region}")
        )
    );
    let sink = &c.consumers.s3.sink;
    println!(
        "  parquet   {}",
        place(
            b.objects,
            wiring::parquet_root(c).display().to_string(),
            format!("s3://{}/{}/", sink.bucket, sink.prefix)
        )
    );
    println!(
        "  table     {} {}",
        c.consumers.dynamodb.sink.table,
        place(
            b.table,
            format!("in {}", c.data_dir.join("local/table").display()),
            format!("on DynamoDB in {region}")
        )
    );
    println!(
        "  metrics   namespace {} {}",
        c.consumers.cloudwatch.sink.namespace,
        place(
            b.metrics,
            format!("in {}", c.data_dir.join("local/metrics.redb").display()),
            format!("on CloudWatch in {region}")
        )
    );
    println!(
        "  alerts    topic {}{}",
        c.consumers.alerts.sink.topic,
        place(b.notifier, String::new(), " on SNS".into())
    );
    if c.flow.enabled {
        println!("  flow      {} ({})", c.flow.schedule, c.flow.time_zone);
    }
}

/// API calls per service (and action) for every 1,000 events appended, when a port is on AWS.
pub fn print_api_calls(p: &Pipeline) {
    let Some(aws) = &p.backends.aws else {
        return;
    };
    let events = p.appended.load(std::sync::atomic::Ordering::Relaxed);
    println!("AWS API calls per 1,000 events ({events} events appended; AWS bills per request):");
    let per_service = aws.counters().per_service();
    let per_thousand = |calls: u64| calls as f64 * 1000.0 / events.max(1) as f64;
    for (service, calls) in &per_service {
        let actions: Vec<String> = aws
            .counters()
            .snapshot()
            .into_iter()
            .filter(|c| &c.service == service)
            .map(|c| format!("{} {:.1}", c.action, per_thousand(c.calls)))
            .collect();
        println!(
            "  {:<11} {:>9.1}  ({calls} calls: {})",
            service,
            per_thousand(*calls),
            actions.join(", ")
        );
    }
}

async fn once(p: &Pipeline) -> Result<i32> {
    let (events, report) = p.collect_once(None).await?;
    for f in &report.failed {
        eprintln!("not appended: {}", f.reason);
    }
    let consumers = ConsumerSet::drain(p)?;
    // Commands run meanwhile go through the control socket; the dashboard shows the drain.
    let serving = Serving::start(p, &consumers).await?;
    let (reports, failed) = consumers.join().await;
    serving.stop();
    let malformed = (report.appended.len() + report.failed.len()).saturating_sub(events.len());
    let mixed_in = if malformed > 0 {
        format!(" and {malformed} malformed records (collectors.synthetic.malformed_fraction)")
    } else {
        String::new()
    };
    println!(
        "collected {} events{mixed_in}, appended {} ({} failed)",
        events.len(),
        report.appended.len(),
        report.failed.len()
    );
    print_summary(&reports);
    print_api_calls(p);
    for (name, e) in &failed {
        eprintln!(
            "error: consumer `{name}` could not finish: {e} (it resumes from its checkpoint on the \
             next run)"
        );
    }
    Ok(if report.failed.is_empty() && failed.is_empty() {
        0
    } else {
        1
    })
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
    let consumers = ConsumerSet::start(p, stop_rx.clone())?;
    let serving = Serving::start(p, &consumers).await?;
    let statuses = consumers.clone();
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
    serving.stop();
    // A collection waiting to retry throttled records stops waiting (they are reported).
    p.producer.close();
    while let Some(joined) = background.join_next().await {
        if let Err(e) = joined {
            eprintln!("a background task panicked: {e}");
        }
    }
    let (reports, failed) = consumers.join().await;
    for (name, e) in &failed {
        eprintln!(
            "error: consumer `{name}` stopped: {e} (it resumes from its checkpoint on the next run)"
        );
    }
    print_summary(&reports);
    print_api_calls(p);
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// The control socket and the dashboard of a running `up` (or `up --once`). The control socket
/// only when this process owns the data directory (a port is embedded): with every port on AWS
/// commands run in their own processes.
struct Serving {
    control: Option<ControlServer>,
    dashboard: Option<tokio::task::JoinHandle<()>>,
}

impl Serving {
    /// Serves the control API and (unless disabled) the dashboard, printing where.
    async fn start(p: &Pipeline, consumers: &Arc<ConsumerSet>) -> Result<Serving> {
        let dashboard = match p.config.dashboard.enabled {
            true => Some(dashboard::bind(&p.config.dashboard.listen).await?),
            false => None,
        };
        let url = dashboard
            .as_ref()
            .map(|(_, addr)| format!("http://{addr}/"));
        let data = Arc::new(Data::owned(p.clone(), Some(consumers.clone()), url.clone()));
        let control = if p.config.backend.uses_data_dir() {
            let control = ControlServer::start(data.clone())?;
            println!("  control   {}", control.path().display());
            Some(control)
        } else {
            None
        };
        let dashboard = dashboard
            .map(|(listener, _)| dashboard::serve(listener, data, Some(consumers.clone())));
        if let Some(url) = &url {
            println!("  dashboard {url}");
        }
        Ok(Serving { control, dashboard })
    }

    fn stop(self) {
        if let Some(control) = self.control {
            control.stop();
        }
        if let Some(d) = self.dashboard {
            d.abort();
        }
    }
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
    // Distributed Map states read and write the pipeline's object store, as `flow run` does.
    let executor = Executor::new(machine, registry, Arc::new(RealClock))
        .with_object_store(p.backends.objects.clone());
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
        dashboard::flows::record(&p.backends, &execution).await;
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

async fn status_loop(p: Pipeline, consumers: Arc<ConsumerSet>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(p.config.status.interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let events: u64 = match &p.log {
            Some(log) => match log.shard_stats(&p.config.stream.name).await {
                Ok(stats) => stats.iter().map(|s| s.next_offset).sum(),
                Err(_) => 0,
            },
            // Kinesis does not count a stream's records: those this process appended.
            None => p.appended.load(std::sync::atomic::Ordering::Relaxed),
        };
        let states: Vec<String> = consumers
            .statuses()
            .iter()
            .map(|(name, s)| status::consumer_state(name, &s.snapshot()))
            .collect();
        let dlq = p.backends.dead_letters.count(None).await.unwrap_or(0);
        let alarms = handlers::alarms_in_alarm(&p).await.unwrap_or(0);
        println!(
            "[{}] events in {events} | {} | dlq {dlq} | alarms {alarms}",
            chrono::Utc::now().format("%H:%M:%S"),
            states.join(" | ")
        );
    }
}
