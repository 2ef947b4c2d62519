//! The flow's metrics-analyzer reads the window it analyses, not the history: as days of
//! Parquet accumulate, the objects it lists stay those of the days its window reaches.

mod support;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;
use support::Shardline;

/// Every `.parquet` object under `dir`, recursively.
fn objects(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("{}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn analyze(sh: &Shardline, input: &str) -> Result<Value> {
    let event = sh.dir.path().join("analyze.json");
    std::fs::write(&event, input)?;
    let out = sh.ok(&[
        "lambda",
        "invoke",
        "metrics-analyzer",
        "--event",
        &event.display().to_string(),
    ])?;
    serde_json::from_str(out.trim()).with_context(|| format!("not JSON: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analyzer_lists_the_days_of_its_window_however_many_are_kept() -> Result<()> {
    let sh = Shardline::new()?;
    sh.ok(&["up", "--once"])?;
    let root = sh
        .data_dir()
        .join("s3/infra-monitoring-pipeline-data/metrics");
    let today = objects(&root)?;
    anyhow::ensure!(!today.is_empty(), "up --once wrote no Parquet");
    // Thirty older days holding copies of today's objects (the partition in the path is what
    // the listing prunes by).
    for day in 1..=30 {
        let dir = root.join(format!("year=2026/month=11/day={day:02}"));
        std::fs::create_dir_all(&dir)?;
        for (i, o) in today.iter().enumerate() {
            std::fs::copy(o, dir.join(format!("copy-{i}.parquet")))?;
        }
    }
    let n = today.len();
    assert_eq!(objects(&root)?.len(), 31 * n);

    // The default window: the schedule's period (rate(5 minutes)), today's objects only.
    let got = analyze(&sh, r#"{"metric_type": "cpu_utilization"}"#)?;
    assert_eq!(got["window_seconds"], 300, "{got}");
    assert_eq!(got["objects_listed"], n, "{got}");
    assert_eq!(
        got["instances"], 8,
        "every instance sampled in the window: {got}"
    );

    // A window reaching back over the copies lists them all.
    let wide = analyze(
        &sh,
        r#"{"metric_type": "cpu_utilization", "window_seconds": 8640000}"#,
    )?;
    assert_eq!(wide["objects_listed"], 31 * n, "{wide}");

    // A bad window is one clear error naming it.
    let event = sh.dir.path().join("bad.json");
    std::fs::write(&event, r#"{"window_seconds": "soon"}"#)?;
    let out = sh.run(&[
        "lambda",
        "invoke",
        "metrics-analyzer",
        "--event",
        &event.display().to_string(),
    ])?;
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("window_seconds"), "{text}");
    Ok(())
}
