//! Configuration: an embedded `default.toml`, overlaid by a file, then the environment, then flags.
//!
//! Every key has a default in `default.toml` (shipped inside the binary), so an empty or missing
//! `shardline.toml` runs the whole pipeline. Environment variables override single keys:
//! `SHARDLINE__STREAM__SHARDS=8` sets `stream.shards` (sections joined by double underscores,
//! values parsed as TOML, falling back to a string).
//!
//! Errors caught at load, each one line naming the key and the fix: unknown keys (with the
//! nearest valid one), bad values, two consumers with one name (their checkpoints, dead letters
//! and state would mix). A consumer pointed at a stream other than `stream.name` is checked when
//! the pipeline opens the log ([`crate::pipeline::Pipeline::open`]): that stream must exist
//! already, as only `stream.name` is created by `up`.

mod explain;
mod lag;
mod window;

pub use lag::LagSource;
pub use window::AnalyzerWindow;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The shipped defaults.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Prefix of key-override environment variables.
const ENV_PREFIX: &str = "SHARDLINE__";

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the log and every embedded backend keep their data.
    pub data_dir: PathBuf,
    /// The stream collectors append to.
    pub stream: StreamConfig,
    /// Collectors run by `shardline up`.
    pub collectors: CollectorsConfig,
    /// The producer between collectors and the stream.
    #[serde(default)]
    pub producer: shardline_producers::ProducerConfig,
    /// The embedded backends (S3, DynamoDB, CloudWatch, checkpoints...).
    #[serde(default)]
    pub local: shardline_local::LocalOptions,
    /// The four consumers.
    pub consumers: ConsumersConfig,
    /// Where alert and flow notifications go.
    pub notifier: shardline_local::notify::NotifierConfig,
    /// The scheduled Step Functions flow.
    pub flow: FlowConfig,
    /// `shardline up`'s status line.
    pub status: StatusConfig,
    /// The dashboard `up` (and `shardline dashboard`) serve.
    #[serde(default)]
    pub dashboard: DashboardConfig,
    /// The local Kinesis event source mappings (`shardline esm run`); `function` comes from
    /// the command line.
    #[serde(default)]
    pub esm: shardline_lambda::esm::MappingConfig,
    /// The Kinesis-compatible endpoint (`shardline serve`, and `up` when enabled).
    pub serve: shardline_kinesis_api::ServeConfig,
    /// Which backend each port uses (`embedded` or `aws`).
    #[serde(default)]
    pub backend: BackendConfig,
    /// The AWS backend: region, profile, endpoints, resource names, retries.
    #[serde(default)]
    pub aws: shardline_aws::AwsConfig,
    /// `shardline consume`'s shard leases.
    #[serde(default)]
    pub leases: shardline_consumers::runtime::LeaseConfig,
}

/// The dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Whether `up` serves it.
    pub enabled: bool,
    /// Loopback address and port; a taken port is replaced by a free one (the address is
    /// printed at start).
    pub listen: String,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8740".into(),
        }
    }
}

/// Where a port's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// On this machine, under the data directory (no account, container or network).
    Embedded,
    /// On AWS (Kinesis, S3, DynamoDB, CloudWatch, SNS) through the `[aws]` settings.
    Aws,
}

/// `[backend]`: the backend of each port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// The stream: the embedded log, or Kinesis Data Streams.
    pub stream: BackendKind,
    /// Objects (Parquet output and manifests): `<data>/s3`, or S3.
    pub objects: BackendKind,
    /// The item table: embedded, or DynamoDB.
    pub table: BackendKind,
    /// Metric statistics: embedded, or CloudWatch.
    pub metrics: BackendKind,
    /// Alert and flow notifications: the `[notifier]` targets, or SNS.
    pub notifier: BackendKind,
    /// Checkpoints and shard leases: embedded, or DynamoDB (KCL lease schema).
    pub checkpoints: BackendKind,
    /// Sink state: embedded, or DynamoDB.
    pub state: BackendKind,
    /// Dead letters: embedded, or S3.
    pub dead_letters: BackendKind,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self::all(BackendKind::Embedded)
    }
}

