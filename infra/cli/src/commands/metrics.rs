//! `shardline metrics stats` (like get-metric-statistics) and `shardline alarms list`.

use anyhow::{Context, Result, bail};
use shardline_consumers::sinks::alerts;
use shardline_core::ports::{Datapoint, StatisticsQuery};
use std::collections::BTreeMap;
use std::io::Write;

use super::table::parse_time_ms;
use super::{list_format, write_table};
use crate::cli::{AlarmsCommand, ListFormat, MetricsCommand};
use crate::data::Data;
use crate::io::Io;

const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// Runs a `metrics` subcommand.
pub async fn run(data: &Data, io: &mut Io, command: MetricsCommand) -> Result<i32> {
    let config = &data.config;
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
    let backends = data.backends().await?;
    let points = backends
        .metrics
        .get_metric_statistics(&query)
        .await
        .with_context(|| format!("cannot read statistics of {metric} for {instance}"))?;
    let out = serde_json::json!({
        "Label": metric,
        "Datapoints": points.iter().map(|p| datapoint_json(p, &stats)).collect::<Vec<_>>(),
    });
    writeln!(io.out, "{}", serde_json::to_string_pretty(&out)?)?;
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
pub async fn run_alarms(data: &Data, io: &mut Io, command: AlarmsCommand) -> Result<i32> {
    let AlarmsCommand::List { state, format } = command;
    let config = &data.config;
    let want = state
        .map(|s| {
            let s = s.to_ascii_uppercase();
            match s.as_str() {
                "OK" | "ALARM" | "INSUFFICIENT_DATA" => Ok(s),
                _ => Err(anyhow::anyhow!(
                    "--state {s}: use OK, ALARM or INSUFFICIENT_DATA"
                )),
            }
        })
        .transpose()?;
    let backends = data.backends().await?;
    let mut cfg = config.consumers.alerts.sink.clone();
    cfg.consumer
        .clone_from(&config.consumers.alerts.consumer.name);
    let states = alerts::read_alarm_states(backends.state.as_ref(), &cfg.state_namespace())
        .await
        .context("cannot read alarm states")?;
    let states: Vec<_> = states
        .into_iter()
        .filter(|s| want.as_deref().is_none_or(|w| s.state.to_string() == w))
        .collect();
    if states.is_empty() {
        writeln!(
            io.err,
            "no alarms{} evaluated yet (alarms are evaluated by `shardline up` as periods close)",
            want.map(|w| format!(" in state {w}")).unwrap_or_default()
        )?;
        return Ok(0);
    }
    match list_format(format, io) {
        ListFormat::Json => {
            for s in &states {
                writeln!(io.out, "{}", serde_json::to_string(s)?)?;
            }
        }
        ListFormat::Table => {
            let rows: Vec<Vec<String>> = states
                .iter()
                .map(|s| {
                    vec![
                        s.state.to_string(),
                        s.name.clone(),
                        s.instance_id.clone(),
                        s.region.clone(),
                        s.since_ms
                            .map_or_else(|| "-".into(), shardline_core::time::format_rfc3339_ms),
                        s.last_value.map_or_else(|| "-".into(), |v| v.to_string()),
                    ]
                })
                .collect();
            write_table(
                &mut io.out,
                &["STATE", "ALARM", "INSTANCE", "REGION", "SINCE", "LAST"],
                &rows,
            )?;
        }
    }
    Ok(0)
}
