//! The alerts sink across restarts, failed state writes and replays: every transition is
//! notified exactly once.

use bytes::Bytes;
use shardline_consumers::sinks::alerts::{AlarmRule, AlertsConfig, AlertsSink, read_alarm_states};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::{Notifier, StateStore};
use shardline_core::{Error, MetricEvent, MetricType, Result, SequenceParts, ShardId};
use shardline_local::{LocalBackends, LocalOptions, OutboxNotifier};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const T0_MS: i64 = 1_771_500_000_000;
const MIN: i64 = 60_000;

/// i-300001 alternates ALARM/OK twice; i-300002 stays fine; a tick closes the last minute.
fn series() -> Vec<SinkRecord> {
    let hot = [90.0, 90.0, 50.0, 50.0, 90.0, 50.0];
    let mut rows: Vec<(i64, &str, MetricType, f64)> = Vec::new();
    for (m, v) in hot.iter().enumerate() {
        let ms = T0_MS + m as i64 * MIN + 20_000;
        rows.push((ms, "i-300001", MetricType::CpuUtilization, *v));
        rows.push((ms + 5_000, "i-300002", MetricType::CpuUtilization, 30.0));
    }
    rows.push((
        T0_MS + 6 * MIN,
        "i-clock",
        MetricType::NetworkTraffic,
        100.0,
    ));
    rows.into_iter()
        .enumerate()
        .map(|(i, (ms, instance, metric, value))| {
            let secs = ms.div_euclid(1000);
            SinkRecord {
                shard: ShardId(0),
                sequence_number: SequenceParts {
                    shard_index: 0,
                    offset: i as u64,
                    shard_created_secs: 1_771_000_000,
                    arrival_secs: secs as u64,
                }
                .encode(),
                arrival_ms: ms,
                event: std::sync::Arc::new(MetricEvent {
                    metric_id: format!("{}-{secs}", metric.id_prefix()),
                    metric_type: metric,
                    timestamp: secs,
                    timestamp_ms: Some(ms),
                    value,
                    unit: None,
                    instance_id: instance.to_string(),
                    region: "eu-west-1".to_string(),
                    collected_at: "2026-02-19T11:25:09".to_string(),
                }),
            }
        })
        .collect()
}

const EXPECTED: [&str; 4] = [
    "ALARM: \"cpu_utilization > 80\" on i-300001",
    "OK: \"cpu_utilization > 80\" on i-300001",
    "ALARM: \"cpu_utilization > 80\" on i-300001",
    "OK: \"cpu_utilization > 80\" on i-300001",
];

/// State written after every batch.
fn config() -> AlertsConfig {
    AlertsConfig {
        grace: Duration::ZERO,
        rules: vec![AlarmRule::new(MetricType::CpuUtilization, 80.0)],
        buffer_interval: Duration::ZERO,
        ..AlertsConfig::default()
    }
}

fn sink(outbox: &Path, state: Arc<dyn StateStore>) -> AlertsSink {
    sink_with(outbox, state, config())
}

fn sink_with(outbox: &Path, state: Arc<dyn StateStore>, config: AlertsConfig) -> AlertsSink {
    let notifier: Arc<dyn Notifier> = Arc::new(OutboxNotifier::open(outbox).expect("outbox"));
    AlertsSink::new(notifier, state, config).expect("sink")
}

/// (subject, deduplication id) of every notification in the outbox, in order.
fn sent(outbox: &Path) -> Vec<(String, String)> {
    OutboxNotifier::read_all(outbox)
        .expect("outbox")
        .into_iter()
        .map(|e| (e.subject, e.deduplication_id.unwrap_or_default()))
        .collect()
}

async fn feed(sink: &mut AlertsSink, records: &[SinkRecord], batch: usize) {
    for chunk in records.chunks(batch) {
        sink.write(ShardId(0), chunk, 0).await.expect("write");
    }
}

fn backends(dir: &Path) -> LocalBackends {
    LocalBackends::open(dir, LocalOptions::default()).expect("backends")
}

/// The notifications of one uninterrupted run.
async fn reference() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = dir.path().join("outbox.jsonl");
    let mut s = sink(&outbox, backends(dir.path()).state.clone());
    feed(&mut s, &series(), 4).await;
    sent(&outbox)
}

#[tokio::test]
async fn a_restart_at_any_record_neither_repeats_nor_loses_a_transition() {
    let want = reference().await;
    let subjects: Vec<&str> = want.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects, EXPECTED);
    let records = series();
    for cut in 1..records.len() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outbox = dir.path().join("outbox.jsonl");
        let local = backends(dir.path());
        {
            let mut first = sink(&outbox, local.state.clone());
            feed(&mut first, &records[..cut], 3).await;
        }
        // The runtime re-delivers from its last checkpoint, before the cut.
        let mut second = sink(&outbox, local.state.clone());
        feed(&mut second, &records[cut.saturating_sub(3)..], 2).await;
        assert_eq!(sent(&outbox), want, "restart after record {cut}");
    }
}