impl BackendConfig {
    /// Every port on `kind`.
    pub fn all(kind: BackendKind) -> Self {
        BackendConfig {
            stream: kind,
            objects: kind,
            table: kind,
            metrics: kind,
            notifier: kind,
            checkpoints: kind,
            state: kind,
            dead_letters: kind,
        }
    }

    fn stores(&self) -> [BackendKind; 6] {
        [
            self.objects,
            self.table,
            self.metrics,
            self.checkpoints,
            self.state,
            self.dead_letters,
        ]
    }

    /// Whether any port uses `kind`.
    pub fn any(&self, kind: BackendKind) -> bool {
        self.stores().contains(&kind) || self.stream == kind || self.notifier == kind
    }

    /// Whether the data directory holds (and this process would lock) a port's data: the
    /// stream or a store is embedded. Only then does a running `up` own the directory and
    /// serve its control socket; otherwise every command runs in its own process.
    pub fn uses_data_dir(&self) -> bool {
        self.stream == BackendKind::Embedded || self.stores_any(BackendKind::Embedded)
    }

    /// Whether any store (every port but the stream and the notifier) uses `kind`.
    pub fn stores_any(&self, kind: BackendKind) -> bool {
        self.stores().contains(&kind)
    }

    /// The ports and their backends, for status lines.
    pub fn ports(&self) -> [(&'static str, BackendKind); 8] {
        [
            ("stream", self.stream),
            ("objects", self.objects),
            ("table", self.table),
            ("metrics", self.metrics),
            ("notifier", self.notifier),
            ("checkpoints", self.checkpoints),
            ("state", self.state),
            ("dead_letters", self.dead_letters),
        ]
    }
}

/// The stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Stream name.
    pub name: String,
    /// Shards created when the stream does not exist yet.
    pub shards: u32,
    /// Retention period.
    #[serde(with = "shardline_core::units::duration")]
    pub retention: std::time::Duration,
    /// `fsync` (acknowledged records are on disk) or `buffered` (benchmarks only).
    pub durability: Durability,
    /// Segment file size before rolling, e.g. "64MiB".
    pub segment_size: shardline_core::units::ByteSize,
    /// Read handles of sealed segments the log keeps open (a cache shared by all shards).
    pub open_sealed_segments: usize,
    /// A cached read handle of a sealed segment unused this long is closed ("0s": kept until
    /// the cache is full).
    #[serde(with = "shardline_core::units::duration")]
    pub sealed_handle_idle: std::time::Duration,
    /// Enforce Kinesis's per-shard limits (1 MiB/s and 1,000 records/s written, 2 MiB/s and
    /// 5 reads/s read), so load tests see throttling as on Kinesis.
    #[serde(default)]
    pub enforce_limits: bool,
}

/// Log durability mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync before acknowledging.
    Fsync,
    /// Acknowledge once written to the OS; not crash-safe.
    Buffered,
}

/// Collectors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorsConfig {
    /// How often `up` collects.
    #[serde(with = "shardline_core::units::duration")]
    pub interval: std::time::Duration,
    /// Which collectors `up` runs: any of "synthetic", "host".
    pub run: Vec<CollectorKind>,
    /// The seed's synthetic data-collector.
    pub synthetic: shardline_producers::SyntheticConfig,
    /// Real metrics of this machine.
    pub host: shardline_producers::HostConfig,
}

/// A collector `up` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectorKind {
    /// The seed's synthetic data-collector.
    Synthetic,
    /// This machine's real CPU, memory, disk and network.
    Host,
}

