//! [`Data`]: a command's access to the data directory, opened by this process or lent by the
//! process that owns it.
//!
//! Run locally, a command opens what it needs (the log, the embedded backends, the whole
//! pipeline) on first use, and [`Data::close`] closes the log at the end. Run by the control
//! server of `shardline up` (or `dashboard`), the command gets the owner's open pipeline and
//! its running consumers ([`ConsumerSet`]), so it can pause a consumer while it moves its
//! checkpoints or replays into its targets.
//!
//! Ports on AWS (`[backend]`, `--backend aws`) are opened here too: the stream is then Kinesis
//! ([`Data::stream`]; [`Data::log`] says that only the embedded log offers what was asked), and
//! [`Data::backends`] holds each port's store on the backend the configuration names.
//!
//! Invariant: one process opens a data directory once; a command never opens a second copy of
//! a store the owner holds (the stores lock their files).

use anyhow::{Context, Result, bail};
use shardline_aws::AwsBackends;
use shardline_core::ports::Stream;
use shardline_local::LocalBackends;
use shardline_log::Log;
use std::sync::Arc;
use tokio::sync::OnceCell;

use crate::cli::{Command, FlowCommand, StreamCommand};
use crate::config::{BackendKind, Config};
use crate::consumer_set::ConsumerSet;
use crate::pipeline::Pipeline;
use crate::wiring::{self, Backends};

/// The stream port and, when it is embedded, the log behind it.
type StreamParts = (Arc<dyn Stream>, Option<Arc<Log>>);

/// A command's view of the data directory.
pub struct Data {
    /// The effective configuration (the owner's, when run by the control server).
    pub config: Arc<Config>,
    aws: OnceCell<Option<AwsBackends>>,
    stream: OnceCell<StreamParts>,
    backends: OnceCell<Backends>,
    pipeline: OnceCell<Pipeline>,
    consumers: Option<Arc<ConsumerSet>>,
    dashboard_url: Option<String>,
    owned: bool,
}

impl Data {
    /// Opens parts of the data directory on first use.
    pub fn local(config: Config) -> Data {
        Data {
            config: Arc::new(config),
            aws: OnceCell::new(),
            stream: OnceCell::new(),
            backends: OnceCell::new(),
            pipeline: OnceCell::new(),
            consumers: None,
            dashboard_url: None,
            owned: false,
        }
    }

    /// The owner's open pipeline, its running consumers (if any) and dashboard address.
    pub fn owned(
        pipeline: Pipeline,
        consumers: Option<Arc<ConsumerSet>>,
        dashboard_url: Option<String>,
    ) -> Data {
        Data {
            config: pipeline.config.clone(),
            aws: OnceCell::new_with(Some(pipeline.backends.aws.clone())),
            stream: OnceCell::new_with(Some((pipeline.stream(), pipeline.log.clone()))),
            backends: OnceCell::new_with(Some(pipeline.backends.clone())),
            pipeline: OnceCell::new_with(Some(pipeline)),
            consumers,
            dashboard_url,
            owned: true,
        }
    }

    /// Fails with the user's next step when the data directory does not exist (commands that
    /// only read it would otherwise create an empty one and report nothing).
    ///
    /// # Errors
    /// When the directory is missing.
    pub fn require_existing(&self) -> Result<()> {
        let dir = &self.config.data_dir;
        if !dir.exists() {
            bail!(
                "data directory {} does not exist: run `shardline up` (or `shardline up --once`) \
                 first, or point --data-dir (or SHARDLINE_DATA) at an existing one",
                dir.display()
            );
        }
        Ok(())
    }

    /// Opens up front what `command` will use, so that a directory held by another process is
    /// found before anything is printed; commands that only read require it to exist.
    ///
    /// # Errors
    /// When the directory is missing (for readers) or cannot be opened.
    pub async fn open_for(&self, command: &Command) -> Result<()> {
        let (reads_only, stream, backends) = match command {
            Command::Stream(StreamCommand::Verify { .. }) => (true, false, false),
            Command::Stream(
                StreamCommand::Get { .. } | StreamCommand::Describe { .. } | StreamCommand::List,
            ) => (true, true, false),
            Command::Stream(_) => (false, true, false),
            Command::Query(_) => (true, false, false),
            Command::Table(_) | Command::Metrics(_) | Command::Alarms(_) | Command::Dlq(_) => {
                (true, false, true)
            }
            Command::Checkpoints(_) | Command::Replay(_) | Command::Dashboard(_) => {
                (true, true, true)
            }
            Command::Backfill(_)
            | Command::Flow(FlowCommand::Run { .. } | FlowCommand::Test { .. }) => {
                (false, true, true)
            }
            Command::Flow(_) => (false, false, false),
            Command::Up(_)
            | Command::Config(_)
            | Command::Consume(_)
            | Command::Infra(_)
            | Command::Cost(_)
            | Command::Serve(_)
            | Command::Loadgen(_)
            | Command::Esm(_)
            | Command::Lambda(_) => (false, false, false),
        };
        // Nothing of a port on AWS is kept in the data directory.
        if reads_only && self.config.backend.any(BackendKind::Embedded) {
            self.require_existing()?;
        }
        if stream {
            self.stream().await?;
        }
        if backends {
            self.backends().await?;
        }
        Ok(())
    }

