//! [`Log`]: opening a log directory, the stream registry, writers, retention and close.
//!
//! Directory layout:
//! ```text
//! <dir>/LOCK                                   held (flock) while a process has the log open
//! <dir>/ITERATOR_KEY                           the secret that authenticates shard iterators
//! <dir>/<stream>/stream.json                   stream metadata (see crate::meta)
//! <dir>/<stream>/shardId-000000000000/<base>.seg, <base>.idx
//! ```
//! A stream being deleted is first renamed to `<dir>/~deleted~<stream>~<ms>` (`~` cannot occur
//! in a stream name), then removed; leftovers of an interrupted delete are removed on open,
//! as are temporary files of interrupted metadata and index writes (`stream.json.tmp`,
//! `<base>.idx.tmp`: the log's only write-then-rename files).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use shardline_core::stream::{HashKeyRange, ShardId, limits};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::error::LogError;
use crate::handles::SealedHandles;
use crate::iterator::IteratorKey;
use crate::meta::{self, ShardMeta, StreamMeta};
use crate::options::LogOptions;
use crate::recovery;
use crate::retention::RetentionReport;
use crate::shard::{Shard, ShardView};
use crate::throttle::{ReadThrottle, Throttle};
use crate::writer::{self, AppendRequest};

/// Most shards a stream may have.
pub const MAX_SHARDS: u32 = 1024;

/// The embedded, durable, sharded log. Share it as `Arc<Log>`; it implements
/// [`shardline_core::ports::Stream`].
#[derive(Debug)]
pub struct Log {
    pub(crate) inner: Arc<Inner>,
    retention_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) options: LogOptions,
    pub(crate) streams: RwLock<BTreeMap<String, Arc<StreamHandle>>>,
    pub(crate) admin: tokio::sync::Mutex<()>,
    pub(crate) closed: AtomicBool,
    /// Authenticates shard iterators (see `iterator`).
    pub(crate) iterator_key: IteratorKey,
    /// Read handles of sealed segments, shared by every shard.
    pub(crate) handles: Arc<SealedHandles>,
    /// The flock on `<dir>/LOCK`: given back by `close` (the writers are stopped by then), so
    /// the directory can be opened again at once even while a task still holds a clone of
    /// this `Log`; otherwise when the last clone is dropped.
    lock: Mutex<Option<File>>,
}

/// An open stream: metadata and its shards' writers. Immutable: every change to the stream's
/// metadata (resharding, retention, tags) commits a new `stream.json` and replaces the handle
/// in the registry; handles taken earlier stay valid (their shards are shared).
#[derive(Debug)]
pub(crate) struct StreamHandle {
    pub(crate) meta: StreamMeta,
    /// Current retention, hours, shared by every handle of the stream (read by retention).
    pub(crate) retention_hours: Arc<AtomicU32>,
    pub(crate) dir: PathBuf,
    /// The shards, in `meta.shards` order (by id).
    pub(crate) shards: Vec<Arc<ShardHandle>>,
    /// Positions of the open shards, ordered by hash-key range.
    pub(crate) routing: Vec<usize>,
}