/// Consumers, one per sink; each has its own checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumersConfig {
    /// S3 Parquet sink.
    pub s3: SinkSection<shardline_consumers::sinks::s3_parquet::S3ParquetConfig>,
    /// DynamoDB sink.
    pub dynamodb: SinkSection<shardline_consumers::sinks::dynamodb::DynamoDbConfig>,
    /// CloudWatch sink.
    pub cloudwatch: SinkSection<shardline_consumers::sinks::cloudwatch::CloudWatchConfig>,
    /// Alerts sink.
    pub alerts: SinkSection<shardline_consumers::sinks::alerts::AlertsConfig>,
    /// Consumers of the same stream read each batch once and share it.
    #[serde(default)]
    pub shared_reads: shardline_consumers::runtime::SharedReadsConfig,
    /// How far an event's time may be from its record's arrival at the stream, for every
    /// consumer that does not set its own `event_time`.
    #[serde(default)]
    pub event_time: shardline_core::EventTimeLimits,
}

/// A consumer: its switch, how it reads, and its sink's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSection<T> {
    /// Whether `up` runs this consumer.
    pub enabled: bool,
    /// How it reads: name (its checkpoints are kept under it), stream, starting position,
    /// batch size, polling, retries.
    pub consumer: shardline_consumers::runtime::ConsumerConfig,
    /// The sink's own settings.
    #[serde(default)]
    pub sink: T,
}

/// The scheduled flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// Whether `up` runs the flow on its schedule.
    pub enabled: bool,
    /// EventBridge schedule expression.
    pub schedule: String,
    /// IANA time zone or `UTC` for cron expressions.
    pub time_zone: String,
    /// ASL definition file; the built-in seed pipeline flow when absent.
    pub definition: Option<PathBuf>,
    /// pipeline-health fails when a consumer is further behind than this.
    #[serde(with = "shardline_core::units::duration")]
    pub max_consumer_lag: std::time::Duration,
    /// Where pipeline-health reads each consumer's lag: its checkpoints (the consumers `up`
    /// runs) or Lambda's `IteratorAge` metric (the consumers deployed as Lambda functions).
    #[serde(default)]
    pub lag_source: LagSource,
    /// The samples metrics-analyzer aggregates when its input has no `window_seconds`.
    pub analyzer_window: AnalyzerWindow,
    /// Task resources served by a local command or an HTTP endpoint, keyed by resource ARN
    /// (or Lambda function name); they take precedence over the built-in handlers.
    #[serde(default)]
    pub tasks: std::collections::BTreeMap<String, FlowTaskTarget>,
}

/// Where a Task resource is served: exactly one of `command` and `url`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlowTaskTarget {
    /// A program and its arguments: the task input on stdin, the result (JSON) on stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// An `http://` URL the task input is POSTed to as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How long one invocation may take.
    #[serde(
        default = "default_task_timeout",
        with = "shardline_core::units::duration"
    )]
    pub timeout: std::time::Duration,
}

fn default_task_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

/// Status line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// How often `up` prints a status line.
    #[serde(with = "shardline_core::units::duration")]
    pub interval: std::time::Duration,
}

