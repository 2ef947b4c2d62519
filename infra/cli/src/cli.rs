//! The command line (clap): every subcommand and its flags.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Shardline: an infrastructure-metrics pipeline around a durable, sharded, Kinesis-style log.
///
/// Collectors append metric events to a stream; independent consumers project them into
/// Parquet (for Athena, DuckDB, pyarrow), a DynamoDB-style table, CloudWatch-style metrics and
/// SNS-style alerts. Every AWS service has an embedded stand-in, so `shardline up` runs the whole
/// pipeline on one machine with no account.
#[derive(Debug, Parser)]
#[command(
    name = "shardline",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Data directory holding the log, the checkpoints and every embedded backend.
    #[arg(long, global = true, env = "SHARDLINE_DATA", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (TOML). Defaults to ./shardline.toml when present.
    #[arg(long, global = true, env = "SHARDLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Puts every port on one backend: `embedded` (this machine) or `aws` (Kinesis, S3,
    /// DynamoDB, CloudWatch, SNS through the standard AWS configuration chain and `[aws]`).
    /// Without it, `[backend]` in the configuration chooses port by port.
    #[arg(
        long,
        global = true,
        env = "SHARDLINE_BACKEND",
        value_enum,
        value_name = "BACKEND"
    )]
    pub backend: Option<crate::config::BackendKind>,
    /// Log verbosity filter, e.g. `info`, `debug`, `shardline_log=trace`. The AWS SDK logs only
    /// errors unless the filter names its crates (`aws_config=debug`).
    #[arg(
        long,
        global = true,
        env = "SHARDLINE_LOG",
        default_value = "warn",
        value_name = "FILTER"
    )]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline: the log, the collectors, the four consumers and the scheduled flow.
    Up(UpArgs),
    /// Run the consumers only, sharing the stream's shards with other `consume` processes
    /// through leases (no collectors, no flow).
    Consume(ConsumeArgs),
    /// Create (bootstrap) or check (status) what the configuration's AWS ports need.
    #[command(subcommand)]
    Infra(InfraCommand),
    /// Price the configuration per month on AWS, each line with its formula.
    Cost(CostArgs),
    /// Manage streams and read or write records directly.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Run SQL over the Parquet output (tables `metrics` and `infra_monitoring.metrics`);
    /// read-only unless --allow-write.
    Query(QueryArgs),
    /// Read the DynamoDB-style table.
    #[command(subcommand)]
    Table(TableCommand),
    /// Read the CloudWatch-style metric store.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Show alarm states.
    #[command(subcommand)]
    Alarms(AlarmsCommand),
    /// Inspect the dead-letter store (records that were not valid metric events).
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Validate, run and schedule the Step Functions flow.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show and move consumers' checkpoints (their positions in each shard).
    #[command(subcommand)]
    Checkpoints(CheckpointsCommand),
    /// Re-run one consumer's sink over a range of the stream, without touching its checkpoints.
    Replay(ReplayArgs),
    /// Append historical metric events (JSON Lines, the seed's raw-metrics files) to the stream.
    Backfill(BackfillArgs),
    /// Serve the dashboard over a stopped data directory (`up` serves it while it runs).
    Dashboard(DashboardArgs),
    /// Feed a Lambda function from the stream as a Kinesis event source mapping does.
    #[command(subcommand)]
    Esm(EsmCommand),
    /// Package the Lambda functions' bootstraps, or invoke one locally.
    #[command(subcommand)]
    Lambda(LambdaCommand),
    /// Serve the log over a Kinesis-compatible HTTP endpoint (AWS JSON 1.1 and CBOR 1.1).
    Serve(ServeArgs),
    /// Generate metric load against the embedded log or any Kinesis endpoint, with a report.
    Loadgen(LoadgenArgs),
}

/// `shardline checkpoints ...`.
#[derive(Debug, Subcommand)]
pub enum CheckpointsCommand {
    /// Every checkpoint: consumer, shard, sequence number, when it was written, records behind.
    List {
        /// Only this consumer's.
        #[arg(long)]
        consumer: Option<String>,
        /// Output format (default: a table on a terminal, JSON Lines otherwise).
        #[arg(long, value_enum)]
        format: Option<ListFormat>,
    },
    /// Move a consumer's checkpoints: without --to, remove them (it starts over from its
    /// starting position); with --to TIME it reads again every record that arrived at or after
    /// TIME; with --to SEQ its checkpoint in that sequence number's shard becomes SEQ.
    Reset {
        /// The consumer.
        #[arg(long)]
        consumer: String,
        /// RFC 3339 time, or a sequence number.
        #[arg(long, value_name = "TIME|SEQ")]
        to: Option<String>,
        /// Only this shard (e.g. shardId-000000000001).
        #[arg(long)]
        shard: Option<String>,
        /// Confirm a reset that skips records or re-delivers to a consumer not known to be
        /// idempotent.
        #[arg(long)]
        yes: bool,
    },
}