#[derive(Debug)]
pub(crate) struct ShardHandle {
    pub(crate) shard: Arc<Shard>,
    /// `None` once the shard is closed (or the log is closing).
    pub(crate) sender: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl ShardHandle {
    /// Stops the writer after it has written and acknowledged everything already queued.
    /// Appends that find no sender after this are refused; the shard's records are final.
    pub(crate) fn seal(&self) {
        lock(&self.sender).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// A shard's size and position figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStats {
    /// The shard.
    pub shard: ShardId,
    /// Offset of the oldest retained record.
    pub trim_offset: u64,
    /// Offset the next record will get.
    pub next_offset: u64,
    /// Bytes in its segment files.
    pub bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Arrival time of the newest record, epoch milliseconds.
    pub last_arrival_ms: Option<i64>,
    /// `fdatasync` calls since open.
    pub syncs: u64,
    /// Append requests (per-shard parts of put_records calls) committed since open.
    pub appends: u64,
    /// Group-commit batches written since open.
    pub batches: u64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub(crate) fn stream(&self, name: &str) -> Result<Arc<StreamHandle>, LogError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Unavailable("the log is closed".into()));
        }
        let streams = self.streams.read().unwrap_or_else(|p| p.into_inner());
        streams
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::StreamNotFound(name.to_string()))
    }

    pub(crate) fn start_stream(
        &self,
        meta: StreamMeta,
        dir: PathBuf,
    ) -> Result<StreamHandle, LogError> {
        crate::reshard::remove_unlisted_shards(&meta, &dir)?;
        let mut shards = Vec::with_capacity(meta.shards.len());
        for sm in &meta.shards {
            shards.push(Arc::new(self.start_shard(&meta.name, sm, &dir)?));
        }
        Ok(StreamHandle::new(
            meta,
            dir,
            shards,
            Arc::new(AtomicU32::new(0)),
        ))
    }

    /// Recovers a shard's directory (creating it if needed) and, when the shard is open,
    /// starts its writer. A closed shard must hold exactly the records it was closed with.
    pub(crate) fn start_shard(
        &self,
        stream: &str,
        sm: &ShardMeta,
        dir: &Path,
    ) -> Result<ShardHandle, LogError> {
        let shard_dir = dir.join(sm.shard_id.to_string());
        let r = recovery::recover_shard(
            &shard_dir,
            stream,
            &sm.shard_id.to_string(),
            self.options.index_interval_bytes,
        )?;
        let shard = Arc::new(Shard {
            stream: stream.to_string(),
            id: sm.shard_id,
            range: sm.hash_key_range,
            created_secs: sm.created_secs,
            dir: shard_dir,
            view: RwLock::new(ShardView {
                segments: r.segments,
            }),
            syncs: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            throttle: Mutex::new(Throttle::default()),
            read_throttle: Mutex::new(ReadThrottle::default()),
            handles: self.handles.clone(),
        });
        if let Some(closed) = sm.closed {
            let next = shard.read_view().next_offset();
            if next > closed.end_offset {
                return Err(LogError::corrupt(
                    &shard.dir,
                    0,
                    format!(
                        "closed shard holds offsets up to {next} but was closed at {}",
                        closed.end_offset
                    ),
                ));
            }
            if next < closed.end_offset {
                warn!(stream, shard = %sm.shard_id, next, end = closed.end_offset, "closed shard lost records it was closed with");
            }
            return Ok(ShardHandle {
                shard,
                sender: Mutex::new(None),
                thread: Mutex::new(None),
            });
        }
        let (tx, rx) = mpsc::channel(writer::QUEUE_DEPTH);
        let (s, opts, active) = (shard.clone(), self.options.clone(), r.active);
        let log_dir = self.dir.clone();
        let thread = std::thread::Builder::new()
            .name(format!("log-writer-{}", sm.shard_id.index()))
            .spawn(move || writer::run(s, active, rx, opts, log_dir))
            .map_err(|e| LogError::io(dir, e))?;
        Ok(ShardHandle {
            shard,
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stores `meta` as the stream's metadata (the commit point of every change to it) and
    /// makes a handle over `shards` (in `meta.shards` order) the stream's current one.
    /// The caller holds `admin`.
    pub(crate) fn commit(
        &self,
        old: &StreamHandle,
        meta: StreamMeta,
        shards: Vec<Arc<ShardHandle>>,
    ) -> Result<Arc<StreamHandle>, LogError> {
        meta::store(&old.dir, &meta)?;
        Ok(self.publish(old, meta, shards))
    }

    /// Makes a handle over `shards` with `meta` the stream's current one (no file written).
    pub(crate) fn publish(
        &self,
        old: &StreamHandle,
        meta: StreamMeta,
        shards: Vec<Arc<ShardHandle>>,
    ) -> Arc<StreamHandle> {
        let handle = Arc::new(StreamHandle::new(
            meta,
            old.dir.clone(),
            shards,
            old.retention_hours.clone(),
        ));
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(handle.meta.name.clone(), handle.clone());
        handle
    }
}

impl StreamHandle {
    fn new(
        meta: StreamMeta,
        dir: PathBuf,
        shards: Vec<Arc<ShardHandle>>,
        retention_hours: Arc<AtomicU32>,
    ) -> StreamHandle {
        retention_hours.store(meta.retention_hours, Ordering::Release);
        let mut routing: Vec<usize> = (0..meta.shards.len())
            .filter(|&i| meta.shards[i].is_open())
            .collect();
        routing.sort_by_key(|&i| meta.shards[i].hash_key_range.start);
        StreamHandle {
            retention_hours,
            meta,
            dir,
            shards,
            routing,
        }
    }

    /// The position (in `shards` and `meta.shards`) of the shard with this id.
    pub(crate) fn position(&self, id: ShardId) -> Option<usize> {
        self.meta
            .shards
            .binary_search_by_key(&id, |s| s.shard_id)
            .ok()
    }

    /// The position of the open shard whose hash-key range holds `key`.
    pub(crate) fn route(&self, key: u128) -> usize {
        let i = self
            .routing
            .partition_point(|&i| self.shards[i].shard.range.end < key)
            .min(self.routing.len().saturating_sub(1));
        self.routing.get(i).copied().unwrap_or(0)
    }

    /// Stops the writers after they drain their queues.
    pub(crate) fn stop(&self) {
        for s in &self.shards {
            lock(&s.sender).take();
        }
        for s in &self.shards {
            if let Some(t) = lock(&s.thread).take() {
                let _ = t.join();
            }
        }
    }
}

impl Log {
    /// Opens (creating if needed) the log in `dir` and recovers every shard.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] for mid-log damage (naming file and offset), I/O errors,
    /// [`LogError::Unavailable`] when another process has the directory open.
    pub async fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<Log, LogError> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let inner = tokio::task::spawn_blocking(move || open_blocking(dir, options))
            .await
            .map_err(|e| LogError::Unavailable(format!("open task failed: {e}")))??;
        let inner = Arc::new(inner);
        let weak = Arc::downgrade(&inner);
        let task = tokio::spawn(crate::retention::run_every_interval(weak));
        Ok(Log {
            inner,
            retention_task: Mutex::new(Some(task)),
        })
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Figures for every shard of a stream.
    ///
    /// # Errors
    /// [`LogError::StreamNotFound`].
    pub async fn shard_stats(&self, stream: &str) -> Result<Vec<ShardStats>, LogError> {
        let s = self.inner.stream(stream)?;
        Ok(s.shards
            .iter()
            .map(|h| {
                let v = h.shard.read_view();
                ShardStats {
                    shard: h.shard.id,
                    trim_offset: v.trim_offset(),
                    next_offset: v.next_offset(),
                    bytes: v.bytes(),
                    segments: v.segments.len(),
                    last_arrival_ms: v.last_arrival_ms(),
                    syncs: h.shard.syncs.load(Ordering::Relaxed),
                    appends: h.shard.appends.load(Ordering::Relaxed),
                    batches: h.shard.batches.load(Ordering::Relaxed),
                }
            })
            .collect())
    }

    /// Deletes every sealed segment whose newest record is older than its stream's retention.
    /// The active segment is never deleted. Also run every minute in the background.
    ///
    /// # Errors
    /// I/O errors deleting files.
    pub async fn enforce_retention(&self) -> Result<RetentionReport, LogError> {
        let dropped = crate::reshard::drop_expired(&self.inner).await?;
        let mut report = crate::retention::enforce(&self.inner)?;
        report.shards_dropped = dropped;
        Ok(report)
    }

    /// Flushes and stops every writer; later calls fail with [`LogError::Unavailable`].
    ///
    /// # Errors
    /// A failure joining the writers.
    pub async fn close(&self) -> Result<(), LogError> {
        if let Some(t) = lock(&self.retention_task).take() {
            t.abort();
        }
        self.inner.closed.store(true, Ordering::Release);
        let streams: Vec<_> = {
            let mut map = self
                .inner
                .streams
                .write()
                .unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *map).into_values().collect()
        };
        tokio::task::spawn_blocking(move || streams.iter().for_each(|s| s.stop()))
            .await
            .map_err(|e| LogError::Unavailable(format!("closing writers failed: {e}")))?;
        // Every writer has stopped: the directory may be opened again.
        drop(lock(&self.inner.lock).take());
        Ok(())
    }

    /// Creates a stream (see [`shardline_core::ports::Stream::create_stream`]).
    ///
    /// # Errors
    /// Invalid name, shard count or retention; [`LogError::StreamExists`]; I/O errors.
    pub async fn create(
        &self,
        name: &str,
        shards: u32,
        retention: Duration,
    ) -> Result<(), LogError> {
        meta::validate_name(name)?;
        if !(1..=MAX_SHARDS).contains(&shards) {
            return Err(LogError::InvalidArgument(format!(
                "stream \"{name}\": shard count must be 1 to {MAX_SHARDS}, got {shards}"
            )));
        }
        let hours = retention_hours(name, retention)?;
        let _admin = self.inner.admin.lock().await;
        if self.inner.stream(name).is_ok() {
            return Err(LogError::StreamExists(name.to_string()));
        }
        let now = self.inner.options.clock.now_ms();
        let created_secs = u64::try_from(now / 1000).unwrap_or(0);
        let meta = StreamMeta {
            name: name.to_string(),
            created_ms: now,
            retention_hours: hours,
            shards: HashKeyRange::split_even(shards)
                .into_iter()
                .enumerate()
                .map(|(i, r)| ShardMeta::new(ShardId(i as u32), r, created_secs))
                .collect(),
            tags: BTreeMap::new(),
            retired_ids: 0,
            consumers: Vec::new(),
        };
        let inner = self.inner.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let dir = inner.dir.join(&meta.name);
            std::fs::create_dir_all(&dir).map_err(|e| LogError::io(&dir, e))?;
            for s in &meta.shards {
                let sd = dir.join(s.shard_id.to_string());
                std::fs::create_dir_all(&sd).map_err(|e| LogError::io(&sd, e))?;
            }
            meta::store(&dir, &meta)?;
            meta::sync_dir(&inner.dir)?;
            inner.start_stream(meta, dir)
        })
        .await
        .map_err(|e| LogError::Unavailable(format!("create task failed: {e}")))??;
        info!(
            stream = name,
            shards,
            retention_hours = hours,
            "stream created"
        );
        let mut map = self
            .inner
            .streams
            .write()
            .unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_string(), Arc::new(handle));
        Ok(())
    }

    /// Changes a stream's retention period (1 to 8,760 hours), persisted in its metadata.
    /// Shortening it lets the next retention pass delete more.
    ///
    /// # Errors
    /// Retention out of range; [`LogError::StreamNotFound`]; I/O errors.
    pub async fn set_retention(&self, name: &str, retention: Duration) -> Result<(), LogError> {
        let hours = retention_hours(name, retention)?;
        let _admin = self.inner.admin.lock().await;
        let s = self.inner.stream(name)?;
        let mut meta = s.meta.clone();
        meta.retention_hours = hours;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.commit(&s, meta, s.shards.clone()))
            .await
            .map_err(|e| LogError::Unavailable(format!("retention update failed: {e}")))??;
        info!(stream = name, retention_hours = hours, "retention changed");
        Ok(())
    }

    /// Deletes a stream and all its data.
    ///
    /// # Errors
    /// [`LogError::StreamNotFound`]; I/O errors.
    pub async fn delete(&self, name: &str) -> Result<(), LogError> {
        let _admin = self.inner.admin.lock().await;
        self.inner.stream(name)?;
        let handle = {
            let mut map = self
                .inner
                .streams
                .write()
                .unwrap_or_else(|p| p.into_inner());
            map.remove(name)
                .ok_or_else(|| LogError::StreamNotFound(name.to_string()))?
        };
        let root = self.inner.dir.clone();
        let handles = self.inner.handles.clone();
        let now = self.inner.options.clock.now_ms();
        tokio::task::spawn_blocking(move || {
            handle.stop();
            handles.forget_under(&handle.dir);
            let trash = root.join(format!("~deleted~{}~{now}", handle.meta.name));
            std::fs::rename(&handle.dir, &trash).map_err(|e| LogError::io(&handle.dir, e))?;
            meta::sync_dir(&root)?;
            std::fs::remove_dir_all(&trash).map_err(|e| LogError::io(&trash, e))
        })
        .await
        .map_err(|e| LogError::Unavailable(format!("delete task failed: {e}")))??;
        info!(stream = name, "stream deleted");
        Ok(())
    }
}

