//! Creating tables and checking their key schemas.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType as AwsKeyType, ScalarAttributeType,
    TableStatus,
};
use shardline_core::ports::{KeyType, TableSchema};
use shardline_core::{Error, Result};
use std::time::Duration;

use super::call;
use crate::error::map_sdk_error;

/// How long a new table may take to become ACTIVE before we stop waiting.
const ACTIVE_WAIT: Duration = Duration::from_secs(300);

fn scalar(t: KeyType) -> ScalarAttributeType {
    match t {
        KeyType::S => ScalarAttributeType::S,
        KeyType::N => ScalarAttributeType::N,
    }
}

fn key_type(t: &ScalarAttributeType) -> Option<KeyType> {
    match t {
        ScalarAttributeType::S => Some(KeyType::S),
        ScalarAttributeType::N => Some(KeyType::N),
        _ => None,
    }
}

fn describe_schema(schema: &TableSchema) -> String {
    let part = |(n, t): &(String, KeyType)| format!("{n} ({t:?})");
    match &schema.sort_key {
        Some(s) => format!("{} + {}", part(&schema.partition_key), part(s)),
        None => part(&schema.partition_key),
    }
}

/// The key schema of an existing table; `None` when there is no such table.
pub async fn describe(
    client: &aws_sdk_dynamodb::Client,
    region: &str,
    name: &str,
) -> Result<Option<(TableSchema, bool)>> {
    let out = match client.describe_table().table_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(map_sdk_error(&call(region, "DescribeTable", name), e)),
    };
    let Some(table) = out.table() else {
        return Ok(None);
    };
    let types: Vec<(String, Option<KeyType>)> = table
        .attribute_definitions()
        .iter()
        .map(|d| (d.attribute_name().to_string(), key_type(d.attribute_type())))
        .collect();
    let type_of = |name: &str| {
        types
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| *t)
            .unwrap_or(KeyType::S)
    };
    let mut partition = None;
    let mut sort = None;
    for k in table.key_schema() {
        let entry = (k.attribute_name().to_string(), type_of(k.attribute_name()));
        match k.key_type() {
            AwsKeyType::Hash => partition = Some(entry),
            _ => sort = Some(entry),
        }
    }
    let partition = partition.ok_or_else(|| {
        Error::Internal(format!("DynamoDB table \"{name}\" has no partition key"))
    })?;
    let active = table.table_status() == Some(&TableStatus::Active);
    Ok(Some((
        TableSchema {
            name: name.to_string(),
            partition_key: partition,
            sort_key: sort,
        },
        active,
    )))
}

/// Creates the table (on-demand capacity) unless it exists; an existing table must have the
/// same key schema. Waits until it is ACTIVE.
///
/// # Errors
/// [`Error::InvalidArgument`] naming both schemas when an existing table differs.
pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    region: &str,
    schema: &TableSchema,
) -> Result<()> {
    let name = &schema.name;
    if describe(client, region, name).await?.is_none() {
        let mut keys = vec![
            KeySchemaElement::builder()
                .attribute_name(&schema.partition_key.0)
                .key_type(AwsKeyType::Hash)
                .build()
                .map_err(|e| Error::InvalidArgument(format!("table \"{name}\": {e}")))?,
        ];
        let mut defs = vec![
            AttributeDefinition::builder()
                .attribute_name(&schema.partition_key.0)
                .attribute_type(scalar(schema.partition_key.1))
                .build()
                .map_err(|e| Error::InvalidArgument(format!("table \"{name}\": {e}")))?,
        ];
        if let Some((sort, t)) = &schema.sort_key {
            keys.push(
                KeySchemaElement::builder()
                    .attribute_name(sort)
                    .key_type(AwsKeyType::Range)
                    .build()
                    .map_err(|e| Error::InvalidArgument(format!("table \"{name}\": {e}")))?,
            );
            defs.push(
                AttributeDefinition::builder()
                    .attribute_name(sort)
                    .attribute_type(scalar(*t))
                    .build()
                    .map_err(|e| Error::InvalidArgument(format!("table \"{name}\": {e}")))?,
            );
        }
        let created = client
            .create_table()
            .table_name(name)
            .set_key_schema(Some(keys))
            .set_attribute_definitions(Some(defs))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(map_sdk_error(&call(region, "CreateTable", name), e)),
        }
    }
    let deadline = tokio::time::Instant::now() + ACTIVE_WAIT;
    loop {
        if let Some((existing, active)) = describe(client, region, name).await? {
            if existing.partition_key != schema.partition_key
                || existing.sort_key != schema.sort_key
            {
                return Err(Error::InvalidArgument(format!(
                    "DynamoDB table \"{name}\" exists with key schema {}, not {}; use another table name or delete the table",
                    describe_schema(&existing),
                    describe_schema(schema)
                )));
            }
            if active {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Unavailable(format!(
                "DynamoDB table \"{name}\" is not ACTIVE after {} s; check it in the console and retry",
                ACTIVE_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
