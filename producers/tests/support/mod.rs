//! A deterministic in-memory `Stream` for producer tests: routes by MD5 like Kinesis, throttles
//! chosen entries a fixed number of times, rejects keys starting with `bad-` as invalid, and can
//! hold calls at a gate to observe backpressure. The embedded log has its own tests.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{
    GetRecordsOutput, HashKeyRange, ShardDescription, StreamDescription, hash_key,
};
use shardline_core::{
    Error, PutRecordResult, PutRecordsEntry, Result, SequenceParts, ShardId, ShardIterator,
    StartingPosition,
};

/// One shard's appended (partition key, data), in append order.
pub type ShardRecords = Vec<(String, Vec<u8>)>;

/// Which entries get throttled: the `n`-th distinct payload seen, for `n % every == 0`,
/// is refused `times` times before it is accepted.
pub struct ThrottlingStream {
    shards: Vec<HashKeyRange>,
    pub every: usize,
    pub times: u32,
    /// Appended (partition key, data) per shard, in append order.
    pub appended: Mutex<Vec<ShardRecords>>,
    refusals: Mutex<HashMap<Vec<u8>, (usize, u32)>>,
    distinct: AtomicUsize,
    pub calls: AtomicU64,
    pub max_call_records: AtomicUsize,
    pub max_call_bytes: AtomicUsize,
    /// While closed, calls wait.
    pub gate: tokio::sync::Semaphore,
    pub whole_call_failures: AtomicU64,
    /// Calls that reached the stream, including those waiting at the gate.
    pub entered: AtomicU64,
}

impl ThrottlingStream {
    pub fn new(shards: u32, every: usize, times: u32) -> Self {
        ThrottlingStream {
            shards: HashKeyRange::split_even(shards),
            every,
            times,
            appended: Mutex::new(vec![Vec::new(); shards as usize]),
            refusals: Mutex::new(HashMap::new()),
            distinct: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            max_call_records: AtomicUsize::new(0),
            max_call_bytes: AtomicUsize::new(0),
            gate: tokio::sync::Semaphore::new(tokio::sync::Semaphore::MAX_PERMITS),
            whole_call_failures: AtomicU64::new(0),
            entered: AtomicU64::new(0),
        }
    }

    pub fn total(&self) -> usize {
        self.appended
            .lock()
            .map(|a| a.iter().map(Vec::len).sum())
            .unwrap_or(0)
    }
}

#[async_trait]
impl Stream for ThrottlingStream {
    async fn create_stream(&self, _: &str, _: u32, _: Duration) -> Result<()> {
        Ok(())
    }
    async fn delete_stream(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn list_streams(&self) -> Result<Vec<String>> {
        Ok(vec!["metrics".into()])
    }
    async fn describe_stream(&self, name: &str) -> Result<StreamDescription> {
        Err(Error::Internal(format!(
            "describe_stream({name}) is not used by producer tests"
        )))
    }
    async fn list_shards(&self, _: &str) -> Result<Vec<ShardDescription>> {
        Ok(Vec::new())
    }

    async fn put_records(
        &self,
        name: &str,
        entries: Vec<PutRecordsEntry>,
    ) -> Result<Vec<PutRecordResult>> {
        if name != "metrics" {
            return Err(Error::not_found(format!("stream \"{name}\"")));
        }
        self.entered.fetch_add(1, Ordering::SeqCst);
        let _pass = self
            .gate
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("gate closed".into()))?;
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        // Every 7th call fails as a whole, retryably, when `times` > 0.
        if self.times > 0 && call % 7 == 6 {
            self.whole_call_failures.fetch_add(1, Ordering::SeqCst);
            return Err(Error::Unavailable("backend busy".into()));
        }
        self.max_call_records
            .fetch_max(entries.len(), Ordering::SeqCst);
        let bytes: usize = entries
            .iter()
            .map(|e| e.data.len() + e.partition_key.len())
            .sum();
        self.max_call_bytes.fetch_max(bytes, Ordering::SeqCst);
        let mut out = Vec::with_capacity(entries.len());
        let mut refusals = self
            .refusals
            .lock()
            .map_err(|_| Error::Internal("poisoned".into()))?;
        let mut appended = self
            .appended
            .lock()
            .map_err(|_| Error::Internal("poisoned".into()))?;
        for e in entries {
            if e.partition_key.starts_with("bad-") {
                out.push(PutRecordResult::Err {
                    error_code: "ValidationException".into(),
                    error_message: format!("partition key {} is refused", e.partition_key),
                });
                continue;
            }
            let seen = refusals
                .entry(e.data.to_vec())
                .or_insert_with(|| (self.distinct.fetch_add(1, Ordering::SeqCst), 0));
            if self.every > 0 && seen.0 % self.every == 0 && seen.1 < self.times {
                seen.1 += 1;
                out.push(PutRecordResult::Err {
                    error_code: "ProvisionedThroughputExceededException".into(),
                    error_message: "Rate exceeded for shard".into(),
                });
                continue;
            }
            let h = hash_key(&e.partition_key);
            let shard = self.shards.iter().position(|r| r.contains(h)).unwrap_or(0);
            let offset = appended[shard].len() as u64;
            appended[shard].push((e.partition_key.clone(), e.data.to_vec()));
            out.push(PutRecordResult::Ok {
                shard_id: ShardId(shard as u32),
                sequence_number: SequenceParts {
                    shard_index: shard as u32,
                    offset,
                    shard_created_secs: 1,
                    arrival_secs: 2,
                }
                .encode(),
            });
        }
        Ok(out)
    }

    async fn get_shard_iterator(
        &self,
        _: &str,
        _: ShardId,
        _: &StartingPosition,
    ) -> Result<ShardIterator> {
        Err(Error::Internal(
            "reads are not used by producer tests".into(),
        ))
    }
    async fn get_records(&self, _: &ShardIterator, _: usize) -> Result<GetRecordsOutput> {
        Err(Error::Internal(
            "reads are not used by producer tests".into(),
        ))
    }
}
