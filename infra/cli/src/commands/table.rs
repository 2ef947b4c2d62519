//! `shardline table ...`: reads the DynamoDB-style InfraMetrics table.

use anyhow::{Context, Result, anyhow};
use shardline_core::ports::{AttributeValue, Item, ItemQuery};
use std::io::Write;

use crate::cli::TableCommand;
use crate::data::Data;
use crate::io::Io;

/// The table error a user can act on: a missing table means nothing has run yet.
fn table_error(data: &Data, table: &str, e: shardline_core::Error, what: String) -> anyhow::Error {
    match e {
        shardline_core::Error::NotFound { .. } if data.is_owned() => anyhow!(
            "table {table} does not exist yet: the running shardline creates it when its \
             dynamodb consumer first delivers records"
        ),
        shardline_core::Error::NotFound { .. } => anyhow!(
            "table {table} not found in {}: run `shardline up` (or `shardline up --once`) first",
            data.config.data_dir.display()
        ),
        e => anyhow::Error::new(e).context(what),
    }
}

/// Runs a `table` subcommand.
pub async fn run(data: &Data, io: &mut Io, command: TableCommand) -> Result<i32> {
    let backends = data.backends().await?;
    let table = data.config.consumers.dynamodb.sink.table.clone();
    match command {
        TableCommand::Query {
            metric_id,
            from,
            to,
            limit,
        } => {
            let query = ItemQuery {
                table: table.clone(),
                partition: AttributeValue::S(metric_id.clone()),
                sort_from: from.as_deref().map(parse_time_ms).transpose()?.map(number),
                sort_to: to.as_deref().map(parse_time_ms).transpose()?.map(number),
                limit,
            };
            let items = backends.table.query(&query).await.map_err(|e| {
                table_error(
                    data,
                    &table,
                    e,
                    format!("cannot query table {table} for metric_id {metric_id}"),
                )
            })?;
            if items.is_empty() {
                writeln!(
                    io.err,
                    "no items for metric_id {metric_id} (series ids look like cpu-i-123456: \
                     <cpu|mem|disk|net>-<instance_id>)"
                )?;
            }
            for item in items {
                writeln!(io.out, "{}", serde_json::to_string(&item_json(&item))?)?;
            }
            Ok(0)
        }
        TableCommand::Count => {
            let n =
                backends.table.count(&table).await.map_err(|e| {
                    table_error(data, &table, e, format!("cannot count table {table}"))
                })?;
            writeln!(io.out, "{n}")?;
            Ok(0)
        }
    }
}

fn number(ms: i64) -> AttributeValue {
    AttributeValue::N(ms.to_string())
}

/// Parses RFC 3339 or epoch milliseconds.
pub fn parse_time_ms(s: &str) -> Result<i64> {
    shardline_core::time::parse_rfc3339_ms(s)
        .or_else(|| s.parse::<i64>().ok())
        .with_context(|| {
            format!(
                "`{s}` is not a time: use RFC 3339 (2026-02-19T11:00:00Z) or epoch milliseconds"
            )
        })
}

/// An item as plain JSON: strings stay strings, numbers become numbers.
fn item_json(item: &Item) -> serde_json::Value {
    item.iter()
        .map(|(k, v)| {
            let j = match v {
                AttributeValue::S(s) => serde_json::Value::from(s.as_str()),
                AttributeValue::N(n) => n
                    .parse::<i64>()
                    .map(serde_json::Value::from)
                    .or_else(|_| n.parse::<f64>().map(serde_json::Value::from))
                    .unwrap_or_else(|_| serde_json::Value::from(n.as_str())),
                AttributeValue::B(b) => serde_json::Value::from(b.len()),
                AttributeValue::Bool(b) => serde_json::Value::from(*b),
                AttributeValue::Null => serde_json::Value::Null,
            };
            (k.to_string(), j)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
