//! The event source mapping runner over the embedded log, with a scripted function: poison
//! records under ReportBatchItemFailures and under bisection, record age, parallelization
//! order, tumbling windows. Time is the log's and the runner's shared manual clock; nothing
//! waits on the wall clock.

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use serde_json::{Value, json};
use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, PutRecordsEntry};
use shardline_core::time::ManualClock;
use shardline_lambda::esm::{Destination, EsmRunner, MappingConfig, Until};
use shardline_lambda::invoke::InProcess;
use shardline_lambda::{FunctionError, function_fn};
use shardline_log::{Durability, Log, LogOptions};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 2026-01-01T00:00:00Z, a multiple of 60 s.
const T0: i64 = 1_767_225_600_000;

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    log: Arc<Log>,
}

async fn fixture(shards: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 1_000);
    let log = Log::open(
        dir.path().join("log"),
        LogOptions {
            durability: Durability::Buffered,
            clock: clock.clone(),
            ..LogOptions::default()
        },
    )
    .await
    .unwrap();
    log.create_stream("metrics", shards, Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    Fixture {
        dir,
        clock,
        log: Arc::new(log),
    }
}

impl Fixture {
    /// Appends records `{"n": i, "key": k}` with partition key `k`; returns their sequence numbers.
    async fn put(&self, items: &[(u64, &str)]) -> Vec<String> {
        let entries = items
            .iter()
            .map(|(n, k)| PutRecordsEntry {
                partition_key: (*k).to_string(),
                explicit_hash_key: None,
                data: Bytes::from(json!({"n": n, "key": k}).to_string()),
            })
            .collect();
        self.log
            .put_records("metrics", entries)
            .await
            .unwrap()
            .into_iter()
            .map(|r| match r {
                PutRecordResult::Ok {
                    sequence_number, ..
                } => sequence_number.as_str().to_string(),
                PutRecordResult::Err { error_message, .. } => panic!("{error_message}"),
            })
            .collect()
    }

    fn state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("esm")
    }

    fn failures_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("on-failure")
    }

    fn runner(
        &self,
        config: MappingConfig,
        function: Arc<dyn shardline_lambda::Function>,
    ) -> EsmRunner {
        let config = MappingConfig {
            retry_backoff: Duration::ZERO,
            poll_interval: Duration::from_millis(1),
            ..config
        };
        EsmRunner::new(
            config,
            self.log.clone(),
            Arc::new(InProcess::new(function)),
            Some(Destination::Directory(self.failures_dir())),
            &self.state_dir(),
        )
        .unwrap()
        .with_clock(self.clock.clone())
    }

    fn on_failure_records(&self) -> Vec<Value> {
        let Ok(entries) = std::fs::read_dir(self.failures_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

/// One invocation as the function saw it.
#[derive(Debug, Clone)]
struct Seen {
    seqs: Vec<String>,
    ns: Vec<u64>,
    event: Value,
    checkpoint_file: Option<Value>,
}

type Script = Arc<dyn Fn(&Seen, usize) -> Result<Value, FunctionError> + Send + Sync>;

/// A function that records what it is sent and answers by `script(invocation, index)`.
fn recorder(
    state_dir: &Path,
    script: Script,
) -> (Arc<dyn shardline_lambda::Function>, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let checkpoints = state_dir.join("checkpoints.json");
    let f = function_fn("recorder", move |event: Value| {
        let (log, script, checkpoints) =
            (Arc::clone(&log), Arc::clone(&script), checkpoints.clone());
        async move {
            let records = event["Records"].as_array().cloned().unwrap_or_default();
            let seqs = records
                .iter()
                .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap().to_string())
                .collect();
            let ns = records
                .iter()
                .map(|r| {
                    use base64::Engine;
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(r["kinesis"]["data"].as_str().unwrap())
                        .unwrap();
                    serde_json::from_slice::<Value>(&data).unwrap()["n"]
                        .as_u64()
                        .unwrap()
                })
                .collect();
            let checkpoint_file = std::fs::read(&checkpoints)
                .ok()
                .map(|b| serde_json::from_slice(&b).unwrap());
            let s = Seen {
                seqs,
                ns,
                event,
                checkpoint_file,
            };
            let index = {
                let mut l = log.lock().unwrap();
                l.push(s.clone());
                l.len() - 1
            };
            script(&s, index)
        }
    });
    (f, seen)
}

fn failure_for(seq: &str) -> Value {
    json!({"batchItemFailures": [{"itemIdentifier": seq}]})
}

#[tokio::test]
async fn a_poison_record_under_report_batch_item_failures_checkpoints_before_it_and_retries_from_it()
 {
    let fx = fixture(1).await;
    let items: Vec<(u64, &str)> = (0..10).map(|n| (n, "k")).collect();
    let seqs = fx.put(&items).await;
    let poison = seqs[5].clone();
    // The poison record fails twice, then goes through (a transient downstream error).
    let p = poison.clone();
    let fails = Arc::new(AtomicUsize::new(0));
    let script: Script = Arc::new(move |s: &Seen, _| {
        if s.seqs.contains(&p) && fails.fetch_add(1, Ordering::SeqCst) < 2 {
            Ok(failure_for(&p))
        } else {
            Ok(json!({"batchItemFailures": []}))
        }
    });
    let (f, seen) = recorder(&fx.state_dir(), script);
    let config = MappingConfig {
        batch_size: 10,
        function_response_types: vec!["ReportBatchItemFailures".into()],
        maximum_retry_attempts: 5,
        ..MappingConfig::new("recorder", "metrics")
    };
    let runner = fx.runner(config, f);
    let counts = runner.run(Until::CaughtUp).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].seqs, seqs, "the whole batch first");
    for retry in &seen[1..] {
        assert_eq!(
            retry.seqs,
            seqs[5..].to_vec(),
            "retried from the poison record"
        );
        assert_eq!(
            retry.checkpoint_file,
            Some(json!({"shardId-000000000000": seqs[4]})),
            "checkpointed just before the poison record while retrying"
        );
    }
    assert_eq!(counts.retries, 2);
    assert_eq!(counts.records_done, 10);
    assert!(fx.on_failure_records().is_empty());
    assert_eq!(runner.checkpoints().await[0].1.as_str(), seqs[9]);
}

