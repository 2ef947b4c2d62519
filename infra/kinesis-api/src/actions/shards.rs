//! Shard actions: ListShards (paging, ShardFilter), SplitShard, MergeShards, UpdateShardCount.
//!
//! ListShards pages with an opaque NextToken (base64 of the stream, the last shard returned,
//! the filter and the time it was issued); a token is valid for 300 seconds and cannot be
//! combined with `StreamName`, as on Kinesis. Shard filters, by shard lifetime (creation second
//! to closing second, from the sequence number ranges):
//! `AT_LATEST` open shards; `AT_TRIM_HORIZON` retained shards with no retained parent;
//! `FROM_TRIM_HORIZON` every retained shard; `AT_TIMESTAMP` shards open at the time;
//! `FROM_TIMESTAMP` shards open at the time or created since; `AFTER_SHARD_ID` shards with a
//! higher id.

use base64::Engine as _;
use shardline_core::stream::{ShardDescription, ShardId};

use super::streams::{check_shard_limit, describe_or_404};
use super::{empty, resolve_shard, shard_value, stream_name};
use crate::dispatch::Endpoint;
use crate::error::ApiError;
use crate::value::Value;

/// How long a ListShards NextToken stays valid, milliseconds.
const TOKEN_TTL_MS: i64 = 300_000;

/// A ListShards position: where the next page starts and how it is filtered.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    stream: String,
    after: Option<ShardId>,
    filter: Option<String>,
    filter_shard: Option<ShardId>,
    filter_ms: Option<i64>,
    issued_ms: i64,
}

