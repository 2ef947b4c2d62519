//! [`ProcessFunction`]: a bootstrap binary run as Lambda runs a custom runtime.
//!
//! An execution environment is one bootstrap process and the Runtime API server it polls.
//! It starts on the first invocation (a cold start) and serves the next ones warm. As on
//! Lambda:
//! - an invocation still running at its deadline fails with `Sandbox.Timedout` and its
//!   environment is stopped (the process is killed); the next invocation starts a new one;
//! - a process that exits during an invocation fails it with `Runtime.ExitError` (its exit
//!   status in the message);
//! - a process that posts `/runtime/init/error` fails the invocation with the posted
//!   `errorType` and is stopped;
//! - what the function answers is handed back as bytes, JSON or not.
//!
//! Environments are kept in a pool of at most `max_environments` (one by default: the
//! embedded backends are opened by one process at a time).

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, Semaphore, oneshot};
use tracing::{info, warn};

use super::server::{Pending, RuntimeApiServer};

/// Lambda's default concurrent executions quota (per account and Region).
pub const DEFAULT_MAX_ENVIRONMENTS: usize = 1000;
use crate::error::FunctionError;
use crate::invoke::{EXIT_ERROR, Invocation, Invoker, TIMED_OUT};

/// How to start a function's bootstrap.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// The bootstrap binary.
    pub binary: PathBuf,
    /// Environment variables beyond Lambda's own (e.g. `SHARDLINE_FUNCTION_CONFIG`).
    pub env: BTreeMap<String, String>,
    /// `AWS_REGION`.
    pub region: String,
    /// The account in the function's ARN.
    pub account: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, MB.
    pub memory_mb: u32,
    /// Most environments running at once (default 1). Lambda starts an environment for each
    /// invocation that finds none idle, so a mapping runs one per shard (times its
    /// ParallelizationFactor) at once, up to the account's concurrency quota
    /// ([`DEFAULT_MAX_ENVIRONMENTS`]). Over the embedded backends only one process at a time
    /// can hold the data directory's stores, so one environment serves every batch there;
    /// over AWS's services the runner lets them scale as Lambda does.
    pub max_environments: usize,
}

impl ProcessConfig {
    /// A function `name` run from `binary`, one environment, 128 MB, eu-west-1.
    pub fn new(name: impl Into<String>, binary: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            binary: binary.into(),
            env: BTreeMap::new(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            memory_mb: 128,
            max_environments: 1,
        }
    }

    fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account, self.name
        )
    }
}

struct Environment {
    server: RuntimeApiServer,
    child: Child,
    /// The bootstrap's process group (its pid), kept after the bootstrap itself is reaped.
    group: Option<rustix::process::Pid>,
}

