//! Resharding: SplitShard, MergeShards, UpdateShardCount (UNIFORM_SCALING), and dropping closed
//! shards past retention.
//!
//! Lineage lives in the stream metadata (`meta`): a closed shard records the offset one past its
//! last record and when it closed; a child records its parent (and, after a merge, the adjacent
//! parent). A reshard runs under the log's admin lock, in this order:
//! 1. plan the new metadata (validating the request against the current shards);
//! 2. seal every open shard the plan closes: its writer acknowledges what is queued and stops;
//!    appends arriving later are routed again once the reshard ends (see `put`). Its next
//!    offset is now final and becomes its `end_offset`;
//! 3. create the new shards' directories and start their writers;
//! 4. commit: write the new `stream.json` atomically (the single commit point);
//! 5. publish the new stream handle.
//!
//! A failure before the commit puts the sealed shards back in service and removes the new
//! directories. A crash before the commit leaves the old metadata (the split never happened; its
//! sealed parents simply reopen) and perhaps new shard directories, which hold no records (no
//! append can reach a shard before its handle is published) and are removed on open. A crash
//! after the commit leaves the new lineage, whose parents hold exactly their records (sealing
//! synced them). Either way every acknowledged record is in exactly one shard.
//!
//! UpdateShardCount reaches the uniform layout of the target count by splits at the target
//! boundaries that fall inside open shards, then merges of the pieces within each target range,
//! all in one commit, as Kinesis does (the intermediate shards appear, closed, in the lineage).

use std::sync::Arc;

use shardline_core::stream::{HashKeyRange, ShardId};
use tracing::{info, warn};

use crate::error::LogError;
use crate::log::{Log, MAX_SHARDS, ShardHandle, StreamHandle};
use crate::meta::{ShardClosed, ShardMeta, StreamMeta};

/// Closing and creating shards in a copy of the metadata.
struct Plan {
    meta: StreamMeta,
    now_ms: i64,
    /// Shards open before the plan that it closes (their end offsets are filled in at sealing).
    closing: Vec<ShardId>,
    /// Shards the plan creates.
    fresh: Vec<ShardId>,
}

impl Plan {
    fn new(meta: &StreamMeta, now_ms: i64) -> Plan {
        Plan {
            meta: meta.clone(),
            now_ms,
            closing: Vec::new(),
            fresh: Vec::new(),
        }
    }

    fn open(&self, id: ShardId) -> Result<&ShardMeta, LogError> {
        let sm = self.meta.shard(id).ok_or_else(|| LogError::ShardNotFound {
            stream: self.meta.name.clone(),
            shard: id.to_string(),
        })?;
        if !sm.is_open() {
            return Err(LogError::InvalidArgument(format!(
                "{id} of stream \"{}\" is closed (it was already split or merged); \
                 reshard its open children instead",
                self.meta.name
            )));
        }
        Ok(sm)
    }

    fn close(&mut self, id: ShardId) {
        let now_ms = self.now_ms;
        if let Some(sm) = self.meta.shards.iter_mut().find(|s| s.shard_id == id) {
            // A shard created by this plan holds nothing; the others get their end at sealing.
            sm.closed = Some(ShardClosed {
                end_offset: 0,
                closed_ms: now_ms,
            });
        }
        if !self.fresh.contains(&id) {
            self.closing.push(id);
        }
    }

    fn child(
        &mut self,
        range: HashKeyRange,
        parent: ShardId,
        adjacent: Option<ShardId>,
    ) -> ShardId {
        let id = self.meta.next_shard_id();
        let mut sm = ShardMeta::new(id, range, u64::try_from(self.now_ms / 1000).unwrap_or(0));
        sm.parent_shard_id = Some(parent);
        sm.adjacent_parent_shard_id = adjacent;
        self.meta.shards.push(sm);
        self.fresh.push(id);
        id
    }