impl Config {
    /// Loads defaults, then `file` (or ./shardline.toml when present), then `SHARDLINE__*`
    /// variables, then the `--data-dir` flag.
    pub fn load(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Config> {
        let mut merged: toml::Table =
            toml::from_str(DEFAULT_TOML).context("the built-in default.toml is invalid")?;
        let file = match file {
            Some(f) => Some(f.to_path_buf()),
            None => Some(PathBuf::from("shardline.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read config file {} (check --config)",
                    path.display()
                )
            })?;
            let overlay: toml::Table = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!(explain::syntax(&e, &text, path)))?;
            merge(&mut merged, overlay);
        }
        for (key, value) in std::env::vars() {
            if let Some(path) = key.strip_prefix(ENV_PREFIX) {
                set_path(&mut merged, path, &value)
                    .with_context(|| format!("environment variable {key}"))?;
            }
        }
        if let Some(dir) = data_dir {
            merged.insert(
                "data_dir".into(),
                toml::Value::String(dir.to_string_lossy().into_owned()),
            );
        }
        let origin = file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the built-in defaults".into());
        let origin = format!("{origin} and SHARDLINE__* variables");
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| anyhow::anyhow!(explain::explain(&e, &origin)))?;
        config.check()?;
        Ok(config)
    }

    /// The four consumer sections, by section name.
    pub fn consumer_sections(
        &self,
    ) -> [(
        &'static str,
        bool,
        &shardline_consumers::runtime::ConsumerConfig,
    ); 4] {
        let c = &self.consumers;
        [
            ("s3", c.s3.enabled, &c.s3.consumer),
            ("dynamodb", c.dynamodb.enabled, &c.dynamodb.consumer),
            ("cloudwatch", c.cloudwatch.enabled, &c.cloudwatch.consumer),
            ("alerts", c.alerts.enabled, &c.alerts.consumer),
        ]
    }

    fn check(&self) -> Result<()> {
        if self.stream.shards == 0 || self.stream.shards > 1024 {
            bail!("stream.shards = {}: must be 1 to 1024", self.stream.shards);
        }
        let hours = self.stream.retention.as_secs() / 3600;
        if !(1..=8760).contains(&hours) {
            bail!("stream.retention: must be 1h to 8760h");
        }
        self.serve
            .validate()
            .map_err(|e| anyhow::anyhow!("{e} (in [serve])"))?;
        let sections = self.consumer_sections();
        for (i, (section, _, consumer)) in sections.iter().enumerate() {
            if let Some((first, _, _)) = sections[..i]
                .iter()
                .find(|(_, _, other)| other.name == consumer.name)
            {
                bail!(
                    "consumers.{section}.consumer.name = {:?} is also consumers.{first}.consumer.name: \
                     checkpoints, dead letters and sink state are kept per consumer name, so give \
                     consumers.{section}.consumer a name of its own",
                    consumer.name
                );
            }
        }
        if self.consumers.event_time.max_age.is_zero() {
            bail!(
                "consumers.event_time.max_age = \"0s\" refuses every event (each is older than \
                 its arrival at the stream): give a duration such as \"10years\""
            );
        }
        Ok(())
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).context("cannot render the configuration as TOML")
    }

    /// The log's directory.
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("log")
    }

    /// Puts every port on `kind` (`--backend`, `SHARDLINE_BACKEND`).
    pub fn set_backend(&mut self, kind: BackendKind) {
        self.backend = BackendConfig::all(kind);
    }
}