/// `shardline replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The consumer whose sink is re-run (its live checkpoints are not touched).
    #[arg(long)]
    pub consumer: String,
    /// Start: TRIM_HORIZON, an RFC 3339 arrival time, or a sequence number.
    #[arg(long, value_name = "TIME|SEQ")]
    pub from: String,
    /// End, inclusive: an RFC 3339 arrival time or a sequence number (default: the time the
    /// replay starts).
    #[arg(long, value_name = "TIME|SEQ")]
    pub to: Option<String>,
    /// Only this shard (e.g. shardId-000000000001).
    #[arg(long)]
    pub shard: Option<String>,
    /// s3-parquet only: write the Parquet projection under this prefix instead of the live one
    /// (its own manifests), to rebuild it side by side.
    #[arg(long, value_name = "PREFIX")]
    pub into_prefix: Option<String>,
}

/// `shardline backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// A JSON Lines file, a directory of them (e.g. the seed's raw-metrics/YYYY/MM/DD/*.json),
    /// or s3://BUCKET/PREFIX in the configured object store.
    #[arg(long, value_name = "PATH")]
    pub from: String,
}

/// `shardline dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Address to listen on (default: [dashboard] listen of the configuration).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// How `alarms list`, `dlq list` and `checkpoints list` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// An aligned table.
    Table,
    /// One JSON object per line.
    Json,
}

/// `shardline serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides [serve] listen), e.g. 127.0.0.1:4567.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Enforce Kinesis's per-shard limits (overrides [stream] enforce_limits).
    #[arg(long)]
    pub limits: bool,
}

/// `shardline loadgen`.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Records per second; several comma-separated rates run as steps of --step each
    /// (e.g. 1000,5000,20000). 0 = as fast as the callers go.
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    pub rate: Vec<u64>,
    /// How long each rate step lasts (needed with several rates).
    #[arg(long, value_parser = parse_duration)]
    pub step: Option<std::time::Duration>,
    /// How long to write.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Simulated instances (distinct partition keys).
    #[arg(long, default_value_t = 100)]
    pub instances: usize,
    /// Bytes per record (metric events padded to this size).
    #[arg(long, default_value_t = 200)]
    pub record_size: usize,
    /// Records per PutRecords call (1 to 500).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Concurrent PutRecords callers.
    #[arg(long, default_value_t = 16)]
    pub callers: usize,
    /// Readers measuring end-to-end lag (each reads every shard).
    #[arg(long, default_value_t = 0)]
    pub consumers: usize,
    /// After writing, read every shard back from TRIM_HORIZON (measures GetRecords).
    #[arg(long)]
    pub read_back: bool,
    /// A Kinesis endpoint (shardline serve, kinesalite, AWS). Default: the embedded log.
    #[arg(long, value_name = "URL", conflicts_with = "embedded")]
    pub endpoint: Option<String>,
    /// Write the embedded log of the data directory directly (the default).
    #[arg(long)]
    pub embedded: bool,
    /// The stream (default: [stream] name).
    #[arg(long)]
    pub stream: Option<String>,
    /// Create the stream with this many shards when it does not exist (default: [stream] shards).
    #[arg(long)]
    pub shards: Option<u32>,
    /// Region to sign for (with --endpoint); default AWS_REGION or us-east-1.
    #[arg(long)]
    pub region: Option<String>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Seed of the generated values.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `shardline up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Collect once, drain every consumer, print a summary and exit.
    #[arg(long)]
    pub once: bool,
    /// Stop after this long (e.g. `30s`); runs until Ctrl-C otherwise.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
}

/// `shardline consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Only these consumers (by name, e.g. `s3-parquet`); every enabled one by default.
    #[arg(long = "consumer", value_name = "NAME")]
    pub consumers: Vec<String>,
    /// This worker's id in the lease table (default: host, process id and a random part).
    #[arg(long, value_name = "ID")]
    pub worker_id: Option<String>,
    /// Stop after this long (e.g. `30s`); runs until Ctrl-C or SIGTERM otherwise.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
}

/// `shardline infra ...`.
#[derive(Debug, Subcommand)]
pub enum InfraCommand {
    /// Create the stream, buckets, tables and topic the configuration names on AWS (those that
    /// exist are left as they are).
    Bootstrap,
    /// Say what exists and what is missing; exits 1 when something is missing.
    Status,
}

