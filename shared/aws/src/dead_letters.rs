//! The [`DeadLetterStore`] port on S3 (`resources.dead_letter_bucket`).
//!
//! Why S3: a dead letter carries the record as received, up to Kinesis's 1 MiB, past
//! DynamoDB's 400 KB item limit; dead letters are rare, written once and read by people.
//!
//! One JSON object per letter at
//! `<dead_letter_prefix><consumer>/<stream>/<shardId>/<sequence number>.json` (consumer and
//! stream with `%` and `/` percent-encoded), so a letter's key is its identity: putting it
//! again (a replay) finds the object and leaves it as it was, keeping the first `at_ms`.
//!
//! `list` reads every object of the consumer (or all) and orders them oldest first by `at_ms`
//! (then by key); `count` lists keys only.

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use shardline_core::ports::{DeadLetter, DeadLetterStore, ObjectStore};
use shardline_core::{Error, Result};

use crate::s3::S3ObjectStore;

/// Objects read at once when listing.
const READ_CONCURRENCY: usize = 8;

/// Dead letters as S3 objects.
#[derive(Debug, Clone)]
pub struct S3DeadLetterStore {
    objects: S3ObjectStore,
    bucket: String,
    prefix: String,
}

fn encode(part: &str) -> String {
    part.replace('%', "%25").replace('/', "%2F")
}

impl S3DeadLetterStore {
    /// Dead letters in `bucket` under `prefix`.
    pub fn new(objects: S3ObjectStore, bucket: &str, prefix: &str) -> Self {
        S3DeadLetterStore {
            objects,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }
    }

    /// Creates the bucket if missing.
    ///
    /// # Errors
    /// As [`ObjectStore::ensure_bucket`].
    pub async fn ensure_bucket(&self) -> Result<()> {
        self.objects.ensure_bucket(&self.bucket).await
    }

    fn consumer_prefix(&self, consumer: Option<&str>) -> String {
        match consumer {
            Some(c) => format!("{}{}/", self.prefix, encode(c)),
            None => self.prefix.clone(),
        }
    }

    fn key(&self, l: &DeadLetter) -> String {
        format!(
            "{}{}/{}/{}.json",
            self.consumer_prefix(Some(&l.consumer)),
            encode(&l.stream),
            l.shard,
            l.sequence_number
        )
    }
}

#[async_trait]
impl DeadLetterStore for S3DeadLetterStore {
    async fn put(&self, letters: Vec<DeadLetter>) -> Result<()> {
        for letter in letters {
            let key = self.key(&letter);
            if self.objects.exists(&self.bucket, &key).await? {
                continue;
            }
            let body = serde_json::to_vec(&letter).map_err(|e| {
                Error::Internal(format!("dead letter {key} does not serialize: {e}"))
            })?;
            self.objects
                .put(&self.bucket, &key, Bytes::from(body), "application/json")
                .await?;
        }
        Ok(())
    }

    async fn list(&self, consumer: Option<&str>) -> Result<Vec<DeadLetter>> {
        let listed = self
            .objects
            .list(&self.bucket, &self.consumer_prefix(consumer))
            .await?;
        let mut letters: Vec<(String, DeadLetter)> = futures::stream::iter(listed)
            .map(|meta| async move {
                let body = self.objects.get(&self.bucket, &meta.key).await?;
                let Some(body) = body else { return Ok(None) };
                let letter: DeadLetter = serde_json::from_slice(&body).map_err(|e| {
                    Error::Internal(format!(
                        "dead letter s3://{}/{} is not a dead letter ({e}); delete it or fix it",
                        self.bucket, meta.key
                    ))
                })?;
                Ok::<_, Error>(Some((meta.key, letter)))
            })
            .buffered(READ_CONCURRENCY)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await?;
        letters.sort_by(|a, b| a.1.at_ms.cmp(&b.1.at_ms).then_with(|| a.0.cmp(&b.0)));
        Ok(letters.into_iter().map(|(_, l)| l).collect())
    }

    async fn count(&self, consumer: Option<&str>) -> Result<u64> {
        let listed = self
            .objects
            .list(&self.bucket, &self.consumer_prefix(consumer))
            .await?;
        Ok(listed.iter().filter(|m| m.key.ends_with(".json")).count() as u64)
    }
}
