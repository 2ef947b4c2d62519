//! [`SinkFunction`]: a consumer's sink as a Lambda function behind a Kinesis event source
//! mapping. Thin: it decodes the event, does what the consumer runtime does with a batch
//! (invalid records to the dead-letter store, valid ones to the sink) with the same sink code,
//! and reports `batchItemFailures`.
//!
//! # Invariants
//! - **Durable before answering.** The mapping checkpoints past every record the answer does
//!   not name, so the function answers only once the sink reports its records durable (the
//!   sinks write through, see [`crate::config::FunctionConfig::for_lambda`]; a buffering
//!   sink is flushed).
//! - **Failures name the first record not durable.** After an error, the answer's one
//!   `batchItemFailures` entry is the sequence number of the first record past what became
//!   durable: never an empty or null identifier. When nothing became durable (or the mapping
//!   reads no partial responses), the invocation fails as a whole with the error's name
//!   ([`crate::error`]), so BisectBatchOnFunctionError can split the batch.
//! - **Exactly-once across redeliveries.** A sink is built afresh for every invocation and
//!   loads its progress (manifests, watermarks, alarm state) from the backends, so a retry,
//!   a bisected half or a replay, in this process or another one, finds what earlier
//!   invocations made durable and applies each record once. (A sink kept warm across
//!   invocations could hold state that another execution environment has since moved on.)
//! - **One shard per event**, as a mapping sends them; an event mixing shards is refused.
//! - Invalid records are dead letters under the function's consumer name, never failures: a
//!   poison record does not block its shard.

use async_trait::async_trait;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use bytes::Bytes;
use serde_json::Value;
use shardline_consumers::sinks::{alerts, cloudwatch, dynamodb, s3_parquet};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::DeadLetter;
use shardline_core::time::{Clock, SystemClock};
use shardline_core::{MetricEvent, SequenceNumber, ShardId};
use std::sync::Arc;
use tracing::{info, warn};

use crate::backends::FunctionBackends;
use crate::config::{FunctionConfig, SinkKind};
use crate::error::FunctionError;
use crate::function::Function;
use crate::kinesis::parse_event_id;

/// One consumer's sink as a function.
pub struct SinkFunction {
    kind: SinkKind,
    config: FunctionConfig,
    backends: FunctionBackends,
    clock: Arc<dyn Clock>,
}

/// A record of the event, decoded.
struct Decoded {
    sequence_number: SequenceNumber,
    valid: Option<SinkRecord>,
}

impl SinkFunction {
    /// The function of `kind` writing through `backends`.
    ///
    /// # Errors
    /// [`crate::error::PERMANENT`] naming a sink setting that cannot run.
    pub fn new(
        kind: SinkKind,
        config: FunctionConfig,
        backends: FunctionBackends,
    ) -> Result<Self, FunctionError> {
        let f = Self {
            kind,
            config: config.for_lambda(kind),
            backends,
            clock: Arc::new(SystemClock),
        };
        f.sink()?;
        Ok(f)
    }

    /// Uses `clock` for the `now` handed to the sink and stamped on dead letters.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Which sink it runs.
    pub fn kind(&self) -> SinkKind {
        self.kind
    }

    /// The settings it runs with.
    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    fn sink(&self) -> Result<Box<dyn Sink>, FunctionError> {
        let c = &self.config;
        let b = &self.backends;
        Ok(match self.kind {
            SinkKind::S3Parquet => Box::new(s3_parquet::S3ParquetSink::new(
                c.s3.clone(),
                b.objects.clone(),
            )?),
            SinkKind::DynamoDb => Box::new(dynamodb::DynamoDbSink::new(
                b.table.clone(),
                c.dynamodb.clone(),
            )?),
            SinkKind::CloudWatch => Box::new(cloudwatch::CloudWatchSink::new(
                b.metrics.clone(),
                c.cloudwatch.clone(),
            )?),
            SinkKind::Alerts => Box::new(alerts::AlertsSink::new(
                b.notifier.clone(),
                b.state.clone(),
                c.alerts.clone(),
            )?),
        })
    }