/// `shardline cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// A steady event rate to price instead of the configuration's collectors and flow.
    #[arg(long, value_name = "N")]
    pub events_per_second: Option<f64>,
    /// Price `shardline consume` workers (their lease renewals and heartbeats) instead of `up`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub consume_workers: u32,
}

/// `shardline stream ...`.
#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Create a stream.
    Create {
        /// Stream name.
        name: String,
        /// Number of shards (the hash-key space is split evenly).
        #[arg(long, default_value_t = 4)]
        shards: u32,
        /// Retention period, 1h to 8760h.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        retention: std::time::Duration,
    },
    /// List streams.
    List,
    /// Describe a stream and its shards.
    Describe {
        /// Stream name.
        name: String,
    },
    /// Delete a stream and its data.
    Delete {
        /// Stream name.
        name: String,
    },
    /// Append records read from standard input, one per line; prints "<shard-id> <sequence-number>"
    /// per record once it is durable.
    Put {
        /// Stream name.
        name: String,
        /// Partition key for every record.
        #[arg(long, conflicts_with = "key_field")]
        partition_key: Option<String>,
        /// Take each record's partition key from this JSON field (default: instance_id).
        #[arg(long)]
        key_field: Option<String>,
    },
    /// Read records from a shard as JSON lines {sequence_number, partition_key, arrival, data}.
    Get {
        /// Stream name.
        name: String,
        /// Shard id, e.g. shardId-000000000000.
        #[arg(long)]
        shard: String,
        /// TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER:<seq>, AFTER_SEQUENCE_NUMBER:<seq>,
        /// AT_TIMESTAMP:<RFC 3339>.
        #[arg(long, default_value = "TRIM_HORIZON")]
        iterator: String,
        /// Most records to print.
        #[arg(long)]
        limit: Option<usize>,
        /// Keep waiting for new records (Ctrl-C to stop).
        #[arg(long)]
        follow: bool,
    },
    /// Check every frame's CRC; exits 1 naming file and byte offset on damage.
    Verify {
        /// Only this stream.
        name: Option<String>,
    },
}

/// `shardline query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL, e.g. the seed's Athena queries, unchanged.
    pub sql: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also run statements that write files or change the session (COPY TO, INSERT,
    /// CREATE, DROP, SET); without it only SELECT, EXPLAIN, SHOW and DESCRIBE run.
    #[arg(long)]
    pub allow_write: bool,
}

/// Output formats for query results.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
}

/// `shardline table ...`.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Read one series (partition) back, in time order.
    Query {
        /// The partition key: `<cpu|mem|disk|net>-<instance_id>`, e.g. cpu-i-123456.
        #[arg(long)]
        metric_id: String,
        /// From this time (RFC 3339 or epoch ms), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Up to this time (RFC 3339 or epoch ms), inclusive.
        #[arg(long)]
        to: Option<String>,
        /// Most items.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Count the items.
    Count,
}

/// `shardline metrics ...`.
#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Statistics per period, like `aws cloudwatch get-metric-statistics`.
    Stats {
        /// Metric name, e.g. cpu_utilization.
        #[arg(long)]
        metric: String,
        /// InstanceID dimension.
        #[arg(long)]
        instance: String,
        /// Region dimension (default: the configured region).
        #[arg(long)]
        region: Option<String>,
        /// Period in seconds (a multiple of 60).
        #[arg(long, default_value_t = 60)]
        period: u32,
        /// Start (RFC 3339 or epoch ms); default one hour ago.
        #[arg(long)]
        start: Option<String>,
        /// End (RFC 3339 or epoch ms); default now.
        #[arg(long)]
        end: Option<String>,
        /// Comma-separated: SampleCount,Average,Sum,Minimum,Maximum.
        #[arg(long, default_value = "Average,Maximum")]
        statistics: String,
    },
}

/// `shardline alarms ...`.
#[derive(Debug, Subcommand)]
pub enum AlarmsCommand {
    /// Every alarm's state.
    List {
        /// Only alarms in this state (OK, ALARM, INSUFFICIENT_DATA).
        #[arg(long)]
        state: Option<String>,
        /// Output format (default: a table on a terminal, JSON Lines otherwise).
        #[arg(long, value_enum)]
        format: Option<ListFormat>,
    },
}

/// `shardline dlq ...`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters with their reasons and data (as text when it is UTF-8, else base64).
    List {
        /// Only this consumer's.
        #[arg(long)]
        consumer: Option<String>,
        /// `table` (aligned columns; the default on a terminal), `text` (two lines per letter,
        /// long data cut; the default otherwise) or `json` (one object per line, the data whole:
        /// `data` as text, or base64 with `"data_encoding": "base64"`).
        #[arg(long, value_enum)]
        format: Option<DlqFormat>,
    },
}

