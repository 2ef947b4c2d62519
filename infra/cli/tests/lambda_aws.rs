//! The Lambda side of the pipeline on AWS (moto's server), through the binaries: the flow's
//! task bootstraps run with `SHARDLINE_BACKEND=aws` under `lambda invoke`'s Runtime API
//! (data-collector puts to Kinesis, metrics-analyzer queries the Parquet on S3,
//! pipeline-health reads the stream), and `shardline esm run` reads Kinesis as its source and
//! describes a batch it gives up on to an S3 bucket and an SNS topic; pipeline-health as
//! deployed (`[flow] lag_source = "iterator-age"`) reads the consumers' lag from Lambda's
//! IteratorAge in CloudWatch, with no lease table.
//!
//! Built only with the `moto-tests` feature (scripts/test-all.sh starts moto and exports
//! `SHARDLINE_MOTO_URL`); with the feature on and no URL every test fails saying how to run
//! them. Each test names its own stream, buckets, tables and topics, so tests share one moto.
//! moto's Kinesis drops records under concurrent writers: the tests of this file run one at a
//! time and write from one process at a time.
#![cfg(feature = "moto-tests")]
#![allow(clippy::unwrap_used)]

mod support;

use anyhow::{Context, Result, bail};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::Value;
use shardline_aws::{AwsBackends, Overrides};
use shardline_core::ports::{KeyType, ObjectStore, TableSchema};
use support::Shardline;

/// moto's URL, or a failure that says how to run these tests.
fn moto_url() -> String {
    std::env::var("SHARDLINE_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "SHARDLINE_MOTO_URL is not set: these tests run against moto's server. Run \
             scripts/test-all.sh (it installs and starts moto), or start \
             `.venv/bin/python scripts/moto_server.py 5000` and run \
             `SHARDLINE_MOTO_URL=http://127.0.0.1:5000 cargo test -p shardline --features moto-tests --test lambda_aws`"
        )
    })
}

/// Held by every test of this file: one test writes to moto at a time.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static MOTO: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    MOTO.lock().await
}

/// A name unique to this test run.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{what}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn set(t: &mut toml::Table, path: &str, v: impl Into<toml::Value>) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap();
    let mut cur = t;
    for p in parts {
        cur = cur
            .entry(p)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap();
    }
    cur.insert(last.into(), v.into());
}

/// The test configuration with every port on moto under names of its own.
fn config(name: &str, shards: i64) -> toml::Table {
    let mut t: toml::Table = toml::from_str(support::TEST_TOML).unwrap();
    let stream = format!("{name}-stream");
    set(&mut t, "stream.name", stream.as_str());
    set(&mut t, "stream.shards", shards);
    set(&mut t, "esm.stream", stream.as_str());
    set(&mut t, "esm.poll_interval", "50ms");
    set(&mut t, "esm.retry_backoff", "10ms");
    for (key, what) in [
        ("consumers.s3.sink.bucket", "parquet"),
        ("consumers.dynamodb.sink.table", "items"),
        ("consumers.alerts.sink.topic", "alarms"),
        ("consumers.cloudwatch.sink.namespace", "metrics"),
        ("aws.resources.lease_table", "leases"),
        ("aws.resources.state_table", "state"),
        ("aws.resources.dead_letter_bucket", "dead-letters"),
    ] {
        set(&mut t, key, format!("{name}-{what}"));
    }
    for c in ["s3", "dynamodb", "cloudwatch", "alerts"] {
        set(
            &mut t,
            &format!("consumers.{c}.consumer.stream"),
            stream.as_str(),
        );
    }
    set(&mut t, "aws.region", "eu-west-1");
    set(&mut t, "aws.endpoint_url", moto_url());
    set(&mut t, "aws.attempt_timeout", "120s");
    set(&mut t, "aws.s3.force_path_style", true);
    set(&mut t, "aws.retry.base_delay", "10ms");
    set(&mut t, "aws.retry.max_delay", "200ms");
    t
}

