//! Creating, deleting, listing and describing streams.

use aws_sdk_kinesis::types::StreamStatus as AwsStatus;
use shardline_core::stream::{StreamDescription, StreamStatus, limits};
use shardline_core::{Error, Result};
use std::time::Duration;
use tracing::info;

use super::KinesisStream;
use crate::error::map_sdk_error;

/// How long creation may take before we stop waiting (AWS: typically 30-60 s).
const ACTIVE_WAIT: Duration = Duration::from_secs(300);

impl KinesisStream {
    pub(super) async fn create(&self, name: &str, shards: u32, retention: Duration) -> Result<()> {
        let hours = u32::try_from(retention.as_secs() / 3600).unwrap_or(u32::MAX);
        if !(limits::DEFAULT_RETENTION_HOURS..=limits::MAX_RETENTION_HOURS).contains(&hours) {
            return Err(Error::InvalidArgument(format!(
                "stream \"{name}\": retention of {hours} h is outside Kinesis's 24 to 8760 hours"
            )));
        }
        let shard_count = i32::try_from(shards.max(1)).unwrap_or(i32::MAX);
        let created = self
            .client
            .create_stream()
            .stream_name(name)
            .shard_count(shard_count)
            .send()
            .await;
        if let Err(e) = created {
            let already = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception());
            if already {
                return Err(Error::AlreadyExists {
                    what: format!("Kinesis stream \"{name}\""),
                });
            }
            return Err(map_sdk_error(&self.call("CreateStream", name), e));
        }
        self.wait_active(name).await?;
        if hours != limits::DEFAULT_RETENTION_HOURS {
            self.client
                .increase_stream_retention_period()
                .stream_name(name)
                .retention_period_hours(i32::try_from(hours).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| map_sdk_error(&self.call("IncreaseStreamRetentionPeriod", name), e))?;
            self.wait_active(name).await?;
        }
        info!(
            stream = name,
            shards,
            retention_hours = hours,
            "Kinesis stream created"
        );
        Ok(())
    }

    async fn wait_active(&self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + ACTIVE_WAIT;
        loop {
            let d = self.describe(name).await?;
            if d.status == StreamStatus::Active {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "Kinesis stream \"{name}\" is still {:?} after {} s; check it in the console and retry",
                    d.status,
                    ACTIVE_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    pub(super) async fn delete(&self, name: &str) -> Result<()> {
        self.client
            .delete_stream()
            .stream_name(name)
            .enforce_consumer_deletion(true)
            .send()
            .await
            .map_err(|e| map_sdk_error(&self.call("DeleteStream", name), e))?;
        if let Ok(mut cache) = self.shard_cache.lock() {
            cache.remove(name);
        }
        Ok(())
    }

    pub(super) async fn list_stream_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_streams()
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| map_sdk_error(&self.call("ListStreams", "*"), e))?;
            names.extend(out.stream_names().iter().cloned());
            match out.next_token() {
                Some(t) if out.has_more_streams() && Some(t) != token.as_deref() => {
                    token = Some(t.to_string());
                }
                _ => break,
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub(super) async fn describe(&self, name: &str) -> Result<StreamDescription> {
        let out = self
            .client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| map_sdk_error(&self.call("DescribeStreamSummary", name), e))?;
        let summary = out.stream_description_summary().ok_or_else(|| {
            Error::Internal(format!(
                "Kinesis DescribeStreamSummary on stream \"{name}\": the answer has no summary"
            ))
        })?;
        let status = match summary.stream_status() {
            AwsStatus::Active => StreamStatus::Active,
            AwsStatus::Creating => StreamStatus::Creating,
            AwsStatus::Deleting => StreamStatus::Deleting,
            _ => StreamStatus::Updating,
        };
        let shards = if status == StreamStatus::Active || status == StreamStatus::Updating {
            self.list_all_shards(name).await?
        } else {
            Vec::new()
        };
        Ok(StreamDescription {
            name: summary.stream_name().to_string(),
            arn: summary.stream_arn().to_string(),
            status,
            retention_hours: u32::try_from(summary.retention_period_hours()).unwrap_or(0),
            created_ms: summary.stream_creation_timestamp().to_millis().unwrap_or(0),
            shards,
        })
    }
}
