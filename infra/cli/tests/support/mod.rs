//! Support for the tests that run the `shardline` binary: a temporary directory removed on
//! drop, a child-process guard that kills and reaps on drop, and readers of what the pipeline
//! left in a data directory (through the library, after the processes have exited).
//!
//! Invariant: every spawned `shardline` is owned by a [`Running`] guard or waited for by
//! [`Shardline::run`], so no process outlives a test, whichever way it ends.

#![allow(dead_code)]

use anyhow::{Context, Result, bail};
use shardline::config::Config;
use shardline::pipeline::Pipeline;
use shardline_core::ports::StatisticsQuery;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest a single `shardline` command may run in these tests.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(45);

/// A directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh, empty directory.
    pub fn new() -> Result<TempDir> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "shardline-cli-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test configuration: synthetic collector only (8 instances, every 100 ms), outbox
/// notifier, no flow, a status line that never prints, quick polling.
pub const TEST_TOML: &str = include_str!("../../../../tests/fixtures/fast-pipeline.toml");

/// A data directory with a `shardline.toml`, and how to run `shardline` on it.
pub struct Shardline {
    /// Holds the config file and the data directory.
    pub dir: TempDir,
    /// Variables set in every command's environment (e.g. credentials for moto).
    pub env: Vec<(String, String)>,
}

impl Shardline {
    /// A fresh directory with [`TEST_TOML`] as its configuration.
    pub fn new() -> Result<Shardline> {
        Shardline::with_config(TEST_TOML)
    }

    /// A fresh directory with `toml` as its configuration.
    pub fn with_config(toml: &str) -> Result<Shardline> {
        let dir = TempDir::new()?;
        std::fs::write(dir.path().join("shardline.toml"), toml)?;
        Ok(Shardline {
            dir,
            env: Vec::new(),
        })
    }

    /// The config file.
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("shardline.toml")
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command running the binary with `--config` and `--data-dir` set, in the temp dir,
    /// with no `SHARDLINE_*` variables inherited.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardline"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SHARDLINE") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--config")
            .arg(self.config_file())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `shardline args...` to completion.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        self.run_with_stdin(args, None)
    }

    /// Runs `shardline args...` with `stdin` piped in, to completion; a run longer than
    /// [`RUN_TIMEOUT`] is killed and reported as an error.
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        self.run_within(args, stdin.map(str::as_bytes), RUN_TIMEOUT)
    }

    /// As [`Shardline::run_with_stdin`], with any bytes (not only UTF-8) on standard input.
    pub fn run_with_input(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        self.run_within(args, stdin, RUN_TIMEOUT)
    }

    /// As [`Shardline::run_with_input`], killed after `timeout` instead.
    pub fn run_within(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output> {
        feed_bounded(&mut self.command(args), stdin, timeout)
    }

    /// Runs and requires exit status 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "shardline {args:?} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Starts `shardline args...` in the background, output discarded.
    pub fn spawn(&self, args: &[&str]) -> Result<Running> {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        Ok(Running(Some(
            cmd.spawn().context("cannot start shardline")?,
        )))
    }

    /// Starts `shardline args...` in the background, standard output and error to `log`.
    pub fn spawn_logged(&self, args: &[&str], log: &Path) -> Result<Running> {
        let file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = self.command(args);
        cmd.stdout(file.try_clone()?).stderr(file);
        Ok(Running(Some(
            cmd.spawn().context("cannot start shardline")?,
        )))
    }

    /// The configuration the binary would load.
    pub fn config(&self) -> Result<Config> {
        Config::load(Some(&self.config_file()), Some(&self.data_dir()))
    }
}

/// A running child process, killed (SIGKILL) and reaped when dropped.
pub struct Running(pub Option<Child>);