#[tokio::test]
async fn a_crash_with_buffered_state_replays_from_the_durable_mark_without_repeats() {
    let want = reference().await;
    let records = series();
    let buffered = AlertsConfig {
        buffer_records: 5,
        buffer_interval: Duration::from_secs(3600),
        ..config()
    };
    for cut in 1..records.len() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outbox = dir.path().join("outbox.jsonl");
        let local = backends(dir.path());
        // What the runtime would have checkpointed: the last durable mark the sink reported.
        let mut checkpoint = None;
        {
            let mut first = sink_with(&outbox, local.state.clone(), buffered.clone());
            for chunk in records[..cut].chunks(2) {
                if let Some(seq) = first.write(ShardId(0), chunk, 0).await.expect("write") {
                    checkpoint = Some(seq);
                }
            }
            // Dropped without a flush: the buffered state is lost, as in a crash.
        }
        let resume = checkpoint
            .map(|c| {
                records
                    .iter()
                    .position(|r| r.sequence_number == c)
                    .expect("a record's sequence number")
                    + 1
            })
            .unwrap_or(0);
        assert!(
            resume <= cut,
            "the durable mark never passes what was written"
        );
        let mut second = sink_with(&outbox, local.state.clone(), buffered.clone());
        for chunk in records[resume..].chunks(3) {
            second.write(ShardId(0), chunk, 0).await.expect("write");
        }
        second.flush(0, true).await.expect("flush");
        assert_eq!(sent(&outbox), want, "crash after record {cut}");
    }
}

/// Passes calls to the embedded store, failing the first `fail` writes as unavailable.
struct FailingWrites {
    inner: Arc<dyn StateStore>,
    fail: AtomicUsize,
}

#[async_trait::async_trait]
impl StateStore for FailingWrites {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Bytes>> {
        self.inner.get(namespace, key).await
    }
    async fn put_many(&self, namespace: &str, entries: Vec<(String, Bytes)>) -> Result<()> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::Unavailable("state store write failed".into()));
        }
        self.inner.put_many(namespace, entries).await
    }
    async fn list(&self, namespace: &str, prefix: &str) -> Result<Vec<(String, Bytes)>> {
        self.inner.list(namespace, prefix).await
    }
    async fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        self.inner.delete(namespace, key).await
    }
}

#[tokio::test]
async fn a_failed_state_write_after_publishing_does_not_notify_twice() {
    let want = reference().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = dir.path().join("outbox.jsonl");
    let state = Arc::new(FailingWrites {
        inner: backends(dir.path()).state.clone(),
        fail: AtomicUsize::new(0),
    });
    let mut s = sink(&outbox, state.clone());
    for chunk in series().chunks(3) {
        // Every batch's first state write fails, after its notifications went out.
        state.fail.store(1, Ordering::SeqCst);
        let err = s
            .write(ShardId(0), chunk, 0)
            .await
            .expect_err("write fails");
        assert!(
            err.to_string().contains("state store write failed"),
            "{err}"
        );
        s.write(ShardId(0), chunk, 0).await.expect("retry succeeds");
    }
    assert_eq!(sent(&outbox), want);

    // All state lost: a fresh store replaying everything still notifies nothing new.
    let other = tempfile::tempdir().expect("temp dir");
    let mut fresh = sink(&outbox, backends(other.path()).state.clone());
    feed(&mut fresh, &series(), 5).await;
    assert_eq!(sent(&outbox), want);
}

#[tokio::test]
async fn replaying_an_applied_range_notifies_nothing_and_changes_no_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = dir.path().join("outbox.jsonl");
    let local = backends(dir.path());
    let mut s = sink(&outbox, local.state.clone());
    let records = series();
    feed(&mut s, &records, 4).await;
    let before = read_alarm_states(local.state.as_ref(), "alarms.alerts")
        .await
        .expect("states");
    assert_eq!(sent(&outbox).len(), 4);

    feed(&mut s, &records, 7).await;
    feed(&mut s, &records[2..9], 1).await;
    let mut restarted = sink(&outbox, local.state.clone());
    feed(&mut restarted, &records, 100).await;
    assert_eq!(sent(&outbox).len(), 4);
    let after = read_alarm_states(local.state.as_ref(), "alarms.alerts")
        .await
        .expect("states");
    assert_eq!(after, before);
    assert_eq!(after.len(), 2);
}
