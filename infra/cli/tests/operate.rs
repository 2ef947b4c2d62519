//! Operating a running pipeline: with `shardline up` running, every command reaches the data
//! directory through the control socket with the same output and exit code as over the
//! stopped directory; `stream put` appends through it; `checkpoints reset` pauses and resumes
//! the consumer; the control socket refuses other users.

mod running;
mod support;

use running::{event, quiet_toml, start_up};

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::time::{Duration, Instant};
use support::Shardline;

/// (exit code, stdout, stderr) of a command.
fn outcome(sh: &Shardline, args: &[&str]) -> Result<(Option<i32>, String, String)> {
    let out = sh.run(args)?;
    Ok((
        out.status.code(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

fn read_commands(now: i64) -> Vec<Vec<String>> {
    let start = shardline_core::time::format_rfc3339_ms((now - 3600) * 1000);
    let end = shardline_core::time::format_rfc3339_ms((now + 600) * 1000);
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["stream", "list"]),
        v(&["stream", "describe", "metrics"]),
        v(&["stream", "describe", "no-such-stream"]),
        v(&[
            "stream",
            "get",
            "metrics",
            "--shard",
            "shardId-000000000000",
            "--limit",
            "50",
        ]),
        v(&["stream", "verify"]),
        v(&["table", "count"]),
        v(&["table", "query", "--metric-id", "cpu-i-ops1"]),
        v(&["table", "query", "--metric-id", "cpu-i-nobody"]),
        vec![
            "metrics".into(),
            "stats".into(),
            "--metric".into(),
            "cpu_utilization".into(),
            "--instance".into(),
            "i-ops1".into(),
            "--start".into(),
            start,
            "--end".into(),
            end,
            "--statistics".into(),
            "SampleCount,Average,Maximum".into(),
        ],
        v(&["alarms", "list", "--format", "json"]),
        v(&["alarms", "list", "--format", "table"]),
        v(&["dlq", "list", "--format", "json"]),
        v(&["dlq", "list", "--format", "table"]),
        v(&["checkpoints", "list", "--format", "json"]),
        v(&[
            "query",
            "SELECT instance_id, COUNT(*) AS n, MAX(value) AS top FROM metrics GROUP BY instance_id ORDER BY instance_id",
        ]),
        v(&["query", "SELECT nope FROM metrics"]),
    ]
}

#[test]
fn every_command_gives_the_same_answer_while_up_runs() -> Result<()> {
    let sh = Shardline::with_config(&quiet_toml())?;
    let now = shardline_core::time::now_ms() / 1000;
    sh.ok(&["stream", "create", "metrics", "--shards", "4"])?;
    let mut input = String::new();
    for i in 0..30 {
        let instance = format!("i-ops{}", i % 3);
        input.push_str(&event(
            &instance,
            "cpu_utilization",
            now - 600 + i * 10,
            40.0 + i as f64,
        ));
        input.push('\n');
    }
    input.push_str("{\"instance_id\": \"i-ops1\", \"metric_type\": \"gpu_temperature\"}\n");
    let put = sh.run_with_stdin(&["stream", "put", "metrics"], Some(&input))?;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    sh.ok(&["up", "--once"])?;

    let commands = read_commands(now);
    let mut stopped = Vec::new();
    for c in &commands {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        stopped.push(outcome(&sh, &args)?);
    }
    assert_eq!(
        stopped[5].1.trim(),
        "30",
        "the table holds every valid event"
    );
    assert_eq!(stopped[2].0, Some(1), "a missing stream is an error");
    assert_eq!(stopped[15].0, Some(1), "a bad column is an error");

    let _up = start_up(&sh)?;
    for (c, before) in commands.iter().zip(&stopped) {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        let during = outcome(&sh, &args)?;
        assert!(
            !during.2.contains("in use") && !during.2.contains("another process"),
            "{args:?} failed for a lock: {}",
            during.2
        );
        assert_eq!(&during, before, "{args:?} answers the same while `up` runs");
    }

    // `stream put` appends through the running process, whose consumers deliver it.
    let line = event("i-ops9", "cpu_utilization", now - 5, 77.5);
    let put = sh.run_with_stdin(&["stream", "put", "metrics"], Some(&format!("{line}\n")))?;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(String::from_utf8(put.stdout)?.lines().count(), 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = sh.ok(&["table", "query", "--metric-id", "cpu-i-ops9"])?;
        if out.contains("77.5") {
            break;
        }
        if Instant::now() >= deadline {
            bail!("the running consumers did not deliver the appended record: {out}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(sh.ok(&["table", "count"])?.trim(), "31");
    let records: u64 = serde_json::from_str::<serde_json::Value>(
        &sh.ok(&["stream", "describe", "metrics"])?,
    )?["shard_stats"]
        .as_array()
        .context("shard_stats")?
        .iter()
        .filter_map(|s| s["records"].as_u64())
        .sum();
    assert_eq!(records, 32, "31 events and the bad line");
    Ok(())
}

#[test]
fn checkpoints_reset_asks_before_skipping_and_pauses_the_running_consumer() -> Result<()> {
    let sh = Shardline::with_config(&quiet_toml())?;
    let now = shardline_core::time::now_ms() / 1000;
    sh.ok(&["stream", "create", "metrics", "--shards", "2"])?;
    let mut input = String::new();
    for i in 0..20 {
        input.push_str(&event(
            &format!("i-cp{}", i % 4),
            "disk_usage",
            now - 900 + i * 30,
            50.0,
        ));
        input.push('\n');
    }
    let put = sh.run_with_stdin(&["stream", "put", "metrics"], Some(&input))?;
    let appended: Vec<(String, String)> = String::from_utf8(put.stdout)?
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    assert_eq!(appended.len(), 20);
    sh.ok(&["up", "--once"])?;
    let shard = appended[0].0.clone();
    let of_shard: Vec<&String> = appended
        .iter()
        .filter(|(s, _)| *s == shard)
        .map(|(_, q)| q)
        .collect();
    assert!(of_shard.len() >= 3, "enough records in {shard}");

    // Back: re-delivers to an idempotent consumer, no --yes needed.
    let back = sh.run(&[
        "checkpoints",
        "reset",
        "--consumer",
        "dynamodb",
        "--to",
        of_shard[0],
    ])?;
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    let table = String::from_utf8(back.stdout)?;
    assert!(
        table.contains(&format!("re-delivers {}", of_shard.len() - 1)),
        "{table}"
    );
    // Forward past records the consumer has not processed: refused without --yes.
    let last = of_shard[of_shard.len() - 1].as_str();
    let fwd = sh.run(&[
        "checkpoints",
        "reset",
        "--consumer",
        "dynamodb",
        "--to",
        last,
    ])?;
    assert_eq!(fwd.status.code(), Some(1));
    let err = String::from_utf8(fwd.stderr)?;
    assert!(err.contains("skips") && err.contains("--yes"), "{err}");
    let listed = sh.ok(&[
        "checkpoints",
        "list",
        "--consumer",
        "dynamodb",
        "--format",
        "json",
    ])?;
    assert!(
        listed.contains(of_shard[0].as_str()),
        "the refused reset moved nothing: {listed}"
    );
    sh.ok(&[
        "checkpoints",
        "reset",
        "--consumer",
        "dynamodb",
        "--to",
        last,
        "--yes",
    ])?;
    let listed = sh.ok(&[
        "checkpoints",
        "list",
        "--consumer",
        "dynamodb",
        "--format",
        "json",
    ])?;
    assert!(listed.contains(last), "{listed}");
    // By time: every record of the shard that arrived at or after its first record's arrival.
    let first: serde_json::Value = serde_json::from_str(
        sh.ok(&[
            "stream", "get", "metrics", "--shard", &shard, "--limit", "1",
        ])?
        .lines()
        .next()
        .context("a record")?,
    )?;
    let at = first["arrival"].as_str().context("arrival")?.to_string();
    let by_time = sh.ok(&[
        "checkpoints",
        "reset",
        "--consumer",
        "cloudwatch",
        "--to",
        &at,
        "--shard",
        &shard,
    ])?;
    assert!(
        by_time.contains(&format!("re-delivers {}", of_shard.len())),
        "{by_time}"
    );
    let ghost = sh.run(&["checkpoints", "reset", "--consumer", "ghost"])?;
    assert!(String::from_utf8(ghost.stderr)?.contains("has no checkpoints and is not configured"));

    // While `up` runs: the consumer is paused, moved, resumed, and reads everything again.
    let _up = start_up(&sh)?;
    let out = sh.run(&["checkpoints", "reset", "--consumer", "dynamodb"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stderr)?.contains("paused and resumed"),
        "the running consumer was paused"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = sh.ok(&[
            "checkpoints",
            "list",
            "--consumer",
            "dynamodb",
            "--format",
            "json",
        ])?;
        let rows: Vec<serde_json::Value> = listed
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if rows.len() == 2 && rows.iter().all(|r| r["records_behind"] == 0) {
            break;
        }
        if Instant::now() >= deadline {
            bail!("the resumed consumer did not catch up: {listed}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        sh.ok(&["table", "count"])?.trim(),
        "20",
        "one item per event"
    );
    Ok(())
}

/// Makes `path` and its parents traversable by other users (the temp dir is the user's).
fn open_dirs(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut p = Some(path);
    while let Some(dir) = p {
        if dir.as_os_str().len() <= 1 {
            break;
        }
        let mode = std::fs::metadata(dir)?.permissions().mode();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711))?;
        p = dir.parent();
        if p == Some(&std::env::temp_dir()) {
            break;
        }
    }
    Ok(())
}

#[test]
fn the_control_socket_refuses_other_users() -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let sh = Shardline::with_config(&quiet_toml())?;
    sh.ok(&["stream", "create", "metrics", "--shards", "1"])?;
    let _up = start_up(&sh)?;
    let socket = sh.data_dir().join("control.sock");
    let meta = std::fs::metadata(&socket)?;
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "owner-only socket"
    );
    let me = std::fs::metadata(sh.dir.path())?.uid();
    assert_eq!(
        meta.uid(),
        me,
        "the socket belongs to the user who started `up`"
    );
    if me != 0 {
        eprintln!(
            "not root: the socket's mode and owner are checked; running as another user needs root"
        );
        return Ok(());
    }
    // As user nobody: the socket's permissions refuse the connection.
    open_dirs(&sh.data_dir())?;
    let as_nobody = |sh: &Shardline| -> Result<std::process::Output> {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_shardline"))
            .arg("--config")
            .arg(sh.config_file())
            .arg("--data-dir")
            .arg(sh.data_dir())
            .args(["table", "count"])
            .current_dir("/")
            .stdin(std::process::Stdio::null());
        Ok(cmd.output()?)
    };
    let out = as_nobody(&sh)?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody got an answer: {err}");
    assert!(out.stdout.is_empty(), "nothing was read for nobody");
    assert!(err.contains("refuses this user"), "{err}");
    // Even with the socket opened to everyone, the owner's peer-credential check refuses.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
    let out = as_nobody(&sh)?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody got an answer: {err}");
    assert!(out.stdout.is_empty(), "nothing was read for nobody");
    assert!(
        err.contains("user 65534 may not use this control socket"),
        "{err}"
    );
    // The owner still gets answers.
    assert_eq!(sh.ok(&["stream", "list"])?.trim(), "metrics");
    Ok(())
}

/// `GET path` on `addr` (HTTP/1.1, connection closed by the server after the answer).
fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes)
        .with_context(|| format!("GET {path}: reading the answer"))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("GET {path}: no HTTP status in {text:?}"))?
        .parse()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn dashboard_serves_a_stopped_data_directory_and_keeps_commands_working() -> Result<()> {
    use std::io::BufRead;
    let sh = Shardline::with_config(&quiet_toml())?;
    let missing = sh.run(&["dashboard"])?;
    assert!(
        String::from_utf8(missing.stderr)?.contains("does not exist"),
        "a data directory that does not exist says so"
    );
    sh.ok(&["stream", "create", "metrics", "--shards", "2"])?;
    let now = shardline_core::time::now_ms() / 1000;
    let line = event("i-dash", "memory_usage", now - 120, 61.0);
    sh.run_with_stdin(&["stream", "put", "metrics"], Some(&format!("{line}\n")))?;
    sh.ok(&["up", "--once"])?;
    let mut cmd = sh.command(&["dashboard"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut guard = support::Running(Some(cmd.spawn()?));
    let stdout = guard
        .0
        .as_mut()
        .and_then(|c| c.stdout.take())
        .context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Reads on to the end, so the dashboard never writes to a closed pipe.
        let mut reader = std::io::BufReader::new(stdout);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let _ = tx.send(first);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let first = rx.recv_timeout(Duration::from_secs(30))?;
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .with_context(|| format!("no address in {first:?}"))?;
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let (status, page) = http_get(addr, "/")?;
    assert_eq!(status, 200);
    assert!(
        page.contains("<title>Shardline dashboard</title>"),
        "{page}"
    );
    let (status, js) = http_get(addr, "/app.js")?;
    assert_eq!(status, 200);
    // No resource outside the binary: the only URL in the script is the SVG namespace name.
    assert!(
        !js.contains("https://")
            && js.matches("http://").count() == js.matches("http://www.w3.org/2000/svg").count(),
        "no external resources"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    let (status, body) = http_get(addr, "/api/overview")?;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(v["live"], false, "a stopped directory");
    assert_eq!(v["stream"]["records"], 1);
    let (status, body) = http_get(addr, "/api/chart?metric=memory_usage&minutes=60")?;
    assert_eq!(status, 200, "{body}");
    let chart: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(chart["series"][0]["instance_id"], "i-dash", "{chart}");
    let (status, _) = http_get(addr, "/api/chart?metric=gpu")?;
    assert_eq!(status, 500, "an unknown metric is refused");
    // The dashboard owns the directory; commands reach it through its control socket.
    assert_eq!(sh.ok(&["table", "count"])?.trim(), "1");
    assert_eq!(sh.ok(&["dashboard"])?.trim(), url.trim());
    Ok(())
}