impl Running {
    /// Kills with SIGKILL and waits for the exit.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.0.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// What the sinks hold, read through the library after every process has exited.
#[derive(Debug, PartialEq)]
pub struct Totals {
    /// `SELECT COUNT(*) FROM metrics`.
    pub parquet_rows: u64,
    /// Distinct (shard_id, sequence_number) in the Parquet output.
    pub distinct_rows: u64,
    /// Items in `InfraMetrics`.
    pub table_items: u64,
    /// SampleCount summed over every (metric, instance, region).
    pub samples: f64,
    /// Records in the log.
    pub log_records: u64,
}

/// Runs `sql` through the query engine; each row as JSON (one object per row).
async fn sql_rows(
    engine: &shardline_query::QueryEngine,
    sql: &str,
) -> Result<Vec<serde_json::Value>> {
    let batches = engine.sql(sql).await?;
    let text = shardline_query::format_batches(&batches, shardline_query::OutputFormat::Json)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect()
}

async fn sql_count(engine: &shardline_query::QueryEngine, sql: &str) -> Result<u64> {
    let rows = sql_rows(engine, sql).await?;
    rows.first()
        .and_then(|r| r["n"].as_u64())
        .with_context(|| format!("{sql} returned {rows:?}"))
}

/// Opens the pipeline of `sh` (no process may have it open) and reads the totals.
pub async fn totals(sh: &Shardline) -> Result<Totals> {
    let p = Pipeline::open(sh.config()?).await?;
    let result = totals_of(&p).await;
    p.close().await?;
    result
}

async fn totals_of(p: &Pipeline) -> Result<Totals> {
    let root = shardline::wiring::parquet_root(&p.config);
    let engine = shardline_query::QueryEngine::new(&root)?;
    let parquet_rows = sql_count(&engine, "SELECT COUNT(*) AS n FROM metrics").await?;
    let distinct_rows = sql_count(
        &engine,
        "SELECT COUNT(*) AS n FROM (SELECT DISTINCT shard_id, sequence_number FROM metrics)",
    )
    .await?;
    let series = sql_rows(
        &engine,
        "SELECT metric_type, instance_id, region, MIN(timestamp) AS t0 FROM metrics \
         GROUP BY metric_type, instance_id, region",
    )
    .await?;
    let mut keys = BTreeSet::new();
    let mut t0 = i64::MAX;
    for r in &series {
        let s = |k: &str| r[k].as_str().map(str::to_string).context("string column");
        keys.insert((s("metric_type")?, s("instance_id")?, s("region")?));
        t0 = t0.min(r["t0"].as_i64().context("t0")?);
    }
    let start_ms = (t0.saturating_mul(1000) - 2 * 86_400_000).div_euclid(60_000) * 60_000;
    let period_secs = 6 * 86_400;
    let mut samples = 0.0;
    for (metric, instance, region) in keys {
        let q = StatisticsQuery {
            namespace: "InfraMonitoring".into(),
            metric_name: metric,
            dimensions: BTreeMap::from([
                ("InstanceID".to_string(), instance),
                ("Region".to_string(), region),
            ]),
            start_ms,
            end_ms: start_ms + i64::from(period_secs) * 1000,
            period_secs,
        };
        for d in p.backends.metrics.get_metric_statistics(&q).await? {
            samples += d.values.sample_count;
        }
    }
    let stats = p.embedded_log()?.shard_stats(&p.config.stream.name).await?;
    Ok(Totals {
        parquet_rows,
        distinct_rows,
        table_items: p.backends.table.count("InfraMetrics").await?,
        samples,
        log_records: stats.iter().map(|s| s.next_offset - s.trim_offset).sum(),
    })
}

/// Records in stream `metrics` according to `shardline stream describe metrics`.
pub fn described_records(sh: &Shardline) -> Result<u64> {
    let out = sh.ok(&["stream", "describe", "metrics"])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let shards = v["shard_stats"].as_array().context("no shard_stats")?;
    shards
        .iter()
        .map(|s| s["records"].as_u64().context("shard_stats.records"))
        .sum()
}

/// The deduplication ids in the outbox, failing if one repeats; returns the line count.
pub fn outbox_lines_unique(sh: &Shardline) -> Result<usize> {
    let path = sh.data_dir().join("notifications").join("outbox.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut seen = BTreeSet::new();
    let mut lines = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        lines += 1;
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let Some(id) = v["deduplication_id"].as_str()
            && !seen.insert(id.to_string())
        {
            bail!("deduplication id {id} is in the outbox twice");
        }
    }
    Ok(lines)
}

/// Runs `cmd` to completion with piped output, killing it after `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    feed_bounded(cmd, None, timeout)
}

/// Runs `cmd` with `stdin` piped in (or none) to completion with piped output, killing it
/// after `timeout`.
pub fn feed_bounded(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut guard = Running(Some(cmd.spawn().context("cannot start the command")?));
    let child = guard.0.as_mut().context("child already reaped")?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().context("no stdin pipe")?;
        pipe.write_all(text)?;
    }
    let out = child.stdout.take().context("no stdout pipe")?;
    let err = child.stderr.take().context("no stderr pipe")?;
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            guard.kill()?;
            bail!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    guard.0 = None;
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Waits (bounded) for a child to exit by itself; kills it past `timeout`.
pub fn wait_exit(child: &mut Running, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while child.is_running() {
        if Instant::now() >= deadline {
            child.kill()?;
            bail!("a child did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0 = None;
    Ok(())
}

/// Sends SIGINT (Ctrl-C) and waits (bounded) for a clean exit.
pub fn interrupt(child: &mut Running, timeout: Duration) -> Result<()> {
    let pid = child.0.as_ref().context("no child")?.id();
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with a pid this test spawned and still owns (not yet reaped).
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    if rc != 0 {
        bail!("cannot interrupt process {pid}");
    }
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(c) = child.0.as_mut()
            && let Some(status) = c.try_wait()?
        {
            child.0 = None;
            if !status.success() {
                bail!("interrupted process exited with {status}");
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            child.kill()?;
            bail!("process {pid} did not stop within {timeout:?} of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Modification times of the Parquet objects, by the shard their name starts with.
pub fn parquet_objects_by_shard(
    sh: &Shardline,
) -> Result<BTreeMap<String, Vec<std::time::SystemTime>>> {
    let root = shardline::wiring::parquet_root(&sh.config()?);
    let mut out: BTreeMap<String, Vec<std::time::SystemTime>> = BTreeMap::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let e = e?;
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("shardId-") && name.ends_with(".parquet") {
                out.entry(name[..20].to_string())
                    .or_default()
                    .push(e.metadata()?.modified()?);
            }
        }
    }
    Ok(out)
}

/// Seeded pseudo-random moments (splitmix64), so a run that fails can be replayed with its
/// seed.
pub struct Moments(u64);

impl Moments {
    /// Moments drawn from `seed`.
    pub fn new(seed: u64) -> Moments {
        Moments(seed)
    }

    /// The next draw.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration in `[lo, hi)` milliseconds.
    pub fn between_ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next_u64() % (hi - lo).max(1))
    }
}

/// The columns of a command's one-row summary table (a header line, then the row), by name.
pub fn summary(out: &str) -> Result<BTreeMap<String, String>> {
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().context("header")?.split_whitespace().collect();
    let row: Vec<&str> = lines.next().context("row")?.split_whitespace().collect();
    Ok(head
        .iter()
        .map(|h| h.to_string())
        .zip(row.iter().map(|r| r.to_string()))
        .collect())
}
