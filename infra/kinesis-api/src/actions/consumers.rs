//! Enhanced fan-out consumers: RegisterStreamConsumer, DescribeStreamConsumer,
//! ListStreamConsumers, DeregisterStreamConsumer (SubscribeToShard is in `subscribe`).
//!
//! A consumer's ARN is its stream's ARN followed by `/consumer/<name>:<registration second>`.
//! Consumers are ACTIVE as soon as they are registered (Kinesis takes a few seconds), and are
//! kept in the stream's metadata, so they survive restarts; deleting a stream that has
//! consumers needs `EnforceConsumerDeletion`, as on Kinesis.

use base64::Engine as _;
use shardline_log::ConsumerMeta;

use super::{empty, stream_name};
use crate::dispatch::Endpoint;
use crate::error::ApiError;
use crate::shape::arn_resource;
use crate::value::Value;

/// The stream and consumer an ARN names: `.../stream/<stream>/consumer/<name>:<second>`.
pub(crate) fn parse_consumer_arn(arn: &str) -> Option<(String, String, i64)> {
    let r = arn_resource(arn)?.strip_prefix("stream/")?;
    let (stream, rest) = r.split_once("/consumer/")?;
    let (name, secs) = rest.rsplit_once(':')?;
    Some((stream.to_string(), name.to_string(), secs.parse().ok()?))
}

pub(crate) fn consumer_arn(ep: &Endpoint, stream: &str, c: &ConsumerMeta) -> String {
    format!(
        "{}/consumer/{}:{}",
        ep.account.stream_arn(stream),
        c.name,
        c.created_ms.div_euclid(1000)
    )
}

fn describe(ep: &Endpoint, stream: &str, c: &ConsumerMeta, with_stream: bool) -> Value {
    Value::map([
        ("ConsumerName", Value::s(c.name.clone())),
        ("ConsumerARN", Value::s(consumer_arn(ep, stream, c))),
        ("ConsumerStatus", Value::s("ACTIVE")),
        (
            "ConsumerCreationTimestamp",
            Value::Timestamp(c.created_ms.div_euclid(1000) * 1000),
        ),
        (
            "StreamARN",
            if with_stream {
                Value::s(ep.account.stream_arn(stream))
            } else {
                Value::Null
            },
        ),
    ])
}

/// The consumer a request names, by ConsumerARN or by StreamARN and ConsumerName.
pub(crate) fn find(ep: &Endpoint, req: &Value) -> Result<(String, ConsumerMeta), ApiError> {
    let (stream, name, secs) = match req.str("ConsumerARN") {
        Some(arn) => parse_consumer_arn(arn)
            .map(|(s, n, t)| (s, n, Some(t)))
            .ok_or_else(|| ApiError::invalid(format!("ConsumerARN {arn} is not valid.")))?,
        None => match req.str("ConsumerName") {
            Some(name) if req.str("StreamARN").is_some() => {
                (stream_name(req)?, name.to_string(), None)
            }
            _ => {
                return Err(ApiError::invalid(
                    "Either ConsumerARN or both ConsumerName and StreamARN should be provided.",
                ));
            }
        },
    };
    let consumers = ep
        .log
        .consumers(&stream)
        .map_err(|e| ep.account.map(&stream, e))?;
    consumers
        .into_iter()
        .find(|c| c.name == name && secs.is_none_or(|t| t == c.created_ms.div_euclid(1000)))
        .map(|c| (stream.clone(), c))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Consumer {name} under stream {stream} under account {} not found.",
                ep.account.id
            ))
        })
}

pub(crate) async fn register(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let stream = stream_name(req)?;
    let name = req.str("ConsumerName").unwrap_or_default();
    let existing = ep
        .log
        .consumers(&stream)
        .map_err(|e| ep.account.map(&stream, e))?;
    if let Some(c) = existing.iter().find(|c| c.name == name) {
        return Err(ApiError::client(
            "ResourceInUseException",
            format!("Consumer {} already exists", consumer_arn(ep, &stream, c)),
        ));
    }
    let c = ep
        .log
        .register_consumer(&stream, name)
        .await
        .map_err(|e| ep.account.map(&stream, e))?;
    Ok(Value::map([("Consumer", describe(ep, &stream, &c, false))]))
}

pub(crate) fn describe_one(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let (stream, c) = find(ep, req)?;
    Ok(Value::map([(
        "ConsumerDescription",
        describe(ep, &stream, &c, true),
    )]))
}

pub(crate) fn list(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let stream = stream_name(req)?;
    let consumers = ep
        .log
        .consumers(&stream)
        .map_err(|e| ep.account.map(&stream, e))?;
    let skip = match req.str("NextToken") {
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid(format!("NextToken {t} is invalid.")))?,
        None => 0,
    };
    let max = req.int("MaxResults").unwrap_or(100).clamp(1, 10_000) as usize;
    let page: Vec<Value> = consumers
        .iter()
        .skip(skip)
        .take(max)
        .map(|c| describe(ep, &stream, c, false))
        .collect();
    let next = (skip + max < consumers.len()).then(|| {
        Value::s(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode((skip + max).to_string()))
    });
    Ok(Value::map([
        ("Consumers", Value::Array(page)),
        ("NextToken", next.unwrap_or(Value::Null)),
    ]))
}

pub(crate) async fn deregister(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let (stream, c) = find(ep, req)?;
    ep.log
        .deregister_consumer(&stream, &c.name)
        .await
        .map_err(|e| ep.account.map(&stream, e))?;
    Ok(empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_arns_parse() {
        assert_eq!(
            parse_consumer_arn(
                "arn:aws:kinesis:us-east-1:000000000000:stream/s.1/consumer/app-1:1700000000"
            ),
            Some(("s.1".into(), "app-1".into(), 1_700_000_000))
        );
        assert_eq!(
            parse_consumer_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s"),
            None
        );
    }
}
