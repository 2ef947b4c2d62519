//! Stream actions: CreateStream, DeleteStream, DescribeStream, DescribeStreamSummary,
//! ListStreams, DescribeLimits, Increase/DecreaseStreamRetentionPeriod, and tags.
//!
//! Streams are ACTIVE as soon as CreateStream returns (the log creates them synchronously), so
//! clients' waiters pass at once. An on-demand stream (`StreamModeDetails.StreamMode =
//! ON_DEMAND`, no `ShardCount`) starts with 4 shards, as on Kinesis, and is not rescaled.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use shardline_core::stream::StreamDescription;

use super::{empty, shard_value, stream_name};
use crate::dispatch::Endpoint;
use crate::error::ApiError;
use crate::value::Value;

/// Shards of a stream created ON_DEMAND.
const ON_DEMAND_SHARDS: i64 = 4;
/// Longest retention, hours.
const MAX_RETENTION_HOURS: i64 = 8760;

pub(crate) fn describe_or_404(ep: &Endpoint, name: &str) -> Result<StreamDescription, ApiError> {
    ep.log.describe(name).map_err(|e| ep.account.map(name, e))
}

/// Open shards over every stream.
pub(crate) fn open_shards(ep: &Endpoint) -> u64 {
    ep.log
        .stream_names()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| ep.log.describe(n).ok())
        .map(|d| {
            d.shards
                .iter()
                .filter(|s| s.ending_sequence_number.is_none())
                .count() as u64
        })
        .sum()
}

/// Refuses a request that would take the account past its open-shard limit.
pub(crate) fn check_shard_limit(ep: &Endpoint, adding: u64) -> Result<(), ApiError> {
    let current = open_shards(ep);
    let limit = u64::from(ep.config.shard_limit);
    if current + adding > limit {
        return Err(ApiError::client(
            "LimitExceededException",
            format!(
                "This request would exceed the shard limit for the account {} in {}. Current \
                 shard count for the account: {current}. Limit: {limit}. Number of additional \
                 shards that would have resulted from this request: {adding}. Refer to the AWS \
                 Service Limits page \
                 (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for \
                 current limits and how to request higher limits.",
                ep.account.id, ep.account.region
            ),
        ));
    }
    Ok(())
}

fn mode(req: &Value) -> &str {
    req.get("StreamModeDetails")
        .and_then(|m| m.str("StreamMode"))
        .unwrap_or("PROVISIONED")
}

pub(crate) async fn create(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = req.str("StreamName").unwrap_or_default().to_string();
    let shards = match (req.int("ShardCount"), mode(req)) {
        (Some(n), _) => n,
        (None, "ON_DEMAND") => ON_DEMAND_SHARDS,
        (None, _) => {
            return Err(ApiError::validation(
                "1 validation error detected: Value null at 'shardCount' failed to satisfy \
                 constraint: Member must not be null",
            ));
        }
    };
    if ep.log.describe(&name).is_ok() {
        return Err(ApiError::client(
            "ResourceInUseException",
            format!(
                "Stream {name} under account {} already exists.",
                ep.account.id
            ),
        ));
    }
    check_shard_limit(ep, shards as u64)?;
    ep.log
        .create(&name, shards as u32, Duration::from_secs(24 * 3600))
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    if let Some(Value::Map(tags)) = req.get("Tags") {
        let tags: BTreeMap<String, String> =
            tags.iter().map(|(k, v)| (k.clone(), v_str(v))).collect();
        ep.log
            .add_tags(&name, tags)
            .await
            .map_err(|e| ep.account.map(&name, e))?;
    }
    Ok(empty())
}

fn v_str(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        _ => String::new(),
    }
}

pub(crate) async fn delete(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let consumers = ep
        .log
        .consumers(&name)
        .map_err(|e| ep.account.map(&name, e))?;
    if !consumers.is_empty() && req.get("EnforceConsumerDeletion") != Some(&Value::Bool(true)) {
        return Err(ApiError::client(
            "ResourceInUseException",
            format!(
                "Stream {name} under account {} has {} registered consumers; deregister them \
                 or delete with EnforceConsumerDeletion.",
                ep.account.id,
                consumers.len()
            ),
        ));
    }
    ep.log
        .delete(&name)
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    Ok(empty())
}