#[tokio::test]
async fn an_unrecoverable_record_under_partial_responses_goes_with_the_rest_of_its_batch_to_on_failure()
 {
    let fx = fixture(1).await;
    let items: Vec<(u64, &str)> = (0..6).map(|n| (n, "k")).collect();
    let seqs = fx.put(&items).await;
    let p = seqs[2].clone();
    let script: Script = Arc::new(move |s: &Seen, _| {
        Ok(if s.seqs.contains(&p) {
            failure_for(&p)
        } else {
            json!({})
        })
    });
    let (f, seen) = recorder(&fx.state_dir(), script);
    let config = MappingConfig {
        batch_size: 6,
        function_response_types: vec!["ReportBatchItemFailures".into()],
        maximum_retry_attempts: 1,
        ..MappingConfig::new("recorder", "metrics")
    };
    let runner = fx.runner(config, f);
    runner.run(Until::CaughtUp).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2, "the first try and one retry");
    let failures = fx.on_failure_records();
    assert_eq!(failures.len(), 1);
    let info = &failures[0]["KinesisBatchInfo"];
    assert_eq!(info["startSequenceNumber"], json!(seqs[2]));
    assert_eq!(info["endSequenceNumber"], json!(seqs[5]));
    assert_eq!(info["batchSize"], json!(4));
    assert_eq!(
        failures[0]["requestContext"]["condition"],
        json!("RetryAttemptsExhausted")
    );
    assert_eq!(
        runner.checkpoints().await[0].1.as_str(),
        seqs[5],
        "the shard moves on"
    );
}

