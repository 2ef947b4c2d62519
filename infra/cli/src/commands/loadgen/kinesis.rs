//! The [`Stream`] port over aws-sdk-kinesis, as loadgen uses it against any Kinesis endpoint
//! (`shardline serve`, kinesalite, Kinesis itself).
//!
//! The SDK's own retries are off: loadgen measures what the endpoint does, so a throttled call
//! or record is counted, not hidden. Credentials come from `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` when set (as Kinesis needs), otherwise a local
//! placeholder (local endpoints without access keys accept any signature).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use shardline_core::Error;
use shardline_core::ports::Stream;
use shardline_core::stream::{
    GetRecordsOutput, HashKeyRange, PutRecordResult, PutRecordsEntry, Record, SequenceNumber,
    ShardDescription, ShardId, ShardIterator, StartingPosition, StreamDescription, StreamStatus,
};

/// A Kinesis endpoint as a [`Stream`].
#[derive(Debug, Clone)]
pub struct KinesisStream {
    client: aws_sdk_kinesis::Client,
    endpoint: String,
}

impl KinesisStream {
    /// A client for `endpoint` signing for `region`.
    pub fn new(endpoint: &str, region: &str) -> KinesisStream {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let creds = aws_sdk_kinesis::config::Credentials::new(
            var("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "shardline-local".into()),
            var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "shardline-local".into()),
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        );
        let timeouts = aws_sdk_kinesis::config::timeout::TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(5))
            .build();
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .region(aws_sdk_kinesis::config::Region::new(region.to_string()))
            .credentials_provider(creds)
            .endpoint_url(endpoint)
            .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        KinesisStream {
            client: aws_sdk_kinesis::Client::from_conf(config),
            endpoint: endpoint.to_string(),
        }
    }

    fn error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &self,
        action: &str,
        e: SdkError<E>,
    ) -> Error {
        let Some(service) = e.as_service_error() else {
            return Error::Unavailable(format!(
                "{action} on {}: {}",
                self.endpoint,
                aws_sdk_kinesis::error::DisplayErrorContext(&e)
            ));
        };
        let code = service.code().unwrap_or("Unknown");
        let msg = format!(
            "{action} on {}: {code}: {}",
            self.endpoint,
            service.message().unwrap_or("")
        );
        match code {
            "ProvisionedThroughputExceededException" | "LimitExceededException" => {
                Error::Throttled(msg)
            }
            "ResourceNotFoundException" => Error::not_found(msg),
            "ResourceInUseException" => Error::AlreadyExists { what: msg },
            "InvalidArgumentException" | "ValidationException" | "ExpiredIteratorException" => {
                Error::InvalidArgument(msg)
            }
            _ => Error::Unavailable(msg),
        }
    }
}

fn shard_id(s: &str) -> Result<ShardId, Error> {
    s.parse()
}

fn seq(s: &str) -> Result<SequenceNumber, Error> {
    s.parse()
}

fn describe(s: &aws_sdk_kinesis::types::Shard) -> Result<ShardDescription, Error> {
    let range = s.hash_key_range.as_ref();
    let key = |v: Option<&str>| -> Result<u128, Error> {
        v.unwrap_or("0")
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("bad hash key in {}", s.shard_id)))
    };
    let r = s.sequence_number_range.as_ref();
    Ok(ShardDescription {
        shard_id: shard_id(&s.shard_id)?,
        hash_key_range: HashKeyRange {
            start: key(range.map(|r| r.starting_hash_key.as_str()))?,
            end: key(range.map(|r| r.ending_hash_key.as_str()))?,
        },
        parent_shard_id: s.parent_shard_id.as_deref().map(shard_id).transpose()?,
        adjacent_parent_shard_id: s
            .adjacent_parent_shard_id
            .as_deref()
            .map(shard_id)
            .transpose()?,
        starting_sequence_number: seq(r.map_or("0", |r| r.starting_sequence_number.as_str()))?,
        ending_sequence_number: r
            .and_then(|r| r.ending_sequence_number.as_deref())
            .map(seq)
            .transpose()?,
    })
}

#[async_trait]
impl Stream for KinesisStream {
    async fn create_stream(
        &self,
        name: &str,
        shards: u32,
        _retention: Duration,
    ) -> shardline_core::Result<()> {
        self.client
            .create_stream()
            .stream_name(name)
            .shard_count(i32::try_from(shards).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| self.error("CreateStream", e))?;
        // Kinesis creates asynchronously: wait (bounded) until the stream is ACTIVE.
        for _ in 0..120 {
            if let Ok(d) = self.describe_stream(name).await
                && d.status == StreamStatus::Active
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(Error::Unavailable(format!(
            "stream {name} on {} did not become ACTIVE within a minute",
            self.endpoint
        )))
    }

    async fn delete_stream(&self, name: &str) -> shardline_core::Result<()> {
        self.client
            .delete_stream()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| self.error("DeleteStream", e))?;
        Ok(())
    }

