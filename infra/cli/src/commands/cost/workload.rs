//! The workload a configuration makes in a month (730 hours), in the units AWS bills.
//!
//! Assumptions (printed with the estimate):
//! - Collections: `up`'s loop every `collectors.interval`, plus the flow's data-collector tasks
//!   (one collection of one metric type each) on every execution of `flow.schedule`; with
//!   `--events-per-second N` the stream takes N events a second instead, spread over the loop's
//!   collections.
//! - A synthetic collection is `instances` events per metric type; the host collector 3 events
//!   plus one per mount.
//! - Each collection is one PutRecords call per 500 events; each event one record under 25 KB
//!   (one PUT payload unit) and under 1 KB (one DynamoDB write request unit).
//! - Sinks flush a shard at most once per buffer interval while records come; when collections
//!   are further apart than a sink's buffer interval each burst (a loop collection, or a flow
//!   execution's collections, seconds apart) is one flush per shard it reached. A burst reaches
//!   `min(shards, partition keys)` shards.
//! - The S3 sink writes per flush one Parquet object and its manifest twice (stage, commit);
//!   an object takes about 3 KiB plus 18 bytes per row (BENCHMARKS.md: 17.6 MB per million
//!   rows).
//! - Every consumer checkpoints each shard it flushed; CloudWatch writes a watermark per
//!   PutMetricData; alerts write their states once per flush of a shard.

use serde_json::Value;

use crate::config::{CollectorKind, Config};

/// Seconds in AWS's billing month (730 hours).
pub const MONTH_SECS: f64 = 730.0 * 3600.0;

/// What one month of the configuration does.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Events appended.
    pub events: f64,
    /// PutRecords calls.
    pub put_calls: f64,
    /// Flow executions.
    pub executions: f64,
    /// State transitions per execution (the definition's happy path).
    pub transitions: f64,
    /// Lambda Task states per execution (the flow's tasks deployed as Lambda, as the seed).
    pub lambda_tasks: f64,
    /// SNS publish tasks per execution.
    pub sns_tasks: f64,
    /// Distinct CloudWatch metrics (metric type × instance × region).
    pub metrics: f64,
    /// Shards a burst of records reaches.
    pub active_shards: f64,
    /// Times records arrive apart (collections and executions), per month.
    pub bursts: f64,
    /// Seconds between bursts (the loop's interval, or the schedule's when it is rarer).
    pub burst_gap_secs: f64,
    /// How the events were counted, for the output.
    pub basis: String,
}

impl Workload {
    /// Flushes per shard per month of a sink with this buffer interval (seconds).
    pub fn flush_windows(&self, buffer_secs: f64) -> f64 {
        if self.burst_gap_secs >= buffer_secs.max(1.0) {
            self.bursts
        } else {
            MONTH_SECS / buffer_secs.max(1.0)
        }
    }
}

/// Events one full collection (every metric type) of the configured collectors makes.
fn events_per_collection(config: &Config) -> (f64, f64) {
    let c = &config.collectors;
    let mut events = 0.0;
    let mut keys = 0.0;
    if c.run.contains(&CollectorKind::Synthetic) {
        events += 4.0 * c.synthetic.instances as f64;
        keys += c.synthetic.instances as f64;
    }
    if c.run.contains(&CollectorKind::Host) {
        events += 3.0 + c.host.mounts.len() as f64;
        keys += 1.0;
    }
    (events, keys)
}

/// The states a successful execution enters, in AWS's count (one transition per state entered;
/// every branch of a Parallel, one iteration of a Map).
fn happy_path(states: &Value, start: &str, out: &mut Vec<Value>) {
    let mut name = start.to_string();
    for _ in 0..1000 {
        let Some(state) = states.get(&name) else {
            return;
        };
        out.push(state.clone());
        for branch in state
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(state.get("Iterator"))
            .chain(state.get("ItemProcessor"))
        {
            if let (Some(s), Some(start)) = (
                branch.get("States"),
                branch.get("StartAt").and_then(Value::as_str),
            ) {
                happy_path(s, start, out);
            }
        }
        let next = state.get("Next").and_then(Value::as_str).or_else(|| {
            state
                .get("Choices")
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .and_then(|c| c.get("Next"))
                .and_then(Value::as_str)
                .or_else(|| state.get("Default").and_then(Value::as_str))
        });
        match next {
            Some(n) => name = n.to_string(),
            None => return,
        }
    }
}