/// Output formats of `dlq list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DlqFormat {
    /// An aligned table (data cut, base64 marked when not UTF-8).
    Table,
    /// Readable lines.
    Text,
    /// One JSON object per letter.
    Json,
}

/// `shardline flow ...`.
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Check a state machine definition (ASL JSON): errors for invalid ASL, warnings for
    /// Task resources that have no handler here.
    Validate {
        /// The definition file.
        file: PathBuf,
    },
    /// Run a state machine once (default: the configured pipeline flow).
    Run {
        /// The definition file.
        file: Option<PathBuf>,
        /// Execution input (JSON).
        #[arg(long, default_value = "{}")]
        input: String,
        /// Print the execution history as JSON.
        #[arg(long)]
        history: bool,
        /// A Step Functions Local mock configuration file (MockConfigFile.json).
        #[arg(long, requires = "test_case")]
        mocks: Option<PathBuf>,
        /// The test case of the mock file whose mocked responses answer Task states.
        #[arg(long, requires = "mocks")]
        test_case: Option<String>,
        /// The state machine of the mock file, when several have the test case.
        #[arg(long)]
        state_machine: Option<String>,
    },
    /// Run every test case of a mock configuration file and report pass/fail (waits and
    /// retry backoffs run on a virtual clock).
    Test {
        /// The mock configuration file; definitions are `NAME.asl.json` beside it (or its
        /// "Definitions" section), expectations its "Expectations" section.
        mocks: PathBuf,
    },
    /// The next firing times of a schedule expression.
    Next {
        /// rate(...), cron(...) or at(...).
        expression: String,
        /// How many firings.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

/// `shardline config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment) as TOML.
    Show,
}

/// `shardline esm ...`.
#[derive(Debug, Subcommand)]
pub enum EsmCommand {
    /// Read the stream like a Kinesis event source mapping ([esm] settings) and invoke a sink
    /// function (s3-parquet, dynamodb, cloudwatch, alerts) with KinesisEvent batches.
    Run(EsmRunArgs),
}

/// `shardline esm run`.
#[derive(Debug, Args)]
pub struct EsmRunArgs {
    /// The function: s3-parquet, dynamodb, cloudwatch or alerts.
    #[arg(long)]
    pub function: String,
    /// Run this bootstrap binary under a local Lambda Runtime API instead of in-process.
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,
    /// Stop once every shard is caught up.
    #[arg(long)]
    pub once: bool,
    /// Stop after this long (e.g. `30s`); runs until Ctrl-C otherwise.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Records per batch (overrides [esm] batch_size).
    #[arg(long)]
    pub batch_size: Option<usize>,
}

/// `shardline lambda ...`.
#[derive(Debug, Subcommand)]
pub enum LambdaCommand {
    /// Build every function's bootstrap and zip each as `bootstrap` into OUT/<name>.zip (the
    /// paths infra/deploy/template.yaml names): with cargo-lambda when installed, else cargo
    /// for this machine's target (x86_64-unknown-linux-gnu, which provided.al2023 runs).
    Package {
        /// Where the zips go.
        #[arg(long, default_value = "infra/deploy/build")]
        out: PathBuf,
        /// The cargo profile (`release`, or `dev` for a quick local check).
        #[arg(long, default_value = "release")]
        profile: String,
        /// Only these functions (default: all seven).
        #[arg(long = "function")]
        functions: Vec<String>,
        /// Zip the bootstraps already built in this directory (e.g. `target/debug`, where
        /// `cargo build --bins` put them) instead of building them; --profile is not used.
        #[arg(long, value_name = "DIR")]
        binaries: Option<PathBuf>,
    },
    /// Invoke one function once with an event file; prints its answer (or error) as JSON.
    Invoke {
        /// The function: s3-parquet, dynamodb, cloudwatch, alerts, data-collector,
        /// pipeline-health or metrics-analyzer.
        name: String,
        /// The event (JSON), e.g. a KinesisEvent for a sink or `{"metric_type": "cpu_utilization"}`.
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
        /// Run this bootstrap binary under a local Lambda Runtime API instead of in-process.
        #[arg(long, value_name = "FILE")]
        binary: Option<PathBuf>,
        /// The function's timeout.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
}

/// Parses `5s`, `3h`, `250ms`, `24h` with [`shardline_core::units::parse_duration`].
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    shardline_core::units::parse_duration(s).map_err(|e| e.to_string())
}