fn open_blocking(dir: PathBuf, options: LogOptions) -> Result<Inner, LogError> {
    std::fs::create_dir_all(&dir).map_err(|e| LogError::io(&dir, e))?;
    let lock_path = dir.join("LOCK");
    let lock_file = File::create(&lock_path).map_err(|e| LogError::io(&lock_path, e))?;
    lock_file.try_lock().map_err(|_| {
        LogError::Unavailable(format!(
            "{} is open in another process; close it first",
            dir.display()
        ))
    })?;
    let handles = SealedHandles::new(
        options.open_sealed_segments,
        options.sealed_handle_idle,
        options.clock.clone(),
    );
    let inner = Inner {
        dir: dir.clone(),
        options,
        streams: RwLock::new(BTreeMap::new()),
        admin: tokio::sync::Mutex::new(()),
        closed: AtomicBool::new(false),
        iterator_key: IteratorKey::load_or_create(&dir)?,
        handles: Arc::new(handles),
        lock: Mutex::new(Some(lock_file)),
    };
    let mut streams = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| LogError::io(&dir, e))? {
        let entry = entry.map_err(|e| LogError::io(&dir, e))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("~deleted~") {
            warn!(dir = %path.display(), "removing a stream whose deletion was interrupted");
            std::fs::remove_dir_all(&path).map_err(|e| LogError::io(&path, e))?;
            continue;
        }
        meta::remove_temp(&path)?;
        let Some(meta) = meta::load(&path)? else {
            continue;
        };
        let handle = inner.start_stream(meta, path)?;
        streams.insert(name, Arc::new(handle));
    }
    *inner.streams.write().unwrap_or_else(|p| p.into_inner()) = streams;
    Ok(inner)
}

/// Whole hours of `retention` (rounded up), checked against 1..=8760.
fn retention_hours(name: &str, retention: Duration) -> Result<u32, LogError> {
    let hours = retention.as_secs().div_ceil(3600);
    if !(1..=u64::from(limits::MAX_RETENTION_HOURS)).contains(&hours) {
        return Err(LogError::InvalidArgument(format!(
            "stream \"{name}\": retention must be 1 to 8760 hours, got {retention:?}"
        )));
    }
    Ok(hours as u32)
}