impl Token {
    fn encode(&self) -> String {
        let text = format!(
            "{}|{}|{}|{}|{}|{}",
            self.stream,
            self.after.map_or(String::new(), |s| s.0.to_string()),
            self.filter.clone().unwrap_or_default(),
            self.filter_shard.map_or(String::new(), |s| s.0.to_string()),
            self.filter_ms.map_or(String::new(), |t| t.to_string()),
            self.issued_ms
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    fn decode(t: &str) -> Option<Token> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let f: Vec<&str> = text.split('|').collect();
        let [stream, after, filter, shard, ms, issued] = f.as_slice() else {
            return None;
        };
        let opt_shard = |s: &str| -> Option<Option<ShardId>> {
            if s.is_empty() {
                Some(None)
            } else {
                s.parse().ok().map(|n| Some(ShardId(n)))
            }
        };
        Some(Token {
            stream: stream.to_string(),
            after: opt_shard(after)?,
            filter: (!filter.is_empty()).then(|| filter.to_string()),
            filter_shard: opt_shard(shard)?,
            filter_ms: if ms.is_empty() {
                None
            } else {
                Some(ms.parse().ok()?)
            },
            issued_ms: issued.parse().ok()?,
        })
    }
}

/// (created, closed) of a shard, epoch ms (second precision).
fn lifetime(s: &ShardDescription) -> (i64, Option<i64>) {
    let created = s
        .starting_sequence_number
        .parts()
        .map_or(0, |p| p.shard_created_secs as i64 * 1000);
    let closed = s
        .ending_sequence_number
        .as_ref()
        .and_then(|e| e.parts().ok())
        .map(|p| p.arrival_secs as i64 * 1000);
    (created, closed)
}

fn keep(t: &Token, s: &ShardDescription, all: &[ShardDescription]) -> bool {
    let (created, closed) = lifetime(s);
    match t.filter.as_deref() {
        None | Some("FROM_TRIM_HORIZON") => true,
        Some("AT_LATEST") => closed.is_none(),
        Some("AT_TRIM_HORIZON") => s
            .parent_shard_id
            .iter()
            .chain(&s.adjacent_parent_shard_id)
            .all(|p| all.iter().all(|o| o.shard_id != *p)),
        Some("AFTER_SHARD_ID") => t.filter_shard.is_none_or(|a| s.shard_id > a),
        Some("AT_TIMESTAMP") => {
            let ts = t.filter_ms.unwrap_or(0);
            created <= ts && closed.is_none_or(|c| c >= ts)
        }
        Some("FROM_TIMESTAMP") => {
            let ts = t.filter_ms.unwrap_or(0);
            closed.is_none_or(|c| c >= ts)
        }
        Some(_) => true,
    }
}

pub(crate) fn list(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let named = req.str("StreamName").is_some() || req.str("StreamARN").is_some();
    let now = ep.clock.now_ms();
    let token = match (req.str("NextToken"), named) {
        (None, false) => {
            return Err(ApiError::invalid(
                "Either NextToken or StreamName should be provided.",
            ));
        }
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "NextToken and StreamName cannot be provided together.",
            ));
        }
        (Some(t), false) => {
            if req.str("ExclusiveStartShardId").is_some() {
                return Err(ApiError::invalid(
                    "NextToken and ExclusiveStartShardId cannot be provided together.",
                ));
            }
            let token = Token::decode(t)
                .ok_or_else(|| ApiError::invalid(format!("NextToken {t} is invalid.")))?;
            if now - token.issued_ms > TOKEN_TTL_MS {
                return Err(ApiError::client(
                    "ExpiredNextTokenException",
                    "The NextToken has expired: a ListShards NextToken is valid for 300 seconds. \
                     List the shards again with StreamName.",
                ));
            }
            token
        }
        (None, true) => {
            let filter = req.get("ShardFilter");
            let kind = filter.and_then(|f| f.str("Type")).map(str::to_string);
            let filter_shard = filter
                .and_then(|f| f.str("ShardId"))
                .and_then(resolve_shard);
            let filter_ms = match filter.and_then(|f| f.get("Timestamp")) {
                Some(Value::Timestamp(ms)) => Some(*ms),
                _ => None,
            };
            match kind.as_deref() {
                Some("AFTER_SHARD_ID") if filter_shard.is_none() => {
                    return Err(ApiError::invalid(
                        "ShardFilter of type AFTER_SHARD_ID needs a ShardId.",
                    ));
                }
                Some("AT_TIMESTAMP" | "FROM_TIMESTAMP") if filter_ms.is_none() => {
                    return Err(ApiError::invalid(format!(
                        "ShardFilter of type {} needs a Timestamp.",
                        kind.as_deref().unwrap_or("")
                    )));
                }
                _ => {}
            }
            Token {
                stream: stream_name(req)?,
                after: req.str("ExclusiveStartShardId").and_then(resolve_shard),
                filter: kind,
                filter_shard,
                filter_ms,
                issued_ms: now,
            }
        }
    };
    let d = describe_or_404(ep, &token.stream)?;
    let max = req.int("MaxResults").unwrap_or(1000).clamp(1, 10_000) as usize;
    let selected: Vec<&ShardDescription> = d
        .shards
        .iter()
        .filter(|s| token.after.is_none_or(|a| s.shard_id > a))
        .filter(|s| keep(&token, s, &d.shards))
        .collect();
    let page = &selected[..max.min(selected.len())];
    let next = (selected.len() > max).then(|| {
        Token {
            after: page.last().map(|s| s.shard_id),
            issued_ms: now,
            ..token.clone()
        }
        .encode()
    });
    Ok(Value::map([
        (
            "Shards",
            Value::Array(page.iter().map(|s| shard_value(s)).collect()),
        ),
        ("NextToken", next.map_or(Value::Null, Value::s)),
    ]))
}

fn find<'a>(
    ep: &Endpoint,
    name: &str,
    raw: &str,
    shards: &'a [ShardDescription],
) -> Result<&'a ShardDescription, ApiError> {
    let not_found = |id: &str| {
        ApiError::not_found(format!(
            "Could not find shard {id} in stream {name} under account {}.",
            ep.account.id
        ))
    };
    let id = resolve_shard(raw).ok_or_else(|| not_found(raw))?;
    shards
        .iter()
        .find(|s| s.shard_id == id)
        .ok_or_else(|| not_found(&id.to_string()))
}

