//! Supervised consumers, on paused tokio time (a minute of failure takes no wall time): a sink
//! that fails for 60 s then recovers loses and repeats nothing; a sink that panics on one
//! record is restarted from its checkpoint, the record is isolated and dead-lettered after
//! `panic_attempts` tries alone; a drain gives up instead of hanging.

mod runtime_support;

use async_trait::async_trait;
use runtime_support::*;
use shardline_consumers::runtime::{
    ConsumerConfig, ConsumerError, ConsumerFactory, ConsumerState, Supervisor,
};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::{SequenceNumber, ShardId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Panics on any write holding a record of instance `i-poison`; applies the others.
struct PoisonSink {
    applied: Applied,
    /// Panic in every flush instead.
    panic_in_flush: bool,
}

#[async_trait]
impl Sink for PoisonSink {
    fn name(&self) -> &str {
        "poison"
    }

    async fn write(
        &mut self,
        _shard: ShardId,
        records: &[SinkRecord],
        _now_ms: i64,
    ) -> shardline_core::Result<Option<SequenceNumber>> {
        if records.iter().any(|r| r.event.instance_id == "i-poison") {
            panic!("cannot encode the value of i-poison");
        }
        Ok(apply(&self.applied, records))
    }

    async fn flush(
        &mut self,
        _now_ms: i64,
        _force: bool,
    ) -> shardline_core::Result<Vec<(ShardId, SequenceNumber)>> {
        if self.panic_in_flush {
            panic!("flush broke");
        }
        Ok(Vec::new())
    }
}

fn supervised_config(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        panic_attempts: 3,
        ..runtime_support::supervised_config(name)
    }
}

/// The bound of the panic test: a restart waits up to 100 ms (virtual), so a search that
/// never ends fails in some 10,000 restarts.
const TEN_MINUTES: Duration = Duration::from_secs(600);

#[tokio::test(start_paused = true)]
async fn a_sink_failing_for_a_minute_then_recovering_loses_and_repeats_nothing() {
    let env = Arc::new(Env::new(2).await);
    let mut put = env.put(valid(0..200)).await;
    let out = Applied::default();
    // The outage ends when the test says so, a minute (virtual) after it began at the
    // earliest: how fast the consumer restarts in virtual time depends on the real time its
    // disk I/O takes (the paused clock moves on while the runtime waits for it).
    let down = Arc::new(AtomicBool::new(true));
    let until = Instant::now() + Duration::from_secs(60);
    let factory: ConsumerFactory = {
        let (env, out, down) = (Arc::clone(&env), Arc::clone(&out), Arc::clone(&down));
        Box::new(move || {
            let sink = SwitchedSink {
                name: "outage",
                applied: Arc::clone(&out),
                down: Arc::clone(&down),
            };
            Ok(env.consumer(supervised_config("outage"), Box::new(sink)))
        })
    };
    let supervisor = Supervisor::new(factory).expect("supervisor");
    let status = supervisor.status();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(supervisor.run(rx));

    eventually("the consumer retries", 30, || {
        matches!(status.state(), ConsumerState::Retrying { .. })
    })
    .await;
    let ConsumerState::Retrying {
        what,
        since_ms,
        error,
        ..
    } = status.state()
    else {
        panic!("not retrying: {:?}", status.state());
    };
    assert_eq!(what, "sink");
    assert!(error.contains("the table is down"), "{error}");

    // More records arrive during the outage.
    put.extend(env.put(valid(200..300)).await);
    eventually("a restart during the outage", 60, || {
        status.snapshot().restarts >= 2
    })
    .await;
    assert!(
        matches!(status.state(), ConsumerState::Retrying { since_ms: s, .. } if s == since_ms),
        "retrying since the first failure, across restarts: {:?}",
        status.state()
    );
    assert!(applied(&out).is_empty(), "nothing applied while failing");
    tokio::time::sleep_until(until).await;
    assert!(
        applied(&out).is_empty(),
        "nothing applied for the whole minute"
    );
    down.store(false, Ordering::SeqCst);

    eventually("the consumer catches up", 600, || {
        applied(&out).len() == put.len()
    })
    .await;
    assert_eq!(status.state(), ConsumerState::Running);
    tx.send(true).expect("shutdown");
    let report = tokio::time::timeout(HOUR, task)
        .await
        .expect("stops within an hour (virtual)")
        .expect("task")
        .expect("run");

    let got = applied(&out);
    let want: BTreeMap<SequenceNumber, u32> = put.iter().map(|(_, s)| (s.clone(), 1)).collect();
    assert_eq!(got, want, "every record applied exactly once");
    for (shard, last) in last_per_shard(&put) {
        assert_eq!(env.checkpoint("outage", shard).await, Some(last));
    }
    assert!(report.status.restarts >= 2, "{:?}", report.status);
    assert!(report.status.retries > 0);
    assert_eq!(report.status.state, ConsumerState::Stopped);
}

