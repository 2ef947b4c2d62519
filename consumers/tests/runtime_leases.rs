//! Lease workers sharing one stream's shards: fair share, release after a final checkpoint,
//! takeover of a killed worker's leases after the failover time, no shard owned by two
//! workers at once (checked on the ownership events), every record delivered.
//!
//! The second worker runs on a runtime of its own, which is shut down to kill it: its renewals,
//! its consumer and its writes stop at once, as with SIGKILL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_support;

use runtime_support::{CollectSink, Delivered, Env, STREAM, config, delivered, valid};
use shardline_consumers::runtime::lease::{LeaseBackends, LeaseEventKind};
use shardline_consumers::runtime::{LeaseConfig, LeaseEvent, LeaseWorker};
use shardline_core::lease::{LeaseCheckpoint, LeaseStore, MemoryLeaseStore};
use shardline_core::{SequenceNumber, ShardId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const CONSUMER: &str = "leased";

fn lease_config() -> LeaseConfig {
    LeaseConfig {
        failover_time: Duration::from_millis(900),
        renew_interval: Duration::from_millis(150),
        workers_namespace: "lease-workers".into(),
    }
}

type Events = Arc<Mutex<Vec<LeaseEvent>>>;

fn worker(
    env: &Env,
    leases: &Arc<MemoryLeaseStore>,
    me: &str,
    out: &Delivered,
    events: &Events,
) -> LeaseWorker {
    let backends = LeaseBackends {
        stream: env.log.clone(),
        leases: leases.clone(),
        checkpoints: env.checkpoints(),
        state: env.local.state.clone(),
    };
    let (log, dead_letters, out) = (env.log.clone(), env.dead_letters(), out.clone());
    let factory = Box::new(move |checkpoints| {
        let sink = CollectSink {
            out: out.clone(),
            fail_retryable: 0,
            fail_permanent: false,
            attempts: Arc::default(),
        };
        shardline_consumers::runtime::Consumer::new(
            config(CONSUMER),
            log.clone(),
            checkpoints,
            dead_letters.clone(),
            Box::new(sink),
        )
    });
    let events = events.clone();
    LeaseWorker::new(
        lease_config(),
        config(CONSUMER),
        backends,
        me.to_string(),
        factory,
    )
    .unwrap()
    .with_events(Arc::new(move |e| events.lock().unwrap().push(e.clone())))
}

/// Waits (at most 60 s) until `check` holds.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn owners(store: &MemoryLeaseStore) -> BTreeMap<ShardId, Option<String>> {
    store
        .list_leases(CONSUMER, STREAM)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.key.shard, l.lease_owner))
        .collect()
}

fn delivered_set(out: &Delivered) -> BTreeSet<SequenceNumber> {
    delivered(out)
        .into_iter()
        .map(|r| r.sequence_number)
        .collect()
}