fn on_moto(t: &toml::Table) -> Result<Shardline> {
    let mut sh = Shardline::with_config(&toml::to_string(t)?)?;
    sh.env = [
        ("SHARDLINE_BACKEND", "aws"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Ok(sh)
}

/// The test's own clients on moto, with the configuration's `[aws]` settings.
async fn aws(sh: &Shardline) -> Result<AwsBackends> {
    let config = sh.config()?;
    let credentials = Credentials::new("testing", "testing", None, None, "moto-tests");
    Ok(AwsBackends::connect(
        &config.aws,
        Overrides {
            http_client: None,
            credentials: Some(SharedCredentialsProvider::new(credentials)),
        },
    )
    .await?)
}

/// `lambda invoke NAME --binary <its bootstrap>` with `event`: the exit status and stdout.
fn invoke(sh: &Shardline, name: &str, binary: &str, event: &str) -> Result<(bool, Value)> {
    let file = sh.dir.path().join(format!("{name}-event.json"));
    std::fs::write(&file, event)?;
    let file = file.display().to_string();
    let out = sh.run(&[
        "lambda", "invoke", name, "--event", &file, "--binary", binary,
    ])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "{name}: not JSON: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.status.success(), answer))
}

fn count(sh: &Shardline, sql: &str) -> Result<u64> {
    let csv = sh.ok(&["query", sql, "--format", "csv"])?;
    csv.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("{sql}: {csv}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_task_bootstraps_run_on_aws_from_their_environment() -> Result<()> {
    let _moto = one_at_a_time().await;
    let name = unique("tasks");
    let sh = on_moto(&config(&name, 2))?;
    sh.ok(&["infra", "bootstrap"])?;

    // data-collector: one collection of the 8 synthetic instances, put to Kinesis.
    let (ok, collected) = invoke(
        &sh,
        "data-collector",
        env!("CARGO_BIN_EXE_data-collector"),
        r#"{"metric_type": "cpu_utilization"}"#,
    )?;
    assert!(ok, "{collected}");
    assert_eq!(collected["statusCode"], 200, "{collected}");
    let body: Value = serde_json::from_str(collected["body"].as_str().context("body")?)?;
    assert_eq!(body["metrics_count"], 8, "{body}");
    assert_eq!(
        body["stream"].as_str(),
        Some(format!("{name}-stream").as_str())
    );
    assert_eq!(body["sequence_numbers"].as_array().map(Vec::len), Some(8));
    // Nothing of the pipeline was kept on the local disk.
    assert!(!sh.data_dir().join("log").exists());
    assert!(!sh.data_dir().join("local").exists());

    // pipeline-health reads the stream on Kinesis: no consumer has a checkpoint in the lease
    // table yet, so the oldest unprocessed record is one just collected.
    let (ok, stuck) = invoke(
        &sh,
        "pipeline-health",
        env!("CARGO_BIN_EXE_pipeline-health"),
        r#"{"max_lag_seconds": 0}"#,
    )?;
    assert!(!ok, "a lag past 0 s is unhealthy: {stuck}");
    assert_eq!(stuck["errorType"], "PipelineUnhealthy", "{stuck}");
    let message = stuck["errorMessage"].as_str().context("errorMessage")?;
    for consumer in ["s3-parquet", "dynamodb", "cloudwatch", "alerts"] {
        assert!(message.contains(&format!("{consumer} is ")), "{message}");
    }
    let (ok, health) = invoke(
        &sh,
        "pipeline-health",
        env!("CARGO_BIN_EXE_pipeline-health"),
        r#"{"max_lag_seconds": 86400}"#,
    )?;
    assert!(ok, "{health}");
    assert_eq!(health["healthy"], true, "{health}");
    assert_eq!(
        health["stream"].as_str(),
        Some(format!("{name}-stream").as_str())
    );
    let consumers = health["consumers"].as_array().context("consumers")?;
    assert_eq!(consumers.len(), 4, "{health}");
    for c in consumers {
        assert_eq!(c["dead_letters"], 0, "{c}");
        assert!(c["lag_ms"].as_u64().is_some_and(|l| l > 0), "{c}");
        assert_eq!(c["last_checkpoint"], Value::Null, "{c}");
    }

    // The records are on Kinesis: a mapping reading it delivers each once into S3.
    let esm: Value =
        serde_json::from_str(&sh.ok(&["esm", "run", "--function", "s3-parquet", "--once"])?)?;
    assert_eq!(esm["counts"]["records_done"], 8, "{esm}");
    assert_eq!(count(&sh, "SELECT COUNT(*) AS n FROM metrics")?, 8);

    // metrics-analyzer: the seed's per-instance aggregate over the Parquet on S3.
    let (ok, analysis) = invoke(
        &sh,
        "metrics-analyzer",
        env!("CARGO_BIN_EXE_metrics-analyzer"),
        r#"{"metric_type": "cpu_utilization"}"#,
    )?;
    assert!(ok, "{analysis}");
    assert_eq!(analysis["metric_type"], "cpu_utilization");
    assert_eq!(analysis["instances"], 8, "{analysis}");
    let csv = sh.ok(&[
        "query",
        "SELECT instance_id, value FROM metrics WHERE metric_type = 'cpu_utilization'",
        "--format",
        "csv",
    ])?;
    for row in analysis["rows"].as_array().context("rows")? {
        assert_eq!(row["samples"], 1, "{row}");
        let id = row["instance_id"].as_str().context("instance_id")?;
        let line = csv
            .lines()
            .find(|l| l.starts_with(&format!("{id},")))
            .with_context(|| format!("{id} in {csv}"))?;
        let value: f64 = line[id.len() + 1..].parse()?;
        assert!(
            (row["avg"].as_f64().context("avg")? - value).abs() < 1e-9,
            "{row} {line}"
        );
    }
    Ok(())
}

/// Puts `IteratorAge` datapoints (milliseconds, at `(age_ms, epoch ms)`) for `function` as
/// Lambda does for a stream-fed function. The adapter refuses `AWS/` namespaces, as CloudWatch
/// does for callers: the test plays Lambda's part with the SDK's client.
async fn put_iterator_age(b: &AwsBackends, function: &str, points: &[(f64, i64)]) -> Result<()> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let data = points
        .iter()
        .map(|(age, at)| {
            MetricDatum::builder()
                .metric_name("IteratorAge")
                .dimensions(
                    Dimension::builder()
                        .name("FunctionName")
                        .value(function)
                        .build(),
                )
                .value(*age)
                .unit(StandardUnit::Milliseconds)
                .timestamp(DateTime::from_millis(*at))
                .build()
        })
        .collect();
    b.clients
        .cloudwatch
        .put_metric_data()
        .namespace("AWS/Lambda")
        .set_metric_data(Some(data))
        .send()
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployed_pipeline_health_reads_lag_from_iterator_age_without_a_lease_table() -> Result<()>
{
    let _moto = one_at_a_time().await;
    let name = unique("age");
    let t = config(&name, 1);
    let mut sh = on_moto(&t)?;
    // As the deploy template runs it: the stream and the dead-letter bucket exist, no lease
    // table does (Lambda's mappings keep the consumers' positions).
    sh.env
        .push(("SHARDLINE__FLOW__LAG_SOURCE".into(), "iterator-age".into()));
    let b = aws(&sh).await?;
    let stream = format!("{name}-stream");
    shardline_core::ports::Stream::create_stream(
        &b.stream,
        &stream,
        1,
        std::time::Duration::from_secs(24 * 3600),
    )
    .await?;
    b.objects
        .ensure_bucket(&format!("{name}-dead-letters"))
        .await?;
    let leases = format!("{name}-leases");
    let no_lease_table = || async {
        let described = b
            .clients
            .dynamodb
            .describe_table()
            .table_name(&leases)
            .send()
            .await;
        matches!(&described, Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()))
    };
    assert!(
        no_lease_table().await,
        "the test starts with no lease table"
    );

    // Lambda's measures: s3-parquet 15 min behind ten minutes ago, 2 min behind a minute ago
    // (the most recent period counts); dynamodb 3 s behind; cloudwatch and alerts were sent
    // no batch.
    let now = shardline_core::time::now_ms();
    put_iterator_age(&b, "s3-parquet", &[(900_000.0, now - 10 * 60_000)]).await?;
    put_iterator_age(&b, "s3-parquet", &[(120_000.0, now - 60_000)]).await?;
    put_iterator_age(&b, "dynamodb", &[(3_000.0, now - 60_000)]).await?;

    let binary = env!("CARGO_BIN_EXE_pipeline-health");
    let (ok, stuck) = invoke(&sh, "pipeline-health", binary, r#"{"max_lag_seconds": 60}"#)?;
    assert!(!ok, "2 min behind is past 60 s: {stuck}");
    assert_eq!(stuck["errorType"], "PipelineUnhealthy", "{stuck}");
    let message = stuck["errorMessage"].as_str().context("errorMessage")?;
    assert!(
        message.contains("s3-parquet is 2m behind (function s3-parquet: IteratorAge 120000 ms"),
        "{message}"
    );
    for healthy in ["dynamodb", "cloudwatch", "alerts"] {
        assert!(!message.contains(&format!("{healthy} is")), "{message}");
    }

    let (ok, health) = invoke(
        &sh,
        "pipeline-health",
        binary,
        r#"{"max_lag_seconds": 600}"#,
    )?;
    assert!(ok, "{health}");
    assert_eq!(health["healthy"], true, "{health}");
    assert_eq!(health["lag_source"], "iterator-age", "{health}");
    let consumers = health["consumers"].as_array().context("consumers")?;
    let lags: Vec<(&str, &Value)> = consumers
        .iter()
        .map(|c| (c["function"].as_str().unwrap_or_default(), &c["lag_ms"]))
        .collect();
    assert_eq!(
        lags,
        [
            ("s3-parquet", &Value::from(120_000)),
            ("dynamodb", &Value::from(3_000)),
            ("cloudwatch", &Value::Null),
            ("alerts", &Value::Null),
        ],
        "{health}"
    );
    for c in consumers {
        assert_eq!(c["records_behind"], Value::Null, "{c}");
        assert_eq!(c["last_checkpoint"], Value::Null, "{c}");
        assert_eq!(c["dead_letters"], 0, "{c}");
        let unknown = c["lag_unknown"].as_str();
        assert_eq!(unknown.is_some(), c["lag_ms"].is_null(), "{c}");
        if let Some(reason) = unknown {
            assert!(reason.contains("no IteratorAge datapoint"), "{reason}");
        }
    }
    assert!(
        no_lease_table().await,
        "pipeline-health made no lease table"
    );
    Ok(())
}

/// The object or message describing a batch given up on, checked against what was put.
fn assert_failure_record(record: &Value, shard: &str, seqs: &[String], stream: &str) {
    assert_eq!(
        record["requestContext"]["condition"], "RetryAttemptsExhausted",
        "{record}"
    );
    let info = &record["KinesisBatchInfo"];
    assert_eq!(info["shardId"].as_str(), Some(shard), "{info}");
    assert_eq!(info["startSequenceNumber"].as_str(), Some(seqs[0].as_str()));
    assert_eq!(
        info["endSequenceNumber"].as_str(),
        seqs.last().map(String::as_str)
    );
    assert_eq!(info["batchSize"], seqs.len(), "{info}");
    assert_eq!(
        info["streamArn"].as_str(),
        Some(format!("arn:aws:kinesis:eu-west-1:123456789012:stream/{stream}").as_str()),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esm_run_reads_kinesis_and_sends_a_batch_given_up_on_to_s3_and_sns() -> Result<()> {
    let _moto = one_at_a_time().await;
    let name = unique("esm");
    let stream = format!("{name}-stream");
    let failures = format!("{name}-failures");
    let mut t = config(&name, 1);
    set(&mut t, "esm.maximum_retry_attempts", 0);
    set(&mut t, "esm.on_failure", format!("arn:aws:s3:::{failures}"));
    let sh = on_moto(&t)?;
    sh.ok(&["infra", "bootstrap"])?;
    let b = aws(&sh).await?;
    b.objects.ensure_bucket(&failures).await?;
    // The dynamodb function fails every batch, before anything is durable: its table exists
    // with another key schema.
    let table = TableSchema {
        name: format!("{name}-wrong-key"),
        partition_key: ("not_the_key".into(), KeyType::S),
        sort_key: None,
    };
    shardline_core::ports::ItemTable::ensure_table(&b.table, &table).await?;
    set(&mut t, "consumers.dynamodb.sink.table", table.name.as_str());
    std::fs::write(sh.config_file(), toml::to_string(&t)?)?;

    let events: String = (0..3)
        .map(|i| {
            format!(
                r#"{{"metric_id":"m-{i}","metric_type":"cpu_utilization","timestamp":{},"value":{i}.5,"instance_id":"i-00{i}","region":"eu-west-1","collected_at":"2026-01-01T00:00:00Z"}}"#,
                shardline_core::time::now_ms() / 1000 - 60
            ) + "\n"
        })
        .collect();
    let put = sh.run_with_stdin(&["stream", "put", &stream], Some(&events))?;
    if !put.status.success() {
        bail!("stream put: {}", String::from_utf8_lossy(&put.stderr));
    }
    let acks: Vec<(String, String)> = String::from_utf8(put.stdout)?
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(shard, seq)| (shard.to_string(), seq.to_string()))
        .collect();
    assert_eq!(acks.len(), 3, "{acks:?}");
    let shard = acks[0].0.clone();
    let seqs: Vec<String> = acks.into_iter().map(|(_, s)| s).collect();

    // S3: one object under AWS's key layout, the record with the batch's event as payload.
    let out: Value =
        serde_json::from_str(&sh.ok(&["esm", "run", "--function", "dynamodb", "--once"])?)?;
    assert_eq!(out["counts"]["invocations"], 1, "no retry: {out}");
    assert_eq!(out["counts"]["records_retries_exhausted"], 3, "{out}");
    let objects = b.objects.list(&failures, "aws/lambda/").await?;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(
        objects[0].key.contains(&format!("/{shard}/")),
        "{}",
        objects[0].key
    );
    let body = b
        .objects
        .get(&failures, &objects[0].key)
        .await?
        .context("the object")?;
    let record: Value = serde_json::from_slice(&body)?;
    assert_failure_record(&record, &shard, &seqs, &stream);
    assert_eq!(
        record["payload"]["Records"].as_array().map(Vec::len),
        Some(3)
    );
    // Given up on is done: a second run finds nothing to invoke.
    let again: Value =
        serde_json::from_str(&sh.ok(&["esm", "run", "--function", "dynamodb", "--once"])?)?;
    assert_eq!(again["counts"]["invocations"], 0, "{again}");
    assert_eq!(b.objects.list(&failures, "aws/lambda/").await?.len(), 1);

    // SNS: the mapping's checkpoints removed, the same batch fails again and its record is
    // published to the topic, read back from a queue subscribed to it.
    let topic = b.notifier.ensure_topic(&failures).await?;
    let queue = subscribed_queue(&b, &topic, &failures).await?;
    std::fs::remove_dir_all(sh.data_dir().join("esm"))?;
    set(&mut t, "esm.on_failure", topic.as_str());
    std::fs::write(sh.config_file(), toml::to_string(&t)?)?;
    let out: Value =
        serde_json::from_str(&sh.ok(&["esm", "run", "--function", "dynamodb", "--once"])?)?;
    assert_eq!(out["counts"]["invocations"], 1, "{out}");
    let messages = queue.receive(1).await?;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["TopicArn"].as_str(), Some(topic.as_str()));
    let record: Value = serde_json::from_str(messages[0]["Message"].as_str().context("Message")?)?;
    assert_failure_record(&record, &shard, &seqs, &stream);
    Ok(())
}

/// An SQS queue on moto subscribed to an SNS topic.
struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// Receives until `n` messages came (bounded: 20 polls of 1 s); their envelopes.
    async fn receive(&self, n: usize) -> Result<Vec<Value>> {
        let mut messages = Vec::new();
        for _ in 0..20 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            for m in out.messages() {
                messages.push(serde_json::from_str(m.body().context("body")?)?);
            }
            if messages.len() >= n {
                break;
            }
        }
        Ok(messages)
    }
}

async fn subscribed_queue(b: &AwsBackends, topic: &str, name: &str) -> Result<Queue> {
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("eu-west-1"))
            .endpoint_url(moto_url())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .build(),
    );
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await?
        .queue_url()
        .context("queue url")?
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .context("queue ARN")?
        .clone();
    b.clients
        .sns
        .subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await?;
    Ok(Queue { sqs, url })
}