    /// Handles one Kinesis batch.
    ///
    /// # Errors
    /// The whole batch failed (see the module docs); the error names why.
    pub async fn handle(&self, event: KinesisEvent) -> Result<KinesisEventResponse, FunctionError> {
        let now = self.clock.now_ms();
        let Some((shard, records, letters)) = self.decode(event, now)? else {
            return Ok(KinesisEventResponse::default());
        };
        let first = records[0].sequence_number.clone();
        // What is durable so far: dead letters once stored, sink records once reported.
        let mut durable: Option<SequenceNumber> = None;
        let outcome = self
            .apply(shard, &records, letters, now, &mut durable)
            .await;
        let Err(error) = outcome else {
            info!(shard = %shard, records = records.len(), "batch done");
            return Ok(KinesisEventResponse::default());
        };
        // The first record past the durable mark: the first not dead-lettered-and-stored
        // and not reported durable by the sink.
        let failed = match &durable {
            None => first.clone(),
            Some(mark) => match records.iter().find(|r| r.sequence_number > *mark) {
                Some(r) => r.sequence_number.clone(),
                // Everything became durable after all (e.g. the error came from a later step).
                None => return Ok(KinesisEventResponse::default()),
            },
        };
        warn!(shard = %shard, failed_from = %failed, error = %error, "batch failed");
        if failed == first || !self.config.report_batch_item_failures {
            return Err(error);
        }
        let mut response = KinesisEventResponse::default();
        response.add_failure(failed.as_str());
        Ok(response)
    }

    /// The shard, the records in order, and the dead letters of `event`; `None` when empty.
    #[allow(clippy::type_complexity)]
    fn decode(
        &self,
        event: KinesisEvent,
        now: i64,
    ) -> Result<Option<(ShardId, Vec<Decoded>, Vec<DeadLetter>)>, FunctionError> {
        let mut shard: Option<ShardId> = None;
        let mut records = Vec::with_capacity(event.records.len());
        let mut letters = Vec::new();
        for r in event.records {
            let id = r.event_id.as_deref().unwrap_or_default();
            let (s, seq) = parse_event_id(id).ok_or_else(|| {
                FunctionError::invalid_event(format!(
                    "record eventID {id:?} is not `shardId-<12 digits>:<sequence number>`"
                ))
            })?;
            if seq.as_str() != r.kinesis.sequence_number {
                return Err(FunctionError::invalid_event(format!(
                    "record eventID {id} does not end in its sequenceNumber {}",
                    r.kinesis.sequence_number
                )));
            }
            match shard {
                None => shard = Some(s),
                Some(prev) if prev != s => {
                    return Err(FunctionError::invalid_event(format!(
                        "the event holds records of {prev} and {s}; an event source mapping sends \
                         one shard's records per event"
                    )));
                }
                Some(_) => {}
            }
            let data = r.kinesis.data.0;
            let arrival_ms = r.kinesis.approximate_arrival_timestamp.timestamp_millis();
            match MetricEvent::from_json(&data) {
                Ok(event) => records.push(Decoded {
                    sequence_number: seq.clone(),
                    valid: Some(SinkRecord {
                        shard: s,
                        sequence_number: seq,
                        arrival_ms,
                        event: Arc::new(event),
                    }),
                }),
                Err(reason) => {
                    warn!(shard = %s, sequence_number = %seq, reason = %reason, "record dead-lettered");
                    letters.push(DeadLetter {
                        consumer: self.config.consumer.clone(),
                        stream: self.config.stream.clone(),
                        shard: s,
                        sequence_number: seq.clone(),
                        partition_key: r.kinesis.partition_key,
                        reason: reason.to_string(),
                        data: Bytes::from(data),
                        at_ms: now,
                    });
                    records.push(Decoded {
                        sequence_number: seq,
                        valid: None,
                    });
                }
            }
        }
        if records
            .windows(2)
            .any(|w| w[0].sequence_number >= w[1].sequence_number)
        {
            return Err(FunctionError::invalid_event(
                "the event's records are not in sequence order",
            ));
        }
        Ok(shard.map(|s| (s, records, letters)))
    }

