//! `shardline cost [--events-per-second N] [--consume-workers N]`: what the configuration
//! costs per month on AWS, one line per billed item with its formula, from the dated price
//! table `prices.toml` for the configured region.
//!
//! The workload comes from the configuration (see [`workload`] for every assumption); the
//! price table names its date and sources. Lines: Kinesis shard-hours and PUT payload units,
//! S3 PUTs, GETs and storage, DynamoDB writes (items, checkpoints, leases, sink state), reads
//! and storage, CloudWatch metrics and requests, SNS publishes, Step Functions transitions and
//! Lambda requests and duration for the flow deployed as the seed deploys it. The total is
//! shown as billed and after the always-free monthly tier.
//!
//! The seed pipeline priced itself at about $0.02 a month: it had no stream, only Lambda
//! functions writing S3 and DynamoDB directly. The same cadence on Shardline's design pays
//! mostly for the Kinesis stream's shard-hours, which a shard-per-instance-count choice of
//! `stream.shards` sets (see the README's cost section).

pub mod workload;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::cli::CostArgs;
use crate::config::Config;
use workload::{MONTH_SECS, Workload};

/// The shipped price table.
pub const PRICES_TOML: &str = include_str!("../prices.toml");

/// The date the price table was read.
pub const PRICES_DATE: &str = "2026-12-06";

/// One region's prices (USD).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionPrices {
    notes: Vec<String>,
    kinesis_shard_hour: f64,
    kinesis_put_payload_units_per_million: f64,
    s3_storage_gb_month: f64,
    s3_put_per_thousand: f64,
    s3_get_per_thousand: f64,
    dynamodb_write_request_units_per_million: f64,
    dynamodb_read_request_units_per_million: f64,
    dynamodb_storage_gb_month: f64,
    cloudwatch_metric_month: f64,
    cloudwatch_api_per_thousand: f64,
    sns_publish_per_million: f64,
    step_functions_transitions_per_thousand: f64,
    lambda_requests_per_million: f64,
    lambda_gb_second: f64,
}

/// The always-free monthly allowances.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeTier {
    lambda_requests: f64,
    lambda_gb_seconds: f64,
    step_functions_transitions: f64,
    sns_publishes: f64,
    cloudwatch_metrics: f64,
    cloudwatch_api_requests: f64,
    dynamodb_storage_gb: f64,
}

/// The price table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    regions: BTreeMap<String, RegionPrices>,
    free_tier: FreeTier,
}

/// One billed item.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The service.
    pub service: &'static str,
    /// What is billed.
    pub item: String,
    /// The formula, with the numbers.
    pub formula: String,
    /// USD per month.
    pub cost: f64,
    /// USD per month after the always-free tier.
    pub after_free_tier: f64,
}

/// The estimate.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The region priced.
    pub region: String,
    /// The workload.
    pub workload: Workload,
    /// The lines.
    pub lines: Vec<Line>,
    /// Notes of the price table.
    pub notes: Vec<String>,
}

impl Estimate {
    /// USD per month.
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.cost).sum()
    }

    /// USD per month after the always-free tier.
    pub fn total_after_free_tier(&self) -> f64 {
        self.lines.iter().map(|l| l.after_free_tier).sum()
    }
}

fn money(v: f64) -> String {
    if v >= 100.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.4}")
    }
}

fn count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// The region to price: `aws.region`, then `AWS_REGION` / `AWS_DEFAULT_REGION`.
fn region(config: &Config) -> Option<String> {
    config
        .aws
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.is_empty())
}