/// The flow's executions per month, with the happy path's transitions, Lambda tasks, SNS
/// tasks and data-collector tasks per execution.
fn flow(config: &Config) -> anyhow::Result<(f64, f64, f64, f64, f64, f64)> {
    if !config.flow.enabled {
        return Ok((0.0, 0.0, 0.0, 0.0, 0.0, 0.0));
    }
    let schedule = shardline_flow::schedule::Schedule::parse(&config.flow.schedule)
        .and_then(|s| s.in_timezone(&config.flow.time_zone))
        .map_err(|e| anyhow::anyhow!("flow.schedule {:?}: {e}", config.flow.schedule))?;
    let start = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let end = start + chrono::Duration::hours(730);
    let cap = 2_000_000;
    let firings = schedule.next_firings(start, cap);
    let executions = firings.iter().filter(|t| **t <= end).count() as f64;
    let gap = if executions > 0.0 {
        MONTH_SECS / executions
    } else {
        MONTH_SECS
    };
    let text = crate::handlers::load_definition(config.flow.definition.as_deref())?;
    let definition: Value = serde_json::from_str(&text)?;
    let mut path = Vec::new();
    if let (Some(states), Some(start)) = (
        definition.get("States"),
        definition.get("StartAt").and_then(Value::as_str),
    ) {
        happy_path(states, start, &mut path);
    }
    let resource = |s: &Value| {
        s.get("Resource")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let lambda = path
        .iter()
        .filter(|s| resource(s).contains(":lambda:"))
        .count() as f64;
    let sns = path
        .iter()
        .filter(|s| resource(s).contains("sns:publish"))
        .count() as f64;
    let collectors = path
        .iter()
        .filter(|s| resource(s).ends_with("function:data-collector"))
        .count() as f64;
    Ok((executions, path.len() as f64, lambda, sns, collectors, gap))
}

/// The month of `config`, or of a steady `events_per_second`.
///
/// # Errors
/// An unreadable flow schedule or definition.
pub fn workload(config: &Config, events_per_second: Option<f64>) -> anyhow::Result<Workload> {
    let (full, keys) = events_per_collection(config);
    let (executions, transitions, lambda_tasks, sns_tasks, collector_tasks, flow_gap) =
        flow(config)?;
    let interval = config.collectors.interval.as_secs_f64().max(1.0);
    let loop_rounds = MONTH_SECS / interval;
    // A data-collector task collects one metric type: a quarter of a full collection.
    let per_task = full / 4.0;
    let shards = f64::from(config.stream.shards);
    let series = {
        let c = &config.collectors;
        let mut n = 0.0;
        if c.run.contains(&CollectorKind::Synthetic) {
            n += 4.0 * c.synthetic.instances as f64;
        }
        if c.run.contains(&CollectorKind::Host) {
            n += 3.0 + c.host.mounts.len() as f64;
        }
        n
    };
    let (events, put_calls, active, basis) = match events_per_second {
        Some(n) => {
            let events = n * MONTH_SECS;
            let per_round = events / loop_rounds;
            (
                events,
                loop_rounds * (per_round / 500.0).ceil().max(1.0)
                    + executions * collector_tasks * (per_task / 500.0).ceil(),
                shards,
                format!(
                    "{n} events/s for 730 h, collected every {}",
                    humantime::format_duration(config.collectors.interval)
                ),
            )
        }
        None => {
            let events = loop_rounds * full + executions * collector_tasks * per_task;
            (
                events,
                loop_rounds * (full / 500.0).ceil()
                    + executions * collector_tasks * (per_task / 500.0).ceil(),
                shards.min(keys.max(1.0)),
                format!(
                    "{full} events per collection every {} ({loop_rounds:.0} collections) + \
                     {executions:.0} flow executions × {collector_tasks} data-collector tasks × \
                     {per_task} events",
                    humantime::format_duration(config.collectors.interval)
                ),
            )
        }
    };
    let bursts = loop_rounds + executions;
    Ok(Workload {
        events,
        put_calls,
        executions,
        transitions,
        lambda_tasks,
        sns_tasks,
        metrics: series,
        active_shards: active,
        bursts,
        burst_gap_secs: interval.min(flow_gap),
        basis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_flow_enters_eleven_states_with_seven_lambda_tasks() {
        let definition: Value =
            serde_json::from_str(crate::handlers::SEED_FLOW).expect("seed flow");
        let mut path = Vec::new();
        happy_path(
            &definition["States"],
            definition["StartAt"].as_str().expect("StartAt"),
            &mut path,
        );
        let lambda = path
            .iter()
            .filter(|s| s["Resource"].as_str().unwrap_or("").contains(":lambda:"))
            .count();
        assert_eq!((path.len(), lambda), (11, 7), "{path:#?}");
    }
}
