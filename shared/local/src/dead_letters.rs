//! [`DeadLetterStore`] on redb (`<data>/local/dead_letters.redb`).
//!
//! Layout:
//! - `letters`: insertion number (`u64`, increasing) → JSON [`DeadLetter`];
//! - `letter_ids`: `(consumer, stream, shard index, sequence number)` → insertion number;
//! - `letter_counts`: consumer → how many letters it has.
//!
//! Letters are JSON in [`DeadLetter`]'s form: the exact bytes of the record, as text when
//! they are UTF-8, else base64 with a marker (letters stored before the marker existed read as
//! text, as they were written).
//!
//! Invariants:
//! - A letter is stored at most once per (consumer, stream, shard, sequence number): putting
//!   it again (a replay, a retried batch) changes nothing, while the letter is kept.
//! - Listing is oldest first, i.e. in insertion order; the three tables change in one
//!   transaction so counts always equal listings.
//! - Retention: each put first removes, oldest inserted first, the letters dead-lettered
//!   (`at_ms`) longer than the retention ago by the wall clock, up to [`PRUNE_BATCH`] per put,
//!   stopping at the first one still kept. A letter removed by retention and put again (a
//!   replay long after) is stored again.

use std::time::Duration;

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use shardline_core::Result;
use shardline_core::ports::{DeadLetter, DeadLetterStore};
use tracing::info;

use crate::db::{Db, open_read};
use crate::error::{TxError, decode_json, encode_json};

/// Most letters one put removes by retention (bounds the transaction).
pub const PRUNE_BATCH: usize = 10_000;

const LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("letters");
const LETTER_IDS: TableDefinition<(&str, &str, u32, &str), u64> =
    TableDefinition::new("letter_ids");
const LETTER_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("letter_counts");

/// Dead letters in a redb file.
#[derive(Debug, Clone)]
pub struct RedbDeadLetterStore {
    db: Db,
    retention: Duration,
}

impl RedbDeadLetterStore {
    pub(crate) fn new(db: Db, retention: Duration) -> Self {
        RedbDeadLetterStore { db, retention }
    }

    /// How long letters are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }
}

/// Removes letters dead-lettered before `cutoff_ms`, oldest inserted first, up to
/// [`PRUNE_BATCH`]; stops at the first letter still kept. Returns how many were removed.
fn prune(txn: &WriteTransaction, path: &std::path::Path, cutoff_ms: i64) -> Result<u64, TxError> {
    let mut rows = txn.open_table(LETTERS)?;
    let mut ids = txn.open_table(LETTER_IDS)?;
    let mut counts = txn.open_table(LETTER_COUNTS)?;
    let mut removed = 0;
    for _ in 0..PRUNE_BATCH {
        let Some((key, letter)) = rows.first()?.map(|(k, v)| {
            (
                k.value(),
                decode_json::<DeadLetter>(path, "dead letter", v.value()),
            )
        }) else {
            break;
        };
        let letter = letter?;
        if letter.at_ms >= cutoff_ms {
            break;
        }
        rows.remove(key)?;
        ids.remove((
            letter.consumer.as_str(),
            letter.stream.as_str(),
            letter.shard.0,
            letter.sequence_number.as_str(),
        ))?;
        let count = counts
            .get(letter.consumer.as_str())?
            .map_or(0, |c| c.value());
        if count <= 1 {
            counts.remove(letter.consumer.as_str())?;
        } else {
            counts.insert(letter.consumer.as_str(), count - 1)?;
        }
        removed += 1;
    }
    Ok(removed)
}

#[async_trait]
impl DeadLetterStore for RedbDeadLetterStore {
    async fn put(&self, letters: Vec<DeadLetter>) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = shardline_core::time::now_ms().saturating_sub(retention);
        let removed = self
            .db
            .write(move |txn, path| {
                let removed = prune(txn, path, cutoff)?;
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
                Ok(removed)
            })
            .await?;
        if removed > 0 {
            info!(
                letters = removed,
                retention = %shardline_core::units::format_duration(self.retention),
                "dead letters past their retention removed"
            );
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Durability;
    use bytes::Bytes;
    use shardline_core::{SequenceNumber, ShardId};

    fn letter(consumer: &str, n: u64, at_ms: i64) -> DeadLetter {
        DeadLetter {
            consumer: consumer.into(),
            stream: "metrics".into(),
            shard: ShardId(0),
            sequence_number: SequenceNumber::try_from(n.to_string()).unwrap(),
            partition_key: "i-1".into(),
            reason: "malformed: x".into(),
            data: Bytes::from(vec![b'{', 0xff, b'}']),
            at_ms,
        }
    }

    fn store(dir: &std::path::Path, retention: Duration) -> RedbDeadLetterStore {
        let db = Db::open(&dir.join("dl.redb"), Durability::Fsync, 1 << 20).unwrap();
        RedbDeadLetterStore::new(db, retention)
    }

    #[tokio::test]
    async fn letters_past_retention_go_with_their_ids_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), Duration::from_secs(14 * 86_400));
        let now = shardline_core::time::now_ms();
        let day = 86_400_000;
        s.put(vec![
            letter("a", 1, now - 30 * day),
            letter("b", 2, now - 20 * day),
            letter("a", 3, now - day),
        ])
        .await
        .unwrap();
        assert_eq!(
            s.count(None).await.unwrap(),
            3,
            "pruned before, not after, a put"
        );
        s.put(vec![letter("a", 4, now)]).await.unwrap();
        let left: Vec<u64> = s
            .list(None)
            .await
            .unwrap()
            .iter()
            .map(|l| l.sequence_number.as_str().parse().unwrap())
            .collect();
        assert_eq!(left, [3, 4]);
        assert_eq!(s.count(Some("a")).await.unwrap(), 2);
        assert_eq!(s.count(Some("b")).await.unwrap(), 0);
        assert_eq!(s.count(None).await.unwrap(), 2);
        // A pruned letter delivered again (a late replay) is stored again, once.
        s.put(vec![letter("b", 2, now), letter("b", 2, now)])
            .await
            .unwrap();
        assert_eq!(s.count(Some("b")).await.unwrap(), 1);
        let back = s.list(Some("b")).await.unwrap();
        assert_eq!(back[0].data.as_ref(), [b'{', 0xff, b'}'], "exact bytes");
    }

    #[tokio::test]
    async fn letters_written_as_lossy_text_by_earlier_versions_still_list() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), Duration::from_secs(86_400));
        let old = br#"{"consumer":"s3-parquet","stream":"metrics","shard":"shardId-000000000002","sequence_number":"7","partition_key":"i-9","reason":"not a metric event: EOF","data":"{\"a\":\"\u00e9\ufffd\"}","at_ms":1700000000000}"#;
        s.db.write(move |txn, _| {
            let mut rows = txn.open_table(LETTERS)?;
            rows.insert(0, old.as_slice())?;
            Ok(())
        })
        .await
        .unwrap();
        let listed = s.list(None).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].partition_key, "i-9");
        assert_eq!(
            listed[0].data.as_ref(),
            "{\"a\":\"\u{e9}\u{fffd}\"}".as_bytes()
        );
    }
}