    /// The AWS adapters, when a port is on AWS (one set of clients per process).
    ///
    /// # Errors
    /// When the AWS configuration chain has no region.
    pub async fn aws(&self) -> Result<Option<AwsBackends>> {
        self.aws
            .get_or_try_init(|| wiring::open_aws(&self.config))
            .await
            .cloned()
    }

    async fn stream_parts(&self) -> Result<&StreamParts> {
        self.stream
            .get_or_try_init(|| async {
                let aws = self.aws().await?;
                wiring::open_stream(&self.config, aws.as_ref()).await
            })
            .await
    }

    /// The stream port (the embedded log or Kinesis), opened on first use.
    ///
    /// # Errors
    /// When it cannot be opened (in use, damaged, no AWS region).
    pub async fn stream(&self) -> Result<Arc<dyn Stream>> {
        Ok(Arc::clone(&self.stream_parts().await?.0))
    }

    /// The embedded log, opened on first use, for what only it offers (per-shard offsets and
    /// counts).
    ///
    /// # Errors
    /// When it cannot be opened, or the stream is on Kinesis.
    pub async fn log(&self) -> Result<Arc<Log>> {
        self.embedded_log().await?.context(
            "this needs the embedded log (per-shard offsets), but the stream is on Kinesis \
             ([backend] stream = \"aws\"); run it with the stream embedded",
        )
    }

    /// The embedded log when the stream is embedded, `None` when it is on Kinesis.
    ///
    /// # Errors
    /// When the stream cannot be opened.
    pub async fn embedded_log(&self) -> Result<Option<Arc<Log>>> {
        Ok(self.stream_parts().await?.1.clone())
    }

    /// Every port's store but the stream's, on the backends the configuration names, opened on
    /// first use.
    ///
    /// # Errors
    /// When they cannot be opened.
    pub async fn backends(&self) -> Result<Backends> {
        self.backends
            .get_or_try_init(|| async {
                let aws = self.aws().await?;
                wiring::open_backends_with(&self.config, aws)
            })
            .await
            .cloned()
    }

    /// The embedded stores, for what only they offer (the dashboard's ranking of series).
    ///
    /// # Errors
    /// When they cannot be opened, or no port is embedded.
    pub async fn local_stores(&self) -> Result<LocalBackends> {
        self.backends().await?.local.context(
            "this needs the embedded stores, but every port is on AWS ([backend]); run it with \
             the stores embedded",
        )
    }

    /// The whole pipeline (stream, backends, notifier, producer), opened on first use.
    ///
    /// # Errors
    /// As [`Pipeline::with_parts`].
    pub async fn pipeline(&self) -> Result<Pipeline> {
        self.pipeline
            .get_or_try_init(|| async {
                let (stream, log) = self.stream_parts().await?.clone();
                let backends = self.backends().await?;
                Pipeline::with_parts(Config::clone(&self.config), stream, log, backends).await
            })
            .await
            .cloned()
    }

    /// The running consumers, when a running `up` lends them.
    pub fn consumers(&self) -> Option<&Arc<ConsumerSet>> {
        self.consumers.as_ref()
    }

    /// Whether the owner of the data directory runs this command (through the control API).
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// The dashboard address of the running owner, if it serves one.
    pub fn dashboard_url(&self) -> Option<&str> {
        self.dashboard_url.as_deref()
    }

    /// Closes what this command opened (nothing, when the owner lent it).
    ///
    /// # Errors
    /// When the log cannot be closed cleanly.
    pub async fn close(&self) -> Result<()> {
        if self.is_owned() {
            return Ok(());
        }
        if let Some((_, Some(log))) = self.stream.get() {
            log.close().await.context("cannot close the log")?;
        }
        Ok(())
    }
}

/// Whether `e` says another process holds the data directory's locks.
pub fn is_in_use(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("in use by another shardline process") || text.contains("open in another process")
}
