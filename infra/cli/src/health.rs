//! The flow's `pipeline-health` task: how far each enabled consumer is behind the stream,
//! its dead letters, and `PipelineUnhealthy` when one lags more than the limit
//! (`max_lag_seconds` in the task input, else `[flow] max_consumer_lag`).
//!
//! # Layout
//! - `pipeline_health`: the handler; `[flow] lag_source` picks where lag is read.
//! - `checkpoint_lags`: `checkpoints`, the consumers `up` and `consume` run.
//! - `iterator_age_lags`: `iterator-age`, the consumers deployed as Lambda functions.
//!
//! # Where lag comes from
//! - `checkpoints`: each consumer's checkpoint per shard (the checkpoint store: embedded, or
//!   the DynamoDB lease table on `aws`) and the stream: the lag is the age of the oldest record
//!   after the checkpoints, `records_behind` counts the records not yet processed (the
//!   embedded log only; Kinesis does not count them), `last_checkpoint` is the latest one.
//! - `iterator-age`: on the deployed stack (infra/deploy/template.yaml) Lambda's event-source
//!   mappings keep the consumers' positions to themselves and nothing writes a lease table,
//!   so the lag is Lambda's own measure of it: the `IteratorAge` metric (namespace
//!   `AWS/Lambda`, dimension `FunctionName` = the consumer's function, as
//!   [`SinkKind::function_name`] names it). For a stream-fed function Lambda records, for each
//!   batch its mapping sends, the time between the stream receiving the batch's last record
//!   and the mapping sending the batch, in milliseconds; retries of a failing batch are sent
//!   again and so keep reporting a growing age. The lag is the `Maximum` of the most recent
//!   1-minute period with data within the lookback (twice the limit, at least 15 minutes, at
//!   most the 15 days CloudWatch keeps 1-minute data, in whole minutes of the clock), read
//!   through the metrics port (CloudWatch on `aws`). Neither the checkpoint store nor the
//!   stream's records are read in this mode: `records_behind` and `last_checkpoint` are null.
//!
//! Invariants: dead letters are counted the same way in both modes. A consumer is unhealthy
//! only on a measured lag above the limit. In `iterator-age` mode, a function with no
//! datapoint in the lookback (Lambda sent it no batch then: an idle stream, a disabled or
//! missing mapping, a function deployed under another name) reports `lag_ms: null` with a
//! `lag_unknown` reason and is not counted as unhealthy: no batch sent is no evidence of a
//! consumer stuck behind records, and the reason in the result lets the caller tell.

use serde_json::{Value, json};
use shardline_core::ports::{CheckpointKey, StatisticsQuery};
use shardline_core::{ShardId, StartingPosition};
use shardline_flow::{TaskContext, TaskError};
use shardline_lambda::SinkKind;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::LagSource;
use crate::handlers::{PIPELINE_UNHEALTHY, failed};
use crate::pipeline::{ConsumerKind, Pipeline};

/// The shortest look back for an `IteratorAge` datapoint.
pub const MIN_ITERATOR_AGE_LOOKBACK: Duration = Duration::from_secs(15 * 60);

/// The longest: CloudWatch keeps 1-minute datapoints for 15 days.
pub const MAX_ITERATOR_AGE_LOOKBACK: Duration = Duration::from_secs(15 * 24 * 3600);

const MINUTE_MS: i64 = 60_000;

/// One consumer's lag, however it was measured.
struct Lag {
    /// Milliseconds behind; `None` when not measured (`reason` says why).
    lag_ms: Option<u64>,
    /// Why `lag_ms` is unknown.
    reason: Option<String>,
    /// Records not yet processed, where they can be counted.
    records_behind: Option<u64>,
    /// The latest checkpoint, epoch milliseconds.
    last_checkpoint_ms: Option<i64>,
    /// The function whose `IteratorAge` was read (`iterator-age` mode).
    function: Option<&'static str>,
    /// The start of the period the lag was read from, epoch milliseconds.
    period_ms: Option<i64>,
}