    /// Splits open shard `id` so that `key` starts the second child.
    fn split(&mut self, id: ShardId, key: u128) -> Result<(ShardId, ShardId), LogError> {
        let range = self.open(id)?.hash_key_range;
        if key <= range.start || key > range.end {
            return Err(LogError::InvalidArgument(format!(
                "new starting hash key {key} is not inside {id}'s range {}..={}",
                range.start, range.end
            )));
        }
        self.close(id);
        let a = self.child(
            HashKeyRange {
                start: range.start,
                end: key - 1,
            },
            id,
            None,
        );
        let b = self.child(
            HashKeyRange {
                start: key,
                end: range.end,
            },
            id,
            None,
        );
        Ok((a, b))
    }

    /// Merges open shards `id` and `adjacent`, whose ranges must be contiguous.
    fn merge(&mut self, id: ShardId, adjacent: ShardId) -> Result<ShardId, LogError> {
        let (r1, r2) = (
            self.open(id)?.hash_key_range,
            self.open(adjacent)?.hash_key_range,
        );
        let (lo, hi) = if r1.start < r2.start {
            (r1, r2)
        } else {
            (r2, r1)
        };
        if id == adjacent || lo.end.checked_add(1) != Some(hi.start) {
            return Err(LogError::InvalidArgument(format!(
                "{id} and {adjacent} of stream \"{}\" are not an adjacent pair of shards \
                 (their hash-key ranges must meet)",
                self.meta.name
            )));
        }
        self.close(id);
        self.close(adjacent);
        Ok(self.child(
            HashKeyRange {
                start: lo.start,
                end: hi.end,
            },
            id,
            Some(adjacent),
        ))
    }

    fn open_shards(&self) -> Vec<(ShardId, HashKeyRange)> {
        let mut v: Vec<_> = self
            .meta
            .shards
            .iter()
            .filter(|s| s.is_open())
            .map(|s| (s.shard_id, s.hash_key_range))
            .collect();
        v.sort_by_key(|(_, r)| r.start);
        v
    }
}

impl Log {
    /// Splits an open shard in two at `new_starting_hash_key` (the first hash key of the second
    /// child). The shard closes; its records stay readable until retention drops it.
    ///
    /// # Errors
    /// Unknown stream or shard, a closed shard, a key outside the shard's range, too many open
    /// shards, I/O errors.
    pub async fn split_shard(
        &self,
        name: &str,
        shard: ShardId,
        new_starting_hash_key: u128,
    ) -> Result<Vec<ShardId>, LogError> {
        self.reshard(name, |plan| {
            let (a, b) = plan.split(shard, new_starting_hash_key)?;
            Ok(vec![a, b])
        })
        .await
    }

    /// Merges two open shards with adjacent hash-key ranges into one; `shard` becomes the
    /// child's parent and `adjacent` its adjacent parent.
    ///
    /// # Errors
    /// Unknown stream or shards, closed shards, ranges that do not meet, I/O errors.
    pub async fn merge_shards(
        &self,
        name: &str,
        shard: ShardId,
        adjacent: ShardId,
    ) -> Result<Vec<ShardId>, LogError> {
        self.reshard(name, |plan| Ok(vec![plan.merge(shard, adjacent)?]))
            .await
    }