/// Prices `config` (or a steady event rate) in `region`, with `workers` `consume` workers
/// (0: `up`, which takes no leases).
///
/// # Errors
/// An unknown region, or an unreadable flow definition.
pub fn estimate(
    config: &Config,
    region: &str,
    events_per_second: Option<f64>,
    workers: u32,
) -> Result<Estimate> {
    let table: PriceTable =
        toml::from_str(PRICES_TOML).context("the built-in price table is invalid")?;
    let Some(p) = table.regions.get(region) else {
        bail!(
            "no prices for region {region} in the price table (it has {}); set aws.region or \
             AWS_REGION to one of them, or add the region to infra/cli/src/prices.toml",
            table.regions.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let free = &table.free_tier;
    let w = workload::workload(config, events_per_second)?;
    let c = &config.consumers;
    let shards = f64::from(config.stream.shards);
    let mut lines = Vec::new();
    let mut add = |service, item: &str, formula: String, cost: f64, after: f64| {
        lines.push(Line {
            service,
            item: item.to_string(),
            formula,
            cost,
            after_free_tier: after.max(0.0),
        });
    };

    // Kinesis (provisioned): shard-hours and PUT payload units; reads are not billed.
    let shard_hours = shards * 730.0;
    let cost = shard_hours * p.kinesis_shard_hour;
    add(
        "Kinesis",
        "shard-hours",
        format!("{shards} shards × 730 h × ${}", p.kinesis_shard_hour),
        cost,
        cost,
    );
    let cost = w.events / 1e6 * p.kinesis_put_payload_units_per_million;
    add(
        "Kinesis",
        "PUT payload units",
        format!(
            "{} records × 1 unit / 1M × ${} ({} PutRecords calls; GetRecords is not billed)",
            count(w.events),
            p.kinesis_put_payload_units_per_million,
            count(w.put_calls)
        ),
        cost,
        cost,
    );

    // S3: the Parquet sink's objects and manifests.
    let s3_windows = w.flush_windows(c.s3.sink.buffer_interval.as_secs_f64());
    let size_flushes = w.events * 100.0 / (c.s3.sink.buffer_size.max(1) as f64);
    let flushes = (w.active_shards * s3_windows)
        .max(size_flushes)
        .min(w.events);
    let puts_per_flush = 3.0 + if c.s3.sink.raw_json_archive { 1.0 } else { 0.0 };
    let puts = if c.s3.enabled {
        flushes * puts_per_flush
    } else {
        0.0
    };
    let cost = puts / 1000.0 * p.s3_put_per_thousand;
    add(
        "S3",
        "PUT requests",
        format!(
            "{} flushes × {puts_per_flush} PUTs (object + manifest staged + committed) / 1k × ${}",
            count(flushes),
            p.s3_put_per_thousand
        ),
        cost,
        cost,
    );
    // One manifest read per shard when a consumer starts (once a month here).
    let gets = if c.s3.enabled { w.active_shards } else { 0.0 };
    let cost = gets / 1000.0 * p.s3_get_per_thousand;
    add(
        "S3",
        "GET requests",
        format!(
            "{} manifest reads per consumer start / 1k × ${} (queries add theirs)",
            count(gets),
            p.s3_get_per_thousand
        ),
        cost,
        cost,
    );
    let gb = if c.s3.enabled {
        (flushes * 3072.0 + w.events * 18.0) / f64::from(1u32 << 30)
    } else {
        0.0
    };
    let cost = gb * p.s3_storage_gb_month;
    add(
        "S3",
        "storage (one month of output)",
        format!(
            "({} objects × 3 KiB + {} rows × 18 B) = {gb:.4} GB × ${}",
            count(flushes),
            count(w.events),
            p.s3_storage_gb_month
        ),
        cost,
        cost,
    );

    // DynamoDB on demand: items, checkpoints, sink state, leases.
    let per_m = p.dynamodb_write_request_units_per_million;
    let items = if c.dynamodb.enabled { w.events } else { 0.0 };
    let windows = |secs: f64| w.active_shards * w.flush_windows(secs);
    let consumers = [
        (c.s3.enabled, c.s3.sink.buffer_interval.as_secs_f64()),
        (
            c.dynamodb.enabled,
            c.dynamodb.sink.buffer_interval.as_secs_f64(),
        ),
        (
            c.cloudwatch.enabled,
            c.cloudwatch.sink.buffer_interval.as_secs_f64(),
        ),
        (
            c.alerts.enabled,
            c.alerts.sink.buffer_interval.as_secs_f64(),
        ),
    ];
    let checkpoints: f64 = consumers
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, secs)| windows(secs.max(1.0)))
        .sum();
    let cw_puts = if c.cloudwatch.enabled {
        windows(c.cloudwatch.sink.buffer_interval.as_secs_f64().max(1.0))
    } else {
        0.0
    };
    let alert_states = if c.alerts.enabled {
        windows(c.alerts.sink.buffer_interval.as_secs_f64().max(1.0))
    } else {
        0.0
    };
    let cost = items / 1e6 * per_m;
    add(
        "DynamoDB",
        "item writes",
        format!("{} items × 1 WRU / 1M × ${per_m}", count(items)),
        cost,
        cost,
    );
    let state = cw_puts + alert_states;
    let cost = (checkpoints + state) / 1e6 * per_m;
    add(
        "DynamoDB",
        "checkpoints and sink state",
        format!(
            "({} checkpoints + {} watermarks and alarm states) / 1M × ${per_m}",
            count(checkpoints),
            count(state)
        ),
        cost,
        cost,
    );
    if workers > 0 {
        let renew = config.leases.renew_interval.as_secs_f64().max(0.001);
        let enabled = consumers.iter().filter(|(on, _)| *on).count() as f64;
        let renewals = enabled * shards * MONTH_SECS / renew;
        let beats = enabled * f64::from(workers) * MONTH_SECS / renew;
        let reads = 2.0 * beats;
        let cost = (renewals + beats) / 1e6 * per_m
            + reads / 1e6 * p.dynamodb_read_request_units_per_million;
        add(
            "DynamoDB",
            "leases of `consume` workers",
            format!(
                "({} renewals + {} heartbeats) / 1M × ${per_m} + {} lease and worker reads / 1M × ${}",
                count(renewals),
                count(beats),
                count(reads),
                p.dynamodb_read_request_units_per_million
            ),
            cost,
            cost,
        );
    }
    let item_gb = items * 300.0 / f64::from(1u32 << 30);
    let cost = item_gb * p.dynamodb_storage_gb_month;
    let after = (item_gb - free.dynamodb_storage_gb).max(0.0) * p.dynamodb_storage_gb_month;
    add(
        "DynamoDB",
        "storage (one month of items)",
        format!(
            "{} items × ~300 B = {item_gb:.4} GB × ${} (first {} GB free)",
            count(items),
            p.dynamodb_storage_gb_month,
            free.dynamodb_storage_gb
        ),
        cost,
        after,
    );

    // CloudWatch: custom metrics and requests.
    let metrics = if c.cloudwatch.enabled { w.metrics } else { 0.0 };
    let cost = metrics * p.cloudwatch_metric_month;
    let after = (metrics - free.cloudwatch_metrics).max(0.0) * p.cloudwatch_metric_month;
    add(
        "CloudWatch",
        "custom metrics",
        format!(
            "{metrics} metrics (type × instance × region) × ${} (first {} free)",
            p.cloudwatch_metric_month, free.cloudwatch_metrics
        ),
        cost,
        after,
    );
    let cost = cw_puts / 1000.0 * p.cloudwatch_api_per_thousand;
    let after =
        (cw_puts - free.cloudwatch_api_requests).max(0.0) / 1000.0 * p.cloudwatch_api_per_thousand;
    add(
        "CloudWatch",
        "PutMetricData requests",
        format!(
            "{} calls (≤1,000 statistic sets each) / 1k × ${} (first {} free)",
            count(cw_puts),
            p.cloudwatch_api_per_thousand,
            count(free.cloudwatch_api_requests)
        ),
        cost,
        after,
    );

    // SNS: the flow's notifications (alarm transitions depend on the data).
    let publishes = w.executions * w.sns_tasks;
    let cost = publishes / 1e6 * p.sns_publish_per_million;
    let after = (publishes - free.sns_publishes).max(0.0) / 1e6 * p.sns_publish_per_million;
    add(
        "SNS",
        "publishes",
        format!(
            "{} executions × {} publish tasks / 1M × ${} (+1 per alarm transition; first {} free)",
            count(w.executions),
            w.sns_tasks,
            p.sns_publish_per_million,
            count(free.sns_publishes)
        ),
        cost,
        after,
    );

    // The flow on AWS, as the seed deploys it: Step Functions and Lambda.
    let transitions = w.executions * w.transitions;
    let cost = transitions / 1000.0 * p.step_functions_transitions_per_thousand;
    let after = (transitions - free.step_functions_transitions).max(0.0) / 1000.0
        * p.step_functions_transitions_per_thousand;
    add(
        "Step Functions",
        "state transitions",
        format!(
            "{} executions × {} transitions / 1k × ${} (first {} free)",
            count(w.executions),
            w.transitions,
            p.step_functions_transitions_per_thousand,
            count(free.step_functions_transitions)
        ),
        cost,
        after,
    );
    let invocations = w.executions * w.lambda_tasks;
    let gb_s = invocations * 0.125;
    let cost = invocations / 1e6 * p.lambda_requests_per_million + gb_s * p.lambda_gb_second;
    let after = (invocations - free.lambda_requests).max(0.0) / 1e6 * p.lambda_requests_per_million
        + (gb_s - free.lambda_gb_seconds).max(0.0) * p.lambda_gb_second;
    add(
        "Lambda",
        "the flow's Task functions",
        format!(
            "{} invocations / 1M × ${} + {} × 128 MB × 1 s = {gb_s:.0} GB-s × ${}",
            count(invocations),
            p.lambda_requests_per_million,
            count(invocations),
            p.lambda_gb_second
        ),
        cost,
        after,
    );
    Ok(Estimate {
        region: region.to_string(),
        workload: w,
        lines,
        notes: p.notes.clone(),
    })
}