    /// Stores the dead letters, then writes the valid records and makes them durable,
    /// advancing `durable` as parts become so.
    async fn apply(
        &self,
        shard: ShardId,
        records: &[Decoded],
        letters: Vec<DeadLetter>,
        now: i64,
        durable: &mut Option<SequenceNumber>,
    ) -> Result<(), FunctionError> {
        let valid: Vec<SinkRecord> = records.iter().filter_map(|r| r.valid.clone()).collect();
        if !letters.is_empty() {
            self.backends.dead_letters.put(letters).await?;
            // Dead letters before the first valid record are done.
            let lead = records.iter().take_while(|r| r.valid.is_none()).last();
            *durable = lead.map(|r| r.sequence_number.clone());
        }
        let Some(last_valid) = valid.last().map(|r| r.sequence_number.clone()) else {
            *durable = records.last().map(|r| r.sequence_number.clone());
            return Ok(());
        };
        let mut sink = self.sink()?;
        let mut mark: Option<SequenceNumber> = None;
        let note = |mark: &mut Option<SequenceNumber>, d: Option<SequenceNumber>| {
            if d.is_some() && d > *mark {
                *mark = d;
            }
        };
        let step = async {
            let d = sink.write(shard, &valid, now).await?;
            note(&mut mark, d);
            // Write-through sinks are durable now; a buffering one is flushed, the S3 sink
            // waiting for its background writes. The alerts sink is never forced: a forced
            // flush would evaluate periods by the wall clock, which only a shutdown does.
            for force in [false, self.kind != SinkKind::Alerts] {
                if mark.as_ref() >= Some(&last_valid) {
                    break;
                }
                for (s, d) in sink.flush(now, force).await? {
                    if s == shard {
                        note(&mut mark, Some(d));
                    }
                }
            }
            Ok::<_, shardline_core::Error>(())
        }
        .await;
        // Records up to the sink's mark are durable, and so are dead letters right after it.
        if let Some(m) = &mark {
            let upto = records
                .iter()
                .position(|r| r.sequence_number > *m)
                .unwrap_or(records.len());
            let tail = records[upto..]
                .iter()
                .take_while(|r| r.valid.is_none())
                .count();
            *durable = records[..upto + tail]
                .last()
                .map(|r| r.sequence_number.clone());
        }
        step?;
        if mark.as_ref() < Some(&last_valid) {
            return Err(FunctionError::of_kind(
                crate::error::ErrorKind::Retryable,
                format!(
                    "sink {} did not make the batch durable (up to {:?} of {last_valid})",
                    sink.name(),
                    mark.map(|m| m.to_string())
                ),
            ));
        }
        *durable = records.last().map(|r| r.sequence_number.clone());
        Ok(())
    }
}

#[async_trait]
impl Function for SinkFunction {
    fn name(&self) -> &str {
        self.kind.function_name()
    }

    async fn invoke(&self, event: Value) -> Result<Value, FunctionError> {
        let event: KinesisEvent = serde_json::from_value(event).map_err(|e| {
            FunctionError::invalid_event(format!("the event is not a Kinesis event: {e}"))
        })?;
        let response = self.handle(event).await?;
        serde_json::to_value(&response)
            .map_err(|e| FunctionError::of_kind(crate::error::ErrorKind::Permanent, e.to_string()))
    }

    async fn invoke_bytes(&self, event: &[u8]) -> Result<Vec<u8>, FunctionError> {
        let event: KinesisEvent = serde_json::from_slice(event).map_err(|e| {
            FunctionError::invalid_event(format!("the event is not a Kinesis event: {e}"))
        })?;
        let response = self.handle(event).await?;
        Ok(serde_json::to_vec(&response).unwrap_or_default())
    }
}
