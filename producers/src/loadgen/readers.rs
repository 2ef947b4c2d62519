//! Loadgen's readers: consumers measuring end-to-end lag while the load runs, and reading
//! everything back afterwards to measure GetRecords.
//!
//! A consumer starts every open shard at LATEST before the first record is sent, follows
//! closed shards into their children (from TRIM_HORIZON) and lists shards every second for
//! new ones; a refused iterator (expired) is resolved again after the last record read. It
//! stops once it has read as many records as were acknowledged, or [`super::DRAIN_LIMIT`] after
//! writing stopped.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use shardline_core::ports::Stream;
use shardline_core::stream::{SequenceNumber, ShardId, ShardIterator, StartingPosition};
use tokio::task::JoinHandle;

use super::histogram::{Histogram, Latency};
use super::workload::sent_ms;
use super::{DRAIN_LIMIT, LiveStats, LoadConfig};

/// One consumer's result.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerReport {
    /// `consumer-1`, ...
    pub name: String,
    /// Records it read.
    pub records: u64,
    /// Whether it read every acknowledged record before the drain limit.
    pub caught_up: bool,
    /// Read time minus send time, per record.
    pub lag: Latency,
}

/// Reading everything back.
#[derive(Debug, Clone, Serialize)]
pub struct ReadBackReport {
    /// Records read.
    pub records: u64,
    /// How long it took, ms.
    pub duration_ms: u64,
    /// Records per second.
    pub rate: f64,
    /// get_records call latency.
    pub call_latency: Latency,
}

pub(super) struct Consumer {
    name: String,
    read: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Histogram>,
}

struct ShardCursor {
    iterator: Option<ShardIterator>,
    last: Option<SequenceNumber>,
    done: bool,
}

pub(super) async fn start_consumers(
    stream: &Arc<dyn Stream>,
    cfg: &LoadConfig,
    live: &Arc<LiveStats>,
) -> Result<Vec<Consumer>, String> {
    let mut out = Vec::new();
    for i in 0..cfg.consumers {
        let mut cursors = BTreeMap::new();
        for s in stream
            .list_shards(&cfg.stream)
            .await
            .map_err(|e| format!("cannot list the shards of {}: {e}", cfg.stream))?
        {
            if s.ending_sequence_number.is_some() {
                continue;
            }
            let it = stream
                .get_shard_iterator(&cfg.stream, s.shard_id, &StartingPosition::Latest)
                .await
                .map_err(|e| format!("cannot start reading {}: {e}", s.shard_id))?;
            cursors.insert(
                s.shard_id,
                ShardCursor {
                    iterator: Some(it),
                    last: None,
                    done: false,
                },
            );
        }
        let read = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(consume(
            stream.clone(),
            cfg.stream.clone(),
            cursors,
            read.clone(),
            stop.clone(),
            live.clone(),
        ));
        out.push(Consumer {
            name: format!("consumer-{}", i + 1),
            read,
            stop,
            task,
        });
    }
    Ok(out)
}