/// Ownership intervals per shard from the events: (worker, from ms, to ms); a killed worker's
/// open intervals end at the kill.
fn intervals(
    events: &[LeaseEvent],
    killed: &str,
    kill_ms: i64,
) -> Vec<(ShardId, String, i64, i64)> {
    let mut open: BTreeMap<(ShardId, String), i64> = BTreeMap::new();
    let mut out = Vec::new();
    for e in events {
        let k = (e.shard, e.worker.clone());
        match e.kind {
            LeaseEventKind::Took { .. } => {
                open.insert(k, e.at_ms);
            }
            _ => {
                if let Some(from) = open.remove(&k) {
                    out.push((e.shard, e.worker.clone(), from, e.at_ms));
                }
            }
        }
    }
    for ((shard, worker), from) in open {
        let to = if worker == killed { kill_ms } else { i64::MAX };
        out.push((shard, worker, from, to));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_share_the_shards_and_the_survivor_takes_over_a_killed_one() {
    let env = Env::new(4).await;
    let leases = Arc::new(MemoryLeaseStore::new());
    let out = Delivered::default();
    let events: Events = Arc::default();
    let mut put = env.put(valid(0..200)).await;

    // One worker alone takes every shard.
    let (stop_a, rx_a) = watch::channel(false);
    let a = worker(&env, &leases, "worker-a", &out, &events);
    let a_task = tokio::spawn(a.run(rx_a));
    until("worker-a owns all 4 shards", || async {
        owned(&leases, "worker-a").await == 4
    })
    .await;

    // A second worker joins: the first lets go of two after a final checkpoint, the second
    // takes them.
    let (stop_b, rx_b) = watch::channel(false);
    let b = worker(&env, &leases, "worker-b", &out, &events);
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let b_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.spawn(b.run(rx_b));
        kill_rx.recv().unwrap();
        rt.shutdown_background();
    });
    until("2 shards each", || async {
        owned(&leases, "worker-a").await == 2 && owned(&leases, "worker-b").await == 2
    })
    .await;
    put.extend(env.put(valid(200..400)).await);
    let all: BTreeSet<SequenceNumber> = put.iter().map(|(_, s)| s.clone()).collect();
    until("both workers delivered every record", || async {
        delivered_set(&out).is_superset(&all)
    })
    .await;
    let by_worker: BTreeMap<ShardId, Option<String>> = owners(&leases).await;
    let b_shards: Vec<ShardId> = by_worker
        .iter()
        .filter(|(_, o)| o.as_deref() == Some("worker-b"))
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(b_shards.len(), 2);

    // Kill the second worker: after the failover time the first owns every shard again and
    // reads on from the checkpoints.
    let kill_ms = shardline_core::time::now_ms();
    kill_tx.send(()).unwrap();
    b_thread.join().unwrap();
    until("worker-a owns all 4 shards after the kill", || async {
        owned(&leases, "worker-a").await == 4
    })
    .await;
    put.extend(env.put(valid(400..500)).await);
    let all: BTreeSet<SequenceNumber> = put.iter().map(|(_, s)| s.clone()).collect();
    until("every record delivered after the takeover", || async {
        delivered_set(&out).is_superset(&all)
    })
    .await;
    let _ = stop_b;
    stop_a.send(true).unwrap();
    let report = a_task.await.unwrap().unwrap();

    // Every lease is free at the end (released after its final checkpoint), each checkpoint
    // at its shard's last record.
    let last = runtime_support::last_per_shard(&put);
    for l in leases.list_leases(CONSUMER, STREAM).await.unwrap() {
        assert_eq!(l.lease_owner, None, "{l:?}");
        assert_eq!(
            l.checkpoint,
            LeaseCheckpoint::Sequence(last[&l.key.shard].clone()),
            "{l:?}"
        );
    }
    let events = events.lock().unwrap().clone();
    // The takeover waited for the failover time.
    let takeovers: Vec<&LeaseEvent> = events
        .iter()
        .filter(
            |e| matches!(&e.kind, LeaseEventKind::Took { from: Some(f), .. } if f == "worker-b"),
        )
        .collect();
    assert_eq!(takeovers.len(), 2, "{events:#?}");
    for t in &takeovers {
        let LeaseEventKind::Took { unchanged_ms, .. } = t.kind else {
            unreachable!()
        };
        assert!(unchanged_ms >= 900, "{t:?}");
        assert!(t.at_ms >= kill_ms, "{t:?}");
    }
    // No shard owned by two workers at once.
    let spans = intervals(&events, "worker-b", kill_ms);
    for (i, x) in spans.iter().enumerate() {
        for y in &spans[i + 1..] {
            if x.0 == y.0 && x.1 != y.1 {
                assert!(
                    x.3 <= y.2 || y.3 <= x.2,
                    "{} owned by {} and {} at once: {x:?} {y:?}",
                    x.0,
                    x.1,
                    y.1
                );
            }
        }
    }
    assert!(report.taken >= 6 && report.released >= 2, "{report:?}");
}

/// How many leases `worker` owns.
async fn owned(store: &MemoryLeaseStore, worker: &str) -> usize {
    store
        .list_leases(CONSUMER, STREAM)
        .await
        .unwrap()
        .iter()
        .filter(|l| l.lease_owner.as_deref() == Some(worker))
        .count()
}