pub(crate) async fn split(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let raw = req.str("ShardToSplit").unwrap_or_default();
    if resolve_shard(raw).is_none() {
        return Err(ApiError::not_found(format!(
            "Could not find shard {raw} in stream {name} under account {}.",
            ep.account.id
        )));
    }
    let d = describe_or_404(ep, &name)?;
    let shard = find(ep, &name, raw, &d.shards)?;
    check_shard_limit(ep, 1)?;
    let key_text = req.str("NewStartingHashKey").unwrap_or_default();
    let range = shard.hash_key_range;
    let key = key_text
        .parse::<u128>()
        .ok()
        .filter(|k| *k > range.start.saturating_add(1) && *k < range.end);
    let Some(key) = key else {
        return Err(ApiError::invalid(format!(
            "NewStartingHashKey {key_text} used in SplitShard() on shard {} in stream {name} \
             under account {} is not both greater than one plus the shard's StartingHashKey {} \
             and less than the shard's EndingHashKey {}.",
            shard.shard_id, ep.account.id, range.start, range.end
        )));
    };
    ep.log
        .split_shard(&name, shard.shard_id, key)
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    Ok(empty())
}

pub(crate) async fn merge(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let (raw_a, raw_b) = (
        req.str("ShardToMerge").unwrap_or_default(),
        req.str("AdjacentShardToMerge").unwrap_or_default(),
    );
    for raw in [raw_a, raw_b] {
        if resolve_shard(raw).is_none() {
            return Err(ApiError::not_found(format!(
                "Could not find shard {raw} in stream {name} under account {}.",
                ep.account.id
            )));
        }
    }
    let d = describe_or_404(ep, &name)?;
    let a = find(ep, &name, raw_a, &d.shards)?;
    let b = find(ep, &name, raw_b, &d.shards)?;
    let (ra, rb) = (a.hash_key_range, b.hash_key_range);
    let adjacent =
        ra.end.checked_add(1) == Some(rb.start) || rb.end.checked_add(1) == Some(ra.start);
    if !adjacent {
        return Err(ApiError::invalid(format!(
            "Shards {} and {} in stream {name} under account {} are not an adjacent pair of \
             shards eligible for merging",
            a.shard_id, b.shard_id, ep.account.id
        )));
    }
    ep.log
        .merge_shards(&name, a.shard_id, b.shard_id)
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    Ok(empty())
}

pub(crate) async fn update_count(ep: &Endpoint, req: &Value) -> Result<Value, ApiError> {
    let name = stream_name(req)?;
    let target = req.int("TargetShardCount").unwrap_or(0);
    let d = describe_or_404(ep, &name)?;
    let open = d
        .shards
        .iter()
        .filter(|s| s.ending_sequence_number.is_none())
        .count() as i64;
    if target > open {
        check_shard_limit(ep, (target - open) as u64)?;
    }
    let before = ep
        .log
        .update_shard_count(&name, u32::try_from(target).unwrap_or(u32::MAX))
        .await
        .map_err(|e| ep.account.map(&name, e))?;
    Ok(Value::map([
        ("StreamName", Value::s(name.clone())),
        ("CurrentShardCount", Value::Int(i64::from(before))),
        ("TargetShardCount", Value::Int(target)),
        ("StreamARN", Value::s(ep.account.stream_arn(&name))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let t = Token {
            stream: "s.1-x".into(),
            after: Some(ShardId(7)),
            filter: Some("AT_TIMESTAMP".into()),
            filter_shard: None,
            filter_ms: Some(1_700_000_000_000),
            issued_ms: 5,
        };
        assert_eq!(Token::decode(&t.encode()), Some(t));
        assert_eq!(Token::decode("not a token"), None);
    }
}
