//! What a configuration needs on AWS, and whether it exists: `shardline infra bootstrap`
//! creates it (idempotently), `shardline infra status` checks it.
//!
//! An [`InfraPlan`] names the stream, buckets, tables and topics; [`AwsBackends::status`] reads
//! each (DescribeStreamSummary, HeadBucket, DescribeTable, ListTopics) and
//! [`AwsBackends::bootstrap`] creates the missing ones (CreateStream, CreateBucket,
//! CreateTable on demand capacity, CreateTopic) and leaves existing ones as they are. An
//! existing table with another key schema is reported, never changed. CloudWatch needs nothing:
//! a namespace exists once a metric is put in it.

use shardline_core::ports::{ObjectStore, Stream, TableSchema};
use shardline_core::{Error, Result};
use std::fmt;
use std::time::Duration;

use crate::AwsBackends;
use crate::dynamodb::tables;
use crate::error::Service;

/// The stream to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Its name.
    pub name: String,
    /// Shards (provisioned capacity).
    pub shards: u32,
    /// Retention (24 hours to 365 days).
    pub retention: Duration,
}

/// Everything a configuration keeps on AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfraPlan {
    /// The Kinesis stream, when the stream port is on AWS.
    pub stream: Option<StreamSpec>,
    /// S3 buckets (the Parquet output, dead letters).
    pub buckets: Vec<String>,
    /// DynamoDB tables (items, leases, sink state).
    pub tables: Vec<TableSchema>,
    /// SNS topics, by name or ARN.
    pub topics: Vec<String>,
}

/// Where a resource stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// It exists; the detail says what was found.
    Exists(String),
    /// It was created now; the detail says what.
    Created(String),
    /// It exists but is not what the configuration needs; the detail says how it differs.
    Differs(String),
    /// It does not exist.
    Missing,
}

/// One resource's line in `infra status` / `infra bootstrap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The service.
    pub service: Service,
    /// `stream`, `bucket`, `table` or `topic`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub state: State,
}

impl Resource {
    /// Whether the configuration can run with it.
    pub fn ok(&self) -> bool {
        matches!(self.state, State::Exists(_) | State::Created(_))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, detail) = match &self.state {
            State::Exists(d) => ("exists", d.as_str()),
            State::Created(d) => ("created", d.as_str()),
            State::Differs(d) => ("DIFFERS", d.as_str()),
            State::Missing => ("MISSING", ""),
        };
        write!(
            f,
            "{:<10} {:<6} {:<40} {word}",
            self.service.to_string(),
            self.kind,
            self.name
        )?;
        if !detail.is_empty() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

/// The name of a topic given as a name or an ARN (`arn:aws:sns:<region>:<account>:<name>`).
pub fn topic_name(topic: &str) -> &str {
    topic.rsplit(':').next().unwrap_or(topic)
}

impl AwsBackends {
    /// Where each resource of `plan` stands. Sends only read requests.
    ///
    /// # Errors
    /// The first request that failed other than by a missing resource (credentials, region,
    /// permissions), as one line.
    pub async fn status(&self, plan: &InfraPlan) -> Result<Vec<Resource>> {
        let mut out = Vec::new();
        if let Some(spec) = &plan.stream {
            out.push(self.stream_state(spec).await?);
        }
        for bucket in &plan.buckets {
            out.push(self.bucket_state(bucket).await?);
        }
        for schema in &plan.tables {
            out.push(self.table_state(schema).await?);
        }
        for topic in &plan.topics {
            out.push(self.topic_state(topic).await?);
        }
        Ok(out)
    }

    /// Creates what `plan` names and is missing; leaves what exists as it is.
    ///
    /// # Errors
    /// The first creation that failed, as one line.
    pub async fn bootstrap(&self, plan: &InfraPlan) -> Result<Vec<Resource>> {
        let mut out = Vec::new();
        for mut r in self.status(plan).await? {
            if r.state == State::Missing {
                r.state = self.create(plan, &r).await?;
            }
            out.push(r);
        }
        Ok(out)
    }

