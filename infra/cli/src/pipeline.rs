//! The pipeline `shardline up` runs: the log, the collectors, the four consumers and the
//! notifier, wired from configuration. The flow's handlers and the integration tests use it too.

use anyhow::{Context, Result};
use shardline_consumers::Sink;
use shardline_consumers::runtime::{Consumer, ConsumerConfig, SharedReads, SharedReadsConfig};
use shardline_consumers::sinks::{alerts, cloudwatch, dynamodb, s3_parquet};
use shardline_core::ports::{Notifier, Stream};
use shardline_core::{Error as PortError, EventTimeLimits, MetricEvent, MetricType};
use shardline_local::LocalBackends;
use shardline_log::Log;
use shardline_producers::{HostCollector, Producer, SendReport, SyntheticCollector};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

use crate::config::{CollectorKind, Config};
use crate::wiring;

/// Everything the pipeline runs on, opened once.
#[derive(Clone)]
pub struct Pipeline {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The embedded log.
    pub log: Arc<Log>,
    /// The embedded stand-ins.
    pub backends: LocalBackends,
    /// Where alerts and the flow's SNS tasks publish.
    pub notifier: Arc<dyn Notifier>,
    /// Appends collected events to the stream.
    pub producer: Arc<Producer>,
    /// The configured collectors, shared by `up`'s loop and the flow's data-collector.
    pub collectors: Arc<Mutex<Collectors>>,
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
}

impl Pipeline {
    /// Opens the log (creating the configured stream if missing), the backends, the notifier,
    /// the producer and the collectors.
    pub async fn open(config: Config) -> Result<Pipeline> {
        let log = wiring::open_log(&config).await?;
        ensure_stream(&log, &config).await?;
        check_consumer_streams(&log, &config).await?;
        let backends = wiring::open_backends(&config)?;
        let notifier = backends
            .notifier(&config.notifier)
            .context("cannot set up the notifier (check [notifier] in the configuration)")?;
        let stream: Arc<dyn Stream> = log.clone();
        let producer = Producer::new(stream, config.stream.name.clone(), config.producer.clone())
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
            log,
            backends,
            notifier,
            producer: Arc::new(producer),
            collectors: Arc::new(Mutex::new(Collectors { synthetic, host })),
        })
    }

    /// The log as a `Stream` port.
    pub fn stream(&self) -> Arc<dyn Stream> {
        self.log.clone()
    }

    /// Collects once from every enabled collector and appends the events.
    pub async fn collect_once(
        &self,
        which: Option<MetricType>,
    ) -> Result<(Vec<MetricEvent>, SendReport)> {
        let now = shardline_core::time::now_ms();
        let events = self.collectors.lock().await.collect(which, now).await?;
        let report =
            self.producer.send(events.clone()).await.with_context(|| {
                format!("cannot append to stream `{}`", self.config.stream.name)
            })?;
        Ok((events, report))
    }

    /// The enabled consumers, each with its own sink and checkpoints.
    pub fn consumers(&self) -> Result<Vec<Consumer>> {
        let c = &self.config.consumers;
        let b = &self.backends;
        let mut out = Vec::new();
        if c.s3.enabled {
            let sink = s3_parquet::S3ParquetSink::new(c.s3.sink.clone(), b.objects.clone())
                .context("invalid [consumers.s3.sink] configuration")?;
            out.push(self.consumer(&c.s3.consumer, Box::new(sink))?);
        }
        if c.dynamodb.enabled {
            let sink = dynamodb::DynamoDbSink::new(b.table.clone(), c.dynamodb.sink.clone())
                .context("invalid [consumers.dynamodb.sink] configuration")?;
            out.push(self.consumer(&c.dynamodb.consumer, Box::new(sink))?);
        }
        if c.cloudwatch.enabled {
            let mut cfg = c.cloudwatch.sink.clone();
            cfg.consumer.clone_from(&c.cloudwatch.consumer.name);
            cfg.stream.clone_from(&c.cloudwatch.consumer.stream);
            let sink = cloudwatch::CloudWatchSink::new(b.metrics.clone(), cfg)
                .context("invalid [consumers.cloudwatch.sink] configuration")?;
            out.push(self.consumer(&c.cloudwatch.consumer, Box::new(sink))?);
        }
        if c.alerts.enabled {
            let sink = alerts::AlertsSink::new(
                self.notifier.clone(),
                b.state.clone(),
                self.alerts_config(),
            )
            .context("invalid [consumers.alerts.sink] configuration")?;
            out.push(self.consumer(&c.alerts.consumer, Box::new(sink))?);
        }
        if c.shared_reads.enabled {
            out = share_reads(out, &c.shared_reads)?;
        }
        Ok(out)
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
        let c = &self.config.consumers;
        [
            (c.s3.enabled, &c.s3.consumer.name),
            (c.dynamodb.enabled, &c.dynamodb.consumer.name),
            (c.cloudwatch.enabled, &c.cloudwatch.consumer.name),
            (c.alerts.enabled, &c.alerts.consumer.name),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.clone())
        .collect()
    }

    fn consumer(&self, cfg: &ConsumerConfig, sink: Box<dyn Sink>) -> Result<Consumer> {
        let mut cfg = cfg.clone();
        cfg.event_time
            .get_or_insert(self.config.consumers.event_time);
        Consumer::new(
            cfg.clone(),
            self.stream(),
            self.backends.checkpoints.clone(),
            self.backends.dead_letters.clone(),
            sink,
        )
        .with_context(|| format!("cannot start consumer `{}`", cfg.name))
    }

    /// Flushes and closes the log.
    pub async fn close(&self) -> Result<()> {
        self.log.close().await.context("cannot close the log")
    }
}