fn common(ep: &Endpoint, d: &StreamDescription) -> Vec<(String, Value)> {
    vec![
        ("StreamName".into(), Value::s(d.name.clone())),
        ("StreamARN".into(), Value::s(ep.account.stream_arn(&d.name))),
        ("StreamStatus".into(), Value::s("ACTIVE")),
        (
            "StreamModeDetails".into(),
            Value::map([("StreamMode", Value::s("PROVISIONED"))]),
        ),
        (
            "RetentionPeriodHours".into(),
            Value::Int(i64::from(d.retention_hours)),
        ),
        (
            "StreamCreationTimestamp".into(),
            Value::Timestamp(d.created_ms.div_euclid(1000) * 1000),
        ),
        (
            "EnhancedMonitoring".into(),
            Value::Array(vec![Value::map([(
                "ShardLevelMetrics",
                Value::Array(Vec::new()),
            )])]),
        ),
        ("EncryptionType".into(), Value::s("NONE")),
    ]
}

pub(crate) fn describe(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let d = describe_or_404(ep, &name)?;
    let limit = req.int("Limit").unwrap_or(100).max(1) as usize;
    let after = req
        .str("ExclusiveStartShardId")
        .and_then(super::resolve_shard);
    let shards: Vec<_> = d
        .shards
        .iter()
        .filter(|s| after.is_none_or(|a| s.shard_id > a))
        .collect();
    let more = shards.len() > limit;
    let mut members = common(ep, &d);
    members.insert(
        3,
        (
            "Shards".into(),
            Value::Array(shards.iter().take(limit).map(|s| shard_value(s)).collect()),
        ),
    );
    members.insert(4, ("HasMoreShards".into(), Value::Bool(more)));
    Ok(Value::map([("StreamDescription", Value::Map(members))]))
}

pub(crate) fn summary(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let d = describe_or_404(ep, &name)?;
    let mut members = common(ep, &d);
    let open = d
        .shards
        .iter()
        .filter(|s| s.ending_sequence_number.is_none())
        .count();
    members.push(("OpenShardCount".into(), Value::Int(open as i64)));
    members.push(("ConsumerCount".into(), Value::Int(0)));
    Ok(Value::map([(
        "StreamDescriptionSummary",
        Value::Map(members),
    )]))
}

pub(crate) fn limits(ep: &Endpoint) -> Result<Value, ApiError> {
    Ok(Value::map([
        ("ShardLimit", Value::Int(i64::from(ep.config.shard_limit))),
        ("OpenShardCount", Value::Int(open_shards(ep) as i64)),
        ("OnDemandStreamCount", Value::Int(0)),
        ("OnDemandStreamCountLimit", Value::Int(50)),
    ]))
}

pub(crate) fn list(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let limit = req.int("Limit").unwrap_or(100).max(1) as usize;
    let after = match req.str("NextToken") {
        Some(t) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::invalid(format!("NextToken {t} is invalid.")))?,
        ),
        None => req.str("ExclusiveStartStreamName").map(str::to_string),
    };
    let names: Vec<String> = ep
        .log
        .stream_names()
        .map_err(|e| ep.account.map("", e))?
        .into_iter()
        .filter(|n| after.as_ref().is_none_or(|a| n > a))
        .collect();
    let more = names.len() > limit;
    let page = &names[..limit.min(names.len())];
    let summaries = page
        .iter()
        .filter_map(|n| ep.log.describe(n).ok())
        .map(|d| {
            Value::map([
                ("StreamName", Value::s(d.name.clone())),
                ("StreamARN", Value::s(ep.account.stream_arn(&d.name))),
                ("StreamStatus", Value::s("ACTIVE")),
                (
                    "StreamModeDetails",
                    Value::map([("StreamMode", Value::s("PROVISIONED"))]),
                ),
                (
                    "StreamCreationTimestamp",
                    Value::Timestamp(d.created_ms.div_euclid(1000) * 1000),
                ),
            ])
        })
        .collect();
    let next = (more && !page.is_empty()).then(|| {
        Value::s(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(page[page.len() - 1].as_bytes()),
        )
    });
    Ok(Value::map([
        (
            "StreamNames",
            Value::Array(page.iter().map(|n| Value::s(n.clone())).collect()),
        ),
        ("HasMoreStreams", Value::Bool(more)),
        ("NextToken", next.unwrap_or(Value::Null)),
        ("StreamSummaries", Value::Array(summaries)),
    ]))
}

