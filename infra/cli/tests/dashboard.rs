//! The dashboard in a real headless browser (Debian's Chromium driven by playwright-core): the
//! page loads without console errors, the four charts hold series of the running instances,
//! an alarm raised by a scripted series is listed, and searching narrows the charts. The
//! screenshot is saved under the target directory (`target/tmp/dashboard.png`).

mod running;
mod support;

use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};
use support::{Shardline, TEST_TOML};

/// The node_modules holding playwright-core, or `None` (skip) outside CI.
fn browser_modules() -> Result<Option<String>> {
    match std::env::var("SHARDLINE_TEST_NODE_MODULES") {
        Ok(p) if !p.is_empty() => Ok(Some(p)),
        _ if std::env::var_os("CI").is_some() => bail!(
            "SHARDLINE_TEST_NODE_MODULES is not set: run scripts/test-all.sh, which installs \
             chromium and playwright-core and sets it"
        ),
        _ => {
            eprintln!(
                "\n!!!! SKIPPED the dashboard browser test: SHARDLINE_TEST_NODE_MODULES is not \
                 set (run scripts/test-all.sh to run it) !!!!\n"
            );
            Ok(None)
        }
    }
}

#[test]
fn the_dashboard_shows_charts_and_a_scripted_alarm_in_headless_chromium() -> Result<()> {
    let Some(modules) = browser_modules()? else {
        return Ok(());
    };
    let sh = Shardline::with_config(&format!(
        "{TEST_TOML}\n[dashboard]\nlisten = \"127.0.0.1:0\"\n"
    ))?;
    let _up = running::start_up(&sh)?;
    let url = sh.ok(&["dashboard"])?.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // A scripted series: instance i-alarm01 at 97 % CPU over the last five minutes.
    let now = shardline_core::time::now_ms() / 1000;
    let lines: String = (0..20)
        .map(|i| running::event("i-alarm01", "cpu_utilization", now - 300 + i * 15, 97.0) + "\n")
        .collect();
    let put = sh.run_with_stdin(&["stream", "put", "metrics"], Some(&lines))?;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let firing = sh.ok(&["alarms", "list", "--state", "ALARM", "--format", "json"])?;
        if firing.contains("i-alarm01") {
            break;
        }
        if Instant::now() >= deadline {
            bail!("the scripted series raised no alarm within 60 s: {firing}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard/check.mjs");
    // ES modules resolve packages from the script's directory upwards: run a copy placed next
    // to the node_modules that hold playwright-core.
    let runner = std::path::Path::new(&modules)
        .parent()
        .context("node_modules has a parent")?
        .join("shardline-dashboard-check.mjs");
    std::fs::copy(&script, &runner)?;
    let out = std::process::Command::new("node")
        .arg(&runner)
        .arg(&url)
        .arg(&shot)
        .arg("i-alarm01")
        .output()
        .context("cannot run node")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .last()
            .context("the browser driver printed nothing")?,
    )
    .with_context(|| {
        format!(
            "driver output: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "console errors: {report}"
    );
    for metric in [
        "cpu_utilization",
        "memory_usage",
        "disk_usage",
        "network_traffic",
    ] {
        let n = report["series"][metric].as_u64().unwrap_or(0);
        assert!(
            n >= 8,
            "{metric} chart holds {n} series (8 instances run): {report}"
        );
    }
    assert_eq!(report["alarmShown"], true, "{report}");
    assert_eq!(report["searchNarrows"], true, "{report}");
    assert!(
        report["consumers"]
            .as_str()
            .unwrap_or("")
            .contains("running"),
        "{report}"
    );
    assert!(shot.exists(), "screenshot saved at {}", shot.display());
    eprintln!("dashboard screenshot: {}", shot.display());
    Ok(())
}
