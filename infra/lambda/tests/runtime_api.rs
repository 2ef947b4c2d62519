//! Functions run as processes under the local Runtime API that misbehave as Lambda sees
//! functions misbehave: hanging past the timeout, crashing, answering something that is not
//! JSON, failing at init. Each fails its invocation with Lambda's error name, and the mapping
//! retries the batch per its settings and then describes it to OnFailure.
//!
//! The misbehaving runtimes are bash scripts speaking the Runtime API over /dev/tcp; the
//! init-error case also runs the real `s3-parquet` bootstrap with a bad configuration.

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use shardline_core::ports::Stream;
use shardline_core::stream::PutRecordsEntry;
use shardline_lambda::esm::{Destination, EsmRunner, MappingConfig, Until};
use shardline_lambda::invoke::{EXIT_ERROR, Invocation, Invoker, TIMED_OUT};
use shardline_lambda::runtime_api::{ProcessConfig, ProcessFunction};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A runtime that takes invocations and, per `MODE`: `hang`s, `crash`es (exit 3), answers
/// `notjson`, or reports an init error (`initerror`).
const SCRIPT: &str = r#"#!/usr/bin/env bash
set -u
host=${AWS_LAMBDA_RUNTIME_API%:*}; port=${AWS_LAMBDA_RUNTIME_API#*:}
post() { # path body
  exec 4<>/dev/tcp/$host/$port
  printf 'POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$1" "$host" "${#2}" "$2" >&4
  cat <&4 >/dev/null; exec 4<&-
}
if [ "$MODE" = initerror ]; then
  post /2018-06-01/runtime/init/error '{"errorType":"Custom.InitFailed","errorMessage":"cannot start"}'
  exit 1
fi
while true; do
  exec 3<>/dev/tcp/$host/$port
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
  id=""
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case "${line,,}" in lambda-runtime-aws-request-id:*) id=${line#*: };; esac
  done
  cat <&3 >/dev/null; exec 3<&-
  case "$MODE" in
    hang) sleep 600 & echo $! >> "$0.sleepers"; wait ;;
    crash) exit 3 ;;
    notjson) post "/2018-06-01/runtime/invocation/$id/response" 'this is not json' ;;
  esac
done
"#;

fn script(dir: &Path) -> PathBuf {
    let path = dir.join("bootstrap");
    std::fs::write(&path, SCRIPT).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn function(binary: &Path, mode: &str) -> Arc<ProcessFunction> {
    let mut c = ProcessConfig::new("misbehaving", binary);
    c.env.insert("MODE".into(), mode.into());
    ProcessFunction::new(c)
}

const EVENT: &[u8] = br#"{"Records": []}"#;

#[tokio::test]
async fn a_hanging_function_times_out_and_its_environment_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let f = function(&script(dir.path()), "hang");
    for round in 1..=2 {
        let out = f
            .invoke(Bytes::from_static(EVENT), Duration::from_millis(300))
            .await;
        let e = out.error().expect("timed out").clone();
        assert_eq!(e.error_type, TIMED_OUT, "{e}");
        assert!(
            e.message.contains("Task timed out after 0.30 seconds"),
            "{e}"
        );
        assert_eq!(
            f.cold_starts(),
            round,
            "a timed-out environment is not reused"
        );
    }
    f.shutdown().await;
    // What the bootstrap started went with it: no `sleep 600` outlives its environment.
    let pids = std::fs::read_to_string(dir.path().join("bootstrap.sleepers")).unwrap();
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2, "one sleeper per environment: {pids:?}");
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit(')').next().map(|rest| rest.trim().to_string()))
            .is_some_and(|rest| !rest.starts_with('Z'))
    };
    for _ in 0..50 {
        if !pids.iter().any(|p| alive(p)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("processes the bootstrap started outlived it: {pids:?}");
}

#[tokio::test]
async fn a_crashing_function_fails_with_runtime_exit_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = function(&script(dir.path()), "crash");
    let out = f
        .invoke(Bytes::from_static(EVENT), Duration::from_secs(30))
        .await;
    let e = out.error().expect("crashed").clone();
    assert_eq!(e.error_type, EXIT_ERROR, "{e}");
    assert!(e.message.contains("exit status: 3"), "{e}");
    f.shutdown().await;
}

#[tokio::test]
async fn an_init_error_is_the_invocations_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = function(&script(dir.path()), "initerror");
    let out = f
        .invoke(Bytes::from_static(EVENT), Duration::from_secs(30))
        .await;
    let e = out.error().expect("init failed").clone();
    assert_eq!(e.error_type, "Custom.InitFailed", "{e}");
    assert_eq!(e.message, "cannot start");
    // The real bootstrap with a configuration it cannot run reports why at init.
    let mut c = ProcessConfig::new("s3-parquet", env!("CARGO_BIN_EXE_s3-parquet"));
    c.env
        .insert("SHARDLINE_DATA".into(), dir.path().display().to_string());
    c.env.insert(
        "SHARDLINE_FUNCTION_CONFIG".into(),
        r#"{"bukket": "x"}"#.into(),
    );
    let real = ProcessFunction::new(c);
    let out = real
        .invoke(Bytes::from_static(EVENT), Duration::from_secs(30))
        .await;
    let e = out.error().expect("init failed").clone();
    assert_eq!(e.error_type, shardline_lambda::error::PERMANENT, "{e}");
    assert!(
        e.message.contains("bukket") && e.message.contains("SHARDLINE_FUNCTION_CONFIG"),
        "{e}"
    );
}

#[tokio::test]
async fn malformed_answers_fail_the_batch_which_is_retried_then_sent_to_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let f = function(&script(dir.path()), "notjson");
    let out = f
        .invoke(Bytes::from_static(EVENT), Duration::from_secs(30))
        .await;
    assert_eq!(
        out,
        Invocation::Answer(Bytes::from_static(b"this is not json"))
    );
    // Behind a mapping reading partial responses: a failed batch, retried, given up on.
    let log =
        shardline_log::Log::open(dir.path().join("log"), shardline_log::LogOptions::default())
            .await
            .unwrap();
    log.create_stream("metrics", 1, Duration::from_secs(3600))
        .await
        .unwrap();
    let entries = (0..3)
        .map(|i| PutRecordsEntry {
            partition_key: "k".into(),
            explicit_hash_key: None,
            data: Bytes::from(format!("{{\"n\": {i}}}")),
        })
        .collect();
    log.put_records("metrics", entries).await.unwrap();
    let config = MappingConfig {
        maximum_retry_attempts: 2,
        function_response_types: vec!["ReportBatchItemFailures".into()],
        retry_backoff: Duration::ZERO,
        poll_interval: Duration::from_millis(1),
        ..MappingConfig::new("misbehaving", "metrics")
    };
    let failures = dir.path().join("failures");
    let invoker: Arc<dyn Invoker> = f.clone();
    let runner = EsmRunner::new(
        config,
        Arc::new(log),
        invoker,
        Some(Destination::Directory(failures.clone())),
        &dir.path().join("esm"),
    )
    .unwrap();
    let counts = runner.run(Until::CaughtUp).await.unwrap();
    f.shutdown().await;
    assert_eq!(counts.invocations, 3, "one try and two retries");
    assert_eq!(counts.records_retries_exhausted, 3);
    assert_eq!(
        f.cold_starts(),
        1,
        "an answer, even a bad one, keeps the environment"
    );
    let files: Vec<_> = std::fs::read_dir(&failures).unwrap().collect();
    assert_eq!(files.len(), 1);
}
