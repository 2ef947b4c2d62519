//! [`SealedHandles`]: read handles of sealed segments, opened on demand and kept in a small
//! least-recently-used cache, so a log holds a bounded number of descriptors however many
//! segments retention keeps.
//!
//! A handle unused for `idle` (on the log's clock) is closed at the cache's next use and at
//! every retention pass: readers that keep up with the writers read a segment just sealed once,
//! then the next (active) one, so a long run holds about one sealed handle per shard rather
//! than one per segment sealed since the start up to `capacity`. `idle` 0 keeps handles until
//! the cache is full.
//!
//! Descriptors a log holds: its `LOCK` file, one per shard (the active segment, shared by its
//! writer and its readers) and at most `capacity` here, plus those of reads in progress: a
//! read takes an `Arc<File>` from the cache and keeps it until it returns, so a handle evicted
//! (or forgotten by retention) meanwhile closes when that read ends. Capacity 0 keeps nothing:
//! each read opens and closes its own handle.
//!
//! Invariants: a handle is taken while the caller holds its shard's view lock with the
//! segment in the view, so the file exists when it is opened (retention removes a segment from
//! the view before it unlinks the file, and [`SealedHandles::forget`]s it, so no cached handle
//! keeps a deleted file's space). The cache lock is never held while taking a view lock.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardline_core::time::Clock;

use crate::error::LogError;

/// A bounded cache of read handles of sealed segment files, shared by every shard of a log.
pub struct SealedHandles {
    capacity: usize,
    /// Milliseconds a handle may stay unused; 0: no limit.
    idle_ms: i64,
    time: Arc<dyn Clock>,
    inner: Mutex<Lru>,
}

impl std::fmt::Debug for SealedHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedHandles")
            .field("capacity", &self.capacity)
            .field("idle_ms", &self.idle_ms)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Lru {
    /// Incremented on every use; an entry's stamp is its last use.
    clock: u64,
    /// Handle, use stamp, time of last use (ms on the log's clock).
    open: HashMap<PathBuf, (Arc<File>, u64, i64)>,
}

impl SealedHandles {
    /// A cache keeping at most `capacity` handles open, none unused for longer than `idle`
    /// (zero: no limit) on `clock`.
    pub fn new(capacity: usize, idle: Duration, clock: Arc<dyn Clock>) -> SealedHandles {
        SealedHandles {
            capacity,
            idle_ms: i64::try_from(idle.as_millis()).unwrap_or(i64::MAX),
            time: clock,
            inner: Mutex::new(Lru::default()),
        }
    }

    /// Closes the handles unused for longer than the idle limit; returns how many.
    pub fn close_idle(&self) -> usize {
        let now = self.time.now_ms();
        Self::expire(&mut self.lock(), self.idle_ms, now)
    }

    fn expire(g: &mut Lru, idle_ms: i64, now: i64) -> usize {
        if idle_ms == 0 {
            return 0;
        }
        let before = g.open.len();
        g.open
            .retain(|_, (_, _, used)| now.saturating_sub(*used) <= idle_ms);
        before - g.open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A read handle on the sealed segment at `path`, from the cache or newly opened (closing
    /// the least recently used handle when the cache is full).
    ///
    /// # Errors
    /// [`LogError::Io`] naming the file when it cannot be opened (e.g. too many open files:
    /// raise the descriptor limit or lower `open_sealed_segments`).
    pub fn get(&self, path: &Path) -> Result<Arc<File>, LogError> {
        let now_ms = self.time.now_ms();
        {
            let mut g = self.lock();
            Self::expire(&mut g, self.idle_ms, now_ms);
            g.clock += 1;
            let stamp = g.clock;
            if let Some((file, used, used_ms)) = g.open.get_mut(path) {
                *used = stamp;
                *used_ms = now_ms;
                return Ok(file.clone());
            }
        }
        let file = Arc::new(File::open(path).map_err(|e| LogError::io(path, e))?);
        if self.capacity == 0 {
            return Ok(file);
        }
        let mut g = self.lock();
        g.clock += 1;
        let stamp = g.clock;
        g.open
            .insert(path.to_path_buf(), (file.clone(), stamp, now_ms));
        while g.open.len() > self.capacity {
            let Some(oldest) = g
                .open
                .iter()
                .min_by_key(|(_, (_, used, _))| *used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            g.open.remove(&oldest);
        }
        Ok(file)
    }

    /// Closes the cached handle of `path`, if any (its file is about to be deleted).
    pub fn forget(&self, path: &Path) {
        self.lock().open.remove(path);
    }

    /// Closes every cached handle of a file under `dir` (a stream being deleted).
    pub fn forget_under(&self, dir: &Path) {
        self.lock().open.retain(|p, _| !p.starts_with(dir));
    }

    /// Handles held open now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::time::ManualClock;

    #[test]
    fn keeps_at_most_capacity_and_evicts_the_least_recently_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths: Vec<PathBuf> = (0..5)
            .map(|i| {
                let p = dir.path().join(format!("{i}.seg"));
                std::fs::write(&p, [i as u8]).expect("write");
                p
            })
            .collect();
        let cache = SealedHandles::new(2, Duration::ZERO, ManualClock::new(0));
        let a = cache.get(&paths[0]).expect("open 0");
        cache.get(&paths[1]).expect("open 1");
        // Using 0 again makes 1 the least recently used, so opening 2 closes 1.
        let again = cache.get(&paths[0]).expect("cached 0");
        assert!(Arc::ptr_eq(&a, &again), "a cached handle is reused");
        cache.get(&paths[2]).expect("open 2");
        assert_eq!(cache.len(), 2);
        let one = cache.get(&paths[1]).expect("reopen 1");
        assert!(
            Arc::strong_count(&one) == 2,
            "1 was reopened into the cache"
        );
        cache.forget(&paths[1]);
        assert_eq!(cache.len(), 1);
        cache.forget_under(dir.path());
        assert_eq!(cache.len(), 0);
        let err = cache
            .get(&dir.path().join("missing.seg"))
            .expect_err("missing file");
        assert!(err.to_string().contains("missing.seg"), "{err}");
        let none = SealedHandles::new(0, Duration::ZERO, ManualClock::new(0));
        none.get(&paths[3]).expect("uncached open");
        assert_eq!(none.len(), 0, "capacity 0 keeps nothing open");
    }

    #[test]
    fn handles_unused_past_the_idle_limit_are_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths: Vec<PathBuf> = (0..3)
            .map(|i| {
                let p = dir.path().join(format!("{i}.seg"));
                std::fs::write(&p, [i as u8]).expect("write");
                p
            })
            .collect();
        let clock = ManualClock::new(1_000);
        let cache = SealedHandles::new(8, Duration::from_secs(60), clock.clone());
        cache.get(&paths[0]).expect("open 0");
        clock.advance_ms(30_000);
        cache.get(&paths[1]).expect("open 1");
        clock.advance_ms(30_000);
        assert_eq!(cache.close_idle(), 0, "both used within the last minute");
        clock.advance_ms(1);
        // 0 is past the limit: the next use closes it, 1 stays.
        cache.get(&paths[2]).expect("open 2");
        assert_eq!(cache.len(), 2);
        clock.advance_ms(60_001);
        assert_eq!(cache.close_idle(), 2, "1 and 2 unused for over a minute");
        assert_eq!(cache.len(), 0);
        let keep = SealedHandles::new(8, Duration::ZERO, clock.clone());
        keep.get(&paths[0]).expect("open");
        clock.advance_ms(10 * 3_600_000);
        assert_eq!(keep.close_idle(), 0, "no idle limit");
        assert_eq!(keep.len(), 1);
    }
}