/// Consumers of the same stream, batch size and event-time window (that do not opt out)
/// share their reads.
fn share_reads(consumers: Vec<Consumer>, config: &SharedReadsConfig) -> Result<Vec<Consumer>> {
    config
        .validate()
        .context("invalid [consumers.shared_reads] configuration")?;
    type Key = (String, usize, EventTimeLimits);
    let key_of = |c: &Consumer| -> Key {
        (
            c.config().stream.clone(),
            c.config().batch_size,
            c.config().event_time_limits(),
        )
    };
    let mut groups: HashMap<Key, usize> = HashMap::new();
    for c in consumers.iter().filter(|c| c.config().share_reads) {
        *groups.entry(key_of(c)).or_default() += 1;
    }
    let mut shares: HashMap<Key, Arc<SharedReads>> = HashMap::new();
    consumers
        .into_iter()
        .map(|c| {
            let key = key_of(&c);
            if !c.config().share_reads || groups.get(&key).copied().unwrap_or(0) < 2 {
                return Ok(c);
            }
            let share = shares.entry(key.clone()).or_insert_with(|| {
                Arc::new(SharedReads::new(key.0, key.1, config.clone()).with_event_time(key.2))
            });
            let name = c.config().name.clone();
            c.share_reads(share)
                .with_context(|| format!("cannot start consumer `{name}`"))
        })
        .collect()
}

/// Every enabled consumer of a stream other than `stream.name` (which `ensure_stream` just
/// created if missing) must find its stream in the log: `up` never creates it, and a consumer
/// of a missing stream would only fail once running.
async fn check_consumer_streams(log: &Log, config: &Config) -> Result<()> {
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

async fn ensure_stream(log: &Log, config: &Config) -> Result<()> {
    let s = &config.stream;
    match log.create_stream(&s.name, s.shards, s.retention).await {
        Ok(()) => {
            tracing::info!(stream = %s.name, shards = s.shards, "stream created");
            Ok(())
        }
        Err(PortError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create stream `{}`", s.name)),
    }
}