#[tokio::test]
async fn bisection_isolates_the_poison_record_and_sends_it_alone_to_on_failure() {
    let fx = fixture(1).await;
    let items: Vec<(u64, &str)> = (0..8).map(|n| (n, "k")).collect();
    let seqs = fx.put(&items).await;
    let p = seqs[5].clone();
    let script: Script = Arc::new(move |s: &Seen, _| {
        if s.seqs.contains(&p) {
            Err(FunctionError::new("Shardline.PermanentError", "poison"))
        } else {
            Ok(json!({}))
        }
    });
    let (f, seen) = recorder(&fx.state_dir(), script);
    let config = MappingConfig {
        batch_size: 8,
        bisect_batch_on_function_error: true,
        maximum_retry_attempts: 2,
        ..MappingConfig::new("recorder", "metrics")
    };
    let runner = fx.runner(config, f);
    let counts = runner.run(Until::CaughtUp).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let sizes: Vec<usize> = seen.iter().map(|s| s.seqs.len()).collect();
    // 8 fails → [0..4) ok, [4..8) fails → [4..6) fails → [4] ok, [5] fails three times
    // (one try, two retries; splitting spends none) → OnFailure; then [6..8) ok.
    assert_eq!(sizes, [8, 4, 4, 2, 1, 1, 1, 1, 2], "{seen:?}");
    assert_eq!(seen[5].seqs, [seqs[5].clone()]);
    let failures = fx.on_failure_records();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f0 = &failures[0];
    assert_eq!(
        f0["requestContext"]["condition"],
        json!("RetryAttemptsExhausted")
    );
    assert_eq!(f0["KinesisBatchInfo"]["batchSize"], json!(1));
    assert_eq!(
        f0["KinesisBatchInfo"]["startSequenceNumber"],
        json!(seqs[5])
    );
    assert_eq!(f0["KinesisBatchInfo"]["endSequenceNumber"], json!(seqs[5]));
    assert_eq!(
        f0["KinesisBatchInfo"]["shardId"],
        json!("shardId-000000000000")
    );
    assert_eq!(
        f0["KinesisBatchInfo"]["streamArn"],
        json!("arn:aws:kinesis:eu-west-1:123456789012:stream/metrics")
    );
    assert_eq!(f0["responseContext"]["functionError"], json!("Unhandled"));
    assert_eq!(counts.records_retries_exhausted, 1);
    assert_eq!(counts.records_done, 7);
    assert_eq!(runner.checkpoints().await[0].1.as_str(), seqs[7]);
    // Every other record was in exactly one successful invocation.
    let ok: Vec<&String> = seen
        .iter()
        .filter(|s| !s.seqs.contains(&seqs[5]))
        .flat_map(|s| &s.seqs)
        .collect();
    let mut expected: Vec<&String> = seqs.iter().filter(|s| **s != seqs[5]).collect();
    expected.sort();
    let mut got = ok.clone();
    got.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn records_older_than_the_maximum_age_go_to_on_failure_unprocessed() {
    let fx = fixture(1).await;
    let old = fx.put(&[(0, "k"), (1, "k"), (2, "k")]).await;
    fx.clock.advance_ms(100_000);
    let new = fx.put(&[(3, "k"), (4, "k")]).await;
    let script: Script = Arc::new(|_: &Seen, _| Ok(json!({})));
    let (f, seen) = recorder(&fx.state_dir(), script);
    let config = MappingConfig {
        batch_size: 10,
        maximum_record_age_in_seconds: 60,
        ..MappingConfig::new("recorder", "metrics")
    };
    let runner = fx.runner(config, f);
    let counts = runner.run(Until::CaughtUp).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].seqs, new, "only the young records are invoked");
    let failures = fx.on_failure_records();
    assert_eq!(failures.len(), 1);
    let f0 = &failures[0];
    assert_eq!(
        f0["requestContext"]["condition"],
        json!("RecordAgeExceeded")
    );
    assert_eq!(f0["requestContext"]["approximateInvokeCount"], json!(0));
    assert_eq!(f0["KinesisBatchInfo"]["startSequenceNumber"], json!(old[0]));
    assert_eq!(f0["KinesisBatchInfo"]["endSequenceNumber"], json!(old[2]));
    assert_eq!(f0["KinesisBatchInfo"]["batchSize"], json!(3));
    assert_eq!(counts.records_expired, 3);
    assert_eq!(runner.checkpoints().await[0].1.as_str(), new[1]);
}