/// Overlays `overlay` on `base` key by key. A table that names its `type` (a tagged choice such
/// as `[notifier]`) replaces the default table whole: keys of another variant must not linger.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) if !o.contains_key("type") => {
                merge(b, o)
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &str, raw: &str) -> Result<()> {
    let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let Some((last, parents)) = parts.split_last() else {
        bail!("empty key");
    };
    let mut cur = table;
    for p in parents {
        let entry = cur
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => bail!("`{p}` is not a section"),
        };
    }
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::units::ByteSize;
    use std::time::Duration;

    fn defaults_with(section: &str, key: &str, value: toml::Value) -> toml::Table {
        let mut t: toml::Table = toml::from_str(DEFAULT_TOML).expect("defaults parse");
        if let Some(toml::Value::Table(s)) = t.get_mut(section) {
            s.insert(key.into(), value);
        }
        t
    }

    #[test]
    fn sizes_and_durations_read_and_render_back() {
        let t = defaults_with(
            "stream",
            "segment_size",
            toml::Value::String("1.5MiB".into()),
        );
        let config: Config = toml::Value::Table(t).try_into().expect("valid");
        assert_eq!(config.stream.segment_size, ByteSize(3 << 19));
        assert_eq!(config.stream.retention, Duration::from_secs(24 * 3600));
        assert_eq!(config.collectors.interval, Duration::from_secs(5));
        let text = config.to_toml().expect("render");
        assert!(text.contains("segment_size = \"1536KiB\""), "{text}");
        assert!(text.contains("retention = \"1day\""), "{text}");
        let again: Config = toml::from_str(&text).expect("rendered config reads back");
        assert_eq!(again.stream.segment_size, config.stream.segment_size);
        assert_eq!(again.stream.retention, config.stream.retention);
        assert_eq!(again.status.interval, config.status.interval);

        let t = defaults_with("stream", "segment_size", toml::Value::Integer(4096));
        let config: Config = toml::Value::Table(t).try_into().expect("bytes");
        assert_eq!(config.stream.segment_size, ByteSize(4096));
    }

    #[test]
    fn bad_sizes_and_durations_name_the_text() {
        let t = defaults_with(
            "stream",
            "segment_size",
            toml::Value::String("64 parsecs".into()),
        );
        let err = toml::Value::Table(t)
            .try_into::<Config>()
            .expect_err("bad size");
        assert!(
            err.to_string().contains("`64 parsecs` is not a size"),
            "{err}"
        );
        let t = defaults_with("status", "interval", toml::Value::String("often".into()));
        let err = toml::Value::Table(t)
            .try_into::<Config>()
            .expect_err("bad duration");
        assert!(
            err.to_string().contains("`often` is not a duration"),
            "{err}"
        );
        let err = crate::cli::parse_duration("soon").expect_err("bad flag");
        assert!(err.contains("`soon` is not a duration"), "{err}");
    }

    #[test]
    fn the_shipped_aws_block_is_the_aws_defaults_and_backends_are_embedded() {
        let dir = std::env::temp_dir().join("shardline-aws-config-test");
        let config = Config::load(None, Some(&dir)).expect("defaults load");
        assert_eq!(config.aws, shardline_aws::AwsConfig::default());
        assert_eq!(config.backend, BackendConfig::all(BackendKind::Embedded));
        assert!(!config.backend.any(BackendKind::Aws));
        let mut aws = config.clone();
        aws.set_backend(BackendKind::Aws);
        assert!(
            aws.backend
                .ports()
                .iter()
                .all(|(_, k)| *k == BackendKind::Aws)
        );
        let text = aws.to_toml().expect("render");
        assert!(
            text.contains("[backend]") && text.contains("stream = \"aws\""),
            "{text}"
        );
    }

    #[test]
    fn a_misspelt_backend_key_is_named() {
        let mut t: toml::Table = toml::from_str(DEFAULT_TOML).expect("defaults parse");
        let backend = t
            .get_mut("backend")
            .and_then(|b| b.as_table_mut())
            .expect("[backend] in default.toml");
        backend.insert("streams".into(), toml::Value::String("aws".into()));
        let err = toml::Value::Table(t)
            .try_into::<Config>()
            .expect_err("unknown key");
        assert!(err.to_string().contains("streams"), "{err}");
    }

    #[test]
    fn shipped_seed_config_keeps_the_seeds_three_hour_rule() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/seed.toml");
        let dir = std::env::temp_dir().join("shardline-seed-config-test");
        let config = Config::load(Some(&file), Some(&dir)).expect("seed config loads");
        assert_eq!(config.flow.schedule, "rate(3 hours)");
        assert!(config.flow.enabled);
        let schedule = shardline_flow::schedule::Schedule::parse(&config.flow.schedule)
            .expect("the seed's schedule parses");
        let start = chrono::DateTime::from_timestamp(1_771_500_000, 0).expect("time");
        let firings = schedule.next_firings(start, 8);
        assert_eq!(firings.len(), 8, "eight executions a day");
        assert_eq!((firings[7] - start).num_hours(), 24);
        // The local default runs the flow far more often than the seed's rule.
        let local = Config::load(None, Some(&dir)).expect("defaults load");
        assert_ne!(local.flow.schedule, config.flow.schedule);
    }
}