    /// Reshapes the stream to `target` open shards of uniform hash-key ranges (Kinesis's
    /// UNIFORM_SCALING), by splits and merges. Returns the number of open shards before.
    ///
    /// # Errors
    /// Unknown stream, a target outside 1..=1024 or outside half to double the open shards,
    /// I/O errors.
    pub async fn update_shard_count(&self, name: &str, target: u32) -> Result<u32, LogError> {
        let before = self.inner.stream(name)?.routing.len() as u32;
        if !(1..=MAX_SHARDS).contains(&target) {
            return Err(LogError::LimitExceeded(format!(
                "stream \"{name}\": target shard count {target} is outside 1 to {MAX_SHARDS}"
            )));
        }
        self.reshard(name, |plan| {
            let current = plan.open_shards();
            let n = current.len() as u32;
            if target > n.saturating_mul(2) || target.saturating_mul(2) < n {
                return Err(LogError::LimitExceeded(format!(
                    "stream \"{name}\" has {n} open shards: UpdateShardCount may go from half \
                     to double that ({} to {}), not to {target}",
                    n.div_ceil(2),
                    n * 2
                )));
            }
            let goal = HashKeyRange::split_even(target);
            if current.iter().map(|(_, r)| *r).eq(goal.iter().copied()) {
                return Ok(Vec::new());
            }
            // Splits at every target boundary inside an open shard.
            let mut pieces: Vec<(ShardId, HashKeyRange)> = Vec::new();
            for (id, range) in current {
                let (mut id, mut range) = (id, range);
                for g in goal.iter().skip(1) {
                    if g.start > range.start && g.start <= range.end {
                        let (a, b) = plan.split(id, g.start)?;
                        pieces.push((
                            a,
                            HashKeyRange {
                                start: range.start,
                                end: g.start - 1,
                            },
                        ));
                        id = b;
                        range.start = g.start;
                    }
                }
                pieces.push((id, range));
            }
            // Merges of the pieces within each target range, left to right.
            let mut result = Vec::new();
            for g in &goal {
                let mut inside = pieces
                    .iter()
                    .filter(|(_, r)| r.start >= g.start && r.end <= g.end)
                    .map(|(id, _)| *id);
                let Some(mut acc) = inside.next() else {
                    continue;
                };
                for next in inside {
                    acc = plan.merge(acc, next)?;
                }
                result.push(acc);
            }
            Ok(result)
        })
        .await?;
        Ok(before)
    }

    /// Runs one reshard (see the module doc for the steps); returns the shards created.
    async fn reshard(
        &self,
        name: &str,
        plan_fn: impl FnOnce(&mut Plan) -> Result<Vec<ShardId>, LogError>,
    ) -> Result<Vec<ShardId>, LogError> {
        let _admin = self.inner.admin.lock().await;
        let s = self.inner.stream(name)?;
        let mut plan = Plan::new(&s.meta, self.inner.options.clock.now_ms());
        let created = plan_fn(&mut plan)?;
        if plan.closing.is_empty() {
            return Ok(created);
        }
        let open = plan.meta.shards.iter().filter(|m| m.is_open()).count();
        if open > MAX_SHARDS as usize {
            return Err(LogError::LimitExceeded(format!(
                "stream \"{name}\" would have {open} open shards; at most {MAX_SHARDS}"
            )));
        }
        let inner = self.inner.clone();
        let name2 = name.to_string();
        let done = tokio::task::spawn_blocking(move || apply(&inner, &s, plan))
            .await
            .map_err(|e| LogError::Unavailable(format!("reshard task failed: {e}")))?;
        let handle = done?;
        info!(
            stream = name2,
            open_shards = handle.routing.len(),
            created = ?created.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
            "resharded"
        );
        Ok(created)
    }
}