pub(crate) async fn retention(
    ep: &Endpoint,
    req: &Value,
    increase: bool,
) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let hours = req.int("RetentionPeriodHours").unwrap_or(0);
    let current = i64::from(describe_or_404(ep, &name)?.retention_hours);
    if hours < 24 {
        return Err(ApiError::invalid(format!(
            "Minimum allowed retention period is 24 hours. Requested retention period ({hours} \
             hours) is too short."
        )));
    }
    if hours > MAX_RETENTION_HOURS {
        return Err(ApiError::invalid(format!(
            "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested \
             retention period ({hours} hours) is too long."
        )));
    }
    if increase && hours < current {
        return Err(ApiError::invalid(format!(
            "Requested retention period ({hours} hours) for stream {name} can not be shorter \
             than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
        )));
    }
    if !increase && hours > current {
        return Err(ApiError::invalid(format!(
            "Requested retention period ({hours} hours) for stream {name} can not be longer \
             than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
        )));
    }
    ep.log
        .set_retention(&name, Duration::from_secs(hours as u64 * 3600))
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    Ok(empty())
}

/// Kinesis's tag characters: Unicode letters, digits, white space, `_ . / = + - % @`.
fn tag_chars_ok(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_alphanumeric()
            || c.is_whitespace()
            || matches!(c, '_' | '.' | '/' | '=' | '+' | '-' | '%' | '@' | ':')
    })
}

fn check_tags<'a>(
    ep: &Endpoint,
    name: &str,
    all: impl Iterator<Item = &'a str> + Clone,
    verb: &str,
) -> Result<(), ApiError> {
    if !all.clone().all(tag_chars_ok) {
        return Err(ApiError::invalid(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, \
             white space, _ . / = + - % @.",
        ));
    }
    if all.clone().any(|t| t.contains('%')) {
        return Err(ApiError::invalid(format!(
            "Failed to {verb} stream {name} under account {} because some tags contained \
             illegal characters. The allowed characters are Unicode letters, white-spaces, \
             '_',',','/','=','+','-','@'.",
            ep.account.id
        )));
    }
    Ok(())
}

pub(crate) async fn add_tags(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let tags: BTreeMap<String, String> = match req.get("Tags") {
        Some(Value::Map(m)) => m.iter().map(|(k, v)| (k.clone(), v_str(v))).collect(),
        _ => BTreeMap::new(),
    };
    let existing = ep.log.tags(&name).map_err(|e| ep.account.map(&name, e))?;
    check_tags(
        ep,
        &name,
        tags.keys().chain(tags.values()).map(String::as_str),
        "add tags to",
    )?;
    let total = existing
        .keys()
        .chain(tags.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if total > shardline_log::MAX_TAGS {
        return Err(ApiError::invalid(format!(
            "Failed to add tags to stream {name} under account {} because a given stream cannot \
             have more than {} tags associated with it.",
            ep.account.id,
            shardline_log::MAX_TAGS
        )));
    }
    ep.log
        .add_tags(&name, tags)
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    Ok(empty())
}

pub(crate) async fn remove_tags(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let keys: Vec<String> = match req.get("TagKeys") {
        Some(Value::Array(a)) => a.iter().map(v_str).collect(),
        _ => Vec::new(),
    };
    ep.log.tags(&name).map_err(|e| ep.account.map(&name, e))?;
    check_tags(
        ep,
        &name,
        keys.iter().map(String::as_str),
        "remove tags from",
    )?;
    ep.log
        .remove_tags(&name, &keys)
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    Ok(empty())
}

pub(crate) fn list_tags(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let tags = ep.log.tags(&name).map_err(|e| ep.account.map(&name, e))?;
    let limit = req.int("Limit").unwrap_or(50).max(1) as usize;
    let after = req.str("ExclusiveStartTagKey");
    let rest: Vec<(&String, &String)> = tags
        .iter()
        .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
        .collect();
    Ok(Value::map([
        (
            "Tags",
            Value::Array(
                rest.iter()
                    .take(limit)
                    .map(|(k, v)| Value::map([("Key", Value::s(*k)), ("Value", Value::s(*v))]))
                    .collect(),
            ),
        ),
        ("HasMoreTags", Value::Bool(rest.len() > limit)),
    ]))
}