impl Environment {
    /// Kills the bootstrap and every process of its group (what it started, which would
    /// otherwise outlive it holding its output), then waits (bounded) for the bootstrap.
    async fn stop(&mut self) {
        if let Some(group) = self.group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// A function run as its bootstrap binary under a local Runtime API.
pub struct ProcessFunction {
    config: ProcessConfig,
    idle: Mutex<Vec<Environment>>,
    slots: Semaphore,
    cold_starts: std::sync::atomic::AtomicU64,
}

impl ProcessFunction {
    /// A function started from `config` on first use.
    pub fn new(config: ProcessConfig) -> Arc<Self> {
        let slots = Semaphore::new(config.max_environments.max(1));
        Arc::new(Self {
            config,
            idle: Mutex::new(Vec::new()),
            slots,
            cold_starts: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many environments were started so far.
    pub fn cold_starts(&self) -> u64 {
        self.cold_starts.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn start(&self) -> Result<Environment, FunctionError> {
        let server = RuntimeApiServer::start().await.map_err(|e| {
            FunctionError::new(EXIT_ERROR, format!("cannot serve the Runtime API: {e}"))
        })?;
        let c = &self.config;
        let mut cmd = Command::new(&c.binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", server.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", &c.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", c.memory_mb.to_string())
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", c.name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("local/[$LATEST]{}", uuid::Uuid::new_v4().simple()),
            )
            .env("AWS_REGION", &c.region)
            .env("AWS_DEFAULT_REGION", &c.region)
            .env("_HANDLER", &c.name)
            .envs(&c.env)
            .stdin(Stdio::null())
            // A group of its own: stopping the environment stops whatever the bootstrap
            // started too (a shell's children would otherwise outlive it, holding its output).
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = c.binary.parent() {
            cmd.env("LAMBDA_TASK_ROOT", dir);
        }
        // The function's logs go to this process's standard error (its output is data).
        if let Ok(fd) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
            cmd.stdout(Stdio::from(fd));
        }
        let child = cmd.spawn().map_err(|e| {
            FunctionError::new(
                EXIT_ERROR,
                format!(
                    "cannot start the bootstrap {}: {e}; build it first (`shardline lambda package` or cargo build)",
                    c.binary.display()
                ),
            )
        })?;
        self.cold_starts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        info!(function = %c.name, binary = %c.binary.display(), api = %server.address(), "environment started");
        let group = child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
        Ok(Environment {
            server,
            child,
            group,
        })
    }

    /// Runs one invocation in `env`; `Some(env)` back when it can serve another.
    async fn run(
        &self,
        mut env: Environment,
        event: Bytes,
        timeout: Duration,
    ) -> (Invocation, Option<Environment>) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let deadline_ms = shardline_core::time::now_ms()
            + i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 2);
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.clone(),
            event,
            deadline_ms,
            function_arn: self.config.function_arn(),
            done,
        };
        let init_error = env.server.init_error();
        let mut init_wait = init_error.clone();
        if !env.server.submit(pending).await {
            return (
                Invocation::Failed(FunctionError::new(EXIT_ERROR, "the Runtime API stopped")),
                None,
            );
        }
        let outcome = tokio::select! {
            a = answer => a.ok(),
            status = env.child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                // An init error posted just before exiting names the cause better.
                let posted = init_error.borrow().clone();
                Some(Invocation::Failed(posted.unwrap_or_else(|| FunctionError::new(
                    EXIT_ERROR,
                    format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
                ))))
            }
            posted = init_wait.wait_for(Option::is_some) => {
                posted.ok().and_then(|p| p.clone()).map(Invocation::Failed)
            }
            _ = tokio::time::sleep(timeout) => {
                Some(Invocation::Failed(FunctionError::new(
                    TIMED_OUT,
                    format!("RequestId: {request_id} Error: Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                )))
            }
        };
        let outcome = outcome.unwrap_or_else(|| {
            Invocation::Failed(FunctionError::new(EXIT_ERROR, "the invocation was dropped"))
        });
        let healthy = match &outcome {
            Invocation::Answer(_) => true,
            Invocation::Failed(e) => {
                e.error_type != TIMED_OUT
                    && e.error_type != EXIT_ERROR
                    && init_error.borrow().is_none()
            }
        };
        let running = matches!(env.child.try_wait(), Ok(None));
        if healthy && running {
            (outcome, Some(env))
        } else {
            if running {
                warn!(function = %self.config.name, "stopping the environment");
            }
            env.stop().await;
            (outcome, None)
        }
    }

    /// Stops every idle environment.
    pub async fn shutdown(&self) {
        let mut idle = self.idle.lock().await;
        for mut env in idle.drain(..) {
            env.stop().await;
        }
    }
}

#[async_trait]
impl Invoker for ProcessFunction {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Invocation {
        let Ok(_slot) = self.slots.acquire().await else {
            return Invocation::Failed(FunctionError::new(EXIT_ERROR, "the function is stopping"));
        };
        let mut warm = self.idle.lock().await.pop();
        // An environment whose process exited since its last invocation is gone.
        if let Some(env) = warm.as_mut()
            && !matches!(env.child.try_wait(), Ok(None))
        {
            warm = None;
        }
        let env = match warm {
            Some(env) => env,
            None => match self.start().await {
                Ok(env) => env,
                Err(e) => return Invocation::Failed(e),
            },
        };
        let (outcome, env) = self.run(env, event, timeout).await;
        if let Some(env) = env {
            self.idle.lock().await.push(env);
        }
        outcome
    }
}
