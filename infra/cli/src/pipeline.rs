//! The pipeline `shardline up` runs: the stream, the collectors, the four consumers and the
//! notifier, wired from configuration (embedded or AWS, port by port: see [`crate::wiring`]).
//! The flow's handlers, `shardline consume` and the integration tests use it too.

use anyhow::{Context, Result};
use shardline_consumers::Sink;
use shardline_consumers::runtime::{
    Consumer, ConsumerConfig, ConsumerError, ConsumerFactory, SharedReads, Supervisor,
};
use shardline_consumers::sinks::{alerts, cloudwatch, dynamodb, s3_parquet};
use shardline_core::ports::{CheckpointStore, Notifier, Stream};
use shardline_core::{Error as PortError, EventTimeLimits, MetricEvent, MetricType};
use shardline_log::Log;
use shardline_producers::{
    HostCollector, MalformedRecord, Producer, SendReport, SyntheticCollector,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

use crate::config::{BackendKind, CollectorKind, Config};
use crate::wiring::{self, Backends};

/// Everything the pipeline runs on, opened once.
#[derive(Clone)]
pub struct Pipeline {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The stream: the embedded log or Kinesis.
    pub stream: Arc<dyn Stream>,
    /// The embedded log, when the stream is embedded (its statistics, its close).
    pub log: Option<Arc<Log>>,
    /// The stores of the other ports.
    pub backends: Backends,
    /// Where alerts and the flow's SNS tasks publish.
    pub notifier: Arc<dyn Notifier>,
    /// Appends collected events to the stream.
    pub producer: Arc<Producer>,
    /// The configured collectors, shared by `up`'s loop and the flow's data-collector.
    pub collectors: Arc<Mutex<Collectors>>,
    /// Records this process appended to the stream (the base of the API calls per 1,000
    /// events in `up`'s summary).
    pub appended: Arc<AtomicU64>,
}

/// The collectors the configuration enables.
pub struct Collectors {
    /// The seed's synthetic data-collector.
    pub synthetic: Option<SyntheticCollector>,
    /// This machine's real metrics.
    pub host: Option<HostCollector>,
}

impl Collectors {
    /// Samples every enabled collector (`which` = one metric type, or all).
    pub async fn collect(
        &mut self,
        which: Option<MetricType>,
        now_ms: i64,
    ) -> Result<Vec<MetricEvent>> {
        let mut events = Vec::new();
        if let Some(s) = self.synthetic.as_mut() {
            events.extend(s.collect(which, now_ms));
        }
        if let Some(h) = self.host.as_mut() {
            events.extend(
                h.collect(which, now_ms)
                    .await
                    .context("host collector failed")?,
            );
        }
        Ok(events)
    }

    /// As [`Collectors::collect`], with the malformed records the synthetic collector's
    /// `malformed_fraction` mixes in (a load-test setting) in place of some of its events.
    pub async fn collect_mixed(
        &mut self,
        which: Option<MetricType>,
        now_ms: i64,
    ) -> Result<(Vec<MetricEvent>, Vec<MalformedRecord>)> {
        let (mut events, mut malformed) = (Vec::new(), Vec::new());
        if let Some(s) = self.synthetic.as_mut() {
            let mixed = s.collect_mixed(which, now_ms);
            events.extend(mixed.events);
            malformed.extend(mixed.malformed);
        }
        if let Some(h) = self.host.as_mut() {
            events.extend(
                h.collect(which, now_ms)
                    .await
                    .context("host collector failed")?,
            );
        }
        Ok((events, malformed))
    }
}

impl Pipeline {
    /// Opens the stream (creating it in the embedded log if missing; on Kinesis it must
    /// exist: `shardline infra bootstrap`), the backends, the notifier, the producer and the
    /// collectors.
    pub async fn open(config: Config) -> Result<Pipeline> {
        let aws = wiring::open_aws(&config).await?;
        let (stream, log) = wiring::open_stream(&config, aws.as_ref()).await?;
        let backends = wiring::open_backends_with(&config, aws)?;
        Pipeline::with_parts(config, stream, log, backends).await
    }

    /// [`Pipeline::open`] on a stream and backends opened already (the stream is created in
    /// the embedded log if missing, as there).
    pub async fn with_parts(
        config: Config,
        stream: Arc<dyn Stream>,
        log: Option<Arc<Log>>,
        backends: Backends,
    ) -> Result<Pipeline> {
        ensure_stream(stream.as_ref(), &config).await?;
        check_consumer_streams(stream.as_ref(), &config).await?;
        let notifier = wiring::open_notifier(&config, &backends)?;
        let producer = Producer::new(
            Arc::clone(&stream),
            config.stream.name.clone(),
            config.producer.clone(),
        )
        .context("invalid [producer] configuration")?;
        let synthetic = if config.collectors.run.contains(&CollectorKind::Synthetic) {
            Some(
                SyntheticCollector::new(config.collectors.synthetic.clone(), None)
                    .context("invalid [collectors.synthetic] configuration")?,
            )
        } else {
            None
        };
        let host = if config.collectors.run.contains(&CollectorKind::Host) {
            Some(
                HostCollector::new(config.collectors.host.clone())
                    .context("cannot start the host collector ([collectors.host])")?,
            )
        } else {
            None
        };
        Ok(Pipeline {
            config: Arc::new(config),
            stream,
            log,
            backends,
            notifier,
            producer: Arc::new(producer),
            collectors: Arc::new(Mutex::new(Collectors { synthetic, host })),
            appended: Arc::default(),
        })
    }

    /// The stream port.
    pub fn stream(&self) -> Arc<dyn Stream> {
        Arc::clone(&self.stream)
    }

    /// The embedded log, for what only it offers (per-shard offsets).
    ///
    /// # Errors
    /// When the stream is on Kinesis.
    pub fn embedded_log(&self) -> Result<&Arc<Log>> {
        self.log
            .as_ref()
            .context("the stream is on Kinesis, not in the embedded log")
    }

    /// Collects once from every enabled collector and appends the events, then the malformed
    /// records `collectors.synthetic.malformed_fraction` asks for (a load-test setting): the
    /// report covers the events, then those records.
    pub async fn collect_once(
        &self,
        which: Option<MetricType>,
    ) -> Result<(Vec<MetricEvent>, SendReport)> {
        let now = shardline_core::time::now_ms();
        let (events, malformed) = self
            .collectors
            .lock()
            .await
            .collect_mixed(which, now)
            .await?;
        let context = || format!("cannot append to stream `{}`", self.config.stream.name);
        let mut report = self
            .producer
            .send(events.clone())
            .await
            .with_context(context)?;
        if !malformed.is_empty() {
            let records = malformed
                .into_iter()
                .map(|m| (m.partition_key, m.data))
                .collect();
            let bad = self
                .producer
                .send_records(records)
                .await
                .with_context(context)?;
            report.extend(bad, events.len());
        }
        self.appended
            .fetch_add(report.appended.len() as u64, Ordering::Relaxed);
        Ok((events, report))
    }

    /// The enabled consumers, each with its own sink and checkpoints; consumers of one stream
    /// and batch size share their reads.
    pub fn consumers(&self) -> Result<Vec<Consumer>> {
        let shares = self.shares()?;
        self.enabled()
            .into_iter()
            .map(|kind| {
                let consumer = self.build(kind)?;
                match share_of(&shares, consumer.config()) {
                    Some(share) => {
                        let name = consumer.config().name.clone();
                        consumer
                            .share_reads(&share)
                            .with_context(|| format!("cannot start consumer `{name}`"))
                    }
                    None => Ok(consumer),
                }
            })
            .collect()
    }

    /// A [`Supervisor`] per enabled consumer: each builds its consumer again (a fresh sink,
    /// the same shared reads) whenever it restarts it.
    pub fn supervisors(&self) -> Result<Vec<Supervisor>> {
        let shares = self.shares()?;
        self.enabled()
            .into_iter()
            .map(|kind| {
                let config = self.consumer_config(kind);
                let name = config.name.clone();
                let share = share_of(&shares, &config);
                let pipeline = self.clone();
                let factory: ConsumerFactory = Box::new(move || {
                    let start = |e: anyhow::Error| ConsumerError::Start {
                        consumer: config.name.clone(),
                        reason: format!("{e:#}"),
                    };
                    let consumer = pipeline.build(kind).map_err(start)?;
                    match &share {
                        Some(share) => consumer.share_reads(share),
                        None => Ok(consumer),
                    }
                });
                Supervisor::new(factory).with_context(|| format!("cannot start consumer `{name}`"))
            })
            .collect()
    }

    /// The enabled consumers, in the order `up` lists them.
    pub fn enabled(&self) -> Vec<ConsumerKind> {
        let c = &self.config.consumers;
        [
            (c.s3.enabled, ConsumerKind::S3),
            (c.dynamodb.enabled, ConsumerKind::DynamoDb),
            (c.cloudwatch.enabled, ConsumerKind::CloudWatch),
            (c.alerts.enabled, ConsumerKind::Alerts),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, kind)| kind)
        .collect()
    }

    /// A consumer's configuration, its event-time window filled from
    /// `[consumers.event_time]` unless it sets its own.
    pub fn consumer_config(&self, kind: ConsumerKind) -> ConsumerConfig {
        let c = &self.config.consumers;
        let mut config = match kind {
            ConsumerKind::S3 => &c.s3.consumer,
            ConsumerKind::DynamoDb => &c.dynamodb.consumer,
            ConsumerKind::CloudWatch => &c.cloudwatch.consumer,
            ConsumerKind::Alerts => &c.alerts.consumer,
        }
        .clone();
        config.event_time.get_or_insert(c.event_time);
        config
    }

    /// One consumer with a fresh sink.
    fn build(&self, kind: ConsumerKind) -> Result<Consumer> {
        self.build_with(kind, Arc::clone(&self.backends.checkpoints))
    }

    /// One consumer with a fresh sink, checkpointing into `checkpoints` (a lease worker's).
    pub fn build_with(
        &self,
        kind: ConsumerKind,
        checkpoints: Arc<dyn CheckpointStore>,
    ) -> Result<Consumer> {
        let c = &self.config.consumers;
        let b = &self.backends;
        let sink: Box<dyn Sink> = match kind {
            ConsumerKind::S3 => Box::new(
                s3_parquet::S3ParquetSink::new(c.s3.sink.clone(), b.objects.clone())
                    .context("invalid [consumers.s3.sink] configuration")?,
            ),
            ConsumerKind::DynamoDb => Box::new(
                dynamodb::DynamoDbSink::new(b.table.clone(), c.dynamodb.sink.clone())
                    .context("invalid [consumers.dynamodb.sink] configuration")?,
            ),
            ConsumerKind::CloudWatch => {
                let mut cfg = c.cloudwatch.sink.clone();
                cfg.consumer.clone_from(&c.cloudwatch.consumer.name);
                cfg.stream.clone_from(&c.cloudwatch.consumer.stream);
                Box::new(
                    cloudwatch::CloudWatchSink::new(b.metrics.clone(), cfg)
                        .context("invalid [consumers.cloudwatch.sink] configuration")?,
                )
            }
            ConsumerKind::Alerts => Box::new(
                alerts::AlertsSink::new(
                    self.notifier.clone(),
                    b.state.clone(),
                    self.alerts_config(),
                )
                .context("invalid [consumers.alerts.sink] configuration")?,
            ),
        };
        let cfg = self.consumer_config(kind);
        Consumer::new(
            cfg.clone(),
            self.stream(),
            checkpoints,
            self.backends.dead_letters.clone(),
            sink,
        )
        .with_context(|| format!("cannot start consumer `{}`", cfg.name))
    }

    /// The reads shared by consumers of one stream, batch size and event-time window (two or
    /// more of them that do not opt out), when sharing is enabled.
    fn shares(&self) -> Result<HashMap<ShareKey, Arc<SharedReads>>> {
        let config = &self.config.consumers.shared_reads;
        if !config.enabled {
            return Ok(HashMap::new());
        }
        config
            .validate()
            .context("invalid [consumers.shared_reads] configuration")?;
        let mut groups: HashMap<ShareKey, usize> = HashMap::new();
        for kind in self.enabled() {
            let c = self.consumer_config(kind);
            if c.share_reads {
                *groups.entry(share_key(&c)).or_default() += 1;
            }
        }
        Ok(groups
            .into_iter()
            .filter(|(_, n)| *n >= 2)
            .map(|((stream, batch, window), _)| {
                let share =
                    SharedReads::new(stream.clone(), batch, config.clone()).with_event_time(window);
                ((stream, batch, window), Arc::new(share))
            })
            .collect())
    }

    /// The alerts sink's configuration with its consumer and stream names filled in.
    pub fn alerts_config(&self) -> alerts::AlertsConfig {
        let c = &self.config.consumers.alerts;
        let mut cfg = c.sink.clone();
        cfg.consumer.clone_from(&c.consumer.name);
        cfg.stream.clone_from(&c.consumer.stream);
        cfg
    }

    /// Names of the enabled consumers.
    pub fn consumer_names(&self) -> Vec<String> {
        self.enabled()
            .into_iter()
            .map(|kind| self.consumer_config(kind).name.clone())
            .collect()
    }

    /// Flushes and closes the embedded log, if the stream is embedded.
    pub async fn close(&self) -> Result<()> {
        match &self.log {
            Some(log) => log.close().await.context("cannot close the log"),
            None => Ok(()),
        }
    }
}