async fn consume(
    stream: Arc<dyn Stream>,
    name: String,
    mut cursors: BTreeMap<ShardId, ShardCursor>,
    read: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    live: Arc<LiveStats>,
) -> Histogram {
    let mut lag = Histogram::default();
    let mut listed = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let mut got = 0usize;
        let ids: Vec<ShardId> = cursors.keys().copied().collect();
        for id in ids {
            let Some(c) = cursors.get_mut(&id) else {
                continue;
            };
            if c.done {
                continue;
            }
            if c.iterator.is_none() {
                let pos = c.last.clone().map_or(
                    StartingPosition::TrimHorizon,
                    StartingPosition::AfterSequenceNumber,
                );
                c.iterator = stream.get_shard_iterator(&name, id, &pos).await.ok();
            }
            let Some(it) = c.iterator.clone() else {
                continue;
            };
            match stream.get_records(&it, 10_000).await {
                Ok(out) => {
                    let now = shardline_core::time::now_ms();
                    for r in &out.records {
                        if let Some(sent) = sent_ms(&r.data) {
                            lag.record(u64::try_from(now - sent).unwrap_or(0) * 1000);
                        }
                    }
                    if let Some(r) = out.records.last() {
                        c.last = Some(r.sequence_number.clone());
                    }
                    got += out.records.len();
                    read.fetch_add(out.records.len() as u64, Ordering::Relaxed);
                    live.consumed
                        .fetch_add(out.records.len() as u64, Ordering::Relaxed);
                    c.done = out.next_iterator.is_none();
                    c.iterator = out.next_iterator;
                }
                Err(e) if e.retry_class() == shardline_core::RetryClass::Retryable => {}
                Err(_) => c.iterator = None,
            }
        }
        if listed.elapsed() >= Duration::from_secs(1) || cursors.values().any(|c| c.done) {
            listed = Instant::now();
            if let Ok(shards) = stream.list_shards(&name).await {
                for s in shards {
                    cursors.entry(s.shard_id).or_insert(ShardCursor {
                        iterator: None,
                        last: None,
                        done: false,
                    });
                }
            }
        }
        if got == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    lag
}

pub(super) async fn finish_consumers(
    consumers: Vec<Consumer>,
    acknowledged: u64,
    live: &LiveStats,
) -> Vec<ConsumerReport> {
    let deadline = Instant::now() + DRAIN_LIMIT;
    let _ = live;
    let mut out = Vec::new();
    for c in consumers {
        while c.read.load(Ordering::Acquire) < acknowledged && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.stop.store(true, Ordering::Release);
        let lag = c.task.await.unwrap_or_default();
        let records = c.read.load(Ordering::Acquire);
        out.push(ConsumerReport {
            name: c.name,
            records,
            caught_up: records >= acknowledged,
            lag: lag.summary(),
        });
    }
    out
}

pub(super) async fn read_back(
    stream: &Arc<dyn Stream>,
    cfg: &LoadConfig,
    live: &Arc<LiveStats>,
) -> Result<ReadBackReport, String> {
    let shards: VecDeque<ShardId> = stream
        .list_shards(&cfg.stream)
        .await
        .map_err(|e| format!("cannot list the shards of {}: {e}", cfg.stream))?
        .into_iter()
        .map(|s| s.shard_id)
        .collect();
    let queue = Arc::new(tokio::sync::Mutex::new(shards));
    let start = Instant::now();
    let deadline = start + DRAIN_LIMIT;
    let tasks: Vec<_> = (0..cfg.callers)
        .map(|_| {
            let (stream, queue, name, live) = (
                stream.clone(),
                queue.clone(),
                cfg.stream.clone(),
                live.clone(),
            );
            tokio::spawn(async move {
                let mut hist = Histogram::default();
                let mut records = 0u64;
                loop {
                    let Some(id) = queue.lock().await.pop_front() else {
                        break;
                    };
                    let Ok(mut it) = stream
                        .get_shard_iterator(&name, id, &StartingPosition::TrimHorizon)
                        .await
                    else {
                        continue;
                    };
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let Ok(out) = stream.get_records(&it, 10_000).await else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        hist.record(t.elapsed().as_micros() as u64);
                        records += out.records.len() as u64;
                        live.read_back
                            .fetch_add(out.records.len() as u64, Ordering::Relaxed);
                        match out.next_iterator {
                            Some(next)
                                if !out.records.is_empty() || out.millis_behind_latest > 0 =>
                            {
                                it = next
                            }
                            _ => break,
                        }
                    }
                }
                (hist, records)
            })
        })
        .collect();
    let mut hist = Histogram::default();
    let mut records = 0;
    for t in tasks {
        if let Ok((h, n)) = t.await {
            hist.merge(&h);
            records += n;
        }
    }
    let elapsed = start.elapsed();
    Ok(ReadBackReport {
        records,
        duration_ms: elapsed.as_millis() as u64,
        rate: records as f64 / elapsed.as_secs_f64().max(1e-9),
        call_latency: hist.summary(),
    })
}