/// The `pipeline-health` task.
pub(crate) async fn pipeline_health(
    p: Pipeline,
    input: Value,
    ctx: TaskContext,
) -> Result<Value, TaskError> {
    let now = ctx.clock.now_ms();
    let max_lag_ms = input
        .get("max_lag_seconds")
        .and_then(Value::as_u64)
        .map(|s| s.saturating_mul(1000))
        .unwrap_or(p.config.flow.max_consumer_lag.as_millis() as u64);
    let source = p.config.flow.lag_source;
    let (lags, records) = match source {
        LagSource::Checkpoints => checkpoint_lags(&p, now).await?,
        LagSource::IteratorAge => (iterator_age_lags(&p, now, max_lag_ms).await?, None),
    };
    let mut consumers = Vec::new();
    let mut unhealthy = Vec::new();
    for (name, lag) in lags {
        let dead_letters = p
            .backends
            .dead_letters
            .count(Some(&name))
            .await
            .map_err(failed)?;
        if let Some(lag_ms) = lag.lag_ms.filter(|l| *l > max_lag_ms) {
            let detail = match (lag.records_behind, lag.function.zip(lag.period_ms)) {
                (_, Some((function, at))) => format!(
                    " (function {function}: IteratorAge {lag_ms} ms in the minute from {})",
                    shardline_core::time::format_rfc3339_ms(at)
                ),
                (Some(b), None) => format!(" ({b} records)"),
                (None, None) => String::new(),
            };
            unhealthy.push(format!(
                "{name} is {} behind{detail}",
                humantime::format_duration(Duration::from_millis(lag_ms)),
            ));
        }
        let mut entry = json!({
            "consumer": name,
            "records_behind": lag.records_behind,
            "lag_ms": lag.lag_ms,
            "dead_letters": dead_letters,
            "last_checkpoint": lag.last_checkpoint_ms.map(shardline_core::time::format_rfc3339_ms),
        });
        if source == LagSource::IteratorAge {
            entry["function"] = json!(lag.function);
            entry["iterator_age_at"] =
                json!(lag.period_ms.map(shardline_core::time::format_rfc3339_ms));
            entry["lag_unknown"] = json!(lag.reason);
        }
        consumers.push(entry);
    }
    if !unhealthy.is_empty() {
        return Err(TaskError::new(
            PIPELINE_UNHEALTHY,
            format!(
                "consumers stuck beyond {} ms: {}",
                max_lag_ms,
                unhealthy.join("; ")
            ),
        ));
    }
    Ok(json!({
        "healthy": true,
        "stream": p.config.stream.name,
        "records": records,
        "lag_source": source.as_str(),
        "consumers": consumers,
    }))
}

/// Lag from checkpoints and the stream, per enabled consumer, and the records the embedded
/// log holds (`None` on Kinesis).
async fn checkpoint_lags(
    p: &Pipeline,
    now: i64,
) -> Result<(Vec<(String, Lag)>, Option<u64>), TaskError> {
    let stream = &p.config.stream.name;
    let shards = p.stream.list_shards(stream).await.map_err(failed)?;
    let stats: Option<BTreeMap<ShardId, (u64, u64)>> = match &p.log {
        Some(log) => Some(
            log.shard_stats(stream)
                .await
                .map_err(failed)?
                .iter()
                .map(|s| (s.shard, (s.trim_offset, s.next_offset)))
                .collect(),
        ),
        None => None,
    };
    let mut out = Vec::new();
    for name in p.consumer_names() {
        let mut behind = 0u64;
        let mut oldest_unprocessed_ms: Option<i64> = None;
        let mut last_checkpoint_ms: Option<i64> = None;
        for s in &shards {
            let key = CheckpointKey {
                consumer: name.clone(),
                stream: stream.clone(),
                shard: s.shard_id,
            };
            let cp = p.backends.checkpoints.get(&key).await.map_err(failed)?;
            let offsets = stats.as_ref().and_then(|m| m.get(&s.shard_id)).copied();
            let position = match &cp {
                Some(c) => {
                    last_checkpoint_ms = last_checkpoint_ms.max(Some(c.updated_ms));
                    if let Some((trim, next)) = offsets {
                        let offset = c.sequence_number.parts().map(|x| x.offset + 1).unwrap_or(0);
                        behind += next.saturating_sub(offset.max(trim));
                    }
                    StartingPosition::AfterSequenceNumber(c.sequence_number.clone())
                }
                None => {
                    if let Some((trim, next)) = offsets {
                        behind += next - trim;
                    }
                    StartingPosition::TrimHorizon
                }
            };
            let it = p
                .stream
                .get_shard_iterator(stream, s.shard_id, &position)
                .await
                .map_err(failed)?;
            let first = p.stream.get_records(&it, 1).await.map_err(failed)?;
            if let Some(r) = first.records.first() {
                oldest_unprocessed_ms = Some(
                    oldest_unprocessed_ms.map_or(r.approximate_arrival_ms, |o: i64| {
                        o.min(r.approximate_arrival_ms)
                    }),
                );
            }
        }
        let lag_ms = oldest_unprocessed_ms
            .map(|t| (now - t).max(0) as u64)
            .unwrap_or(0);
        out.push((
            name,
            Lag {
                lag_ms: Some(lag_ms),
                reason: None,
                records_behind: stats.as_ref().map(|_| behind),
                last_checkpoint_ms,
                function: None,
                period_ms: None,
            },
        ));
    }
    let records = stats
        .as_ref()
        .map(|m| m.values().map(|(trim, next)| next - trim).sum());
    Ok((out, records))
}

