//! Kill -9 tests: the test binary runs one of its own tests as a child writer that prints
//! `ACK <n>` after each acknowledged step.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts this test binary running only the test `child` with `env` set to `dir`, reads its
/// `ACK <n>` lines until `n` reaches `until` or `timeout` passes (whether or not the child
/// prints anything meanwhile), then kills it (SIGKILL) while it works on the next step.
/// Returns the last acknowledged `n` (0 when none).
pub async fn run_and_kill(
    child: &str,
    env: &str,
    dir: &Path,
    until: u64,
    timeout: Duration,
) -> u64 {
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child, "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = process.stdout.take().unwrap();
    let (tx, acks) = std::sync::mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness prints "test <name> ... " before the child's first line.
            if let Some((_, n)) = line.split_once("ACK ")
                && tx.send(n.trim().parse().unwrap()).is_err()
            {
                break;
            }
        }
    });
    let acked = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        let mut last = 0u64;
        while last < until {
            match acks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(n) => last = n,
                Err(_) => break,
            }
        }
        last
    })
    .await
    .unwrap();
    process.kill().unwrap();
    process.wait().unwrap();
    // The child's stdout closed with it, so the reader ends.
    reader.join().unwrap();
    acked
}

/// In the child run (`env` set by [`run_and_kill`]): its directory and a runtime to write
/// with; `None` in an ordinary test run, where the child test does nothing.
pub fn child(env: &str) -> Option<(PathBuf, tokio::runtime::Runtime)> {
    let dir = std::env::var_os(env)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    Some((PathBuf::from(dir), rt))
}
