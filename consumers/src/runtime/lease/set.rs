//! [`LeaseSet`]: the shards a worker holds leases on, shared with the consumer reading them.
//!
//! The lease worker changes it; the consumer reads it:
//! - `owned` are the shards the consumer may adopt (`refresh_shards` skips the others);
//! - `lost` are shards whose lease went to another worker (or could not be renewed in time):
//!   a consumer that holds state for one of them stops writing at once
//!   ([`ConsumerError::LeaseLost`](crate::runtime::ConsumerError::LeaseLost)) and is started
//!   again without it, so nothing of a lost shard is written after the worker noticed.
//!
//! Invariants: a shard is never both owned and lost; `lost` is cleared only by
//! [`LeaseSet::restarted`], called when a fresh consumer (fresh sink, no state) is built, and
//! the worker takes no lease of a shard still in `lost`.

use shardline_core::ShardId;
use std::collections::BTreeSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Owned and lost shards, with a version bumped on every change.
#[derive(Debug, Default)]
pub struct LeaseSet {
    inner: RwLock<Inner>,
    version: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    owned: BTreeSet<ShardId>,
    lost: BTreeSet<ShardId>,
}

impl LeaseSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, f: impl FnOnce(&mut Inner)) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        f(&mut inner);
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the consumer may read `shard`.
    pub fn owns(&self, shard: ShardId) -> bool {
        self.read().owned.contains(&shard)
    }

    /// The owned shards.
    pub fn owned(&self) -> BTreeSet<ShardId> {
        self.read().owned.clone()
    }

    /// The first of `shards` that was lost, if any.
    pub fn lost_among<'a>(&self, shards: impl IntoIterator<Item = &'a ShardId>) -> Option<ShardId> {
        let inner = self.read();
        if inner.lost.is_empty() {
            return None;
        }
        shards.into_iter().find(|s| inner.lost.contains(s)).copied()
    }

    /// Whether `shard` waits for the consumer to restart after losing it.
    pub fn is_lost(&self, shard: ShardId) -> bool {
        self.read().lost.contains(&shard)
    }

    /// Changes on every update; a consumer lists shards again when it moved.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// The lease of `shard` was taken.
    pub fn gain(&self, shard: ShardId) {
        self.write(|i| {
            i.lost.remove(&shard);
            i.owned.insert(shard);
        });
    }

    /// The lease of `shard` was let go after the consumer finished with it (released after a
    /// final checkpoint, or the shard ended): nothing to stop.
    pub fn release(&self, shard: ShardId) {
        self.write(|i| {
            i.owned.remove(&shard);
        });
    }

    /// The lease of `shard` was lost: the consumer must stop writing for it.
    pub fn lose(&self, shard: ShardId) {
        self.write(|i| {
            i.owned.remove(&shard);
            i.lost.insert(shard);
        });
    }

    /// A fresh consumer (no state of any lost shard) is being built.
    pub fn restarted(&self) {
        if !self.read().lost.is_empty() {
            self.write(|i| i.lost.clear());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_shards_stay_lost_until_a_restart() {
        let set = LeaseSet::new();
        set.gain(ShardId(0));
        set.gain(ShardId(1));
        let v = set.version();
        set.lose(ShardId(1));
        assert!(set.version() > v);
        assert!(!set.owns(ShardId(1)));
        assert_eq!(set.lost_among(&[ShardId(0), ShardId(1)]), Some(ShardId(1)));
        set.release(ShardId(0));
        assert_eq!(set.lost_among(&[ShardId(0)]), None);
        set.restarted();
        assert!(!set.is_lost(ShardId(1)));
        set.gain(ShardId(1));
        assert_eq!(set.owned(), BTreeSet::from([ShardId(1)]));
    }
}
