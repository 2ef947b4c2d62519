//! Fault injection under the checkpoint store: redb runs over [`FaultyBackend`], a
//! `StorageBackend` that forwards to the real file and fails the writes or syncs a test asks
//! for. A checkpoint write that fails is reported (retryable, naming the file) and not
//! acknowledged; the same store then reopens the file itself and takes writes again, and a
//! fresh open finds every acknowledged checkpoint. (A write reported failed may still be found after the reopen, as with any
//! storage whose fsync failed; checkpoints are written after the records they cover were
//! handled, so that is never a loss.)

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use shardline_core::ports::{CheckpointKey, CheckpointStore};
use shardline_core::{SequenceNumber, ShardId};

use crate::RedbCheckpointStore;
use crate::db::{Db, Durability};

/// Failures still to inject, by operation.
#[derive(Debug, Default)]
struct Faults {
    /// Writes to let through before the failing ones.
    skip_writes: AtomicU32,
    writes: AtomicU32,
    syncs: AtomicU32,
}

fn take(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

#[derive(Debug)]
struct FaultyBackend {
    inner: FileBackend,
    faults: Arc<Faults>,
}

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        if take(&self.faults.syncs) {
            return Err(std::io::Error::from_raw_os_error(EIO));
        }
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        if self.faults.writes.load(Ordering::SeqCst) > 0
            && !take(&self.faults.skip_writes)
            && take(&self.faults.writes)
        {
            // Half of it lands, then the disk is full.
            self.inner.write(offset, &data[..data.len() / 2])?;
            return Err(std::io::Error::from_raw_os_error(ENOSPC));
        }
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

fn open_faulty(path: &Path) -> (RedbCheckpointStore, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    let backend = FaultyBackend {
        inner: FileBackend::new(file).unwrap(),
        faults: faults.clone(),
    };
    let db = Db::open_with_backend(path, backend, Durability::Fsync).unwrap();
    (RedbCheckpointStore::new(db), faults)
}

fn open_plain(path: &Path) -> RedbCheckpointStore {
    RedbCheckpointStore::new(Db::open(path, Durability::Fsync, 1 << 20).unwrap())
}

fn key(shard: u32) -> CheckpointKey {
    CheckpointKey {
        consumer: "c".into(),
        stream: "metrics".into(),
        shard: ShardId(shard),
    }
}

fn seq(n: u64) -> SequenceNumber {
    n.to_string().parse().unwrap()
}

/// Every checkpoint, as (shard, sequence number).
async fn all(store: &RedbCheckpointStore) -> Vec<(u32, String)> {
    store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, c)| (k.shard.0, c.sequence_number.as_str().to_string()))
        .collect()
}

#[tokio::test]
async fn failed_checkpoint_writes_are_not_acknowledged_and_the_store_reopens_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoints.redb");
    // Which operation of the commit fails: its first write (cut short: disk full), a later
    // write, its fdatasync.
    type Counter = fn(&Faults) -> &AtomicU32;
    let cases: [(&str, u32, Counter); 3] = [
        ("first write", 0, |f| &f.writes),
        ("later write", 1, |f| &f.writes),
        ("sync", 0, |f| &f.syncs),
    ];
    let mut acked: Vec<(u32, String)> = Vec::new();
    let mut n = 0u64;
    for (round, (what, skip, counter)) in cases.into_iter().enumerate() {
        let (store, faults) = open_faulty(&path);
        for shard in 0..4 {
            n += 1;
            store
                .put(&key(shard), &seq(n), Some("w"), None)
                .await
                .unwrap();
            acked.retain(|(s, _)| *s != shard);
            acked.push((shard, n.to_string()));
        }
        // The next write fails somewhere inside its commit.
        faults.skip_writes.store(skip, Ordering::SeqCst);
        counter(&faults).store(1, Ordering::SeqCst);
        n += 1;
        let failed = (0, n.to_string());
        let err = store
            .put(&key(0), &seq(n), Some("w"), None)
            .await
            .expect_err(what);
        assert!(
            err.to_string().contains("checkpoints.redb"),
            "{what}: the error names the file: {err}"
        );
        assert_eq!(
            err.retry_class(),
            shardline_core::RetryClass::Retryable,
            "{what}: {err}"
        );
        // The same store takes writes again (it reopened the file), without a restart.
        n += 1;
        store.put(&key(4), &seq(n), Some("w"), None).await.unwrap();
        acked.retain(|(s, _)| *s != 4);
        acked.push((4, n.to_string()));
        drop(store);
        // Reopened (as the process would be after the failure): every acknowledged
        // checkpoint. The failed write may have reached the file anyway (a failed fsync does
        // not prove the data absent): shard 0 holds the acknowledged value or the failed one,
        // nothing else.
        let store = open_plain(&path);
        let mut got = all(&store).await;
        got.sort();
        let mut want = acked.clone();
        want.sort();
        if got[0] == failed {
            want[0] = failed;
        }
        assert_eq!(got, want, "round {round} ({what})");
        acked = got;
        // And it takes writes again.
        n += 1;
        store.put(&key(5), &seq(n), Some("w"), None).await.unwrap();
        acked.retain(|(s, _)| *s != 5);
        acked.push((5, n.to_string()));
        drop(store);
    }
    let store = open_plain(&path);
    assert_eq!(all(&store).await.len(), 6);
}
