//! `shardline infra bootstrap` and `shardline infra status`: what the configuration's AWS
//! ports need (stream, buckets, tables, topics), created idempotently or checked.
//!
//! Only ports on `aws` need anything; embedded ports are listed with where their data is.
//! `status` exits 1 when something is missing or differs, so scripts can wait on it.

use anyhow::{Context, Result};
use serde_json::Value;
use shardline_aws::infra::{InfraPlan, Resource, StreamSpec};
use shardline_consumers::sinks::dynamodb;

use crate::cli::InfraCommand;
use crate::config::{BackendKind, Config};
use crate::handlers;

/// Runs an `infra` subcommand.
pub async fn run(config: &Config, command: InfraCommand) -> Result<i32> {
    for (port, kind) in config.backend.ports() {
        if kind == BackendKind::Embedded {
            println!(
                "{port:<12} embedded under {} (nothing to create on AWS)",
                config.data_dir.display()
            );
        }
    }
    let Some(aws) = crate::wiring::open_aws(config).await? else {
        println!("every port is embedded: nothing to create on AWS (`--backend aws` uses AWS)");
        return Ok(0);
    };
    let plan = plan(config, &aws)?;
    let (resources, verb) = match command {
        InfraCommand::Status => (
            aws.status(&plan)
                .await
                .context("cannot check the AWS resources")?,
            "missing",
        ),
        InfraCommand::Bootstrap => (
            aws.bootstrap(&plan)
                .await
                .context("cannot create the AWS resources")?,
            "not usable",
        ),
    };
    println!("region {}", aws.clients.region);
    for r in &resources {
        println!("{r}");
    }
    let bad: Vec<&Resource> = resources.iter().filter(|r| !r.ok()).collect();
    if bad.is_empty() {
        return Ok(0);
    }
    eprintln!(
        "{} resource(s) {verb}; {}",
        bad.len(),
        match command {
            InfraCommand::Status => "run `shardline infra bootstrap` to create what is missing",
            InfraCommand::Bootstrap => "see the lines above for what to change",
        }
    );
    Ok(1)
}

/// The resources the configuration's AWS ports use.
pub fn plan(config: &Config, aws: &shardline_aws::AwsBackends) -> Result<InfraPlan> {
    let b = &config.backend;
    let aws_port = |k: BackendKind| k == BackendKind::Aws;
    let mut plan = InfraPlan::default();
    if aws_port(b.stream) {
        plan.stream = Some(StreamSpec {
            name: config.stream.name.clone(),
            shards: config.stream.shards,
            retention: config.stream.retention,
        });
    }
    if aws_port(b.objects) {
        plan.buckets.push(config.consumers.s3.sink.bucket.clone());
    }
    if aws_port(b.dead_letters) {
        plan.buckets
            .push(config.aws.resources.dead_letter_bucket.clone());
    }
    if aws_port(b.table) {
        plan.tables.push(dynamodb::table_schema(
            &config.consumers.dynamodb.sink.table,
        ));
    }
    if aws_port(b.checkpoints) {
        plan.tables.push(aws.leases.schema());
    }
    // Sink state, CloudWatch watermarks and the SNS ledger live in the state table.
    if aws_port(b.state) || aws_port(b.metrics) || aws_port(b.notifier) {
        plan.tables.push(aws.state.schema());
    }
    if aws_port(b.notifier) {
        plan.topics.push(config.consumers.alerts.sink.topic.clone());
        if config.flow.enabled {
            let text = handlers::load_definition(config.flow.definition.as_deref())?;
            let definition: Value =
                serde_json::from_str(&text).context("the flow definition is not valid JSON")?;
            for topic in topics_in(&definition) {
                if !plan.topics.contains(&topic) {
                    plan.topics.push(topic);
                }
            }
        }
    }
    plan.buckets.dedup();
    plan.tables.dedup_by(|a, b| a.name == b.name);
    Ok(plan)
}

/// The literal `TopicArn` values of a state machine's SNS tasks.
fn topics_in(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("TopicArn", Value::String(s)) => out.push(s.clone()),
                    _ => out.extend(topics_in(v)),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| out.extend(topics_in(i))),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_flow_names_its_alarm_topic() {
        let definition: Value = serde_json::from_str(handlers::SEED_FLOW).expect("seed flow");
        assert_eq!(
            topics_in(&definition),
            vec!["arn:aws:sns:eu-west-1:190517931751:InfraMonitoring-Alarms".to_string()]
        );
    }
}