/// Runs `shardline cost`.
pub fn run(config: &Config, args: CostArgs) -> Result<i32> {
    let region = region(config)
        .context("no AWS region to price: set aws.region in the configuration, or AWS_REGION")?;
    let e = estimate(
        config,
        &region,
        args.events_per_second,
        args.consume_workers,
    )?;
    println!(
        "Shardline on AWS in {}, per month (730 h); AWS list prices read {PRICES_DATE} \
         (infra/cli/src/prices.toml names the sources)",
        e.region
    );
    println!(
        "workload: {} = {} events",
        e.workload.basis,
        count(e.workload.events)
    );
    println!(
        "{:<15} {:<32} {:>12} {:>12}  formula",
        "service", "item", "USD/month", "after free"
    );
    for l in &e.lines {
        println!(
            "{:<15} {:<32} {:>12} {:>12}  {}",
            l.service,
            l.item,
            money(l.cost),
            money(l.after_free_tier),
            l.formula
        );
    }
    println!(
        "{:<15} {:<32} {:>12} {:>12}",
        "total",
        "",
        money(e.total()),
        money(e.total_after_free_tier())
    );
    for n in &e.notes {
        println!("note: {n}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn seed() -> Config {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/seed.toml");
        Config::load(
            Some(&file),
            Some(&std::env::temp_dir().join("shardline-cost-test")),
        )
        .expect("seed config")
    }

    #[test]
    fn the_seed_cadence_is_priced_line_by_line() {
        let config = seed();
        let e = estimate(&config, "eu-west-1", None, 0).expect("estimate");
        let w = &e.workload;
        // 240 executions a month (8 a day, 730 h), 4 data-collector tasks of 4 events each,
        // plus up's own collection every 3 h (16 events).
        assert_eq!(w.executions, 243.0);
        assert_eq!(w.transitions, 11.0);
        assert!((w.events - (730.0 / 3.0 * 16.0 + 243.0 * 16.0)).abs() < 1e-6);
        let line = |item: &str| {
            e.lines
                .iter()
                .find(|l| l.item == item)
                .unwrap_or_else(|| panic!("no line {item}"))
        };
        // 4 shards around the clock: the stream is most of the bill.
        assert!((line("shard-hours").cost - 4.0 * 730.0 * 0.015).abs() < 1e-9);
        assert!(line("shard-hours").formula.contains("4 shards × 730 h"));
        // 2,673 transitions and 1,701 Lambda invocations stay in the free tier, as the seed says.
        assert_eq!(line("state transitions").after_free_tier, 0.0);
        assert_eq!(line("the flow's Task functions").after_free_tier, 0.0);
        // 16 metrics: 6 above CloudWatch's 10 free.
        assert!((line("custom metrics").after_free_tier - 6.0 * 0.30).abs() < 1e-9);
        assert!(e.total() > e.total_after_free_tier());
    }

    #[test]
    fn a_steady_rate_scales_the_per_event_lines_and_leases_add_writes() {
        let config = seed();
        let slow = estimate(&config, "us-east-1", Some(10.0), 0).expect("estimate");
        let fast = estimate(&config, "us-east-1", Some(1000.0), 2).expect("estimate");
        let cost = |e: &Estimate, item: &str| {
            e.lines
                .iter()
                .find(|l| l.item == item)
                .map(|l| l.cost)
                .unwrap_or(0.0)
        };
        assert!(
            (cost(&fast, "PUT payload units") / cost(&slow, "PUT payload units") - 100.0).abs()
                < 1e-6
        );
        assert!(cost(&fast, "leases of `consume` workers") > 0.0);
        assert_eq!(cost(&slow, "leases of `consume` workers"), 0.0);
        let err = estimate(&config, "mars-north-1", None, 0).expect_err("unknown region");
        assert!(err.to_string().contains("eu-west-1"), "{err}");
    }
}
