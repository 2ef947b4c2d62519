//! Attribute values between Shardline's [`AttributeValue`] and the SDK's.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use shardline_core::ports::{AttributeValue, Item};
use shardline_core::{Error, Result};
use std::collections::HashMap;

/// Shardline's value as the SDK's.
pub fn to_aws(v: &AttributeValue) -> Av {
    match v {
        AttributeValue::S(s) => Av::S(s.clone()),
        AttributeValue::N(n) => Av::N(n.clone()),
        AttributeValue::B(b) => Av::B(Blob::new(b.clone())),
        AttributeValue::Bool(b) => Av::Bool(*b),
        AttributeValue::Null => Av::Null(true),
    }
}

/// The SDK's value as Shardline's; `None` for types the ports do not use (sets, lists, maps).
pub fn from_aws(v: &Av) -> Option<AttributeValue> {
    Some(match v {
        Av::S(s) => AttributeValue::S(s.clone()),
        Av::N(n) => AttributeValue::N(n.clone()),
        Av::B(b) => AttributeValue::B(b.as_ref().to_vec()),
        Av::Bool(b) => AttributeValue::Bool(*b),
        Av::Null(_) => AttributeValue::Null,
        _ => return None,
    })
}

/// An item as the SDK's map.
pub fn item_to_aws(item: &Item) -> HashMap<String, Av> {
    item.iter()
        .map(|(k, v)| (k.to_string(), to_aws(v)))
        .collect()
}

/// The SDK's map as an item.
///
/// # Errors
/// [`Error::Internal`] naming an attribute of a type the ports do not use.
pub fn item_from_aws(map: &HashMap<String, Av>, table: &str) -> Result<Item> {
    map.iter()
        .map(|(k, v)| {
            from_aws(v).map(|v| (k.clone(), v)).ok_or_else(|| {
                Error::Internal(format!(
                    "DynamoDB table \"{table}\": attribute `{k}` is a set, list or map, which Shardline's items do not hold"
                ))
            })
        })
        .collect()
}

/// A string attribute of an SDK item.
pub fn get_s<'a>(map: &'a HashMap<String, Av>, name: &str) -> Option<&'a str> {
    map.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A number attribute of an SDK item, as u64.
pub fn get_u64(map: &HashMap<String, Av>, name: &str) -> Option<u64> {
    map.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in [
            AttributeValue::S("héllo".into()),
            AttributeValue::N("-12.5e3".into()),
            AttributeValue::B(vec![0, 255]),
            AttributeValue::Bool(false),
            AttributeValue::Null,
        ] {
            assert_eq!(from_aws(&to_aws(&v)), Some(v));
        }
        assert_eq!(from_aws(&Av::Ss(vec!["a".into()])), None);
    }
}
