//! [`DeadLetterStore`] on redb (`<data>/local/dead_letters.redb`).
//!
//! Layout:
//! - `letters`: insertion number (`u64`, increasing) → JSON [`DeadLetter`];
//! - `letter_ids`: `(consumer, stream, shard index, sequence number)` → insertion number;
//! - `letter_counts`: consumer → how many letters it has.
//!
//! Invariants:
//! - A letter is stored at most once per (consumer, stream, shard, sequence number): putting
//!   it again (a replay, a retried batch) changes nothing.
//! - Listing is oldest first, i.e. in insertion order; the three tables change in one
//!   transaction so counts always equal listings.

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use shardline_core::Result;
use shardline_core::ports::{DeadLetter, DeadLetterStore};

use crate::db::{Db, open_read};
use crate::error::{decode_json, encode_json};

const LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("letters");
const LETTER_IDS: TableDefinition<(&str, &str, u32, &str), u64> =
    TableDefinition::new("letter_ids");
const LETTER_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("letter_counts");

/// Dead letters in a redb file.
#[derive(Debug, Clone)]
pub struct RedbDeadLetterStore {
    db: Db,
}

impl RedbDeadLetterStore {
    pub(crate) fn new(db: Db) -> Self {
        RedbDeadLetterStore { db }
    }
}

#[async_trait]
impl DeadLetterStore for RedbDeadLetterStore {
    async fn put(&self, letters: Vec<DeadLetter>) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        self.db
            .write(move |txn, _| {
                let mut rows = txn.open_table(LETTERS)?;
                let mut ids = txn.open_table(LETTER_IDS)?;
                let mut counts = txn.open_table(LETTER_COUNTS)?;
                let mut next = match rows.last()? {
                    Some((k, _)) => k.value() + 1,
                    None => 0,
                };
                for letter in &letters {
                    let id = (
                        letter.consumer.as_str(),
                        letter.stream.as_str(),
                        letter.shard.0,
                        letter.sequence_number.as_str(),
                    );
                    if ids.get(id)?.is_some() {
                        continue;
                    }
                    rows.insert(next, encode_json("dead letter", letter)?.as_slice())?;
                    ids.insert(id, next)?;
                    let count = counts
                        .get(letter.consumer.as_str())?
                        .map_or(0, |c| c.value());
                    counts.insert(letter.consumer.as_str(), count + 1)?;
                    next += 1;
                }
                Ok(())
            })
            .await
    }

    async fn list(&self, consumer: Option<&str>) -> Result<Vec<DeadLetter>> {
        let consumer = consumer.map(str::to_string);
        self.db
            .read(move |txn, path| {
                let Some(rows) = open_read(txn, LETTERS)? else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for entry in rows.iter()? {
                    let (_, v) = entry?;
                    let letter: DeadLetter = decode_json(path, "dead letter", v.value())?;
                    if consumer.as_deref().is_none_or(|c| c == letter.consumer) {
                        out.push(letter);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn count(&self, consumer: Option<&str>) -> Result<u64> {
        let consumer = consumer.map(str::to_string);
        self.db
            .read(move |txn, _| match consumer {
                None => match open_read(txn, LETTERS)? {
                    Some(rows) => Ok(rows.len()?),
                    None => Ok(0),
                },
                Some(c) => match open_read(txn, LETTER_COUNTS)? {
                    Some(counts) => Ok(counts.get(c.as_str())?.map_or(0, |v| v.value())),
                    None => Ok(0),
                },
            })
            .await
    }
}