/// The Lambda function a consumer runs as on the deployed stack.
fn function_of(kind: ConsumerKind) -> SinkKind {
    match kind {
        ConsumerKind::S3 => SinkKind::S3Parquet,
        ConsumerKind::DynamoDb => SinkKind::DynamoDb,
        ConsumerKind::CloudWatch => SinkKind::CloudWatch,
        ConsumerKind::Alerts => SinkKind::Alerts,
    }
}

/// The look back for an `IteratorAge` datapoint under a limit of `max_lag_ms`: twice the
/// limit, at least [`MIN_ITERATOR_AGE_LOOKBACK`] and at most [`MAX_ITERATOR_AGE_LOOKBACK`],
/// rounded up to whole minutes.
pub fn iterator_age_lookback_ms(max_lag_ms: u64) -> i64 {
    let twice = Duration::from_millis(max_lag_ms.saturating_mul(2));
    let ms = twice
        .clamp(MIN_ITERATOR_AGE_LOOKBACK, MAX_ITERATOR_AGE_LOOKBACK)
        .as_millis() as i64;
    (ms + MINUTE_MS - 1) / MINUTE_MS * MINUTE_MS
}

/// Lag from each enabled consumer's `IteratorAge` (see the module docs).
async fn iterator_age_lags(
    p: &Pipeline,
    now: i64,
    max_lag_ms: u64,
) -> Result<Vec<(String, Lag)>, TaskError> {
    let lookback = iterator_age_lookback_ms(max_lag_ms);
    // Whole minutes, so each period is one minute of the clock; the current one included.
    let end_ms = now.div_euclid(MINUTE_MS).saturating_add(1) * MINUTE_MS;
    let start_ms = end_ms.saturating_sub(lookback);
    let mut out = Vec::new();
    for kind in p.enabled() {
        let name = p.consumer_config(kind).name;
        let function = function_of(kind).function_name();
        let query = StatisticsQuery {
            namespace: "AWS/Lambda".into(),
            metric_name: "IteratorAge".into(),
            dimensions: BTreeMap::from([("FunctionName".to_string(), function.to_string())]),
            start_ms,
            end_ms,
            period_secs: 60,
        };
        let points = p
            .backends
            .metrics
            .get_metric_statistics(&query)
            .await
            .map_err(|e| failed(format!("IteratorAge of function {function}: {e}")))?;
        let latest = points
            .iter()
            .filter(|d| d.values.sample_count > 0.0)
            .max_by_key(|d| d.timestamp_ms);
        let lag = match latest {
            Some(d) => Lag {
                lag_ms: Some(d.values.maximum.max(0.0).round() as u64),
                reason: None,
                records_behind: None,
                last_checkpoint_ms: None,
                function: Some(function),
                period_ms: Some(d.timestamp_ms),
            },
            None => Lag {
                lag_ms: None,
                reason: Some(format!(
                    "no IteratorAge datapoint for function {function} in the last {}: Lambda \
                     records it only for batches its event-source mapping sends (an idle \
                     stream, a disabled or missing mapping)",
                    humantime::format_duration(Duration::from_millis(lookback as u64))
                )),
                records_behind: None,
                last_checkpoint_ms: None,
                function: Some(function),
                period_ms: None,
            },
        };
        out.push((name, lag));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookback_is_at_least_15_minutes_else_twice_the_limit_in_whole_minutes() {
        assert_eq!(iterator_age_lookback_ms(60_000), 15 * MINUTE_MS);
        assert_eq!(iterator_age_lookback_ms(0), 15 * MINUTE_MS);
        assert_eq!(iterator_age_lookback_ms(600_000), 20 * MINUTE_MS);
        assert_eq!(iterator_age_lookback_ms(600_500), 21 * MINUTE_MS);
        assert_eq!(iterator_age_lookback_ms(u64::MAX), 15 * 24 * 60 * MINUTE_MS);
    }
}