#[tokio::test]
async fn parallelization_factor_4_runs_batches_at_once_and_keeps_each_keys_order() {
    let fx = fixture(1).await;
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let items: Vec<(u64, &str)> = (0..200)
        .map(|n| (n, keys[n as usize % keys.len()]))
        .collect();
    for chunk in items.chunks(100) {
        fx.put(chunk).await;
    }
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let order: Arc<Mutex<Vec<(String, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let (inf, maxf, ord) = (in_flight.clone(), max_in_flight.clone(), order.clone());
    let f = function_fn("recorder", move |event: Value| {
        let (inf, maxf, ord) = (inf.clone(), maxf.clone(), ord.clone());
        async move {
            let now = inf.fetch_add(1, Ordering::SeqCst) + 1;
            maxf.fetch_max(now, Ordering::SeqCst);
            // Let the other batches of the round start before this one finishes.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            for r in event["Records"].as_array().unwrap() {
                use base64::Engine;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(r["kinesis"]["data"].as_str().unwrap())
                    .unwrap();
                let v: Value = serde_json::from_slice(&data).unwrap();
                ord.lock().unwrap().push((
                    v["key"].as_str().unwrap().to_string(),
                    v["n"].as_u64().unwrap(),
                ));
            }
            inf.fetch_sub(1, Ordering::SeqCst);
            Ok(json!({}))
        }
    });
    let config = MappingConfig {
        batch_size: 5,
        parallelization_factor: 4,
        ..MappingConfig::new("recorder", "metrics")
    };
    let runner = fx.runner(config, f);
    runner.run(Until::CaughtUp).await.unwrap();
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), 200, "every record exactly once");
    for k in keys {
        let ns: Vec<u64> = order
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, n)| *n)
            .collect();
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "key {k} out of order: {ns:?}"
        );
        assert_eq!(ns.len(), 20);
    }
    let max = max_in_flight.load(Ordering::SeqCst);
    assert!((2..=4).contains(&max), "batches at once: {max}");
}

#[tokio::test]
async fn a_tumbling_window_of_60s_carries_state_across_batches_and_ends_with_a_final_invoke() {
    let fx = fixture(1).await;
    // Window [T0, T0+60s): six records; window [T0+60s, T0+120s): two.
    fx.put(&[(1, "k"), (2, "k"), (3, "k"), (4, "k"), (5, "k"), (6, "k")])
        .await;
    fx.clock.set_ms(T0 + 61_000);
    fx.put(&[(10, "k"), (20, "k")]).await;
    fx.clock.set_ms(T0 + 125_000);
    // The function sums `n` into its state.
    let script: Script = Arc::new(|s: &Seen, _| {
        let state = &s.event["state"];
        let count = state["count"].as_u64().unwrap_or(0) + s.ns.len() as u64;
        let sum = state["sum"].as_u64().unwrap_or(0) + s.ns.iter().sum::<u64>();
        Ok(json!({"state": {"count": count, "sum": sum}, "batchItemFailures": []}))
    });
    let (f, seen) = recorder(&fx.state_dir(), script);
    let config = MappingConfig {
        batch_size: 2,
        tumbling_window_in_seconds: 60,
        function_response_types: vec!["ReportBatchItemFailures".into()],
        ..MappingConfig::new("recorder", "metrics")
    };
    let runner = fx.runner(config, f);
    let counts = runner.run(Until::CaughtUp).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let summary: Vec<(usize, Value, bool, String)> = seen
        .iter()
        .map(|s| {
            (
                s.seqs.len(),
                s.event["state"].clone(),
                s.event["isFinalInvokeForWindow"].as_bool().unwrap(),
                s.event["window"]["start"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let w1 = "2026-01-01T00:00:00Z".to_string();
    let w2 = "2026-01-01T00:01:00Z".to_string();
    assert_eq!(
        summary,
        vec![
            (2, json!({}), false, w1.clone()),
            (2, json!({"count": 2, "sum": 3}), false, w1.clone()),
            (2, json!({"count": 4, "sum": 10}), false, w1.clone()),
            (0, json!({"count": 6, "sum": 21}), true, w1.clone()),
            (2, json!({}), false, w2.clone()),
            (0, json!({"count": 2, "sum": 30}), true, w2),
        ]
    );
    assert_eq!(
        seen[0].event["window"]["end"],
        json!("2026-01-01T00:01:00Z")
    );
    assert_eq!(seen[0].event["shardId"], json!("shardId-000000000000"));
    assert_eq!(seen[3].event["isWindowTerminatedEarly"], json!(false));
    assert_eq!(counts.windows_closed, 2);
}
