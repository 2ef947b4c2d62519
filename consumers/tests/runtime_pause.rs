//! Pausing a supervised consumer, on paused tokio time: a pause stops it with its checkpoints
//! written, nothing is read while the pause is held, a second pause is refused, and on release
//! it resumes from its (moved) checkpoints with no restart counted; a consumer whose sink is
//! down can still be paused; a drain and an ended supervisor cannot; a shutdown during a pause
//! ends the supervisor.

mod runtime_support;

use runtime_support::*;
use shardline_consumers::runtime::{ConsumerFactory, ConsumerState, PauseError, Supervisor};
use shardline_core::ShardId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a pause may wait for the consumer to stop.
const WITHIN: Duration = Duration::from_secs(60);

/// A supervisor of a [`SwitchedSink`] consumer named `name` over `env`, and the sink's state.
fn supervisor(env: &Arc<Env>, name: &str) -> (Supervisor, Applied, Arc<AtomicBool>) {
    let out = Applied::default();
    let down = Arc::new(AtomicBool::new(false));
    let factory: ConsumerFactory = {
        let (env, out, down) = (Arc::clone(env), Arc::clone(&out), Arc::clone(&down));
        let name = name.to_string();
        Box::new(move || {
            let sink = SwitchedSink {
                name: "counting",
                applied: Arc::clone(&out),
                down: Arc::clone(&down),
            };
            Ok(env.consumer(supervised_config(&name), Box::new(sink)))
        })
    };
    (Supervisor::new(factory).expect("supervisor"), out, down)
}

#[tokio::test(start_paused = true)]
async fn a_paused_consumer_reads_nothing_and_resumes_from_its_moved_checkpoints() {
    let env = Arc::new(Env::new(2).await);
    let first = env.put(valid(0..100)).await;
    let (supervisor, out, _down) = supervisor(&env, "paused");
    let status = supervisor.status();
    let pauser = supervisor.pauser();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(supervisor.run(rx));
    eventually("the first records are applied", 60, || {
        applied(&out).len() == first.len()
    })
    .await;

    let guard = pauser.pause(WITHIN).await.expect("paused");
    assert_eq!(status.state(), ConsumerState::Paused);
    for (shard, last) in last_per_shard(&first) {
        assert_eq!(
            env.checkpoint("paused", shard).await,
            Some(last),
            "checkpointed when paused"
        );
    }
    let busy = pauser.pause(WITHIN).await.expect_err("a second pause");
    assert!(matches!(busy, PauseError::Busy(_)), "{busy}");
    assert!(busy.to_string().contains("try again"), "{busy}");

    // While paused: new records are not read.
    let second = env.put(valid(100..150)).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        applied(&out).len(),
        first.len(),
        "nothing read while paused"
    );

    // The holder moves the checkpoints back to the start, then releases the consumer.
    let removed = env
        .checkpoints()
        .reset("paused", STREAM)
        .await
        .expect("reset");
    assert!(removed > 0);
    guard.resume();
    eventually("everything is applied after the resume", 120, || {
        let got = applied(&out);
        got.len() == first.len() + second.len() && first.iter().all(|(_, s)| got.get(s) == Some(&2))
    })
    .await;
    let got = applied(&out);
    for (_, s) in &second {
        assert_eq!(got.get(s), Some(&1), "a record put during the pause, once");
    }
    assert_eq!(status.state(), ConsumerState::Running);
    assert_eq!(status.snapshot().restarts, 0, "a pause is no restart");

    // The pauser works again once released.
    let again = pauser.pause(WITHIN).await.expect("paused again");
    drop(again);
    eventually("running again after the guard is dropped", 60, || {
        status.state() == ConsumerState::Running
    })
    .await;

    tx.send(true).expect("shutdown");
    let report = tokio::time::timeout(HOUR, task)
        .await
        .expect("stops within an hour (virtual)")
        .expect("task")
        .expect("run");
    assert_eq!(report.status.state, ConsumerState::Stopped);
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    for (shard, last) in last_per_shard(&all) {
        assert_eq!(env.checkpoint("paused", shard).await, Some(last));
    }
}

#[tokio::test(start_paused = true)]
async fn a_consumer_whose_sink_is_down_can_be_paused_and_a_shutdown_ends_the_pause() {
    let env = Arc::new(Env::new(1).await);
    env.put(valid(0..20)).await;
    let (supervisor, out, down) = supervisor(&env, "down");
    down.store(true, Ordering::Relaxed);
    let status = supervisor.status();
    let pauser = supervisor.pauser();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(supervisor.run(rx));
    eventually("the consumer retries", 60, || {
        matches!(status.state(), ConsumerState::Retrying { .. })
    })
    .await;

    let guard = pauser.pause(WITHIN).await.expect("paused while retrying");
    assert_eq!(status.state(), ConsumerState::Paused);
    assert!(applied(&out).is_empty());

    // The pipeline stops while the pause is held: the supervisor returns, the pause with it.
    tx.send(true).expect("shutdown");
    let report = tokio::time::timeout(HOUR, task)
        .await
        .expect("stops within an hour (virtual)")
        .expect("task");
    drop(guard);
    // It stopped on the shutdown, or reports the sink's error it stopped with: never hangs.
    if let Ok(report) = &report {
        assert_eq!(report.status.state, ConsumerState::Stopped);
    }
    let ended = pauser.pause(WITHIN).await.expect_err("ended");
    assert!(matches!(ended, PauseError::Ended(_)), "{ended}");
    assert_eq!(env.checkpoint("down", ShardId(0)).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_drain_is_not_paused() {
    let env = Arc::new(Env::new(1).await);
    env.put(valid(0..10)).await;
    let (supervisor, _out, down) = supervisor(&env, "drain");
    // Down for good: the drain retries (and eventually gives up) meanwhile.
    down.store(true, Ordering::Relaxed);
    let pauser = supervisor.pauser();
    let task = tokio::spawn(supervisor.drain());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let err = pauser.pause(WITHIN).await.expect_err("a drain");
    assert!(matches!(err, PauseError::Draining(_)), "{err}");
    assert!(err.to_string().contains("up --once"), "{err}");
    let out = tokio::time::timeout(HOUR, task)
        .await
        .expect("ends within an hour (virtual)")
        .expect("task");
    assert!(out.is_err(), "the drain gave up on the failing sink");
}