    async fn create(&self, plan: &InfraPlan, r: &Resource) -> Result<State> {
        match r.kind {
            "stream" => {
                let spec = plan
                    .stream
                    .as_ref()
                    .ok_or_else(|| Error::Internal("no stream in the plan".into()))?;
                match self
                    .stream
                    .create_stream(&spec.name, spec.shards, spec.retention)
                    .await
                {
                    Ok(()) | Err(Error::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
                Ok(State::Created(format!(
                    "{} shards, {} h retention",
                    spec.shards,
                    spec.retention.as_secs() / 3600
                )))
            }
            "bucket" => {
                self.objects.ensure_bucket(&r.name).await?;
                Ok(State::Created(format!("in {}", self.clients.region)))
            }
            "table" => {
                let schema = plan
                    .tables
                    .iter()
                    .find(|t| t.name == r.name)
                    .ok_or_else(|| Error::Internal(format!("no table {} in the plan", r.name)))?;
                tables::ensure_table(&self.clients.dynamodb, &self.clients.region, schema).await?;
                Ok(State::Created(format!(
                    "key {}, on-demand capacity",
                    key_text(schema)
                )))
            }
            _ => {
                let arn = self.notifier.ensure_topic(topic_name(&r.name)).await?;
                if r.name.starts_with("arn:") && r.name != arn {
                    return Ok(State::Differs(format!(
                        "created as {arn}, but the configuration names {}: set the topic to {arn} (or to its name)",
                        r.name
                    )));
                }
                Ok(State::Created(arn))
            }
        }
    }

    async fn stream_state(&self, spec: &StreamSpec) -> Result<Resource> {
        let state = match self.stream.describe_stream(&spec.name).await {
            Ok(d) => {
                let open = d
                    .shards
                    .iter()
                    .filter(|s| s.ending_sequence_number.is_none())
                    .count();
                State::Exists(format!(
                    "{open} open shards, {} h retention, {:?}",
                    d.retention_hours, d.status
                ))
            }
            Err(Error::NotFound { .. }) => State::Missing,
            Err(e) => return Err(e),
        };
        Ok(Resource {
            service: Service::Kinesis,
            kind: "stream",
            name: spec.name.clone(),
            state,
        })
    }

    async fn bucket_state(&self, bucket: &str) -> Result<Resource> {
        let state = if self.objects.bucket_exists(bucket).await? {
            State::Exists(String::new())
        } else {
            State::Missing
        };
        Ok(Resource {
            service: Service::S3,
            kind: "bucket",
            name: bucket.to_string(),
            state,
        })
    }

    async fn table_state(&self, want: &TableSchema) -> Result<Resource> {
        let state = match tables::describe(&self.clients.dynamodb, &self.clients.region, &want.name)
            .await?
        {
            None => State::Missing,
            Some((found, active)) => {
                if found.partition_key == want.partition_key && found.sort_key == want.sort_key {
                    State::Exists(format!(
                        "key {}{}",
                        key_text(&found),
                        if active { "" } else { ", not ACTIVE yet" }
                    ))
                } else {
                    State::Differs(format!(
                        "key {}, the configuration needs {}: use another table name",
                        key_text(&found),
                        key_text(want)
                    ))
                }
            }
        };
        Ok(Resource {
            service: Service::DynamoDb,
            kind: "table",
            name: want.name.clone(),
            state,
        })
    }

    async fn topic_state(&self, topic: &str) -> Result<Resource> {
        let found = self.notifier.find_topic(topic_name(topic)).await?;
        let state = match found {
            None => State::Missing,
            Some(arn) if topic.starts_with("arn:") && arn != topic => State::Differs(format!(
                "a topic of that name is {arn}, but the configuration names {topic}: set the topic to {arn} (or to its name)"
            )),
            Some(arn) => State::Exists(arn),
        };
        Ok(Resource {
            service: Service::Sns,
            kind: "topic",
            name: topic.to_string(),
            state,
        })
    }
}

fn key_text(s: &TableSchema) -> String {
    match &s.sort_key {
        Some((sort, _)) => format!("{} + {sort}", s.partition_key.0),
        None => s.partition_key.0.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_come_from_arns() {
        assert_eq!(
            topic_name("arn:aws:sns:eu-west-1:190517931751:InfraMonitoring-Alarms"),
            "InfraMonitoring-Alarms"
        );
        assert_eq!(topic_name("alerts.fifo"), "alerts.fifo");
    }

    #[test]
    fn lines_name_the_service_the_resource_and_the_state() {
        let r = Resource {
            service: Service::DynamoDb,
            kind: "table",
            name: "InfraMetrics".into(),
            state: State::Missing,
        };
        assert!(!r.ok());
        let line = r.to_string();
        assert!(
            line.starts_with("DynamoDB") && line.contains("InfraMetrics"),
            "{line}"
        );
        assert!(line.ends_with("MISSING"), "{line}");
    }
}