/// 100 records in one shard, the 38th from instance `i-poison`.
fn with_poison() -> Vec<(String, Vec<u8>)> {
    let mut input = valid(0..100);
    let mut e = event(37);
    e["instance_id"] = "i-poison".into();
    input[37] = ("i-poison".into(), e.to_string().into_bytes());
    input
}

#[tokio::test(start_paused = true)]
async fn a_record_that_panics_the_sink_is_isolated_and_dead_lettered() {
    let env = Arc::new(Env::new(1).await);
    let input = with_poison();
    let put = env.put(input.clone()).await;
    let out = Applied::default();
    let factory: ConsumerFactory = {
        let (env, out) = (Arc::clone(&env), Arc::clone(&out));
        Box::new(move || {
            let sink = PoisonSink {
                applied: Arc::clone(&out),
                panic_in_flush: false,
            };
            Ok(env.consumer(supervised_config("poisoned"), Box::new(sink)))
        })
    };
    let report = tokio::time::timeout(
        TEN_MINUTES,
        Supervisor::new(factory).expect("supervisor").drain(),
    )
    .await
    .expect("the drain ends within ten minutes (virtual)")
    .expect("the drain finishes");

    let poison = &put[37].1;
    let got = applied(&out);
    let want: BTreeMap<SequenceNumber, u32> = put
        .iter()
        .filter(|(_, s)| s != poison)
        .map(|(_, s)| (s.clone(), 1))
        .collect();
    assert_eq!(got, want, "every other record applied exactly once");

    let letters = env
        .dead_letters()
        .list(Some("poisoned"))
        .await
        .expect("list");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let l = &letters[0];
    assert_eq!(&l.sequence_number, poison);
    assert_eq!(l.partition_key, "i-poison");
    assert_eq!(l.data.as_ref(), input[37].1.as_slice(), "the exact bytes");
    assert!(
        l.reason.contains("panicked") && l.reason.contains("3 times"),
        "{}",
        l.reason
    );
    assert!(
        l.reason.contains("cannot encode the value of i-poison"),
        "the reason names the panic: {}",
        l.reason
    );
    // Halving 100 records down to one takes 7 panics; then 3 with the record alone.
    assert!(
        (3..=7 + 3).contains(&report.status.panics),
        "{:?}",
        report.status
    );
    assert_eq!(report.status.restarts, report.status.panics);
    assert_eq!(report.status.dead_letters, 1);
    assert_eq!(
        env.checkpoint("poisoned", ShardId(0)).await,
        Some(put[99].1.clone())
    );
}

#[tokio::test(start_paused = true)]
async fn a_drain_gives_up_on_a_sink_that_keeps_failing_or_panicking() {
    let env = Arc::new(Env::new(1).await);
    env.put(valid(0..10)).await;

    let factory: ConsumerFactory = {
        let env = Arc::clone(&env);
        Box::new(move || {
            let sink = SwitchedSink {
                name: "outage",
                applied: Applied::default(),
                down: Arc::new(AtomicBool::new(true)),
            };
            Ok(env.consumer(supervised_config("down"), Box::new(sink)))
        })
    };
    let supervisor = Supervisor::new(factory).expect("supervisor");
    let status = supervisor.status();
    let err = tokio::time::timeout(HOUR, supervisor.drain())
        .await
        .expect("ends within an hour (virtual)")
        .expect_err("gives up");
    assert!(
        matches!(err, ConsumerError::Sink { ref sink, .. } if sink == "outage"),
        "{err}"
    );
    assert!(err.to_string().contains("the table is down"), "{err}");
    assert!(matches!(status.state(), ConsumerState::Failed { .. }));
    assert_eq!(
        status.snapshot().retries,
        3,
        "retry.max_attempts = 4 tries in place"
    );

    let factory: ConsumerFactory = {
        let env = Arc::clone(&env);
        Box::new(move || {
            let sink = PoisonSink {
                applied: Applied::default(),
                panic_in_flush: true,
            };
            Ok(env.consumer(supervised_config("flush"), Box::new(sink)))
        })
    };
    let supervisor = Supervisor::new(factory).expect("supervisor");
    let status = supervisor.status();
    let err = tokio::time::timeout(HOUR, supervisor.drain())
        .await
        .expect("ends within an hour (virtual)")
        .expect_err("gives up");
    assert!(
        matches!(err, ConsumerError::Panicked { ref consumer, times: 4, .. } if consumer == "flush"),
        "{err}"
    );
    assert!(err.to_string().contains("flush broke"), "{err}");
    assert_eq!(status.snapshot().panics, 4);
}