/// Steps 2 to 5 of a reshard (blocking: joins writers, writes files).
fn apply(
    inner: &crate::log::Inner,
    s: &Arc<StreamHandle>,
    mut plan: Plan,
) -> Result<Arc<StreamHandle>, LogError> {
    for id in &plan.closing {
        if let Some(pos) = s.position(*id) {
            s.shards[pos].seal();
            let end = s.shards[pos].shard.read_view().next_offset();
            if let Some(sm) = plan.meta.shards.iter_mut().find(|m| m.shard_id == *id)
                && let Some(c) = sm.closed.as_mut()
            {
                c.end_offset = end;
            }
        }
    }
    let mut shards: Vec<Arc<ShardHandle>> = Vec::with_capacity(plan.meta.shards.len());
    let mut started = Vec::new();
    let outcome = (|| {
        for sm in &plan.meta.shards {
            match s.position(sm.shard_id) {
                Some(pos) => shards.push(s.shards[pos].clone()),
                None => {
                    let h = Arc::new(inner.start_shard(&plan.meta.name, sm, &s.dir)?);
                    started.push(h.clone());
                    shards.push(h);
                }
            }
        }
        inner.commit(s, plan.meta.clone(), shards.clone())
    })();
    match outcome {
        Ok(handle) => Ok(handle),
        Err(e) => {
            warn!(stream = %s.meta.name, error = %e, "reshard failed before its commit; the shards it closed reopen");
            for h in &started {
                h.seal();
                let _ = std::fs::remove_dir_all(&h.shard.dir);
            }
            let mut restored = Vec::with_capacity(s.shards.len());
            for (sm, h) in s.meta.shards.iter().zip(&s.shards) {
                if plan.closing.contains(&sm.shard_id) {
                    restored.push(Arc::new(inner.start_shard(&s.meta.name, sm, &s.dir)?));
                } else {
                    restored.push(h.clone());
                }
            }
            inner.publish(s, s.meta.clone(), restored);
            Err(e)
        }
    }
}

/// Removes shard directories the metadata does not list: new shards of a reshard interrupted
/// before its commit (they never held a record), and closed shards retention dropped from the
/// metadata before a crash stopped it removing their files.
pub(crate) fn remove_unlisted_shards(
    meta: &StreamMeta,
    dir: &std::path::Path,
) -> Result<(), LogError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Err(LogError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(id) = name.parse::<ShardId>() else {
            continue;
        };
        if meta.shard(id).is_none() && entry.path().is_dir() {
            warn!(stream = %meta.name, shard = %id, "removing the directory of a shard whose reshard was interrupted before its commit");
            std::fs::remove_dir_all(entry.path()).map_err(|e| LogError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// Drops every closed shard that closed longer ago than its stream's retention period (so all
/// its records are past retention): out of the metadata (committed), then its directory.
/// Returns how many were dropped.
pub(crate) async fn drop_expired(inner: &Arc<crate::log::Inner>) -> Result<usize, LogError> {
    let _admin = inner.admin.lock().await;
    let now = inner.options.clock.now_ms();
    let streams: Vec<Arc<StreamHandle>> = inner
        .streams
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    let mut dropped = 0;
    for s in streams {
        let cutoff = now
            - i64::from(s.retention_hours.load(std::sync::atomic::Ordering::Acquire)) * 3_600_000;
        let expired: Vec<ShardId> = s
            .meta
            .shards
            .iter()
            .filter(|m| m.closed.is_some_and(|c| c.closed_ms < cutoff))
            .map(|m| m.shard_id)
            .collect();
        if expired.is_empty() {
            continue;
        }
        let mut meta = s.meta.clone();
        meta.retired_ids = meta.next_shard_id().0;
        meta.shards.retain(|m| !expired.contains(&m.shard_id));
        let shards: Vec<Arc<ShardHandle>> = s
            .meta
            .shards
            .iter()
            .zip(&s.shards)
            .filter(|(m, _)| !expired.contains(&m.shard_id))
            .map(|(_, h)| h.clone())
            .collect();
        let dirs: Vec<std::path::PathBuf> = expired
            .iter()
            .filter_map(|id| s.position(*id))
            .map(|pos| s.shards[pos].shard.dir.clone())
            .collect();
        let inner2 = inner.clone();
        let name = s.meta.name.clone();
        tokio::task::spawn_blocking(move || -> Result<(), LogError> {
            inner2.commit(&s, meta, shards)?;
            for d in dirs {
                inner2.handles.forget_under(&d);
                std::fs::remove_dir_all(&d).map_err(|e| LogError::io(&d, e))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| LogError::Unavailable(format!("retention task failed: {e}")))??;
        for id in &expired {
            info!(stream = %name, shard = %id, "closed shard past retention dropped");
        }
        dropped += expired.len();
    }
    Ok(dropped)
}