    async fn list_streams(&self) -> shardline_core::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let r = self
                .client
                .list_streams()
                .set_exclusive_start_stream_name(start.clone())
                .send()
                .await
                .map_err(|e| self.error("ListStreams", e))?;
            out.extend(r.stream_names.iter().cloned());
            if !r.has_more_streams || r.stream_names.is_empty() {
                break;
            }
            start = r.stream_names.last().cloned();
        }
        out.sort();
        Ok(out)
    }

    async fn describe_stream(&self, name: &str) -> shardline_core::Result<StreamDescription> {
        let r = self
            .client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| self.error("DescribeStreamSummary", e))?;
        let d = r
            .stream_description_summary
            .ok_or_else(|| Error::Unavailable("DescribeStreamSummary: no summary".into()))?;
        let status = match d.stream_status.as_str() {
            "CREATING" => StreamStatus::Creating,
            "DELETING" => StreamStatus::Deleting,
            "UPDATING" => StreamStatus::Updating,
            _ => StreamStatus::Active,
        };
        let shards = if status == StreamStatus::Active {
            self.list_shards(name).await?
        } else {
            Vec::new()
        };
        Ok(StreamDescription {
            name: d.stream_name,
            arn: d.stream_arn,
            status,
            retention_hours: u32::try_from(d.retention_period_hours).unwrap_or(24),
            created_ms: d.stream_creation_timestamp.to_millis().unwrap_or(0),
            shards,
        })
    }

    async fn list_shards(&self, name: &str) -> shardline_core::Result<Vec<ShardDescription>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self.client.list_shards();
            let req = match &token {
                Some(t) => req.next_token(t),
                None => req.stream_name(name),
            };
            let r = req.send().await.map_err(|e| self.error("ListShards", e))?;
            for s in r.shards.unwrap_or_default() {
                out.push(describe(&s)?);
            }
            match r.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(out)
    }

    async fn put_records(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> shardline_core::Result<Vec<PutRecordResult>> {
        let records = entries
            .into_iter()
            .map(|e| {
                PutRecordsRequestEntry::builder()
                    .partition_key(e.partition_key)
                    .set_explicit_hash_key(e.explicit_hash_key.map(|k| k.to_string()))
                    .data(Blob::new(e.data.to_vec()))
                    .build()
                    .map_err(|e| Error::InvalidArgument(format!("record: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let r = self
            .client
            .put_records()
            .stream_name(name)
            .set_records(Some(records))
            .send()
            .await
            .map_err(|e| self.error("PutRecords", e))?;
        r.records
            .into_iter()
            .map(
                |rec| match (rec.error_code, rec.shard_id, rec.sequence_number) {
                    (Some(code), _, _) => Ok(PutRecordResult::Err {
                        error_code: code,
                        error_message: rec.error_message.unwrap_or_default(),
                    }),
                    (None, Some(shard), Some(s)) => Ok(PutRecordResult::Ok {
                        shard_id: shard_id(&shard)?,
                        sequence_number: seq(&s)?,
                    }),
                    _ => Ok(PutRecordResult::Err {
                        error_code: "InternalFailure".into(),
                        error_message: "an entry with neither a sequence number nor an error"
                            .into(),
                    }),
                },
            )
            .collect()
    }

    async fn get_shard_iterator(
        &self,
        name: &str,
        shard: ShardId,
        position: &StartingPosition,
    ) -> shardline_core::Result<ShardIterator> {
        let req = self
            .client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(shard.to_string());
        let req = match position {
            StartingPosition::TrimHorizon => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            StartingPosition::Latest => req.shard_iterator_type(ShardIteratorType::Latest),
            StartingPosition::AtSequenceNumber(s) => req
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(s.to_string()),
            StartingPosition::AfterSequenceNumber(s) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(s.to_string()),
            StartingPosition::AtTimestamp(ms) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*ms)),
        };
        let r = req
            .send()
            .await
            .map_err(|e| self.error("GetShardIterator", e))?;
        r.shard_iterator
            .map(ShardIterator)
            .ok_or_else(|| Error::Unavailable("GetShardIterator returned no iterator".into()))
    }

    async fn get_records(
        &self,
        iterator: &ShardIterator,
        limit: usize,
    ) -> shardline_core::Result<GetRecordsOutput> {
        let r = self
            .client
            .get_records()
            .shard_iterator(&iterator.0)
            .limit(i32::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000))
            .send()
            .await
            .map_err(|e| self.error("GetRecords", e))?;
        let records = r
            .records
            .into_iter()
            .map(|rec| {
                Ok(Record {
                    sequence_number: seq(&rec.sequence_number)?,
                    partition_key: rec.partition_key,
                    explicit_hash_key: None,
                    approximate_arrival_ms: rec
                        .approximate_arrival_timestamp
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or(0),
                    data: bytes::Bytes::from(rec.data.into_inner()),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(GetRecordsOutput {
            records,
            next_iterator: r.next_shard_iterator.map(ShardIterator),
            millis_behind_latest: u64::try_from(r.millis_behind_latest.unwrap_or(0)).unwrap_or(0),
        })
    }
}