/// The consumers `up` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerKind {
    /// S3 Parquet.
    S3,
    /// DynamoDB items.
    DynamoDb,
    /// CloudWatch statistics.
    CloudWatch,
    /// SNS alerts.
    Alerts,
}

/// What consumers sharing reads have in common: stream, batch size, event-time window.
type ShareKey = (String, usize, EventTimeLimits);

fn share_key(config: &ConsumerConfig) -> ShareKey {
    (
        config.stream.clone(),
        config.batch_size,
        config.event_time_limits(),
    )
}

/// The shared reads `config`'s consumer takes part in, if any.
fn share_of(
    shares: &HashMap<ShareKey, Arc<SharedReads>>,
    config: &ConsumerConfig,
) -> Option<Arc<SharedReads>> {
    if !config.share_reads {
        return None;
    }
    shares.get(&share_key(config)).cloned()
}

/// Every enabled consumer of a stream other than `stream.name` (which `ensure_stream` just
/// created if missing) must find its stream in the log: `up` never creates it, and a consumer
/// of a missing stream would only fail once running.
async fn check_consumer_streams(log: &dyn Stream, config: &Config) -> Result<()> {
    let mut existing: Option<Vec<String>> = None;
    for (section, enabled, consumer) in config.consumer_sections() {
        if !enabled || consumer.stream == config.stream.name {
            continue;
        }
        if existing.is_none() {
            existing = Some(
                log.list_streams()
                    .await
                    .context("cannot list the log's streams")?,
            );
        }
        let streams = existing.as_deref().unwrap_or_default();
        if !streams.contains(&consumer.stream) {
            anyhow::bail!(
                "consumers.{section}.consumer.stream = {:?}: no such stream in {} (streams: {}); \
                 set it to {:?} (stream.name, created by `up`) or create it with `shardline stream \
                 create {}`",
                consumer.stream,
                config.log_dir().display(),
                streams.join(", "),
                config.stream.name,
                consumer.stream
            );
        }
    }
    Ok(())
}

async fn ensure_stream(stream: &dyn Stream, config: &Config) -> Result<()> {
    let s = &config.stream;
    if config.backend.stream == BackendKind::Aws {
        // Created by `shardline infra bootstrap` (the error says so when it is missing).
        stream
            .describe_stream(&s.name)
            .await
            .with_context(|| format!("cannot use stream `{}`", s.name))?;
        return Ok(());
    }
    match stream.create_stream(&s.name, s.shards, s.retention).await {
        Ok(()) => {
            tracing::info!(stream = %s.name, shards = s.shards, "stream created");
            Ok(())
        }
        Err(PortError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create stream `{}`", s.name)),
    }
}
