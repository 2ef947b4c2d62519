//! `shardline metrics stats` (like get-metric-statistics) and `shardline alarms list`.

use anyhow::{Context, Result, bail};
use shardline_consumers::sinks::alerts;
use shardline_core::ports::{Datapoint, MetricPublisher, StatisticsQuery};
use std::collections::BTreeMap;

use super::table::parse_time_ms;
use crate::cli::{AlarmsCommand, MetricsCommand};
use crate::config::Config;
use crate::wiring;

const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// Runs a `metrics` subcommand.
pub async fn run(config: &Config, command: MetricsCommand) -> Result<i32> {
    let MetricsCommand::Stats {
        metric,
        instance,
        region,
        period,
        start,
        end,
        statistics,
    } = command;
    let stats: Vec<&str> = statistics
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for s in &stats {
        if !STATISTICS.contains(s) {
            bail!(
                "--statistics: unknown statistic `{s}` (use {})",
                STATISTICS.join(", ")
            );
        }
    }
    let now = shardline_core::time::now_ms();
    let end_ms = end
        .as_deref()
        .map(parse_time_ms)
        .transpose()?
        .unwrap_or(now);
    let start_ms = start
        .as_deref()
        .map(parse_time_ms)
        .transpose()?
        .unwrap_or(end_ms.saturating_sub(3_600_000));
    let region = region.unwrap_or_else(|| config.collectors.synthetic.region.clone());
    let query = StatisticsQuery {
        namespace: config.consumers.cloudwatch.sink.namespace.clone(),
        metric_name: metric.clone(),
        dimensions: BTreeMap::from([
            ("InstanceID".to_string(), instance.clone()),
            ("Region".to_string(), region),
        ]),
        start_ms,
        end_ms,
        period_secs: period,
    };
    let backends = wiring::open_backends(config)?;
    let points = backends
        .metrics
        .get_metric_statistics(&query)
        .await
        .with_context(|| format!("cannot read statistics of {metric} for {instance}"))?;
    let out = serde_json::json!({
        "Label": metric,
        "Datapoints": points.iter().map(|p| datapoint_json(p, &stats)).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

fn datapoint_json(p: &Datapoint, stats: &[&str]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "Timestamp".into(),
        shardline_core::time::format_rfc3339_ms(p.timestamp_ms).into(),
    );
    for s in stats {
        let v = match *s {
            "SampleCount" => p.values.sample_count,
            "Average" => p.average(),
            "Sum" => p.values.sum,
            "Minimum" => p.values.minimum,
            _ => p.values.maximum,
        };
        m.insert((*s).to_string(), v.into());
    }
    serde_json::Value::Object(m)
}

/// Runs an `alarms` subcommand.
pub async fn run_alarms(config: &Config, command: AlarmsCommand) -> Result<i32> {
    let AlarmsCommand::List = command;
    let backends = wiring::open_backends(config)?;
    let mut cfg = config.consumers.alerts.sink.clone();
    cfg.consumer
        .clone_from(&config.consumers.alerts.consumer.name);
    let states = alerts::read_alarm_states(backends.state.as_ref(), &cfg.state_namespace())
        .await
        .context("cannot read alarm states")?;
    if states.is_empty() {
        println!("no alarms evaluated yet");
    }
    for s in states {
        println!("{}", serde_json::to_string(&s)?);
    }
    Ok(0)
}
