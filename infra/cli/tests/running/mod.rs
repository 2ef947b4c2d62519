//! Helpers of the tests that run `shardline up` in the background (operate.rs, dashboard.rs,
//! replay_backfill.rs): a quiet configuration, starting `up` and waiting for its control socket,
//! metric event lines.

#![allow(dead_code)]

use anyhow::{Result, bail};
use std::time::{Duration, Instant};

use crate::support::{Running, Shardline, TEST_TOML};

/// No collectors: while `up` runs, the data only changes when the test changes it.
pub fn quiet_toml() -> String {
    format!("{TEST_TOML}\n[dashboard]\nlisten = \"127.0.0.1:0\"\n")
        .replace("run = [\"synthetic\"]", "run = []")
}

/// Starts `up` and waits (bounded) until its control socket answers.
pub fn start_up(sh: &Shardline) -> Result<Running> {
    let mut up = sh.spawn(&["up"])?;
    let socket = sh.data_dir().join("control.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if socket.exists() && std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(up);
        }
        if !up.is_running() {
            bail!("`shardline up` exited before its control socket answered");
        }
        if Instant::now() >= deadline {
            bail!("no control socket at {} within 30 s", socket.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn event(instance: &str, metric: &str, ts: i64, value: f64) -> String {
    let prefix = match metric {
        "cpu_utilization" => "cpu",
        "memory_usage" => "mem",
        "disk_usage" => "disk",
        _ => "net",
    };
    format!(
        r#"{{"metric_id":"{prefix}-{ts}","metric_type":"{metric}","timestamp":{ts},"value":{value},"instance_id":"{instance}","region":"eu-west-1","collected_at":"2026-12-01T00:00:00Z"}}"#
    )
}
