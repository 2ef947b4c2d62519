//! The [`ItemTable`] port on DynamoDB (the `InfraMetrics` table and any other).
//!
//! # Writes
//! Items are checked for their key attributes first (a keyless item fails the whole call with
//! its index, before anything is written). Items with the same key are reduced to the last
//! one (DynamoDB refuses two puts of one key in a request, and a later put wins anyway), so
//! the 25-item BatchWriteItem requests of one call touch disjoint keys and can run
//! `dynamodb.write_concurrency` at a time. Each request's UnprocessedItems are sent again
//! with backoff and jitter until none are left, for at most `retry.max_rounds` rounds. A put
//! replaces the whole item, so replaying a batch is idempotent.
//!
//! # Reads
//! `query` is a Query on the partition key with the sort-key bounds as `BETWEEN`, `>=` or `<=`,
//! all pages, consistent reads. `count` is a Scan with `Select: COUNT` (a full scan: it reads,
//! and is billed for, the whole table).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue as Av, PutRequest, Select, WriteRequest};
use futures::{StreamExt, TryStreamExt};
use shardline_core::ports::{AttributeValue, Item, ItemQuery, ItemTable, KeyType, TableSchema};
use shardline_core::{Error, Result, RetryClass};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::debug;

use super::attr::{item_from_aws, item_to_aws, to_aws};
use super::{call, tables};
use crate::backoff;
use crate::client::AwsClients;
use crate::config::RetryConfig;

/// Items per BatchWriteItem request (DynamoDB's limit).
pub const BATCH_WRITE_MAX: usize = 25;

/// What the item table retried.
#[derive(Debug, Default)]
pub struct ItemStats {
    /// Items sent again after coming back in UnprocessedItems.
    pub items_retried: AtomicU64,
    /// BatchWriteItem requests sent again (unprocessed items or throttling).
    pub retry_rounds: AtomicU64,
}

/// DynamoDB as an [`ItemTable`].
#[derive(Debug, Clone)]
pub struct DynamoItemTable {
    client: aws_sdk_dynamodb::Client,
    region: String,
    retry: RetryConfig,
    concurrency: usize,
    schemas: Arc<Mutex<HashMap<String, TableSchema>>>,
    stats: Arc<ItemStats>,
}

impl DynamoItemTable {
    /// The adapter over the clients' DynamoDB client.
    pub fn new(clients: &AwsClients) -> Self {
        DynamoItemTable {
            client: clients.dynamodb.clone(),
            region: clients.region.clone(),
            retry: clients.config.retry.clone(),
            concurrency: clients.config.dynamodb.write_concurrency.max(1),
            schemas: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// Items and rounds retried so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.items_retried.load(Ordering::Relaxed),
            self.stats.retry_rounds.load(Ordering::Relaxed),
        )
    }

    async fn schema(&self, table: &str, action: &str) -> Result<TableSchema> {
        if let Some(s) = self.schemas.lock().ok().and_then(|m| m.get(table).cloned()) {
            return Ok(s);
        }
        match tables::describe(&self.client, &self.region, table).await? {
            Some((schema, _)) => {
                if let Ok(mut m) = self.schemas.lock() {
                    m.insert(table.to_string(), schema.clone());
                }
                Ok(schema)
            }
            None => Err(Error::NotFound {
                what: format!(
                    "DynamoDB table \"{table}\" in region {} ({action}; run `shardline infra bootstrap` to create it, or check the region)",
                    self.region
                ),
            }),
        }
    }

    /// The key of `item` under `schema`, as text for deduplication.
    fn key_of(schema: &TableSchema, item: &Item, index: usize) -> Result<String> {
        let part = |(name, t): &(String, KeyType)| -> Result<String> {
            match (item.get(name), t) {
                (Some(AttributeValue::S(s)), KeyType::S) => Ok(format!("S{}:{s}", s.len())),
                (Some(AttributeValue::N(n)), KeyType::N) => canonical_number(n)
                    .map(|c| format!("N:{c}"))
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "DynamoDB BatchWriteItem on table \"{}\": item {index}: key attribute `{name}` = {n:?} is not a number",
                            schema.name
                        ))
                    }),
                _ => Err(Error::InvalidArgument(format!(
                    "DynamoDB BatchWriteItem on table \"{}\": item {index} lacks its key attribute `{name}` ({t:?}); every item needs {}",
                    schema.name,
                    match &schema.sort_key {
                        Some((s, _)) => format!("`{}` and `{s}`", schema.partition_key.0),
                        None => format!("`{}`", schema.partition_key.0),
                    }
                ))),
            }
        };
        let mut key = part(&schema.partition_key)?;
        if let Some(sort) = &schema.sort_key {
            key.push('|');
            key.push_str(&part(sort)?);
        }
        Ok(key)
    }

    async fn write_chunk(&self, table: &str, chunk: Vec<HashMap<String, Av>>) -> Result<()> {
        let mut pending: Vec<WriteRequest> = chunk
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(|e| Error::InvalidArgument(format!("table \"{table}\": {e}")))
            })
            .collect::<Result<_>>()?;
        let mut round = 0u32;
        loop {
            let answer = self
                .client
                .batch_write_item()
                .request_items(table, pending.clone())
                .send()
                .await;
            let unprocessed = match answer {
                Ok(out) => out
                    .unprocessed_items()
                    .and_then(|m| m.get(table))
                    .cloned()
                    .unwrap_or_default(),
                Err(e) => {
                    let err = crate::error::map_sdk_error(
                        &call(&self.region, "BatchWriteItem", table),
                        e,
                    );
                    if err.retry_class() != RetryClass::Retryable
                        || round + 1 >= self.retry.max_rounds
                    {
                        return Err(err);
                    }
                    pending.clone()
                }
            };
            if unprocessed.is_empty() {
                return Ok(());
            }
            if round + 1 >= self.retry.max_rounds {
                return Err(Error::Throttled(format!(
                    "DynamoDB BatchWriteItem on table \"{table}\": {} items still unprocessed after {} rounds; raise the table's capacity or `aws.retry.max_rounds`",
                    unprocessed.len(),
                    round + 1
                )));
            }
            debug!(
                table,
                round,
                unprocessed = unprocessed.len(),
                "retrying unprocessed items"
            );
            self.stats
                .items_retried
                .fetch_add(unprocessed.len() as u64, Ordering::Relaxed);
            self.stats.retry_rounds.fetch_add(1, Ordering::Relaxed);
            backoff::wait(&self.retry, round).await;
            round += 1;
            pending = unprocessed;
        }
    }
}

/// A number's exact canonical form (`-125e-1` for `-12.50`), so that numbers DynamoDB treats
/// as equal (`1`, `1.0`, `10e-1`) are one key, without rounding through f64.
fn canonical_number(text: &str) -> Option<String> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exp) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut exp = exp - i64::try_from(frac.len()).ok()?;
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some("0".into());
    }
    let trimmed = digits.trim_end_matches('0');
    exp += i64::try_from(digits.len() - trimmed.len()).ok()?;
    Some(format!(
        "{}{trimmed}e{exp}",
        if negative { "-" } else { "" }
    ))
}

#[async_trait]
impl ItemTable for DynamoItemTable {
    async fn ensure_table(&self, schema: &TableSchema) -> Result<()> {
        tables::ensure_table(&self.client, &self.region, schema).await?;
        if let Ok(mut m) = self.schemas.lock() {
            m.insert(schema.name.clone(), schema.clone());
        }
        Ok(())
    }

    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let schema = self.schema(table, "BatchWriteItem").await?;
        // Last put of each key wins, as it would in sequence.
        let mut last: HashMap<String, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            last.insert(Self::key_of(&schema, item, i)?, i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        let mut unique: Vec<HashMap<String, Av>> =
            keep.iter().map(|&i| item_to_aws(&items[i])).collect();
        drop(items);
        let mut chunks = Vec::with_capacity(unique.len().div_ceil(BATCH_WRITE_MAX));
        while !unique.is_empty() {
            let rest = unique.split_off(unique.len().min(BATCH_WRITE_MAX));
            chunks.push(std::mem::replace(&mut unique, rest));
        }
        futures::stream::iter(chunks)
            .map(|chunk| self.write_chunk(table, chunk))
            .buffer_unordered(self.concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn query(&self, query: &ItemQuery) -> Result<Vec<Item>> {
        let table = &query.table;
        let schema = self.schema(table, "Query").await?;
        let mut names = HashMap::from([("#pk".to_string(), schema.partition_key.0.clone())]);
        let mut values = HashMap::from([(":pk".to_string(), to_aws(&query.partition))]);
        let mut condition = "#pk = :pk".to_string();
        if let Some((sort, _)) = &schema.sort_key {
            let bound = match (&query.sort_from, &query.sort_to) {
                (Some(lo), Some(hi)) => {
                    values.insert(":lo".into(), to_aws(lo));
                    values.insert(":hi".into(), to_aws(hi));
                    Some("#sk BETWEEN :lo AND :hi")
                }
                (Some(lo), None) => {
                    values.insert(":lo".into(), to_aws(lo));
                    Some("#sk >= :lo")
                }
                (None, Some(hi)) => {
                    values.insert(":hi".into(), to_aws(hi));
                    Some("#sk <= :hi")
                }
                (None, None) => None,
            };
            if let Some(b) = bound {
                names.insert("#sk".into(), sort.clone());
                condition.push_str(" AND ");
                condition.push_str(b);
            }
        }
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, Av>> = None;
        loop {
            let remaining = query.limit.map(|l| l.saturating_sub(out.len()));
            if remaining == Some(0) {
                break;
            }
            let page = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_limit(remaining.map(|r| i32::try_from(r).unwrap_or(i32::MAX)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| crate::error::map_sdk_error(&call(&self.region, "Query", table), e))?;
            for item in page.items() {
                out.push(item_from_aws(item, table)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        if let Some(limit) = query.limit {
            out.truncate(limit);
        }
        Ok(out)
    }

    async fn count(&self, table: &str) -> Result<u64> {
        let mut total = 0u64;
        let mut start: Option<HashMap<String, Av>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(table)
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| crate::error::map_sdk_error(&call(&self.region, "Scan", table), e))?;
            total += u64::try_from(page.count()).unwrap_or(0);
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_number;

    #[test]
    fn equal_numbers_have_one_canonical_form() {
        let c = |s: &str| canonical_number(s).expect(s);
        assert_eq!(c("1"), c("1.0"));
        assert_eq!(c("1"), c("10e-1"));
        assert_eq!(c("-12.50"), "-125e-1");
        assert_eq!(c("0.000"), "0");
        assert_eq!(c("-0"), "0");
        assert_ne!(c("99999999999999999"), c("99999999999999998"));
        assert_eq!(canonical_number("1.2.3"), None);
        assert_eq!(canonical_number("abc"), None);
        assert_eq!(canonical_number("."), None);
    }
}
